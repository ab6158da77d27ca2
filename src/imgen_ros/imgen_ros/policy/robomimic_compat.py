"""The one door to robomimic 0.3.0 in imgen: import it without torchvision, honestly.

robomimic 0.3.0 imports torchvision at module level (``models/base_nets.py``,
``models/obs_core.py``) but uses it only for *image* observations (ResNet/R3M/MVP backbones,
resize/crop/normalize transforms, colour jitter). imgen trains low-dimensional policies, and
torchvision cannot be installed beside the pinned CPU torch (see docs/ENVIRONMENT).

If a real torchvision is importable it is used and nothing here changes. Otherwise, for the
duration of the robomimic import only, a stand-in ``torchvision`` package is placed in
``sys.modules`` so the module-level imports succeed; it is removed again afterwards, so every
other library still sees torchvision as absent. Every stand-in attribute raises
:class:`TorchvisionUnavailableError` (an ``ImportError``) the moment it is *used*.

What works without torchvision: every low-dim algorithm path of robomimic — config factory,
``algo_factory`` (BC, BC-RNN, BC-RNN-GMM, ...), ``SequenceDataset``, ``TrainUtils.run_epoch`` /
``save_model``, ``FileUtils.policy_from_checkpoint`` and ``RolloutPolicy`` for low-dim
observations. What does not: any ``rgb``/``depth`` observation encoder (``VisualCore``,
``ResNet18Conv``, R3M/MVP backbones) and ``ColorRandomizer``; building one raises
:class:`TorchvisionUnavailableError` naming torchvision.

Use ``robomimic_modules()`` (or :func:`ensure_robomimic`) instead of importing robomimic directly.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import importlib.util
import io
import sys
import threading
import types
from dataclasses import dataclass
from typing import Any, NoReturn

_SHIM_ORIGIN = "imgen-torchvision-unavailable"
_SHIM_MODULES = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional", "torchvision.models")
_LOCK = threading.Lock()


class TorchvisionUnavailableError(ImportError):
    """Raised when robomimic code needs torchvision (image encoders/transforms) and it is absent."""


def _unavailable(what: str) -> NoReturn:
    raise TorchvisionUnavailableError(
        f"{what} needs torchvision, which is not installed in this environment: imgen's robomimic "
        "supports low-dimensional observations only (image encoders such as VisualCore/ResNet18Conv "
        "and image randomizers are unavailable). Install a torchvision build matching torch "
        "to use image observations.")


class _UnavailableModule(types.ModuleType):
    """A module whose every (non-dunder) attribute raises TorchvisionUnavailableError."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        _unavailable(f"{self.__name__}.{name}")


class _UnavailableCallable:
    """Stand-in for a class imported by name at module level (e.g. ``Compose``); fails when used."""

    def __init__(self, qualname: str) -> None:
        self._qualname = qualname

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        _unavailable(self._qualname)

    def __repr__(self) -> str:
        return f"<unavailable {self._qualname} (torchvision not installed)>"


def _make_shim() -> dict[str, types.ModuleType]:
    modules: dict[str, types.ModuleType] = {}
    for name in _SHIM_MODULES:
        module = _UnavailableModule(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None, origin=_SHIM_ORIGIN,
                                                         is_package=name != "torchvision.transforms.functional")
        module.__file__ = None
        modules[name] = module
    transforms = modules["torchvision.transforms"]
    # Names robomimic imports with ``from torchvision.transforms import ...`` must exist at import time.
    for cls in ("Lambda", "Compose"):
        setattr(transforms, cls, _UnavailableCallable(f"torchvision.transforms.{cls}"))
    transforms.functional = modules["torchvision.transforms.functional"]
    modules["torchvision"].transforms = transforms
    modules["torchvision"].models = modules["torchvision.models"]
    return modules


def torchvision_available() -> bool:
    """True when a real torchvision can be imported (the stand-in does not count)."""
    existing = sys.modules.get("torchvision")
    if existing is not None:
        return getattr(getattr(existing, "__spec__", None), "origin", None) != _SHIM_ORIGIN
    try:
        return importlib.util.find_spec("torchvision") is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class RobomimicModules:
    """The robomimic modules imgen uses, imported through the compatibility layer."""

    config_factory: Any
    algo_factory: Any
    RolloutPolicy: Any
    ObsUtils: types.ModuleType
    TorchUtils: types.ModuleType
    TrainUtils: types.ModuleType
    FileUtils: types.ModuleType
    TensorUtils: types.ModuleType
    SequenceDataset: type
    version: str
    torchvision: bool


_MODULES: RobomimicModules | None = None


def _import_all() -> RobomimicModules:
    # robomimic prints a "No private macro file found!" banner to stdout on import; keep stdout clean
    # (``--json`` output) and forward anything else it prints to stderr.
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        modules = _import_all_quiet()
    text = captured.getvalue()
    if text and "private macro file" not in text:
        sys.stderr.write(text)
    return modules


def _import_all_quiet() -> RobomimicModules:
    import robomimic
    from robomimic.algo import RolloutPolicy, algo_factory
    from robomimic.config import config_factory
    from robomimic.utils import file_utils, obs_utils, tensor_utils, torch_utils, train_utils
    from robomimic.utils.dataset import SequenceDataset
    importlib.import_module("robomimic.models.obs_core")
    importlib.import_module("robomimic.models.base_nets")
    return RobomimicModules(config_factory=config_factory, algo_factory=algo_factory, RolloutPolicy=RolloutPolicy,
                            ObsUtils=obs_utils, TorchUtils=torch_utils, TrainUtils=train_utils,
                            FileUtils=file_utils, TensorUtils=tensor_utils, SequenceDataset=SequenceDataset,
                            version=robomimic.__version__, torchvision=False)


def robomimic_modules() -> RobomimicModules:
    """Import robomimic (once) and return its modules; installs the torchvision stand-in only if needed."""
    global _MODULES
    with _LOCK:
        if _MODULES is not None:
            return _MODULES
        if torchvision_available():
            modules = _import_all()
            _MODULES = RobomimicModules(**{**modules.__dict__, "torchvision": True})
            return _MODULES
        shim = _make_shim()
        previous = {name: sys.modules.get(name) for name in shim}
        sys.modules.update(shim)
        try:
            _MODULES = _import_all()
        finally:
            # Keep torchvision absent for everyone else; robomimic keeps its references to the stand-ins.
            for name, module in previous.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module
        return _MODULES


def ensure_robomimic() -> RobomimicModules:
    """Alias of :func:`robomimic_modules`, for call sites that only need the import side effect."""
    return robomimic_modules()
