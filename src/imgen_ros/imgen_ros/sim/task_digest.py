"""A short fingerprint of a task's definition: its compiled MuJoCo scene and its class settings.

An experiment's step records it (``policy.experiment``), so data, policies and evaluations made
with one definition of a task are not reused after the definition changed (for example the nut's
fit in Nut Insertion): the step reruns. It covers the scene as MuJoCo compiles it (bodies, geoms,
masses, frictions, actuators, the arm; the asset directory's location on this machine left out) and
the task class's data attributes (horizon, channel, tolerances, offsets, noise modes) and the
module-level constants (public UPPER_CASE data) of the modules that define the class and its bases
and of the simulation modules every task runs on (``_SHARED_MODULES``: corruption, control, contacts,
the wrench estimate): a success height or a placement region written as a module constant counts. Logic
in functions and methods is not covered, nor are the mesh files' contents (their names are).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import re
import sys
from types import ModuleType
from typing import Any

import numpy as np

from imgen_ros.sim import task_class
from imgen_ros.sim.model import load_fr3_spec

# prose, not definition: a reworded note must not invalidate finished steps
_NOT_DEFINITION = frozenset({"paper_deviations"})
_ASSET_DIRS = re.compile(r'\s(?:meshdir|texturedir|assetdir)="[^"]*"')
# what every task's episodes run through besides its own module
_SHARED_MODULES = ("imgen_ros.sim.env", "imgen_ros.sim.controller", "imgen_ros.sim.corruption",
                   "imgen_ros.sim.contacts", "imgen_ros.sim.wrench", "imgen_ros.sim.model")
_CONSTANT = re.compile(r"[A-Z][A-Z0-9_]*")


def _plain(value: Any) -> Any:
    """``value`` as JSON-able data, or None where it is not data (methods, properties)."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, np.ndarray | np.generic):
        return np.asarray(value).tolist()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "__dataclass_fields__"):
        return {"type": type(value).__name__, **{f: _plain(getattr(value, f)) for f in value.__dataclass_fields__}}
    return None


def task_settings(task: str) -> dict[str, Any]:
    """The data attributes of ``task``'s class and its bases (public names, prose left out)."""
    settings: dict[str, Any] = {}
    for klass in reversed(task_class(task).__mro__):
        for name, value in vars(klass).items():
            if name.startswith("_") or name in _NOT_DEFINITION or callable(value) or isinstance(value, property):
                continue
            plain = _plain(value)
            if plain is not None or value is None:
                settings[name] = plain
    return settings


def module_constants(module: ModuleType) -> dict[str, Any]:
    """``module``'s public UPPER_CASE names bound to data (numbers, strings, arrays, tuples, dataclasses)."""
    constants: dict[str, Any] = {}
    for name, value in vars(module).items():
        if (_CONSTANT.fullmatch(name) and name != "TYPE_CHECKING" and not callable(value)
                and not isinstance(value, ModuleType)):
            plain = _plain(value)
            if plain is not None or value is None:
                constants[name] = plain
    return constants


def task_constants(task: str) -> dict[str, dict[str, Any]]:
    """Module name -> :func:`module_constants`, for the modules of ``task``'s class and its bases and
    the shared simulation modules."""
    names = {klass.__module__ for klass in task_class(task).__mro__ if klass.__module__.startswith("imgen_ros.")}
    names.update(_SHARED_MODULES)
    return {name: module_constants(sys.modules.get(name) or importlib.import_module(name)) for name in sorted(names)}


@functools.cache
def task_digest(task: str) -> str:
    """16 hex digits that change when ``task``'s scene or class settings change (ValueError: unknown task)."""
    klass = task_class(task)
    spec = load_fr3_spec()
    klass(klass.noise_modes[0]).build(spec)
    spec.compile()
    scene = _ASSET_DIRS.sub("", spec.to_xml())
    text = json.dumps({"scene": scene, "settings": task_settings(task), "constants": task_constants(task)},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


__all__ = ["module_constants", "task_constants", "task_digest", "task_settings"]
