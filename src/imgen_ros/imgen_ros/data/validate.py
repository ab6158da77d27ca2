"""Check a robomimic/imgen hdf5 file and name every problem (file, demo, key, what is wrong)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from imgen_ros.core.action import ACTION_DIM
from imgen_ros.core.observation import ROBOT_OBS_SHAPES
from imgen_ros.data.episode import ACTION_MODES
from imgen_ros.data.writer import DEMO_PREFIX, demo_index

ACTION_BOUND_TOLERANCE = 1e-6
REQUIRED_DEMO_KEYS = ("actions", "rewards", "dones", "states", "obs")
OBS_MAGNITUDE_LIMIT = 1e6  # no low-dim observation of imgen's comes near; squaring 1e308 overflows in training
NUMERIC_KINDS = "biuf"  # numpy dtype kinds training and generation can use (bool, ints, floats; not text/complex)
# what h5py/numpy raise on a file whose layout is not the expected one (a group where a dataset belongs,
# a string attribute where a number belongs, ...) or whose bytes cannot be read (corrupt chunks)
MALFORMED = (OSError, RuntimeError, KeyError, TypeError, ValueError, AttributeError, IndexError)


@dataclass(frozen=True)
class DatasetIssue:
    file: str
    demo: str | None
    key: str | None
    problem: str

    def __str__(self) -> str:
        where = self.file
        if self.demo is not None:
            where += f" data/{self.demo}"
        if self.key is not None:
            where += f" [{self.key}]"
        return f"{where}: {self.problem}"


class DatasetError(ValueError):
    """A dataset failed validation; ``issues`` lists every problem found.

    The message is one line: the only problem, or the count followed by the first 20 ("; "-separated).
    """

    def __init__(self, issues: list[DatasetIssue]) -> None:
        self.issues = issues
        if len(issues) == 1:
            super().__init__(f"invalid dataset: {issues[0]}")
            return
        shown = "; ".join(str(i) for i in issues[:20])
        more = f"; ... and {len(issues) - 20} more" if len(issues) > 20 else ""
        super().__init__(f"invalid dataset ({len(issues)} problems): {shown}{more}")


IMGEN_JSON_ATTRS = ("imgen_config", "imgen_stats", "imgen_bookkeeping")  # JSON attributes imgen writes on data/


def validate_dataset(path: str | Path, *, require_imgen: bool = False, task: str | None = None) -> None:
    """Raise DatasetError listing all problems; ``require_imgen`` also demands ``action_modes``,
    ``task`` that the file was recorded for that task (``env_args['env_name']``)."""
    issues = find_issues(path, require_imgen=require_imgen, task=task)
    if issues:
        raise DatasetError(issues)


def find_issues(path: str | Path, *, require_imgen: bool = False, task: str | None = None) -> list[DatasetIssue]:
    path = Path(path)
    file = str(path)
    if not path.exists():
        return [DatasetIssue(file, None, None, "file does not exist")]
    if path.is_dir():
        return [DatasetIssue(file, None, None, "is a directory, not an HDF5 file")]
    if not path.is_file():  # a FIFO, socket or device: opening it could block forever or never end
        return [DatasetIssue(file, None, None, "not a regular file")]
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        return [DatasetIssue(file, None, None, f"not a readable HDF5 file ({exc})")]
    with handle as f:
        try:
            return _file_issues(f, file, require_imgen, task)
        except MALFORMED as exc:
            return [DatasetIssue(file, None, None, f"malformed or unreadable content ({_describe(exc)})")]


def _describe(exc: BaseException) -> str:
    """``Type: first line of the message`` for an issue text."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _file_issues(f: h5py.File, file: str, require_imgen: bool, task: str | None = None) -> list[DatasetIssue]:
    issues: list[DatasetIssue] = []

    def add(demo: str | None, key: str | None, problem: str) -> None:
        issues.append(DatasetIssue(file, demo, key, problem))

    if "data" not in f or not isinstance(f["data"], h5py.Group):
        add(None, "data", "missing group 'data'")
        return issues
    data = f["data"]
    if "env_args" not in data.attrs:
        add(None, "data.attrs[env_args]", "missing attribute")
    else:
        try:
            env_args = json.loads(data.attrs["env_args"])
            if not isinstance(env_args, dict) or "env_name" not in env_args:
                add(None, "data.attrs[env_args]", "JSON must be an object with 'env_name'")
            elif task is not None and env_args["env_name"] != task:
                add(None, "data.attrs[env_args]", f"recorded for task '{env_args['env_name']}', not '{task}'")
        except (TypeError, ValueError) as exc:
            add(None, "data.attrs[env_args]", f"not valid JSON ({exc})")
    for name in IMGEN_JSON_ATTRS:  # imgen's own records: their shape is the reader's business, JSON is not
        if name in data.attrs:
            try:
                json.loads(data.attrs[name])
            except (TypeError, ValueError) as exc:
                add(None, f"data.attrs[{name}]", f"not valid JSON ({exc})")
    demos: list[str] = []
    for name in data.keys():
        try:
            demo_index(name)
            demos.append(name)
        except ValueError:
            if name.startswith(DEMO_PREFIX):
                add(name, None, "malformed demo name (expected demo_<int>)")
    obs_keys_ref: set[str] | None = None
    obs_shapes_ref: dict[str, tuple[tuple[int, ...], str]] = {}
    total = 0
    for name in demos:
        try:
            group = data[name]
            if not isinstance(group, h5py.Group):
                add(name, None, "is not a group")
                continue
            n = _demo_issues(group, name, add, require_imgen)
            if isinstance(group.get("obs"), h5py.Group):
                keys = set(group["obs"].keys())
                if not keys:
                    add(name, "obs", "holds no observation")
                if obs_keys_ref is None:
                    obs_keys_ref = keys
                elif keys != obs_keys_ref:
                    add(name, "obs", f"observation keys {sorted(keys)} differ from other demos' {sorted(obs_keys_ref)}")
                for key, ds in _datasets(group["obs"]):
                    shape, first = obs_shapes_ref.setdefault(key, (ds.shape[1:], name))
                    if ds.shape[1:] != shape:
                        add(name, f"obs/{key}", f"per-step shape {ds.shape[1:]} differs from {first}'s {shape}")
        except MALFORMED as exc:
            add(name, None, f"malformed or unreadable ({_describe(exc)})")
            continue
        if n is not None:
            total += n
    if "total" not in data.attrs:
        add(None, "data.attrs[total]", "missing attribute")
    elif _int_attr(data.attrs["total"]) is None:
        add(None, "data.attrs[total]", f"not an integer ({data.attrs['total']!r})")
    elif int(data.attrs["total"]) != total:
        add(None, "data.attrs[total]", f"is {int(data.attrs['total'])} but demos hold {total} samples")
    if "mask" in f and not isinstance(f["mask"], h5py.Group):
        add(None, "mask", "is not a group")
    elif "mask" in f:
        demo_set = set(demos)
        for mask in f["mask"].keys():
            listed: set[str] = set()
            for entry in np.asarray(f["mask"][mask][:]):
                entry_name = entry.decode() if isinstance(entry, bytes) else str(entry)
                if entry_name not in demo_set:
                    add(None, f"mask/{mask}", f"lists {entry_name!r}, which is not a demo in data/")
                elif entry_name in listed:  # the demo would be drawn twice as often
                    add(None, f"mask/{mask}", f"lists {entry_name!r} twice")
                listed.add(entry_name)
    return issues


def _demo_issues(group: h5py.Group, name: str, add, require_imgen: bool) -> int | None:
    if "num_samples" not in group.attrs:
        add(name, "attrs[num_samples]", "missing attribute")
        return None
    n = _int_attr(group.attrs["num_samples"], integer_dtype=True)  # robomimic indexes with it: 20.0 breaks it
    if n is None or n < 0:
        value = group.attrs["num_samples"]
        hint = "; store an integer" if np.asarray(value).dtype.kind == "f" else ""
        add(name, "attrs[num_samples]", f"not a count ({value!r}{hint})")
        return None
    if n == 0:
        add(name, "attrs[num_samples]", "0 samples (a demo needs at least one step)")
    required = REQUIRED_DEMO_KEYS + (("action_modes",) if require_imgen else ())
    for key in required:
        if key not in group:
            add(name, key, "missing")
    for key in ("actions", "rewards", "dones", "states", "action_modes"):
        if key in group and not isinstance(group[key], h5py.Dataset):
            add(name, key, "is not a dataset")
            return n
    if "actions" in group:
        actions = group["actions"][()]
        if actions.dtype.kind not in "iuf":
            add(name, "actions", f"not numbers (dtype {actions.dtype})")
            return n
        if actions.ndim != 2 or actions.shape[1] != ACTION_DIM:
            add(name, "actions", f"shape {actions.shape}, expected ({n}, {ACTION_DIM})")
        elif actions.shape[0] != n:
            add(name, "actions", f"length {actions.shape[0]} != num_samples {n}")
        if actions.size and not np.all(np.isfinite(actions)):
            bad = np.argwhere(~np.isfinite(actions))[0]
            add(name, "actions", f"non-finite value (NaN/Inf) at step {bad[0]}")
        elif actions.size and np.any(np.abs(actions) > 1.0 + ACTION_BOUND_TOLERANCE):
            step = int(np.argmax(np.any(np.abs(actions) > 1.0 + ACTION_BOUND_TOLERANCE, axis=-1)))
            worst = np.abs(actions).max()
            add(name, "actions", f"values outside [-1, 1] (max |a| = {worst:.4g}, first at step {step})")
    for key in ("rewards", "dones", "states", "action_modes"):
        if key in group and group[key].shape[:1] != (n,):
            add(name, key, f"length {group[key].shape[0] if group[key].ndim else 0} != num_samples {n}")
        elif key != "states" and key in group and group[key].ndim != 1:
            add(name, key, f"shape {group[key].shape}, expected ({n},)")
    for key in ("rewards", "dones"):
        if key in group:
            values = group[key][()]
            if values.dtype.kind not in NUMERIC_KINDS:
                add(name, key, f"not numbers (dtype {values.dtype})")
            elif values.size and not np.all(np.isfinite(values)):
                add(name, key, f"non-finite value (NaN/Inf) at step {np.argwhere(~np.isfinite(values))[0][0]}")
    if "action_modes" in group:
        modes = group["action_modes"][()]
        unknown = sorted(set(np.unique(modes).tolist()) - set(ACTION_MODES))
        if unknown:
            add(name, "action_modes", f"unknown labels {unknown} (allowed {list(ACTION_MODES)})")
    for prefix in ("obs", "next_obs", "datagen_info"):
        if prefix not in group:
            continue
        if not isinstance(group[prefix], h5py.Group):
            add(name, prefix, "is not a group")
            continue
        for key, ds in _datasets(group[prefix]):
            if ds.dtype.kind not in NUMERIC_KINDS:
                add(name, f"{prefix}/{key}", f"not numbers (dtype {ds.dtype})")
            elif ds.shape[:1] != (n,):
                add(name, f"{prefix}/{key}", f"length {ds.shape[0] if ds.ndim else 0} != num_samples {n}")
            elif prefix != "datagen_info" and not _obs_shape_ok(key, ds.shape):
                width = ROBOT_OBS_SHAPES[key][0] if key in ROBOT_OBS_SHAPES else None
                expected = f"({n}, {width})" if width else f"({n}, D), a vector per step"
                add(name, f"{prefix}/{key}", f"shape {ds.shape}, expected {expected}")
            elif prefix != "datagen_info" and ds.dtype.kind in "fiu":
                values = np.asarray(ds[()], dtype=float)
                if not np.all(np.isfinite(values)):
                    add(name, f"{prefix}/{key}", "contains NaN/Inf")
                elif values.size and (largest := float(np.abs(values).max())) > OBS_MAGNITUDE_LIMIT:
                    add(name, f"{prefix}/{key}", f"value {largest:.3g} beyond {OBS_MAGNITUDE_LIMIT:g} (positions are "
                                                 "metres, quaternions and flags unit-sized; normalizing it overflows)")
    if isinstance(group.get("obs"), h5py.Group) and isinstance(group.get("next_obs"), h5py.Group):
        missing = set(group["obs"].keys()) - set(group["next_obs"].keys())
        if missing:
            add(name, "next_obs", f"missing keys {sorted(missing)} present in obs")
    return n


def _int_attr(value: object, integer_dtype: bool = False) -> int | None:
    """An integer-valued attribute as int; None for anything else (text, arrays, fractions, and with
    ``integer_dtype`` any float, even 20.0)."""
    try:
        number = np.asarray(value)
        if number.ndim != 0 or number.dtype.kind not in ("iu" if integer_dtype else "iuf") or number != int(number):
            return None
        return int(number)
    except (TypeError, ValueError, OverflowError):
        return None


def _obs_shape_ok(key: str, shape: tuple[int, ...]) -> bool:
    """Low-dim observations are one vector per step, (T, D); the robot's keys have a fixed D."""
    expected = ROBOT_OBS_SHAPES.get(key)
    return len(shape) == 2 if expected is None else shape[1:] == expected


def _datasets(group: h5py.Group, prefix: str = ""):
    for key, item in group.items():
        if isinstance(item, h5py.Dataset):
            yield prefix + key, item
        else:
            yield from _datasets(item, prefix + key + "/")
