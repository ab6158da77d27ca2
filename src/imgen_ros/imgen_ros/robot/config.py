"""Configuration of the robot_driver node (ROS-free): which driver, its settings, loop rates.

ROS parameters (dotted), ``config/robot_driver.yaml``: ``driver``, ``state_rate_hz``,
``command_timeout_s``, ``max_command_age_s``, ``libfranka.*``, ``franka_ros2.*``, ``sim.*``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imgen_ros.robot.factory import DRIVER_KINDS
from imgen_ros.robot.franka_ros2_config import FrankaRos2Config
from imgen_ros.robot.libfranka import LibfrankaConfig


@dataclass(frozen=True)
class SimDriverConfig:
    task: str = "block_grasp"
    seed: int = 0


@dataclass(frozen=True)
class RobotDriverNodeConfig:
    driver: str = "libfranka"
    state_rate_hz: float = 100.0      # robot_state publication rate
    command_timeout_s: float = 0.2    # no command for this long: hold the pose (once)
    # A command whose header stamp is older than this (or this far in the future: unsynchronized
    # clocks) when it arrives is dropped and counted, never executed: a delayed queue must not replay
    # stale motion. Two 20 Hz periods; the arbiter stamps each command when it forwards it.
    max_command_age_s: float = 0.1
    libfranka: LibfrankaConfig = field(default_factory=LibfrankaConfig)
    franka_ros2: FrankaRos2Config = field(default_factory=FrankaRos2Config)
    sim: SimDriverConfig = field(default_factory=SimDriverConfig)

    def __post_init__(self) -> None:
        if self.driver not in DRIVER_KINDS:
            raise ValueError(f"driver {self.driver!r} is not one of {', '.join(DRIVER_KINDS)}")
        if self.state_rate_hz <= 0 or self.command_timeout_s <= 0:
            raise ValueError(f"state_rate_hz and command_timeout_s must be > 0, got {self.state_rate_hz}, "
                             f"{self.command_timeout_s}")
        if not 0.0 < self.max_command_age_s < 1.0:
            raise ValueError(f"max_command_age_s must be in (0, 1) s, got {self.max_command_age_s}")
