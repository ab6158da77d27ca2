"""robot_driver: executes the arbiter's safety-filtered ``robot/command`` on the FR3 and publishes
``robot_state`` (logic: imgen_ros.robot; driver selected by the ``driver`` parameter).

- ``libfranka``: franky (FCI, the 1 kHz loop inside libfranka); ``franka_ros2``: PoseStamped targets
  for a Cartesian impedance controller + franka_gripper actions, state from
  franka_robot_state_broadcaster (needs franka_msgs); ``sim``: a MuJoCo TaskEnv stepped per command.
- Each DeltaPoseCommand is executed on arrival; a non-finite one is refused (hold instead), one whose
  header stamp is more than ``max_command_age_s`` old (or ahead) is dropped and counted
  (``dropped_stale``), so a delayed queue never replays stale motion.
- No command for ``command_timeout_s``: hold the pose once (the arbiter normally sends HOLD itself).
- ``robot_state`` (imgen_msgs/RobotState) at ``state_rate_hz``.
- ``/diagnostics``: connection (driver started, age of the last robot state read), commands
  (executed, dropped stale, refused).
Parameters: ``config/robot_driver.yaml`` (all read-only: the driver is set up once).
"""

from __future__ import annotations

import dataclasses
import math
import time

from rclpy.node import Node

from imgen_msgs.msg import DeltaPoseCommand, RobotState
from imgen_ros.core import diagnostics as diag
from imgen_ros.core import topics
from imgen_ros.nodes._ros import (
    attach_diagnostics,
    command_from_msg,
    declare_config,
    now_s,
    pose_to_msg,
    qos,
    refuse_start,
    run,
    to_stamp,
)
from imgen_ros.robot.config import RobotDriverNodeConfig
from imgen_ros.robot.factory import make_driver
from imgen_ros.robot.interface import ArmState, DriverError, MissingDependencyError, RobotDriver


def build_driver(config: RobotDriverNodeConfig, node: Node) -> RobotDriver:
    if config.driver == "sim":
        from imgen_ros.sim import make_env

        env = make_env(config.sim.task, noise="off")
        env.reset(config.sim.seed)
        return make_driver("sim", env=env)
    return make_driver(config.driver, node=node, libfranka=config.libfranka, franka_ros2=config.franka_ros2)


def state_to_msg(state: ArmState, frame_id: str = topics.BASE_FRAME) -> RobotState:
    msg = RobotState()
    msg.header.stamp = to_stamp(state.stamp_s)
    msg.header.frame_id = frame_id
    msg.joint_positions = [float(v) for v in state.joint_positions]
    msg.joint_velocities = [float(v) for v in state.joint_velocities]
    msg.tcp_pose = pose_to_msg(state.tcp_pose)
    msg.gripper_qpos = [float(v) for v in state.gripper_qpos]
    msg.gripper_width = float(state.gripper_width)
    msg.external_wrench = [float(v) for v in state.external_wrench]
    return msg


class RobotDriverNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("robot_driver", **kwargs)
        self.config = declare_config(self, RobotDriverNodeConfig)
        try:
            self.driver = build_driver(self.config, self)
            self.driver.start()
        except (DriverError, MissingDependencyError) as exc:   # FCI off, wrong IP, franky not installed
            refuse_start(self, str(exc))
        # One thread: every callback is short (the 1 kHz loop lives inside the driver library), and
        # rclpy's multi-threaded executor busy-waits and starves timers (ros2/rclpy#1452).
        self.state_pub = self.create_publisher(RobotState, topics.ROBOT_STATE, qos(topics.ROBOT_STATE))
        self.create_subscription(DeltaPoseCommand, topics.ROBOT_COMMAND, self._on_command, qos(topics.ROBOT_COMMAND))
        self.create_timer(self.config.command_timeout_s / 2.0, self._watchdog)
        self.create_timer(1.0 / self.config.state_rate_hz, self._publish_state)
        self._last_command_s = now_s(self)
        self._holding = True
        self.executed = 0
        self.dropped_stale = 0
        self.dropped = diag.RecentEvents()
        self.refused = diag.RecentEvents()
        self.last_state_read: float | None = None   # time.monotonic() of the last robot state read
        self.last_error = ""
        attach_diagnostics(self, self._diagnostics, "sim" if self.config.driver == "sim" else "fr3")
        self.get_logger().info(f"driver '{self.config.driver}' started")

    def _diagnostics(self) -> list[diag.Status]:
        now = time.monotonic()
        age = math.inf if self.last_state_read is None else now - self.last_state_read
        # started: this node exists only once driver.start() succeeded (it raises otherwise)
        return [diag.driver_connection_status(self.config.driver, True, age, self.last_error),
                diag.driver_commands_status(self.executed, self.dropped, self.refused, now)]

    def _on_command(self, msg: DeltaPoseCommand) -> None:
        command = command_from_msg(msg)
        now = now_s(self)
        age = now - command.stamp
        if abs(age) > self.config.max_command_age_s:
            self.dropped_stale += 1
            self.dropped.add(time.monotonic())
            self.get_logger().warning(
                f"dropped command {msg.step}: stamped {age * 1e3:.0f} ms "
                f"{'ago' if age > 0 else 'in the future (clocks not synchronized?)'} "
                f"(limit {self.config.max_command_age_s * 1e3:.0f} ms); {self.dropped_stale} dropped so far",
                throttle_duration_sec=1.0)
            return
        self._last_command_s = now
        try:
            self.driver.execute(command)
            self.executed += 1
            self._holding = False
        except ValueError as err:
            self.refused.add(time.monotonic())
            self.last_error = f"refused command {msg.step}: {err}"
            self.get_logger().error(f"refused command {msg.step}: {err}; holding")
            self._hold()
        except DriverError as err:
            self.refused.add(time.monotonic())
            self.last_error = f"command {msg.step} failed: {err}"
            self.get_logger().error(f"command {msg.step} failed: {err}")

    def _watchdog(self) -> None:
        if not self._holding and now_s(self) - self._last_command_s > self.config.command_timeout_s:
            self.get_logger().warning(f"no command for {self.config.command_timeout_s} s: holding")
            self._hold()

    def _hold(self) -> None:
        try:
            self.driver.hold()
            self._holding = True
        except DriverError as err:
            self.get_logger().error(f"hold failed: {err}")

    def _publish_state(self) -> None:
        try:
            state = self.driver.read_state()
        except DriverError as err:
            self.last_error = f"no robot state: {err}"
            self.get_logger().warning(f"no robot state: {err}", throttle_duration_sec=2.0)
            return
        self.last_state_read = time.monotonic()
        if self.driver.name == "sim":   # its stamps are simulation time; the graph compares ROS time
            state = dataclasses.replace(state, stamp_s=now_s(self))
        self.state_pub.publish(state_to_msg(state))

    def close(self) -> None:
        self.driver.close()


def main(args: list[str] | None = None) -> None:
    run(RobotDriverNode, args)


if __name__ == "__main__":
    main()
