"""Checkpoints are checked, not trusted: safe loading and task / observation-layout checks.

:func:`read_checkpoint` loads a ``.pth`` with ``torch.load(weights_only=True)`` (tensors and plain
containers only: no code runs while unpickling) and turns every failure into one
:class:`CheckpointError` line naming the file and what is wrong (missing, a directory, empty, not
a torch file, objects outside the safe allow-list, not a robomimic/imgen checkpoint, missing
keys, malformed ``shape_metadata``, NaN/Inf weights). :func:`check_compatible` compares the
checkpoint's task (``imgen.task``, else robomimic's ``env_metadata.env_name``) and observation
layout (``shape_metadata``: keys and shapes) with the task a command is about to run, before any
rollout.
"""

from __future__ import annotations

import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imgen_ros.core.observation import OBSERVABILITY_CHANNEL_DIMS, ROBOT_OBS_SHAPES

REQUIRED_KEYS = ("model", "config", "algo_name", "shape_metadata")
POSE_DIM = 7  # position (3) + quaternion xyzw (4) per observed object


class CheckpointError(ValueError):
    """A checkpoint that cannot or must not be used; the message is one line naming the file."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict at ``path``, loaded safely and checked to be a robomimic checkpoint."""
    import torch

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path}: is a directory, not a .pth file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": the outcome is what counts
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"checkpoint {path}: {_unpickling_problem(exc)}") from None
    except Exception as exc:
        # (torch's weights-only unpickler raises IndexError, TypeError, ... on arbitrary bytes)
        with path.open("rb") as f:
            zipped = f.read(4) == b"PK\x03\x04"
        what = "a corrupt or truncated torch file" if zipped else "not a torch checkpoint"
        raise CheckpointError(f"checkpoint {path}: {what} ({_first_line(exc)})") from None
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"checkpoint {path}: not a robomimic/imgen checkpoint (holds a {type(ckpt).__name__}, "
                              "expected a dict)")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path}: not a robomimic/imgen checkpoint (missing keys {missing}; "
                              f"has {sorted(map(str, ckpt))[:8]})")
    shapes = ckpt["shape_metadata"]
    if not isinstance(shapes, Mapping) or not isinstance(shapes.get("all_shapes"), Mapping) \
            or "all_obs_keys" not in shapes or "ac_dim" not in shapes:
        raise CheckpointError(f"checkpoint {path}: shape_metadata lacks all_shapes/all_obs_keys/ac_dim")
    problem = _shape_metadata_problem(shapes) or _weights_problem(ckpt["model"])
    if problem:
        raise CheckpointError(f"checkpoint {path}: {problem}")
    return dict(ckpt)


def checkpoint_task(ckpt: Mapping[str, Any]) -> str | None:
    """The task a checkpoint was trained for: ``imgen.task``, else robomimic's ``env_metadata.env_name``."""
    imgen = ckpt.get("imgen")
    if isinstance(imgen, Mapping) and isinstance(imgen.get("task"), str):
        return imgen["task"]
    meta = ckpt.get("env_metadata")
    if isinstance(meta, Mapping) and isinstance(meta.get("env_name"), str):
        return meta["env_name"]
    return None


def checkpoint_task_digest(ckpt: Mapping[str, Any]) -> str | None:
    """The digest of the task's definition the checkpoint was trained and selected on (``imgen.task_digest``,
    ``sim.task_digest``; None for checkpoints that predate it or come from elsewhere)."""
    imgen = ckpt.get("imgen")
    digest = imgen.get("task_digest") if isinstance(imgen, Mapping) else None
    return digest if isinstance(digest, str) else None


def checkpoint_obs_shapes(ckpt: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Observation key -> per-step shape the checkpoint's policy consumes (robomimic ``shape_metadata``)."""
    meta = ckpt["shape_metadata"]
    return {str(k): tuple(int(d) for d in meta["all_shapes"][k]) for k in meta["all_obs_keys"]}


def observation_shapes(num_objects: int, observability: str) -> dict[str, tuple[int, ...]]:
    """The low-dim observation layout of the simulator and the policy node (see core.observation)."""
    if observability not in OBSERVABILITY_CHANNEL_DIMS:
        raise ValueError(f"unknown observability {observability!r}; valid: {', '.join(OBSERVABILITY_CHANNEL_DIMS)}")
    return {**ROBOT_OBS_SHAPES, "object": (POSE_DIM * num_objects + OBSERVABILITY_CHANNEL_DIMS[observability],)}


def task_obs_shapes(task: str, observability: str) -> dict[str, tuple[int, ...]]:
    """The observation layout of sim task ``task`` (its observed objects) under ``observability``."""
    from imgen_ros.sim import task_object_names

    return observation_shapes(len(task_object_names(task)), observability)


def check_compatible(path: str | Path, ckpt: Mapping[str, Any], task: str | None,
                     obs_shapes: Mapping[str, tuple[int, ...]] | None, task_label: str = "--task",
                     observability: str | None = None) -> None:
    """Refuse (CheckpointError) a checkpoint whose task or observation layout differ from the run's.

    ``task`` / ``obs_shapes`` None skip that check. Every key the policy reads must exist in the
    run's observation with the same shape (extra observation keys are fine). ``task_label`` names
    where the run's task came from (``--task``, a node parameter) and ``observability`` its
    observation channel, for the message.
    """
    trained_on = checkpoint_task(ckpt)
    have = checkpoint_obs_shapes(ckpt)
    run_obs = "" if obs_shapes is None else f" (obs {_layout(obs_shapes)})"
    if task is not None:
        if trained_on is None:
            raise CheckpointError(f"checkpoint {path} records no task (neither imgen.task nor env_metadata.env_name); "
                                  f"cannot check it against {task_label} '{task}'")
        if trained_on != task:
            raise CheckpointError(f"checkpoint {path} was trained on task '{trained_on}' (obs {_layout(have)}) "
                                  f"but {task_label} is '{task}'{run_obs}")
    if obs_shapes is not None:
        wrong = sorted(k for k, s in have.items() if tuple(obs_shapes.get(k, ())) != s)
        if wrong:
            run = f"{task_label} '{task}'" if task is not None else "this run"
            if observability is not None:
                run += f" with observability '{observability}'"
            raise CheckpointError(f"checkpoint {path} (task '{trained_on}') reads observations {_layout(have)} but "
                                  f"{run} provides {_layout(obs_shapes)} (differing: {', '.join(wrong)})")


def load_checked(path: str | Path, task: str | None = None, obs_shapes: Mapping[str, tuple[int, ...]] | None = None,
                 task_label: str = "--task", observability: str | None = None) -> dict[str, Any]:
    """:func:`read_checkpoint` followed by :func:`check_compatible`."""
    ckpt = read_checkpoint(path)
    check_compatible(path, ckpt, task, obs_shapes, task_label, observability)
    return ckpt


def check_policy_spec(spec: str, task: str, observability: str = "full") -> None:
    """Refuse (CheckpointError) a policy spec that policy_node would refuse at start: not ``expert`` /
    ``expert:true`` and not a safe-loading checkpoint of ``task`` with ``observability``'s observation
    layout. The launch files call it before any process starts, so a bad checkpoint stops the whole
    launch instead of policy_node alone while the rest of the graph runs on."""
    if spec in ("expert", "expert:true"):
        return
    load_checked(spec, task, task_obs_shapes(task, observability), "the launch's task", observability)


def _shape_metadata_problem(meta: Mapping[str, Any]) -> str | None:
    """What makes robomimic's ``shape_metadata`` unusable (obs keys a non-empty list of strings, each with a
    shape that is a non-empty list of positive ints, ac_dim a positive int), or None."""
    keys, shapes, ac_dim = meta["all_obs_keys"], meta["all_shapes"], meta["ac_dim"]
    if not isinstance(keys, (list, tuple)) or not keys or not all(isinstance(k, str) for k in keys):
        return f"shape_metadata all_obs_keys is {_brief(keys)}, expected a non-empty list of observation names"
    for key in keys:
        if key not in shapes:
            return (f"shape_metadata all_obs_keys lists {key!r} but all_shapes has no shape for it "
                    f"(has {sorted(map(str, shapes))[:8]})")
        shape = shapes[key]
        if not isinstance(shape, (list, tuple)) or not shape or not all(_positive_int(d) for d in shape):
            return f"shape_metadata all_shapes[{key!r}] is {_brief(shape)}, expected a list of positive integers"
    if not _positive_int(ac_dim):
        return f"shape_metadata ac_dim is {_brief(ac_dim)}, expected a positive integer"
    return None


def _weights_problem(model: Any, prefix: str = "") -> str | None:
    """The first model parameter holding NaN/Inf (a diverged or tampered training run), or None."""
    import torch

    if not isinstance(model, Mapping):
        return None  # not a state dict: robomimic's loader names that problem
    for name, value in model.items():
        where = f"{prefix}{name}"
        if isinstance(value, Mapping):
            problem = _weights_problem(value, f"{where}.")
            if problem:
                return problem
        elif isinstance(value, torch.Tensor) and (value.is_floating_point() or value.is_complex()):
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                return f"model parameter {where!r} has {bad} non-finite value(s) (NaN/Inf) of {value.numel()}"
    return None


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _brief(value: Any) -> str:
    text = " ".join(repr(value).split())
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({type(value).__name__})"


def _layout(shapes: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {list(v)}" for k, v in shapes.items()) + "}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _unpickling_problem(exc: pickle.UnpicklingError) -> str:
    """What torch's safe unpickler refused, without its advice to turn safe loading off."""
    text = str(exc)
    blocked = re.search(r"unsupported GLOBAL (\S+) whose module (\S+) is blocked", text)
    if blocked:
        return (f"references {blocked.group(1)}, code that imgen will not load (module {blocked.group(2)} is "
                "blocked by safe loading); refusing to unpickle it")
    match = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if match:
        return (f"holds a {match.group(1)} object, outside the safe-loading allow-list (tensors and plain "
                "containers): code that imgen will not load; refusing to unpickle it")
    marker = "WeightsUnpickler error:"
    found = text.split(marker, 1)[1] if marker in text else text
    # the first line that is torch's finding, not its advice (weights_only=False, the docs)
    detail = next((line.strip() for line in found.splitlines() if line.strip() and "weights_only" not in line
                   and not line.strip().startswith("Check the documentation")), "")
    if marker not in text:
        detail = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return f"not a torch checkpoint ({detail or type(exc).__name__})"
