"""A node that plays the arbiter's inputs at 20 Hz, each switchable, for fault injection."""

from __future__ import annotations

import time

import numpy as np
from imgen_ros.core import topics
from imgen_ros.core.command import DeltaCommand, Source
from imgen_ros.core.pose import make_pose
from imgen_ros.nodes._ros import command_to_msg, now_s, pose_to_msg, qos
from rclpy.node import Node
from std_msgs.msg import Bool

from imgen_msgs.msg import DeltaPoseCommand, ObjectPoseEstimate, RobotState


class FakeInputs(Node):
    def __init__(self, context, command_hz: float = 20.0, state_hz: float = 50.0) -> None:
        super().__init__("fake_inputs", context=context)
        self.alive = {"robot_state": True, "pose": True, "teleop": True, "policy": True}
        self.engaged = False
        self.nan_pose = False
        self.policy_delta = np.array([0.2, 0.0, 0.0])     # far beyond the step limit: must be clamped
        self.teleop_delta = np.array([0.0, 0.0, 0.01])
        self.tcp = np.array([0.5, 0.0, 0.3])
        self.sent_policy: list[float] = []   # wall-clock times of published policy commands
        self.pubs = {
            "robot_state": self.create_publisher(RobotState, topics.ROBOT_STATE, qos(topics.ROBOT_STATE)),
            "pose": self.create_publisher(ObjectPoseEstimate, topics.OBJECT_POSE, qos(topics.OBJECT_POSE)),
            "engaged": self.create_publisher(Bool, topics.TELEOP_ENGAGED, qos(topics.TELEOP_ENGAGED)),
            "teleop": self.create_publisher(DeltaPoseCommand, topics.TELEOP_COMMAND, qos(topics.TELEOP_COMMAND)),
            "policy": self.create_publisher(DeltaPoseCommand, topics.POLICY_COMMAND, qos(topics.POLICY_COMMAND)),
        }
        self.create_timer(1.0 / state_hz, self._state_tick)
        self.create_timer(1.0 / command_hz, self._command_tick)

    def _state_tick(self) -> None:
        """Robot state, pose estimate and the teleop heartbeat: fast streams (50 Hz)."""
        if self.alive["robot_state"]:
            msg = RobotState()
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.header.frame_id = topics.BASE_FRAME
            msg.tcp_pose = pose_to_msg(make_pose(self.tcp))
            self.pubs["robot_state"].publish(msg)
        if self.alive["pose"]:
            est = ObjectPoseEstimate(object_id="cube", valid=True)
            est.header.stamp = self.get_clock().now().to_msg()
            est.header.frame_id = topics.BASE_FRAME
            est.pose = pose_to_msg(make_pose([0.55, 0.0, 0.025]))
            if self.nan_pose:
                est.pose.position.x = float("nan")
            self.pubs["pose"].publish(est)
        if self.alive["teleop"]:
            self.pubs["engaged"].publish(Bool(data=self.engaged))

    def _command_tick(self) -> None:
        """Policy and teleop commands: 20 Hz."""
        t = now_s(self)
        if self.alive["teleop"]:
            self.pubs["teleop"].publish(command_to_msg(
                DeltaCommand(self.teleop_delta, np.zeros(3), 1.0, Source.HUMAN, t)))
        if self.alive["policy"]:
            self.pubs["policy"].publish(command_to_msg(
                DeltaCommand(self.policy_delta, np.array([0.0, 0.0, 2.0]), -1.0, Source.POLICY, t)))
            self.sent_policy.append(time.time())
