"""Incremental robomimic-hdf5 writer: one ``data/demo_i`` per appended episode, flushed each time.

Layout (robomimic 0.3 / MimicGen compatible)::

    data                attrs: total (int), env_args (JSON), imgen_* (JSON: config, stats, bookkeeping)
    data/demo_i         attrs: num_samples (+ episode attrs)
        obs/<key>, next_obs/<key>, actions, rewards, dones, states, action_modes, datagen_info/<key...>
    mask/<filter>       demo names (bytes), resizable; robomimic's ``filter_by_attribute``

After every ``append`` the file is flushed, so a process killed between appends leaves a file
holding every episode appended so far (see ``imgen_ros.datagen.journal`` for the crash-proof log
that resumable generation keeps beside it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from imgen_ros.data.episode import Episode

DEMO_PREFIX = "demo_"
MASK_DTYPE = "S32"
# Written-incrementally files say whether they are finished: data.attrs[COMPLETE_ATTR] (bool) and
# data.attrs[PROGRESS_ATTR] (JSON, e.g. {"kept": 12, "target": 50}). Files without the attribute
# (robomimic's, older imgen's) count as complete.
COMPLETE_ATTR = "imgen_complete"
PROGRESS_ATTR = "imgen_progress"


def demo_name(index: int) -> str:
    return f"{DEMO_PREFIX}{index}"


def demo_index(name: str) -> int:
    """Index of ``demo_<i>``; ValueError for other names."""
    if not name.startswith(DEMO_PREFIX) or not name[len(DEMO_PREFIX):].isdigit():
        raise ValueError(f"not a demo group name: {name!r} (expected demo_<int>)")
    return int(name[len(DEMO_PREFIX):])


def sorted_demo_names(names: Iterable[str]) -> list[str]:
    """Demo names in numeric order (demo_2 before demo_10)."""
    return sorted(names, key=demo_index)


def attr_value(value: Any) -> Any:
    """An HDF5-storable attribute: numbers and strings as is, everything else as JSON text."""
    if isinstance(value, (str, bytes, int, float, bool, np.integer, np.floating, np.bool_)):
        return value
    return json.dumps(value)


class DatasetWriter:
    """Append episodes to a robomimic hdf5 file. ``append=True`` continues an existing file."""

    def __init__(self, path: str | Path, env_args: dict[str, Any] | None = None, *, append: bool = False) -> None:
        self.path = Path(path)
        if append and self.path.exists():
            self._file = h5py.File(self.path, "a")
            if "data" not in self._file:
                raise ValueError(f"{self.path}: cannot append, no 'data' group")
            self._data = self._file["data"]
            names = [k for k in self._data.keys() if k.startswith(DEMO_PREFIX)]
            self._next_index = max((demo_index(k) for k in names), default=-1) + 1
            self._total = int(self._data.attrs.get("total", 0))
            if env_args is not None and "env_args" not in self._data.attrs:
                self._data.attrs["env_args"] = json.dumps(env_args)
        else:
            if env_args is None:
                raise ValueError("env_args is required when creating a dataset")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = h5py.File(self.path, "w")
            self._data = self._file.create_group("data")
            self._data.attrs["env_args"] = json.dumps(env_args)
            self._data.attrs["total"] = 0
            self._next_index = 0
            self._total = 0
        self._file.flush()

    @property
    def num_demos(self) -> int:
        return len([k for k in self._data.keys() if k.startswith(DEMO_PREFIX)])

    @property
    def total(self) -> int:
        return self._total

    def append(self, episode: Episode, masks: Iterable[str] = ()) -> str:
        """Write ``episode`` as the next ``demo_i``, add it to each mask in ``masks``, flush; returns the name."""
        episode.check()
        name = demo_name(self._next_index)
        group = self._data.create_group(name)
        write_episode(group, episode)
        for mask in masks:
            self._add_to_mask(mask, name)
        self._next_index += 1
        self._total += episode.num_samples
        self._data.attrs["total"] = self._total
        self._file.flush()
        return name

    def set_json_attr(self, name: str, value: Any) -> None:
        """Store ``value`` as JSON in ``data.attrs[name]`` (generation config, stats, bookkeeping)."""
        self._data.attrs[name] = json.dumps(value)
        self._file.flush()

    def set_progress(self, complete: bool, **progress: Any) -> None:
        """Mark the file finished or not (``imgen_complete``) with its progress (``imgen_progress``)."""
        self._data.attrs[COMPLETE_ATTR] = bool(complete)
        self._data.attrs[PROGRESS_ATTR] = json.dumps(progress)
        self._file.flush()

    def _add_to_mask(self, mask: str, name: str) -> None:
        key = f"mask/{mask}"
        if key not in self._file:
            self._file.create_dataset(key, shape=(0,), maxshape=(None,), dtype=MASK_DTYPE, chunks=(256,))
        ds = self._file[key]
        ds.resize((ds.shape[0] + 1,))
        ds[-1] = name.encode()

    def close(self) -> None:
        if self._file.id.valid:
            self._file.flush()
            self._file.close()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_episode(group: h5py.Group, episode: Episode) -> None:
    """Write one episode's arrays and attrs into an (empty) demo group."""
    group.attrs["num_samples"] = episode.num_samples
    for key, value in episode.attrs.items():
        group.attrs[key] = attr_value(value)
    for key, value in episode.obs.items():
        group.create_dataset(f"obs/{key}", data=value)
    for key, value in episode.next_obs.items():
        group.create_dataset(f"next_obs/{key}", data=value)
    group.create_dataset("actions", data=np.asarray(episode.actions, dtype=np.float64))
    group.create_dataset("rewards", data=np.asarray(episode.rewards, dtype=np.float64))
    group.create_dataset("dones", data=np.asarray(episode.dones, dtype=np.int64))
    group.create_dataset("states", data=np.asarray(episode.states, dtype=np.float64))
    group.create_dataset("action_modes", data=np.asarray(episode.action_modes, dtype=np.int64))
    for key, value in episode.datagen_info.items():
        group.create_dataset(f"datagen_info/{key}", data=value)
