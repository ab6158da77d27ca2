"""What a dataset holds: demos, lengths, intervention fraction, sources, stored generation stats."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from imgen_ros.data.episode import ACTION_MODE_DEMO, ACTION_MODE_HUMAN, ACTION_MODE_ROBOT
from imgen_ros.data.reader import DatasetReader
from imgen_ros.data.writer import COMPLETE_ATTR, PROGRESS_ATTR


def completion(path: str | Path) -> tuple[bool, dict[str, Any]]:
    """(complete, progress) from the file's ``imgen_complete`` marker; files without one are complete.

    OSError if the file cannot be opened as hdf5.
    """
    with h5py.File(path, "r") as f:
        attrs = f["data"].attrs if "data" in f else {}
        if COMPLETE_ATTR not in attrs:
            return True, {}
        try:
            progress = json.loads(attrs.get(PROGRESS_ATTR, "{}"))
        except ValueError:
            progress = {}
        return _is_true(attrs[COMPLETE_ATTR]), progress if isinstance(progress, dict) else {}


def _is_true(marker: Any) -> bool:
    """The writer stores a bool; anything else (a string such as "false" or "maybe", an array) is not a
    finished mark, where ``bool()`` would have called every non-empty string complete."""
    if isinstance(marker, (bool, np.bool_)):
        return bool(marker)
    if isinstance(marker, (int, np.integer)):
        return bool(marker == 1)
    return False


def progress_text(progress: dict[str, Any]) -> str:
    """``12/50 episodes`` from an ``imgen_progress`` record (``?`` when it lacks the counts)."""
    return f"{progress['kept']}/{progress['target']} episodes" if {"kept", "target"} <= progress.keys() else "?"


def describe_incomplete(path: str | Path, progress: dict[str, Any]) -> str:
    """One line: why ``path`` is not a finished dataset, with its progress."""
    return (f"{path} is INCOMPLETE ({progress_text(progress)}): its generation or collection was interrupted or "
            "is still running; finish it (rerun the same command) before using it")


def summarize(path: str | Path) -> dict[str, Any]:
    """A JSON-able summary of a (validated) dataset."""
    with DatasetReader(path) as reader:
        demos = reader.demos()
        lengths = np.array([reader.num_samples(d) for d in demos], dtype=np.int64)
        modes = [reader.action_modes(d) for d in demos]
        all_modes = np.concatenate(modes) if modes else np.zeros(0, dtype=np.int64)
        sources = Counter(str(reader.demo_attrs(d).get("source", "unknown")) for d in demos)
        steps = int(lengths.sum())
        complete, progress = completion(path)
        stats = reader.json_attr("imgen_stats")
        return {
            "file": str(path),
            "complete": complete,
            "progress": progress,
            "env_name": reader.env_name,
            "demos": len(demos),
            "samples": steps,
            "length": {"min": int(lengths.min()) if len(demos) else 0,
                       "mean": float(lengths.mean()) if len(demos) else 0.0,
                       "max": int(lengths.max()) if len(demos) else 0},
            "steps_by_mode": {"demo": int(np.sum(all_modes == ACTION_MODE_DEMO)),
                              "robot": int(np.sum(all_modes == ACTION_MODE_ROBOT)),
                              "human": int(np.sum(all_modes == ACTION_MODE_HUMAN))},
            "intervention_fraction": float(np.mean(all_modes == ACTION_MODE_HUMAN)) if steps else 0.0,
            "demos_with_intervention": int(sum(bool(np.any(m == ACTION_MODE_HUMAN)) for m in modes)),
            "sources": dict(sorted(sources.items())),
            "masks": {m: len(reader.demos(m)) for m in reader.masks()},
            "obs_keys": reader.obs_keys(),
            "generation_stats": stats if isinstance(stats, dict) else None,
        }


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable lines for ``imgen dataset info``."""
    length = summary["length"]
    modes = summary["steps_by_mode"]
    lines = [f"file:         {summary['file']}"]
    if not summary.get("complete", True):
        done = progress_text(summary.get("progress") or {})
        lines.append(f"status:       INCOMPLETE ({done}; interrupted or still running: finish it before training)")
    lines += [
        f"env:          {summary['env_name']}",
        f"demos:        {summary['demos']}  (samples {summary['samples']})",
        f"length:       min {length['min']}  mean {length['mean']:.1f}  max {length['max']}",
        f"steps:        demo {modes['demo']}  robot {modes['robot']}  human {modes['human']}",
        f"intervention: {summary['intervention_fraction']:.1%} of steps human; "
        f"{summary['demos_with_intervention']} demos with an intervention",
        "sources:      " + (", ".join(f"{k} {v}" for k, v in summary["sources"].items()) or "-"),
        "masks:        " + (", ".join(f"{k} {v}" for k, v in summary["masks"].items()) or "-"),
        "obs keys:     " + ", ".join(summary["obs_keys"]),
    ]
    stats = summary.get("generation_stats")
    if stats:
        lines.append("generation:   " + ", ".join(f"{k} {v}" for k, v in stats.items() if not isinstance(v, dict)))
    return "\n".join(lines)
