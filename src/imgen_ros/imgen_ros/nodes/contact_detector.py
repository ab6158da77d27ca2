"""contact_detector: the observability channel on the real graph (logic: core.contact.ContactReveal).

Subscribes ``robot_state`` (imgen_msgs/RobotState: the FR3's estimated external wrench, TCP pose and
gripper width), ``object_pose`` (the uncorrupted ICP estimate; the policy node applies the pose error
itself) and ``episode_events``. At every START it resets the detector (a new free-space force
baseline from the first robot-state samples: start episodes with nothing touching the hand). When the
detector fires it opens the channel: it publishes on ``object_pose/revealed`` exactly what sim_node
publishes there, an ``ObjectPoseEstimate`` (valid, the pose estimate at the moment of contact under
``full``, the TCP position under ``partial``) at ``publish_rate_hz`` and at once on contact; before
contact and under ``none`` an invalid one with status ``not_revealed``. Run sim_node with
``publish_revealed: false`` when this node serves the channel against the simulator.
Parameters: ``config/contact_detector.yaml`` (``observability``, ``object_id``, ``publish_rate_hz``,
``detector.*``; read-only). ``/diagnostics``: the robot state's age (the wrench it watches) and
whether the channel is open.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from rclpy.node import Node

from imgen_msgs.msg import EpisodeEvent, ObjectPoseEstimate, RobotState
from imgen_ros.core import diagnostics as diag
from imgen_ros.core import topics
from imgen_ros.core.contact import OBSERVABILITY_MODES, ContactDetectorConfig, ContactReveal, ContactSample
from imgen_ros.core.params import check_fields, meta, param
from imgen_ros.core.pose import make_pose, pose_from_pos_quat
from imgen_ros.nodes._ros import (
    attach_diagnostics,
    declare_config,
    now_s,
    pose_msg_arrays,
    pose_to_msg,
    qos,
    run,
    to_sec,
)

TERMINAL = (EpisodeEvent.EVENT_SUCCESS, EpisodeEvent.EVENT_FAILURE, EpisodeEvent.EVENT_ABORT)


@dataclass(frozen=True)
class ContactDetectorNodeConfig:
    observability: str = param("full", "what contact reveals: full (the pose estimate), partial (the TCP "
                               "position), none (only that it happened: nothing is published)",
                               choices=OBSERVABILITY_MODES)
    object_id: str = param("cube", "the object whose estimate the channel reveals")
    publish_rate_hz: float = param(30.0, "object_pose/revealed publication rate [Hz]", "[1, 200]")
    detector: ContactDetectorConfig = field(default_factory=ContactDetectorConfig,
                                            metadata=meta("contact detector thresholds (core.contact)"))

    def __post_init__(self) -> None:
        check_fields(self)


class ContactDetectorNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("contact_detector", **kwargs)
        self.config = cfg = declare_config(self, ContactDetectorNodeConfig)
        self.channel = ContactReveal(cfg.detector, cfg.observability)
        self.episode_id: int | None = None
        self.last_state_stamp: float | None = None
        self.pub = self.create_publisher(ObjectPoseEstimate, topics.OBJECT_REVEALED, qos(topics.OBJECT_REVEALED))
        self.create_subscription(RobotState, topics.ROBOT_STATE, self._on_state, qos(topics.ROBOT_STATE))
        self.create_subscription(ObjectPoseEstimate, topics.OBJECT_POSE, self._on_pose, qos(topics.OBJECT_POSE))
        self.create_subscription(EpisodeEvent, topics.EPISODE_EVENTS, self._on_event, qos(topics.EPISODE_EVENTS))
        self.create_timer(1.0 / cfg.publish_rate_hz, self._publish)
        attach_diagnostics(self, self._diagnostics, "fr3")
        self.get_logger().info(f"contact detector for '{cfg.object_id}' ({cfg.observability} observability): "
                               f"force >= {cfg.detector.force_enter_n} N with the TCP >= "
                               f"{cfg.detector.min_tcp_height_m} m above z = {cfg.detector.table_z_m} m"
                               + (", or the fingers stopped on an object" if cfg.detector.use_grasp else ""))

    def _diagnostics(self) -> list[diag.Status]:
        age = math.inf if self.last_state_stamp is None else now_s(self) - self.last_state_stamp
        status = diag.age_status("contact", {"robot state": (age, diag.STATE_AGE_S)})
        revealed = self.channel.revealed is not None
        episode = "no episode yet" if self.episode_id is None else f"episode {self.episode_id}"
        message = f"{status.message}; {'revealed' if revealed else 'not revealed'} ({episode})"
        return [diag.Status(status.aspect, status.level, message,
                            {**status.values, "revealed": str(revealed), "episode_id": str(self.episode_id)})]

    def _on_event(self, msg: EpisodeEvent) -> None:
        if msg.event == EpisodeEvent.EVENT_START and msg.episode_id != self.episode_id:
            self.episode_id = msg.episode_id
            self.channel.start_episode()
            self._publish()
        elif msg.event in TERMINAL and msg.episode_id == self.episode_id:
            self.channel.end_episode()

    def _on_pose(self, msg: ObjectPoseEstimate) -> None:
        if msg.object_id and msg.object_id != self.config.object_id:
            return
        position, quat = pose_msg_arrays(msg.pose)
        if self.channel.on_estimate(position, quat, msg.valid):
            self._opened("the first valid pose estimate after contact")

    def _on_state(self, msg: RobotState) -> None:
        position, _ = pose_msg_arrays(msg.tcp_pose)
        stamp = to_sec(msg.header.stamp) or self.get_clock().now().nanoseconds * 1e-9
        self.last_state_stamp = stamp
        sample = ContactSample(stamp, np.asarray(msg.external_wrench, dtype=float), float(position[2]),
                               float(msg.gripper_width))
        if self.channel.on_state(sample, position):
            self._opened(f"{self.channel.detector.cue} contact")

    def _opened(self, why: str) -> None:
        self.get_logger().info(f"episode {self.episode_id}: {why} revealed '{self.config.object_id}' "
                               f"(force {self.channel.detector.force_n:.1f} N)")
        self._publish()

    def _publish(self) -> None:
        revealed = self.channel.revealed
        msg = ObjectPoseEstimate(object_id=self.config.object_id, fit_rmse=0.0, fitness=1.0)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = topics.BASE_FRAME
        if revealed is None:
            msg.valid, msg.status, msg.pose = False, "not_revealed", pose_to_msg(make_pose(np.zeros(3)))
        else:
            msg.valid, msg.status, msg.pose = True, "ok", pose_to_msg(pose_from_pos_quat(*revealed))
        self.pub.publish(msg)


def main(args: list[str] | None = None) -> None:
    run(ContactDetectorNode, args)


if __name__ == "__main__":
    main()
