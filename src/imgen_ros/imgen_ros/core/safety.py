"""The one safety filter every command passes on its way to a robot driver.

Checks, in order (each violation is reported by name):

1. ``stale_command`` / ``stale_robot_state``: the command or the TCP measurement it is applied to is
   older than ``max_input_age_s`` -> HOLD. ``future_command``: the command's stamp is more than
   ``max_input_age_s`` ahead of ``now`` (unsynchronized clocks: its age cannot be known; the arbiter
   re-stamps what it forwards, so the driver's own stamp check would not see it) -> HOLD.
2. ``nonfinite_command`` / ``nonfinite_tcp``: NaN/Inf anywhere -> HOLD.
3. ``gripper_range``: gripper outside [-1, 1] -> clipped.
4. ``workspace``: the target TCP position (current + translation) outside the workspace box ->
   the target is clipped into the box (a TCP already outside is led back in).
5. ``translation_step`` / ``rotation_step``: per-step translation [m] or rotation angle [rad]
   larger than the limit -> scaled down along the same direction/axis.

HOLD is a zero delta that keeps the previous gripper command. Because the box is convex and the
step limit shrinks the translation toward the current TCP, a filtered command never targets a
point outside the box when the TCP is inside it, and never moves more than the step limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.action import DEFAULT_SCALE
from imgen_ros.core.command import DeltaCommand, Source
from imgen_ros.core.params import check_fields, param

FR3_REACH_M = 0.855          # FR3 maximum reach, measured from the shoulder (joint 2 axis)
FR3_SHOULDER_Z_M = 0.333     # height of the shoulder above fr3_link0
TABLE_MARGIN_M = 0.02        # the box may reach this far below the table top (z = 0 in fr3_link0)
# Every corner of the workspace box lies in the reach cube around the base, not below the table.
_BOX_RANGES = (f"[{-FR3_REACH_M}, {FR3_REACH_M}]", f"[{-FR3_REACH_M}, {FR3_REACH_M}]",
               f"[{-TABLE_MARGIN_M}, {FR3_SHOULDER_Z_M + FR3_REACH_M:.3f}]")


@dataclass(frozen=True)
class SafetyConfig:
    """Limits, in the robot base frame (fr3_link0). Defaults: a table-top box in front of an FR3.

    Plausibility bounds (refused outside them): per-step translation (0, 0.05] m and rotation
    (0, 0.5] rad (the training action scale, core.action: a policy at full scale is never cut), a
    box with min < max per axis inside the FR3's reach cube (|x|, |y| <= 0.855 m, z in [-0.02,
    1.188] m: at most 2 cm below the table top) that touches the reachable sphere, and an input age
    limit in (0, 1) s."""

    workspace_min: tuple[float, float, float] = param(
        (0.20, -0.50, 0.0), "workspace box lower corner [m] (x, y, z) in fr3_link0", _BOX_RANGES)
    workspace_max: tuple[float, float, float] = param(
        (0.80, 0.50, 0.60), "workspace box upper corner [m] (x, y, z) in fr3_link0", _BOX_RANGES)
    max_translation_m: float = param(0.05, "largest TCP translation per 20 Hz step [m]",
                                     f"(0, {DEFAULT_SCALE.translation_m}]")
    max_rotation_rad: float = param(0.5, "largest TCP rotation per 20 Hz step [rad]",
                                    f"(0, {DEFAULT_SCALE.rotation_rad}]")
    max_input_age_s: float = param(0.1, "older commands or TCP measurements are stale: HOLD [s]", "(0, 1)")

    def __post_init__(self) -> None:
        check_fields(self)   # shapes, finiteness, the step limits, the age limit, the reach cube
        lo, hi = np.asarray(self.workspace_min, float), np.asarray(self.workspace_max, float)
        if np.any(lo >= hi):
            raise ValueError(f"workspace_min must be < workspace_max per axis, got {self.workspace_min} / "
                             f"{self.workspace_max}")
        shoulder = np.array([0.0, 0.0, FR3_SHOULDER_Z_M])
        if np.linalg.norm(np.clip(shoulder, lo, hi) - shoulder) > FR3_REACH_M:
            raise ValueError(f"workspace box {self.workspace_min} .. {self.workspace_max} lies out of the FR3's "
                             f"reach ({FR3_REACH_M} m from the shoulder)")


@dataclass(frozen=True)
class FilterResult:
    """The command to send and why it differs from the request (empty ``violations``: unchanged)."""

    command: DeltaCommand
    violations: tuple[str, ...] = field(default=())
    hold: bool = False


class SafetyFilter:
    """Clamp or reject delta-pose commands; remembers the last gripper command for HOLD."""

    def __init__(self, config: SafetyConfig | None = None) -> None:
        self.config = config or SafetyConfig()
        self._lo = np.asarray(self.config.workspace_min, float)
        self._hi = np.asarray(self.config.workspace_max, float)
        self.last_gripper = -1.0

    def hold(self, stamp: float, step: int = 0) -> DeltaCommand:
        """A HOLD command (zero delta, previous gripper)."""
        return DeltaCommand.hold(self.last_gripper, stamp, step)

    def filter(self, command: DeltaCommand, tcp_position: NDArray[np.float64] | None, now: float,
               tcp_stamp: float | None = None) -> FilterResult:
        """Filter ``command`` for a TCP at ``tcp_position`` (base frame) measured at ``tcp_stamp``.

        ``now``, ``command.stamp`` and ``tcp_stamp`` share one clock (seconds). A missing TCP
        measurement is treated like a stale one.
        """
        cfg = self.config
        violations: list[str] = []
        age = now - command.stamp
        if not age <= cfg.max_input_age_s:   # NaN too
            violations.append("stale_command")
        elif age < -cfg.max_input_age_s:
            violations.append("future_command")
        if tcp_position is None or tcp_stamp is None or now - tcp_stamp > cfg.max_input_age_s:
            violations.append("stale_robot_state")
        if not command.is_finite():
            violations.append("nonfinite_command")
        if tcp_position is not None and not np.all(np.isfinite(tcp_position)):
            violations.append("nonfinite_tcp")
        if violations:
            return FilterResult(self.hold(now, command.step), tuple(violations), hold=True)

        tcp = np.asarray(tcp_position, float)
        gripper = command.gripper
        if not -1.0 <= gripper <= 1.0:
            violations.append("gripper_range")
            gripper = float(np.clip(gripper, -1.0, 1.0))

        translation = command.translation.copy()
        target = tcp + translation
        clipped = np.clip(target, self._lo, self._hi)
        if not np.array_equal(clipped, target):
            violations.append("workspace")
            translation = clipped - tcp
        norm = float(np.linalg.norm(translation))
        if norm > cfg.max_translation_m:
            violations.append("translation_step")
            translation *= cfg.max_translation_m / norm

        rotation = command.rotation.copy()
        angle = float(np.linalg.norm(rotation))
        if angle > cfg.max_rotation_rad:
            violations.append("rotation_step")
            rotation *= cfg.max_rotation_rad / angle

        self.last_gripper = gripper
        if not violations:
            return FilterResult(command)
        safe = DeltaCommand(translation, rotation, gripper, command.source, command.stamp, command.step)
        return FilterResult(safe, tuple(violations))

    def within_limits(self, command: DeltaCommand, tcp_position: NDArray[np.float64], tol: float = 1e-9) -> bool:
        """True if ``command`` (already filtered) respects every limit at ``tcp_position``.

        The box check applies only when the TCP is inside the box (from outside, a safe command may
        still target a point outside, but never a farther one).
        """
        if not command.is_finite() or not -1.0 <= command.gripper <= 1.0:
            return False
        if np.linalg.norm(command.translation) > self.config.max_translation_m + tol:
            return False
        if np.linalg.norm(command.rotation) > self.config.max_rotation_rad + tol:
            return False
        tcp = np.asarray(tcp_position, float)
        inside = np.all(tcp >= self._lo - tol) and np.all(tcp <= self._hi + tol)
        target = tcp + command.translation
        return bool(not inside or (np.all(target >= self._lo - tol) and np.all(target <= self._hi + tol)))


__all__ = ["DeltaCommand", "FilterResult", "SafetyConfig", "SafetyFilter", "Source"]
