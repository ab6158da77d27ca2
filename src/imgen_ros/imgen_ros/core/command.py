"""A delta-pose command as plain data: the ROS-free twin of ``imgen_msgs/DeltaPoseCommand``."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from imgen_ros.core.action import DEFAULT_SCALE, ActionScale, action_to_delta, delta_to_action


class Source(IntEnum):
    """Who produced a command (values match DeltaPoseCommand.SOURCE_*)."""

    POLICY = 0
    HUMAN = 1
    REPLAY = 2
    SAFETY = 3


def _vec3(value: ArrayLike) -> NDArray[np.float64]:
    v = np.asarray(value, dtype=float).reshape(-1)
    if v.shape != (3,):
        raise ValueError(f"expected 3 components, got shape {v.shape}")
    return v


@dataclass(frozen=True)
class DeltaCommand:
    """One 20 Hz control step in the base frame: translation [m], axis-angle rotation [rad], gripper.

    ``stamp`` is the producer's time in seconds (ROS time of the header); ``step`` the episode step.
    """

    translation: NDArray[np.float64]
    rotation: NDArray[np.float64]
    gripper: float
    source: Source = Source.POLICY
    stamp: float = 0.0
    step: int = 0
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "translation", _vec3(self.translation))
        object.__setattr__(self, "rotation", _vec3(self.rotation))
        object.__setattr__(self, "gripper", float(self.gripper))
        object.__setattr__(self, "source", Source(self.source))

    def is_finite(self) -> bool:
        return bool(np.all(np.isfinite(self.translation)) and np.all(np.isfinite(self.rotation))
                    and np.isfinite(self.gripper))

    def to_action(self, scale: ActionScale = DEFAULT_SCALE) -> NDArray[np.float64]:
        """Normalized 7-D action (clipped to [-1, 1])."""
        return delta_to_action(self.translation, self.rotation, self.gripper, scale)

    @classmethod
    def from_action(cls, action: ArrayLike, scale: ActionScale = DEFAULT_SCALE, **kwargs: object) -> DeltaCommand:
        """Command for a normalized 7-D action (clipped to [-1, 1])."""
        dpos, drot, gripper = action_to_delta(action, scale)
        return cls(dpos, drot, gripper, **kwargs)

    @classmethod
    def hold(cls, gripper: float, stamp: float = 0.0, step: int = 0) -> DeltaCommand:
        """Stay where you are; keep the gripper as it was (never drop a held object on a fault)."""
        return cls(np.zeros(3), np.zeros(3), gripper, Source.SAFETY, stamp, step)
