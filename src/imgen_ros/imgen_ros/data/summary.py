"""What a dataset holds: demos, lengths, intervention fraction, sources, stored generation stats."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from imgen_ros.data.episode import ACTION_MODE_DEMO, ACTION_MODE_HUMAN, ACTION_MODE_ROBOT
from imgen_ros.data.reader import DatasetReader


def summarize(path: str | Path) -> dict[str, Any]:
    """A JSON-able summary of a (validated) dataset."""
    with DatasetReader(path) as reader:
        demos = reader.demos()
        lengths = np.array([reader.num_samples(d) for d in demos], dtype=np.int64)
        modes = [reader.action_modes(d) for d in demos]
        all_modes = np.concatenate(modes) if modes else np.zeros(0, dtype=np.int64)
        sources = Counter(str(reader.demo_attrs(d).get("source", "unknown")) for d in demos)
        steps = int(lengths.sum())
        return {
            "file": str(path),
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
            "generation_stats": reader.json_attr("imgen_stats"),
        }


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable lines for ``imgen dataset info``."""
    length = summary["length"]
    modes = summary["steps_by_mode"]
    lines = [
        f"file:         {summary['file']}",
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
