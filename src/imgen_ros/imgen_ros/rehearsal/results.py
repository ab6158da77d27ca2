"""A rehearsal's results: one record per episode, statistics per row, results.json (ROS-free).

Per row (checkpoint x perturbation): the success rate with its 95 % Wilson interval, wall time,
mean steps (the arbiter's control steps at the episode's end, as ``imgen eval`` counts env steps;
more than the simulator executed when it cannot keep up and its command queue overflows, which
the fault HOLDs then show),
the commands the real safety filter changed (``ControlState.clipped_commands``), the policy's input
ages at each decision (``LoopTiming.state_age_s`` / ``pose_age_s``, p50/p99), fault HOLDs and the
operator resumes that cleared a latched one, takeovers (none expected), the ICP error at the
episode's start, and for ``push`` rows the push the simulator applied, measured on its ground truth.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgen_ros.policy.stats import wilson_interval

OUTCOMES = ("SUCCESS", "FAILURE", "ABORT", "TIMEOUT")
NOT_FAULTS = ("policy", "no_episode", "episode_start", "operator")   # HOLD reasons that are no fault


def is_fault(reason: str) -> bool:
    """A HOLD reason that is a fault (stale/NaN input, latched), not waiting for inputs or the episode."""
    return not (reason.startswith("waiting_for_") or reason in NOT_FAULTS or reason.startswith("rehearsal"))


@dataclass
class EpisodeRecord:
    index: int                      # 0-based: imgen eval's trial index
    seed: int                       # scene seed (seed_base + index)
    episode_id: int                 # the arbiter's
    outcome: str                    # OUTCOMES
    reason: str                     # of the terminal event (task_success, horizon, ...)
    steps: int                      # arbiter control steps at the end
    wall_s: float
    clipped: int = 0                # commands the safety filter changed
    clip_kinds: list[str] = field(default_factory=list)
    fault_holds: list[str] = field(default_factory=list)   # reasons of HOLD events that were faults
    resumes: int = 0                # latched faults handed back to the policy by the driver (operator)
    takeovers: int = 0
    pose_error_seed: int | None = None          # policy_node's corruption seed (PoseError.seed)
    pose_error_m: list[float] | None = None     # the offset policy_node applied (PoseError.offsets[0])
    eval_pose_error_m: list[float] | None = None    # imgen eval's offset for the same scene seed (TaskEnv)
    scene_error_mm: float | None = None         # true cube position at START vs imgen eval's scene
    icp_error_mm: float | None = None           # newest valid ICP estimate at START vs ground truth
    icp_ready: bool = True                      # the estimator saw the new scene before START (else started anyway)
    push_m: float | None = None                 # first horizontal jump of the resting cube (push rows)
    state_age_p50_ms: float | None = None
    pose_age_p50_ms: float | None = None
    pose_rate_hz: float | None = None           # object_pose estimates per second during the episode
    pose_max_gap_ms: float | None = None        # longest silence of the estimator during the episode

    @property
    def success(self) -> bool:
        return self.outcome == "SUCCESS"


def percentile(values: list[float], q: float) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.percentile(finite, q)) if finite else None


@dataclass
class RowResult:
    label: str
    policy: str
    perturbation: str
    episodes: list[EpisodeRecord] = field(default_factory=list)
    state_ages_s: list[float] = field(default_factory=list)    # every decision of the row
    pose_ages_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    startup_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)     # per node process over the row
    in_process: dict[str, Any] | None = None    # imgen eval on the same seeds (none rows)

    def summary(self) -> dict[str, Any]:
        n = len(self.episodes)
        successes = sum(e.success for e in self.episodes)
        low, high = wilson_interval(successes, n) if n else (float("nan"), float("nan"))
        steps = sum(e.steps for e in self.episodes)
        clipped = sum(e.clipped for e in self.episodes)
        kinds = sorted({k for e in self.episodes for k in e.clip_kinds})
        icp = [e.icp_error_mm for e in self.episodes if e.icp_error_mm is not None]
        pushes = [e.push_m for e in self.episodes if e.push_m is not None]
        ms = 1e3
        out: dict[str, Any] = {
            "label": self.label, "policy": self.policy, "perturbation": self.perturbation,
            "trials": n, "successes": successes, "success_rate": successes / n if n else None,
            "ci_low": low if n else None, "ci_high": high if n else None,
            "mean_steps": steps / n if n else None,
            "wall_s": self.wall_s, "startup_s": self.startup_s,
            "s_per_episode": sum(e.wall_s for e in self.episodes) / n if n else None,
            "clipped_commands": clipped, "clipped_episodes": sum(e.clipped > 0 for e in self.episodes),
            "clipped_fraction": clipped / steps if steps else 0.0, "clip_kinds": kinds,
            "fault_holds": sum(len(e.fault_holds) for e in self.episodes),
            "fault_hold_reasons": sorted({r for e in self.episodes for r in e.fault_holds}),
            "resumes": sum(e.resumes for e in self.episodes),
            "takeovers": sum(e.takeovers for e in self.episodes),
            "timeouts": sum(e.outcome == "TIMEOUT" for e in self.episodes),
            "decisions": len(self.state_ages_s),
            "state_age_ms": {"p50": _scaled(percentile(self.state_ages_s, 50), ms),
                             "p99": _scaled(percentile(self.state_ages_s, 99), ms)},
            "pose_age_ms": {"p50": _scaled(percentile(self.pose_ages_s, 50), ms),
                            "p99": _scaled(percentile(self.pose_ages_s, 99), ms)},
            "icp_error_mm": {"p50": percentile(icp, 50), "max": max(icp) if icp else None},
            "pose_rate_hz_p50": percentile([e.pose_rate_hz for e in self.episodes], 50),
            "pose_max_gap_ms": max((e.pose_max_gap_ms for e in self.episodes if e.pose_max_gap_ms is not None),
                                   default=None),
            "scene_error_mm_max": max((e.scene_error_mm for e in self.episodes if e.scene_error_mm is not None),
                                      default=None),
            "push_m": {"min": min(pushes), "max": max(pushes)} if pushes else None,
            "cpu_s": {k: round(v, 1) for k, v in self.cpu_s.items()},
            "cpu_cores": sum(self.cpu_s.values()) / self.wall_s if self.wall_s > 0 and self.cpu_s else None,
            "notes": list(self.notes),
        }
        if self.in_process is not None:
            out["in_process"] = self.in_process
            if n and self.in_process.get("ci_low") is not None:
                rate = successes / n
                out["inside_in_process_ci"] = self.in_process["ci_low"] <= rate <= self.in_process["ci_high"]
                paired = self.in_process.get("per_trial_success") or []
                same = [e.success == paired[e.index] for e in self.episodes if e.index < len(paired)]
                out["same_outcome_as_in_process"] = sum(same) if same else None
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "episodes": [asdict(e) for e in self.episodes]}


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON through a temporary beside ``path`` and a rename (never half-written)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def results_document(meta: dict[str, Any], rows: list[RowResult]) -> dict[str, Any]:
    return {"imgen_rehearsal": 1, **meta, "rows": [r.to_dict() for r in rows]}
