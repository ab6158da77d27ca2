"""viz_mirror: standard-type mirrors of the graph for RViz, Foxglove and robot_state_publisher (logic:
core.viz.VizScene).

Subscribes what the sim graph and the real graph both publish: ``robot_state``, ``object_pose``,
``object_pose/true`` (simulation only), ``object_pose/revealed``, ``control_state``,
``robot/command``, ``episode_events`` and ``policy/pose_error``. Publishes, all in ``fr3_link0``
(QoS class VIEW: reliable, keep last 5):

- ``joint_states`` (sensor_msgs/JointState): ``fr3_joint1..7`` and ``fr3_finger_joint1/2`` (half the
  gripper width each) at the robot state's stamp, at most ``state_rate_hz``; franka_description's
  robot_state_publisher turns them into the arm's TF. Off with ``publish_joint_states: false``
  (franka_bringup's joint_state_publisher already publishes them);
- ``tcp_pose``, ``object_pose/believed_pose`` (the estimate plus the policy's pose error of the
  running episode), ``object_pose/true_pose`` (geometry_msgs/PoseStamped, at their sources' stamps);
- ``viz/markers`` (visualization_msgs/MarkerArray) at ``marker_rate_hz``: the cube believed vs true,
  the revealed pose, the safety box, the command arrow and the mode text (core.viz lists them).

Parameters: ``config/viz_mirror.yaml``; the launch files pass the arbiter file's safety box as
``workspace_min`` / ``workspace_max`` (core.viz.arbiter_workspace).
"""

from __future__ import annotations

import math
import time

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from imgen_msgs.msg import ControlState, DeltaPoseCommand, EpisodeEvent, ObjectPoseEstimate, PoseError, RobotState
from imgen_ros.core import diagnostics as diag
from imgen_ros.core import topics
from imgen_ros.core.viz import MarkerSpec, PoseErrorInfo, RateLimiter, StampedPose, VizConfig, VizScene, joint_state
from imgen_ros.nodes._ros import attach_diagnostics, declare_config, pose_msg_arrays, qos, run, to_sec, to_stamp


def pose_stamped(pose: StampedPose) -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp = to_stamp(pose.stamp)
    msg.header.frame_id = pose.frame_id
    p, q = msg.pose.position, msg.pose.orientation
    p.x, p.y, p.z = (float(v) for v in pose.position)
    q.x, q.y, q.z, q.w = (float(v) for v in pose.quat_xyzw)
    return msg


def marker_msg(spec: MarkerSpec, stamp) -> Marker:
    msg = Marker(ns=spec.ns, id=spec.id, type=int(spec.type), action=int(spec.action), text=spec.text)
    msg.header.stamp = stamp
    msg.header.frame_id = spec.frame_id
    p, q = msg.pose.position, msg.pose.orientation
    p.x, p.y, p.z = spec.position
    q.x, q.y, q.z, q.w = spec.quat_xyzw
    msg.scale.x, msg.scale.y, msg.scale.z = spec.scale
    msg.color = ColorRGBA(r=spec.color[0], g=spec.color[1], b=spec.color[2], a=spec.color[3])
    msg.points = [Point(x=x, y=y, z=z) for x, y, z in spec.points]
    sec = int(spec.lifetime_s)
    msg.lifetime = Duration(sec=sec, nanosec=round((spec.lifetime_s - sec) * 1e9))
    return msg


class VizMirrorNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("viz_mirror", **kwargs)
        self.config = cfg = declare_config(self, VizConfig)
        self.scene = VizScene(cfg)
        self.state_limit = RateLimiter(cfg.state_rate_hz)

        def pub(kind: type, topic: str):
            return self.create_publisher(kind, topic, qos(topic))

        self.joint_pub = pub(JointState, topics.JOINT_STATES) if cfg.publish_joint_states else None
        self.tcp_pub = pub(PoseStamped, topics.TCP_POSE)
        self.believed_pub = pub(PoseStamped, topics.BELIEVED_POSE)
        self.true_pub = pub(PoseStamped, topics.TRUE_POSE)
        self.marker_pub = pub(MarkerArray, topics.MARKERS)
        for kind, topic, callback in ((RobotState, topics.ROBOT_STATE, self._on_state),
                                      (ObjectPoseEstimate, topics.OBJECT_POSE, self._on_estimate),
                                      (ObjectPoseEstimate, topics.OBJECT_POSE_TRUE, self._on_true),
                                      (ObjectPoseEstimate, topics.OBJECT_REVEALED, self._on_revealed),
                                      (ControlState, topics.CONTROL_STATE, self._on_control),
                                      (DeltaPoseCommand, topics.ROBOT_COMMAND, self._on_command),
                                      (EpisodeEvent, topics.EPISODE_EVENTS, self._on_event),
                                      (PoseError, topics.POSE_ERROR, self._on_pose_error)):
            self.create_subscription(kind, topic, callback, qos(topic))
        self.create_timer(1.0 / cfg.marker_rate_hz, self._publish_markers)
        self._arrivals: dict[str, float] = {}   # input -> monotonic arrival time (for /diagnostics)
        attach_diagnostics(self, self._diagnostics, "none")
        self.get_logger().info(f"mirroring '{cfg.object_id}' for viewers in {topics.BASE_FRAME}: markers at "
                               f"{cfg.marker_rate_hz} Hz, box {cfg.workspace_min} .. {cfg.workspace_max}"
                               + ("" if cfg.publish_joint_states else ", joint_states off"))

    def _diagnostics(self) -> list[diag.Status]:
        """How fresh the mirrored inputs are (a viewer showing stale poses should say so)."""
        now = time.monotonic()
        ages = {name: (now - self._arrivals.get(name, -math.inf), limit)
                for name, limit in (("robot state", diag.STATE_AGE_S), ("pose estimate", diag.POSE_AGE_S))}
        return [diag.age_status("mirrors", ages)]

    # ---------------------------------------------------------------- inputs
    def _on_state(self, msg: RobotState) -> None:
        arrived = time.monotonic()
        self._arrivals["robot state"] = arrived
        stamp = to_sec(msg.header.stamp)
        position, quat = pose_msg_arrays(msg.tcp_pose)
        tcp = self.scene.on_robot_state(position, quat, stamp, arrived)
        # decimated by measurement time: DDS delivers a steady stream in bursts
        if not self.state_limit.ready(stamp or arrived):
            return
        self.tcp_pub.publish(pose_stamped(tcp))
        joints = joint_state(msg.joint_positions, msg.joint_velocities, msg.gripper_width)
        if self.joint_pub is not None and joints is not None:
            out = JointState(name=list(joints.names), position=list(joints.position), velocity=list(joints.velocity))
            out.header.stamp = msg.header.stamp
            out.header.frame_id = topics.BASE_FRAME
            self.joint_pub.publish(out)

    def _on_estimate(self, msg: ObjectPoseEstimate) -> None:
        self._arrivals["pose estimate"] = time.monotonic()
        position, quat = pose_msg_arrays(msg.pose)
        believed = self.scene.on_estimate(msg.object_id, position, quat, msg.valid, to_sec(msg.header.stamp),
                                          time.monotonic())
        if believed is not None:
            self.believed_pub.publish(pose_stamped(believed))

    def _on_true(self, msg: ObjectPoseEstimate) -> None:
        position, quat = pose_msg_arrays(msg.pose)
        true = self.scene.on_true_pose(msg.object_id, position, quat, to_sec(msg.header.stamp), time.monotonic())
        if true is not None:
            self.true_pub.publish(pose_stamped(true))

    def _on_revealed(self, msg: ObjectPoseEstimate) -> None:
        position, quat = pose_msg_arrays(msg.pose)
        self.scene.on_revealed(msg.object_id, position, quat, msg.valid, to_sec(msg.header.stamp), time.monotonic())

    def _on_control(self, msg: ControlState) -> None:
        self.scene.on_control(msg.mode, msg.episode_id, msg.step, msg.reason, time.monotonic())

    def _on_command(self, msg: DeltaPoseCommand) -> None:
        self.scene.on_command(msg.translation, msg.source, time.monotonic())

    def _on_event(self, msg: EpisodeEvent) -> None:
        self.scene.on_event(msg.episode_id, msg.event, msg.reason)
        if msg.event == EpisodeEvent.EVENT_START:
            self._republish_believed()

    def _on_pose_error(self, msg: PoseError) -> None:
        offsets = {i: np.array([o.x, o.y, o.z]) for i, o in zip(msg.object_ids, msg.offsets, strict=False)}
        self.scene.on_pose_error(PoseErrorInfo(msg.episode_id, msg.mode, msg.seed, offsets))
        self._republish_believed()

    def _republish_believed(self) -> None:
        """The believed pose changes with the episode's pose error, not only with a new estimate."""
        believed = self.scene.believed()
        if believed is not None:
            self.believed_pub.publish(pose_stamped(believed))

    # ---------------------------------------------------------------- markers
    def _publish_markers(self) -> None:
        stamp = self.get_clock().now().to_msg()
        specs = self.scene.markers(time.monotonic())
        self.marker_pub.publish(MarkerArray(markers=[marker_msg(s, stamp) for s in specs]))


def main(args: list[str] | None = None) -> None:
    run(VizMirrorNode, args)


if __name__ == "__main__":
    main()
