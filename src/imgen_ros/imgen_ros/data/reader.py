"""Validating reader for robomimic/imgen hdf5 datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from imgen_ros.data.episode import ACTION_MODE_DEMO, Episode
from imgen_ros.data.validate import validate_dataset
from imgen_ros.data.writer import sorted_demo_names


class DatasetReader:
    """Read-only access to a dataset; validates on open unless ``validate=False``."""

    def __init__(self, path: str | Path, *, validate: bool = True) -> None:
        self.path = Path(path)
        if validate:
            validate_dataset(self.path)
        self._file = h5py.File(self.path, "r")
        self._data = self._file["data"]

    @property
    def env_args(self) -> dict[str, Any]:
        return json.loads(self._data.attrs["env_args"])

    @property
    def env_name(self) -> str:
        return str(self.env_args.get("env_name", ""))

    def demos(self, mask: str | None = None) -> list[str]:
        """Demo names in numeric order, optionally only those listed in ``mask/<mask>``."""
        if mask is None:
            return sorted_demo_names(k for k in self._data.keys() if k.startswith("demo_"))
        if not mask.strip() or not isinstance(self._file.get(f"mask/{mask}"), h5py.Dataset):  # "": the mask group
            raise ValueError(f"{self.path}: no mask {mask!r} (have {self.masks()})")
        return [m.decode() for m in self._file[f"mask/{mask}"][:]]

    def masks(self) -> list[str]:
        return sorted(self._file["mask"].keys()) if "mask" in self._file else []

    def json_attr(self, name: str, default: Any = None) -> Any:
        """``data.attrs[name]`` decoded from JSON (generation config, stats, bookkeeping)."""
        if name not in self._data.attrs:
            return default
        try:
            return json.loads(self._data.attrs[name])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{self.path}: data.attrs[{name!r}] is not valid JSON ({exc})") from exc

    def num_samples(self, demo: str) -> int:
        return int(self._data[demo].attrs["num_samples"])

    def action_modes(self, demo: str) -> np.ndarray:
        group = self._data[demo]
        if "action_modes" in group:
            return group["action_modes"][()]
        return np.full(self.num_samples(demo), ACTION_MODE_DEMO, dtype=np.int64)

    def demo_attrs(self, demo: str) -> dict[str, Any]:
        return {k: _decode_attr(v) for k, v in self._data[demo].attrs.items()}

    def obs_keys(self) -> list[str]:
        demos = self.demos()
        return sorted(self._data[demos[0]]["obs"].keys()) if demos else []

    def obs_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-step shape of every observation key (the first demo's: a valid file has one per key)."""
        shapes: dict[str, tuple[int, ...]] = {}
        demos = self.demos()
        if demos:
            self._data[demos[0]]["obs"].visititems(
                lambda key, item: shapes.update({key: item.shape[1:]}) if isinstance(item, h5py.Dataset) else None)
        return shapes

    def load_episode(self, demo: str) -> Episode:
        group = self._data[demo]
        return Episode(
            obs=_read_tree(group["obs"]), next_obs=_read_tree(group["next_obs"]) if "next_obs" in group else {},
            actions=group["actions"][()], rewards=group["rewards"][()], dones=group["dones"][()],
            states=group["states"][()], action_modes=self.action_modes(demo),
            datagen_info=_read_tree(group["datagen_info"]) if "datagen_info" in group else {},
            attrs={k: v for k, v in self.demo_attrs(demo).items() if k != "num_samples"})

    def close(self) -> None:
        if self._file.id.valid:
            self._file.close()

    def __enter__(self) -> DatasetReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_tree(group: h5py.Group, prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key, item in group.items():
        if isinstance(item, h5py.Dataset):
            out[prefix + key] = item[()]
        else:
            out.update(_read_tree(item, prefix + key + "/"))
    return out


def _decode_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value
