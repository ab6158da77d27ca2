"""Merge several datasets of one task into a new file (demos renumbered, masks carried over)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import h5py

from imgen_ros.data.outputs import atomic_file, check_file_output
from imgen_ros.data.reader import DatasetReader
from imgen_ros.data.summary import completion, describe_incomplete
from imgen_ros.data.writer import MASK_DTYPE, demo_name


def merge_datasets(inputs: Sequence[str | Path], out: str | Path, *, overwrite: bool = False) -> dict[str, int]:
    """Write every demo of ``inputs`` (validated, same env and obs keys) to ``out``; returns demos per input
    path (a path named twice goes in twice: the sum).

    ``out`` is written beside itself and renamed into place when complete (``imgen_ros.data.outputs``):
    an existing ``out`` is refused unless ``overwrite``, and never replaced by a half-written file; an
    ``out`` that is one of the inputs (same inode) is always refused, as are incomplete inputs.
    """
    if not inputs:
        raise ValueError("merge needs at least one input dataset")
    out = check_file_output(out, overwrite=overwrite, inputs=inputs)
    readers: list[DatasetReader] = []
    try:
        readers.extend(DatasetReader(p) for p in inputs)
        for reader in readers:
            complete, progress = completion(reader.path)
            if not complete:
                raise ValueError(describe_incomplete(reader.path, progress))
        env_names = {str(r.path): r.env_name for r in readers}
        if len(set(env_names.values())) > 1:
            raise ValueError(f"inputs are from different environments: {env_names}")
        obs_keys = {str(r.path): r.obs_keys() for r in readers if r.demos()}
        if len({tuple(k) for k in obs_keys.values()}) > 1:
            raise ValueError(f"inputs have different observation keys: {obs_keys}")
        _check_obs_shapes(readers)
        with atomic_file(out, overwrite=overwrite, inputs=inputs) as tmp:
            return _write_merged(readers, tmp)
    finally:
        for reader in readers:
            reader.close()


def _check_obs_shapes(readers: list[DatasetReader]) -> None:
    """Refuse inputs whose observations differ in per-step shape (the merged file would be invalid)."""
    first: dict[str, tuple[str, tuple[int, ...]]] = {}
    for reader in readers:
        where = f"{reader.path} data/{reader.demos()[0]}" if reader.demos() else str(reader.path)
        for key, shape in reader.obs_shapes().items():
            other, expected = first.setdefault(key, (where, shape))
            if shape != expected:
                raise ValueError(f"{where} [obs/{key}]: per-step shape {shape} differs from {other}'s {expected}")


def _write_merged(readers: list[DatasetReader], out: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    with h5py.File(out, "w") as dst:
        data = dst.create_group("data")
        data.attrs["env_args"] = json.dumps(readers[0].env_args)
        masks: dict[str, list[str]] = {}
        index = total = 0
        for reader in readers:
            src = reader._file
            renamed: dict[str, str] = {}
            for demo in reader.demos():
                new = demo_name(index)
                src.copy(src[f"data/{demo}"], data, name=new)
                data[new].attrs["merged_from"] = f"{reader.path.name}:{demo}"
                renamed[demo] = new
                total += reader.num_samples(demo)
                index += 1
            for mask in reader.masks():
                masks.setdefault(mask, []).extend(renamed[d] for d in reader.demos(mask))
            counts[str(reader.path)] = counts.get(str(reader.path), 0) + len(renamed)
        data.attrs["total"] = total
        data.attrs["imgen_merged_from"] = json.dumps(counts)
        for mask, names in masks.items():
            dst.create_dataset(f"mask/{mask}", data=[n.encode() for n in names], dtype=MASK_DTYPE,
                               maxshape=(None,), chunks=(256,))
    return counts
