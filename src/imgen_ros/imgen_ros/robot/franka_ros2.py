"""The ``franka_ros2`` adapter: drive an FR3 that runs franka_ros2 (ros2_control) from this graph.

- Arm: ``geometry_msgs/PoseStamped`` targets (base frame) on ``target_pose`` for a Cartesian
  impedance controller. franka_ros2's own ``cartesian_impedance_example_controller`` holds the pose
  it started at and takes no targets, so the real launch spawns crisp_controllers'
  ``CartesianController`` (utiasDSL/crisp_controllers v1.0.0: subscribes ``target_pose`` in the
  controller manager's namespace, QoS depth 1, and ignores targets while more than one node
  publishes them); ``config/franka_controllers.yaml``.
- State: franka_robot_state_broadcaster's convenience topics (franka_ros2 >= v3.3.0), all standard
  messages at the broadcaster's ``convenience_publish_rate`` (100 Hz in franka_controllers.yaml),
  best effort: ``<broadcaster>/current_pose`` (O_T_EE), ``<broadcaster>/measured_joint_states`` and
  ``<broadcaster>/external_wrench_in_base_frame`` (O_F_ext_hat_K). The full
  ``franka_msgs/FrankaRobotState`` arrives at 1 kHz and is not read: parsing it on the node's one
  thread would take the time the command path needs.
- Gripper: ``franka_msgs/action/{Homing,Move,Grasp}`` on ``franka_gripper/...``; width from
  ``franka_gripper/joint_states``.

This module needs rclpy and is imported only when the driver is selected; ``franka_msgs`` (for the
gripper actions) is imported when the driver is constructed and its absence is a
MissingDependencyError saying how to get it. The driver does not spin: the node passed in must be
spun by the caller's executor.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped, WrenchStamped
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
                    "for the gripper actions. franka_ros2 is not in the ROS apt repository for Jazzy: build it "
                    "from source (https://github.com/frankarobotics/franka_ros2, a release tag such as v3.4.0, "
                    "with `vcs import src < src/dependency.repos` and rosdep) and source its install/setup.bash "
                    "(docker/Dockerfile does this); it is not on PyPI")


def load_franka_interfaces() -> SimpleNamespace:
    """franka_msgs action types used by the adapter; MissingDependencyError when franka_msgs is absent."""
    try:
        from franka_msgs.action import Grasp, Homing, Move
    except ImportError as err:
        raise MissingDependencyError(f"{FRANKA_MSGS_HINT} (import failed: {err})") from err
    return SimpleNamespace(Homing=Homing, Move=Move, Grasp=Grasp)


def pose_from_msg(pose_msg: Any) -> Pose:
    p, q = pose_msg.position, pose_msg.orientation
    return pose_from_pos_quat([p.x, p.y, p.z], [q.x, q.y, q.z, q.w])


def wrench_vector(msg: Any) -> np.ndarray:
    """(force xyz, torque xyz) of a geometry_msgs/WrenchStamped."""
    f, t = msg.wrench.force, msg.wrench.torque
    return np.array([f.x, f.y, f.z, t.x, t.y, t.z], dtype=float)


def arm_state_from_msgs(pose_msg: Any, joints_msg: Any | None, wrench_msg: Any | None,
                        gripper_width: float) -> ArmState:
    """ArmState from the broadcaster's current_pose (PoseStamped, O_T_EE), measured_joint_states
    (JointState; None: zeros) and external_wrench_in_base_frame (WrenchStamped; None: NaN)."""
    q = np.zeros(7)
    dq = np.zeros(7)
    if joints_msg is not None:
        q[:min(7, len(joints_msg.position))] = list(joints_msg.position)[:7]
        dq[:min(7, len(joints_msg.velocity))] = list(joints_msg.velocity)[:7]
    stamp = pose_msg.header.stamp
    wrench = wrench_vector(wrench_msg) if wrench_msg is not None else np.full(6, np.nan)
    return ArmState(stamp_s=stamp.sec + stamp.nanosec * 1e-9, tcp_pose=pose_from_msg(pose_msg.pose),
                    joint_positions=q, joint_velocities=dq, gripper_width=gripper_width, external_wrench=wrench)


class FrankaRos2Driver(RobotDriver):
    """Targets for a Cartesian impedance controller + franka_gripper actions, on a caller-spun node."""

    name = "franka_ros2"

    def __init__(self, node: Node, config: FrankaRos2Config | None = None,
                 interfaces: SimpleNamespace | None = None) -> None:
        self.config = config or FrankaRos2Config()
        self.types = interfaces if interfaces is not None else load_franka_interfaces()
        self.node = node
        self._lock = threading.Lock()
        self._pose_msg: Any = None
        self._joints_msg: Any = None
        self._wrench_msg: Any = None
        self._state_received_s = 0.0
        self._gripper_width = 0.0
        self._gripper_closed: bool | None = None
        self._started = False
        cfg = self.config
        self.chain = TargetChain(cfg.chain_targets, cfg.max_target_lead_m, cfg.max_target_lead_rad,
                                 cfg.stream_timeout_s)
        self._target_pub = node.create_publisher(
            PoseStamped, cfg.target_pose_topic, QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
        b = cfg.state_broadcaster
        self.state_topics = {"pose": f"{b}/current_pose", "joints": f"{b}/measured_joint_states",
                             "wrench": f"{b}/external_wrench_in_base_frame"}
        self._subs = [
            node.create_subscription(PoseStamped, self.state_topics["pose"], self._on_pose, qos_profile_sensor_data),
            node.create_subscription(JointState, self.state_topics["joints"], self._on_joints,
                                     qos_profile_sensor_data),
            node.create_subscription(WrenchStamped, self.state_topics["wrench"], self._on_wrench,
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
    def _on_pose(self, msg: PoseStamped) -> None:
        with self._lock:
            self._pose_msg = msg
            self._state_received_s = self._now()

    def _on_joints(self, msg: JointState) -> None:
        with self._lock:
            self._joints_msg = msg

    def _on_wrench(self, msg: WrenchStamped) -> None:
        with self._lock:
            self._wrench_msg = msg

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
            pose, joints, wrench, width = self._pose_msg, self._joints_msg, self._wrench_msg, self._gripper_width
        if pose is None:
            raise DriverError(f"no pose received on '{self.state_topics['pose']}' yet (is "
                              "franka_robot_state_broadcaster active, franka_ros2 >= v3.3.0?)")
        return arm_state_from_msgs(pose, joints, wrench, width)

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
