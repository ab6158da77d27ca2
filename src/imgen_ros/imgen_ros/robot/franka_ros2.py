"""The ``franka_ros2`` adapter: drive an FR3 that runs franka_ros2 (ros2_control) from this graph.

- Arm: franka_ros2 has no stock controller that takes Cartesian targets from another node, so this
  adapter publishes ``geometry_msgs/PoseStamped`` targets (base frame) for a Cartesian impedance
  controller that subscribes to them (e.g. CRISP's ``target_pose``; topic configurable).
- Gripper: ``franka_msgs/action/{Homing,Move,Grasp}`` on ``franka_gripper/...``; width from
  ``franka_gripper/joint_states``.
- State: ``franka_msgs/msg/FrankaRobotState`` from ``franka_robot_state_broadcaster/robot_state``
  (best effort since franka_ros2 2.4; a best-effort subscription also matches a reliable publisher).

This module needs rclpy and is imported only when the driver is selected; ``franka_msgs`` is imported
when the driver is constructed and its absence is a MissingDependencyError saying how to get it.
The driver does not spin: the node passed in must be spun by the caller's executor.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.action import ActionClient
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import JointState

from imgen_ros.core.command import DeltaCommand
from imgen_ros.core.pose import Pose, pos_quat_from_pose, pose_from_pos_quat
from imgen_ros.robot.franka_ros2_config import FrankaRos2Config
from imgen_ros.robot.interface import (
    ArmState,
    DriverError,
    MissingDependencyError,
    RobotDriver,
    TargetChain,
    checked,
    closes_gripper,
    target_from,
)

FRANKA_MSGS_HINT = ("the franka_ros2 driver needs the ROS 2 interface package 'franka_msgs' from franka_ros2 "
                    "(apt install ros-$ROS_DISTRO-franka-msgs, or build https://github.com/frankaemika/franka_ros2 "
                    "in your workspace and source its install/setup.bash); it is not on PyPI")


def load_franka_interfaces() -> SimpleNamespace:
    """franka_msgs types used by the adapter; MissingDependencyError when franka_msgs is absent."""
    try:
        from franka_msgs.action import Grasp, Homing, Move
        from franka_msgs.msg import FrankaRobotState
    except ImportError as err:
        raise MissingDependencyError(f"{FRANKA_MSGS_HINT} (import failed: {err})") from err
    return SimpleNamespace(FrankaRobotState=FrankaRobotState, Homing=Homing, Move=Move, Grasp=Grasp)


def pose_from_msg(pose_msg: Any) -> Pose:
    p, q = pose_msg.position, pose_msg.orientation
    return pose_from_pos_quat([p.x, p.y, p.z], [q.x, q.y, q.z, q.w])


def arm_state_from_msg(msg: Any, gripper_width: float) -> ArmState:
    """ArmState from a franka_msgs/FrankaRobotState (measured o_t_ee and joint state)."""
    joints = msg.measured_joint_state
    stamp = msg.header.stamp
    q = np.zeros(7)
    dq = np.zeros(7)
    q[:min(7, len(joints.position))] = list(joints.position)[:7]
    dq[:min(7, len(joints.velocity))] = list(joints.velocity)[:7]
    return ArmState(stamp_s=stamp.sec + stamp.nanosec * 1e-9, tcp_pose=pose_from_msg(msg.o_t_ee.pose),
                    joint_positions=q, joint_velocities=dq, gripper_width=gripper_width)


class FrankaRos2Driver(RobotDriver):
    """Targets for a Cartesian impedance controller + franka_gripper actions, on a caller-spun node."""

    name = "franka_ros2"

    def __init__(self, node: Node, config: FrankaRos2Config | None = None,
                 interfaces: SimpleNamespace | None = None) -> None:
        self.config = config or FrankaRos2Config()
        self.types = interfaces if interfaces is not None else load_franka_interfaces()
        self.node = node
        self._lock = threading.Lock()
        self._state_msg: Any = None
        self._state_received_s = 0.0
        self._gripper_width = 0.0
        self._gripper_closed: bool | None = None
        self._started = False
        cfg = self.config
        self.chain = TargetChain(cfg.chain_targets, cfg.max_target_lead_m, cfg.max_target_lead_rad,
                                 cfg.stream_timeout_s)
        self._target_pub = node.create_publisher(
            PoseStamped, cfg.target_pose_topic, QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
        self._subs = [
            node.create_subscription(self.types.FrankaRobotState, cfg.robot_state_topic, self._on_state,
                                     qos_profile_sensor_data),
            node.create_subscription(JointState, f"{cfg.gripper_namespace}/joint_states", self._on_gripper,
                                     qos_profile_sensor_data),
        ]
        ns = cfg.gripper_namespace
        self.action_names = {"homing": f"{ns}/homing", "move": f"{ns}/move", "grasp": f"{ns}/grasp"}
        self._homing = ActionClient(node, self.types.Homing, self.action_names["homing"])
        self._move = ActionClient(node, self.types.Move, self.action_names["move"])
        self._grasp = ActionClient(node, self.types.Grasp, self.action_names["grasp"])

    # ------------------------------------------------------------------ inputs
    def _on_state(self, msg: Any) -> None:
        with self._lock:
            self._state_msg = msg
            self._state_received_s = self._now()

    def _on_gripper(self, msg: JointState) -> None:
        with self._lock:
            self._gripper_width = float(sum(msg.position[:2]))

    def _now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Non-blocking (the node may be spun by the caller's executor): homes the gripper if configured."""
        self._started = True
        if self.config.home_gripper_on_start:
            if not self._homing.server_is_ready():
                self.node.get_logger().warning(f"{self.config.gripper_namespace}/homing action server not "
                                               "available yet; homing skipped")
            else:
                self._homing.send_goal_async(self.types.Homing.Goal())

    def close(self) -> None:
        """Stop commanding. The publisher, subscriptions and action clients belong to the node and go
        with it (destroying them here races the caller's executor)."""
        self._started = False

    # ------------------------------------------------------------------ state and commands
    def read_state(self) -> ArmState:
        with self._lock:
            msg, width = self._state_msg, self._gripper_width
        if msg is None:
            raise DriverError(f"no franka_msgs/FrankaRobotState received on '{self.config.robot_state_topic}' yet "
                              "(is franka_robot_state_broadcaster running?)")
        return arm_state_from_msg(msg, width)

    def _fresh_pose(self) -> Pose:
        if not self._started:
            raise DriverError("franka_ros2 driver is not started (call start())")
        state = self.read_state()
        age = self._now() - self._state_received_s
        if age > self.config.state_timeout_s:
            raise DriverError(f"robot state is {age:.3f} s old (> {self.config.state_timeout_s} s): not commanding")
        return state.tcp_pose

    def publish_target(self, target: Pose) -> None:
        msg = PoseStamped()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = self.config.base_frame
        pos, quat = pos_quat_from_pose(target)
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in pos)
        o = msg.pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in quat)
        self._target_pub.publish(msg)

    def execute(self, command: DeltaCommand) -> Pose:
        checked(command)
        now = self._now()
        target = target_from(command, self.chain.reference(self._fresh_pose(), now))
        self.publish_target(target)
        self.chain.commit(target, now)
        self._command_gripper(closes_gripper(command))
        return target

    def hold(self) -> None:
        self.chain.reset()
        self.publish_target(self._fresh_pose())

    def _command_gripper(self, close: bool) -> None:
        if close == self._gripper_closed:
            return
        name = "grasp" if close else "move"
        client = self._grasp if close else self._move
        if not client.server_is_ready():
            raise DriverError(f"gripper action server '{self.action_names[name]}' is not available "
                              "(is franka_gripper running?)")
        client.send_goal_async(gripper_goal(self.types, self.config, close))
        self._gripper_closed = close


def gripper_goal(types: SimpleNamespace, config: FrankaRos2Config, close: bool) -> Any:
    """Goal that closes ("grasp whatever is there": width 0, wide outer epsilon) or opens the gripper."""
    if close:
        goal = types.Grasp.Goal()
        goal.width, goal.speed, goal.force = 0.0, config.gripper_speed_mps, config.gripper_force_n
        goal.epsilon.inner, goal.epsilon.outer = 0.005, config.gripper_epsilon_outer_m
        return goal
    goal = types.Move.Goal()
    goal.width, goal.speed = config.gripper_open_width_m, config.gripper_speed_mps
    return goal
