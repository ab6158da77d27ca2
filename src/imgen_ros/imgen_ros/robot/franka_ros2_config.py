"""Settings of the franka_ros2 adapter (kept apart from the adapter so configs load without rclpy)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FrankaRos2Config:
    target_pose_topic: str = "target_pose"
    # franka_robot_state_broadcaster's node name: its convenience topics <name>/current_pose, ...
    state_broadcaster: str = "franka_robot_state_broadcaster"
    gripper_namespace: str = "franka_gripper"
    base_frame: str = "fr3_link0"
    gripper_speed_mps: float = 0.1
    gripper_force_n: float = 40.0
    gripper_open_width_m: float = 0.08
    gripper_epsilon_outer_m: float = 0.08
    home_gripper_on_start: bool = True
    state_timeout_s: float = 0.2   # execute() refuses to act on an older measurement
    # Streaming (robot.interface.TargetChain): an impedance controller lags its target like any arm.
    chain_targets: bool = True
    max_target_lead_m: float = 0.02
    max_target_lead_rad: float = 0.2
    stream_timeout_s: float = 0.15

    def __post_init__(self) -> None:
        if not self.target_pose_topic or not self.state_broadcaster:
            raise ValueError("FrankaRos2Config: topic names must not be empty")
        if self.state_timeout_s <= 0:
            raise ValueError(f"state_timeout_s must be > 0, got {self.state_timeout_s}")
