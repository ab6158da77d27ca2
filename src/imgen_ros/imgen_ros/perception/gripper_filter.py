"""Self-filter of the Franka Hand: drop depth points on the hand and fingers before the cube is segmented.

Near the cube the fingers' points join the cube's into one cluster wider than a cube, so without this
the estimator loses the cube for the whole grasp (measured in the deployment rehearsal: after the
fingers came within a centimetre of the cube no estimate was valid again, and the policy, without a
fresh pose, stopped). The hand is modelled as three boxes in the TCP frame (libfranka's end-effector
frame: z along the fingers towards their tips, y along the direction the fingers open), the fingers
placed at the measured gripper width, the space between the fingers left alone (the grasped cube is
there). The default sizes are the FR3 hand's collision geometry in the simulator (``fr3.xml`` from
franky-sim, measured in the TCP frame); ``margin_m`` covers calibration and the time between the robot
state and the depth frame.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.pose import Pose


@dataclass(frozen=True)
class GripperFilterConfig:
    """``estimator.gripper_filter.*``. Lengths in m, in the TCP frame."""

    enabled: bool = True
    finger_half_width_m: float = 0.0105            # |x| of a finger (across it)
    finger_thickness_m: float = 0.0265             # from the finger's inner face outwards along y
    finger_z_m: tuple[float, float] = (-0.045, 0.009)   # finger base .. fingertip (the TCP is at 0)
    hand_half_size_m: tuple[float, float] = (0.032, 0.104)   # |x|, |y| of the hand body
    hand_z_m: tuple[float, float] = (-0.13, -0.037)          # the hand body, above the finger bases
    margin_m: float = 0.006
    max_state_offset_s: float = 0.05               # a robot state further from the depth frame's stamp: no filter

    def __post_init__(self) -> None:
        sizes = (self.finger_half_width_m, self.finger_thickness_m, *self.hand_half_size_m)
        if any(not np.isfinite(v) or v <= 0 for v in sizes):
            raise ValueError(f"gripper_filter: finger and hand sizes must be > 0, got {sizes}")
        for name in ("finger_z_m", "hand_z_m"):
            low, high = getattr(self, name)
            if not low < high:
                raise ValueError(f"gripper_filter: {name} must be (low, high) with low < high, got {(low, high)}")
        if not 0 <= self.margin_m <= 0.05:
            raise ValueError(f"gripper_filter: margin_m must be in [0, 0.05], got {self.margin_m}")
        if not self.max_state_offset_s > 0:
            raise ValueError(f"gripper_filter: max_state_offset_s must be > 0, got {self.max_state_offset_s}")


@dataclass(frozen=True)
class GripperState:
    """Where the hand was when a depth frame was taken: T_base_tcp and the finger gap [m]."""

    tcp_pose: Pose
    width_m: float
    stamp_s: float


def gripper_points(points: NDArray[np.float64], gripper: GripperState,
                   config: GripperFilterConfig) -> NDArray[np.bool_]:
    """Mask of ``points`` (N x 3, base frame) inside the hand or a finger (grown by ``margin_m``)."""
    T = np.asarray(gripper.tcp_pose, dtype=float)
    local = (points - T[:3, 3]) @ T[:3, :3]          # base -> TCP frame
    x, y, z = np.abs(local[:, 0]), local[:, 1], local[:, 2]
    m = config.margin_m
    half_gap = max(float(gripper.width_m), 0.0) / 2.0
    finger_x = x <= config.finger_half_width_m + m
    finger_z = (z >= config.finger_z_m[0] - m) & (z <= config.finger_z_m[1] + m)
    finger_y = (np.abs(y) >= half_gap - m) & (np.abs(y) <= half_gap + config.finger_thickness_m + m)
    hand = ((x <= config.hand_half_size_m[0] + m) & (np.abs(y) <= config.hand_half_size_m[1] + m)
            & (z >= config.hand_z_m[0] - m) & (z <= config.hand_z_m[1] + m))
    return (finger_x & finger_z & finger_y) | hand


class GripperStateBuffer:
    """Recent robot states; :meth:`at` gives the one nearest a depth frame's stamp (None when the
    nearest is further than ``max_offset_s``: better no filter than one at the wrong place)."""

    def __init__(self, max_offset_s: float, size: int = 64) -> None:
        self.max_offset_s = max_offset_s
        self.size = size
        self._states: list[GripperState] = []
        self._lock = threading.Lock()   # filled by a subscription, read by the estimation thread

    def add(self, state: GripperState) -> None:
        """Keep ``state``; one with a non-finite pose, width or stamp is dropped."""
        if not (np.all(np.isfinite(state.tcp_pose)) and np.isfinite(state.width_m) and np.isfinite(state.stamp_s)):
            return
        with self._lock:
            self._states.append(state)
            if len(self._states) > self.size:
                del self._states[: len(self._states) - self.size]

    def at(self, stamp_s: float) -> GripperState | None:
        with self._lock:
            states = list(self._states)
        if not states:
            return None
        nearest = min(states, key=lambda s: abs(s.stamp_s - stamp_s))
        return nearest if abs(nearest.stamp_s - stamp_s) <= self.max_offset_s else None
