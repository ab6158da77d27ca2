"""The driver interface: execute one delta-pose command (+ gripper), report the arm and gripper state.

A command moves the TCP from its *measured* pose by ``translation`` (m, base frame) and ``rotation``
(axis-angle, rad, base frame, pre-multiplied), the same semantics as ``core.action.action_to_target_pose``
and the simulator; real-arm drivers chain a 20 Hz stream on the last target while the arm keeps up
(``TargetChain``), so a lagging arm still covers the commanded path. ``gripper`` follows robomimic:
> 0 closes (grasp), <= 0 opens. Real-arm drivers execute commands asynchronously (``execute``
returns at once) so a 20 Hz loop is never blocked; the sim driver steps the world synchronously.
Safety limits are the arbiter's safety filter's job; drivers only refuse malformed commands.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from imgen_ros.core.command import DeltaCommand
from imgen_ros.core.pose import Pose, axisangle_to_matrix, make_pose, matrix_to_axisangle


class DriverError(RuntimeError):
    """The robot cannot be reached or refused a command."""


class MissingDependencyError(ImportError):
    """A driver's optional dependency (a Python package or a ROS 2 package) is not installed."""


def checked(command: DeltaCommand) -> DeltaCommand:
    """``command`` if it is executable; ValueError naming the bad values otherwise."""
    if not command.is_finite():
        raise ValueError(f"refusing a non-finite command: translation={command.translation}, "
                         f"rotation={command.rotation}, gripper={command.gripper}")
    return command


def target_from(command: DeltaCommand, current: Pose) -> Pose:
    """The TCP target ``command`` asks for when the TCP is at ``current``."""
    return make_pose(current[:3, 3] + command.translation, axisangle_to_matrix(command.rotation) @ current[:3, :3])


def closes_gripper(command: DeltaCommand) -> bool:
    return command.gripper > 0.0


@dataclass(frozen=True)
class ArmState:
    """One consistent measurement of arm and gripper (what imgen_msgs/RobotState carries)."""

    stamp_s: float
    tcp_pose: Pose
    joint_positions: NDArray[np.float64] = field(default_factory=lambda: np.zeros(7))
    joint_velocities: NDArray[np.float64] = field(default_factory=lambda: np.zeros(7))
    gripper_width: float = 0.0
    # Estimated external wrench on the TCP in the base frame (force N, torque N m); NaN: not measured.
    external_wrench: NDArray[np.float64] = field(default_factory=lambda: np.full(6, np.nan))

    @property
    def gripper_qpos(self) -> NDArray[np.float64]:
        """Finger joint positions (left, right) as robomimic's ``robot0_gripper_qpos``: half the width each."""
        return np.array([self.gripper_width / 2.0, self.gripper_width / 2.0])


def as_vector(values: ArrayLike, n: int, what: str) -> NDArray[np.float64]:
    out = np.asarray(values, dtype=float).ravel()
    if out.shape != (n,):
        raise DriverError(f"{what}: expected {n} values, got {out.shape[0]}")
    return out


class RobotDriver(ABC):
    """An FR3 (+ Franka Hand) that executes delta-pose commands. Use as a context manager or call
    ``start`` / ``close``."""

    name: str = "abstract"

    @abstractmethod
    def start(self) -> None:
        """Connect (and recover from errors where the robot supports it)."""

    @abstractmethod
    def read_state(self) -> ArmState:
        """The newest measured state."""

    @abstractmethod
    def execute(self, command: DeltaCommand) -> Pose:
        """Start moving toward ``target_from(command, measured TCP)``; returns that target at once.
        ValueError for a non-finite command."""

    @abstractmethod
    def hold(self) -> None:
        """Stop following commands and hold the current pose (gripper unchanged)."""

    @abstractmethod
    def close(self) -> None:
        """Release the robot (idempotent)."""

    def wait_until_settled(self, timeout_s: float) -> bool:
        """Block until the last commanded motion has finished (True) or ``timeout_s`` passed (False).
        Drivers whose ``execute`` is synchronous return True at once."""
        return True

    def __enter__(self) -> RobotDriver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TargetChain:
    """Where the next delta starts on a robot that lags its targets.

    The command semantics are "measured TCP moved by the delta". A real arm behind a trajectory
    generator is still on its way to the last target when the next 20 Hz command arrives, so
    measured-based targets cover only part of each commanded step (about 40-50 % on franky-sim).
    While commands stream in (each within ``stream_timeout_s`` of the last) and the robot keeps up
    (last target within ``max_lead_m`` / ``max_lead_rad`` of the measured pose), the next delta
    starts from the last *target* instead, so the robot covers what was commanded; otherwise
    (first command, a pause, contact holding the arm back) it starts from the measured pose, which
    bounds how far a target can lead the arm.
    """

    def __init__(self, enabled: bool, max_lead_m: float, max_lead_rad: float, stream_timeout_s: float) -> None:
        if max_lead_m <= 0 or max_lead_rad <= 0 or stream_timeout_s <= 0:
            raise ValueError("TargetChain: max_lead_m, max_lead_rad and stream_timeout_s must be > 0")
        self.enabled = enabled
        self.max_lead_m, self.max_lead_rad, self.stream_timeout_s = max_lead_m, max_lead_rad, stream_timeout_s
        self.reset()

    def reset(self) -> None:
        self._target: Pose | None = None
        self._stamp = -np.inf

    def reference(self, measured: Pose, now_s: float) -> Pose:
        """The pose the next delta is applied to."""
        if not self.enabled or self._target is None or now_s - self._stamp > self.stream_timeout_s:
            return measured
        lead = np.linalg.norm(self._target[:3, 3] - measured[:3, 3])
        turn = np.linalg.norm(_rotvec(self._target[:3, :3] @ measured[:3, :3].T))
        return self._target if lead <= self.max_lead_m and turn <= self.max_lead_rad else measured

    def commit(self, target: Pose, now_s: float) -> None:
        self._target, self._stamp = target, now_s


def _rotvec(rotation: NDArray[np.float64]) -> NDArray[np.float64]:
    return matrix_to_axisangle(rotation)
