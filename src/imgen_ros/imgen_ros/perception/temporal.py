"""Temporal consistency of a tracked pose: reject single-frame jumps, accept a confirmed move."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imgen_ros.core.pose import Pose
from imgen_ros.perception.cube_model import symmetric_rotation_error


@dataclass(frozen=True)
class TemporalConfig:
    """A new pose farther than ``max_jump_m`` / ``max_jump_rad`` (modulo cube symmetry) from the last
    accepted one is rejected until ``confirm_frames`` consecutive estimates agree on the new place
    (the object really moved). ``confirm_frames = 0`` disables the check. ``max_gap_s``: after this
    long without an accepted estimate the history is forgotten."""

    max_jump_m: float = 0.03
    max_jump_rad: float = 0.6
    confirm_frames: int = 3
    max_gap_s: float = 1.0

    def __post_init__(self) -> None:
        if self.max_jump_m <= 0 or self.max_jump_rad <= 0 or self.confirm_frames < 0 or self.max_gap_s <= 0:
            raise ValueError(f"TemporalConfig: jumps and max_gap_s must be > 0, confirm_frames >= 0: {self}")


class TemporalGate:
    """Stateful check of each new estimate against the recent history."""

    def __init__(self, config: TemporalConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        self._accepted: Pose | None = None
        self._accepted_stamp = -np.inf
        self._candidate: Pose | None = None
        self._candidate_count = 0

    @property
    def last_accepted(self) -> Pose | None:
        """The last accepted pose (None after reset)."""
        return self._accepted

    def _close(self, a: Pose, b: Pose) -> bool:
        return (float(np.linalg.norm(a[:3, 3] - b[:3, 3])) <= self.config.max_jump_m
                and symmetric_rotation_error(a[:3, :3], b[:3, :3]) <= self.config.max_jump_rad)

    def check(self, pose: Pose, stamp_s: float) -> tuple[bool, str]:
        """Whether ``pose`` is consistent (it becomes the reference) and, if not, why."""
        cfg = self.config
        if cfg.confirm_frames == 0 or self._accepted is None or stamp_s - self._accepted_stamp > cfg.max_gap_s:
            self._accept(pose, stamp_s)
            return True, ""
        if self._close(pose, self._accepted):
            self._accept(pose, stamp_s)
            return True, ""
        if self._candidate is not None and self._close(pose, self._candidate):
            self._candidate_count += 1
        else:
            self._candidate, self._candidate_count = pose, 1
        if self._candidate_count >= cfg.confirm_frames:
            self._accept(pose, stamp_s)
            return True, ""
        jump = float(np.linalg.norm(pose[:3, 3] - self._accepted[:3, 3]))
        return False, (f"moved {jump * 1000:.1f} mm / "
                       f"{np.degrees(symmetric_rotation_error(pose[:3, :3], self._accepted[:3, :3])):.1f} deg "
                       f"since the last accepted estimate; {self._candidate_count}/{cfg.confirm_frames} frames agree")

    def _accept(self, pose: Pose, stamp_s: float) -> None:
        self._accepted, self._accepted_stamp = pose, stamp_s
        self._candidate, self._candidate_count = None, 0
