"""The one command shape: a delta end-effector pose per 20 Hz control step.

A normalized action ``a`` in [-1, 1]^7 is ``(dx, dy, dz, rx, ry, rz, gripper)``; physical deltas
are ``a[:3] * scale.translation_m`` (m, base frame) and ``a[3:6] * scale.rotation_rad``
(axis-angle, rad, base frame); ``gripper`` is -1 open .. +1 closed. The target pose of a step is
the *current* TCP pose moved by the delta (robosuite/MimicGen semantics): position added, rotation
pre-multiplied in the base frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from imgen_ros.core.pose import Pose, axisangle_to_matrix, make_pose, matrix_to_axisangle

ACTION_DIM = 7
CONTROL_HZ = 20.0
CONTROL_DT = 1.0 / CONTROL_HZ
GRIPPER_OPEN = -1.0
GRIPPER_CLOSED = 1.0


@dataclass(frozen=True)
class ActionScale:
    """Physical size of a full-scale (|a| = 1) action component, per control step."""

    translation_m: float = 0.05
    rotation_rad: float = 0.5

    def __post_init__(self) -> None:
        if not (self.translation_m > 0 and self.rotation_rad > 0):
            raise ValueError(f"ActionScale components must be > 0, got {self}")


DEFAULT_SCALE = ActionScale()


def validate_action(action: ArrayLike) -> NDArray[np.float64]:
    """Return the action as a float array of shape (7,), raising on wrong shape or non-finite values."""
    a = np.asarray(action, dtype=float)
    if a.shape != (ACTION_DIM,):
        raise ValueError(f"action must have shape ({ACTION_DIM},), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"action contains NaN/Inf: {a}")
    return a


def action_to_delta(action: ArrayLike, scale: ActionScale = DEFAULT_SCALE) -> tuple[NDArray, NDArray, float]:
    """Normalized action -> (translation m, axis-angle rad, gripper); clips to [-1, 1] first."""
    a = np.clip(validate_action(action), -1.0, 1.0)
    return a[:3] * scale.translation_m, a[3:6] * scale.rotation_rad, float(a[6])


def delta_to_action(translation: ArrayLike, rotation: ArrayLike, gripper: float,
                    scale: ActionScale = DEFAULT_SCALE) -> NDArray[np.float64]:
    """(translation m, axis-angle rad, gripper) -> normalized action, clipped to [-1, 1]."""
    a = np.concatenate([np.asarray(translation, float) / scale.translation_m,
                        np.asarray(rotation, float) / scale.rotation_rad, [float(gripper)]])
    return np.clip(a, -1.0, 1.0)


def action_to_target_pose(action: ArrayLike, current: Pose, scale: ActionScale = DEFAULT_SCALE) -> Pose:
    """Target TCP pose for ``action`` applied at the ``current`` TCP pose."""
    dpos, drot, _ = action_to_delta(action, scale)
    return make_pose(current[:3, 3] + dpos, axisangle_to_matrix(drot) @ current[:3, :3])


def target_pose_to_action(target: Pose, current: Pose, gripper: float,
                          scale: ActionScale = DEFAULT_SCALE) -> NDArray[np.float64]:
    """Normalized action that moves ``current`` toward ``target`` (clipped: far targets saturate)."""
    dpos = target[:3, 3] - current[:3, 3]
    drot = matrix_to_axisangle(target[:3, :3] @ current[:3, :3].T)
    return delta_to_action(dpos, drot, gripper, scale)
