"""policy_node: a 20 Hz policy loop on the ROS graph (observation: core.observation).

Subscribes ``robot_state``, ``object_pose`` (and ``object_pose/revealed`` for the observability
channel) and ``episode_events``; publishes ``policy/command`` and ``policy/loop_timing``. The
policy is a robomimic checkpoint or ``expert`` (the scripted naive expert acting on the believed
poses, via graph.mirror.MeasuredWorld). It acts only inside an episode; at every START its
recurrent state and the corruption sample are reset. When an input is missing or older than
``max_input_age_s`` (robot state) / ``max_object_age_s`` (last *valid* pose estimate: short
occlusions are bridged with it) it publishes nothing, so the arbiter's watchdog holds the robot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from rclpy.node import Node

from imgen_msgs.msg import DeltaPoseCommand, EpisodeEvent, LoopTiming, ObjectPoseEstimate, RobotState
from imgen_ros.core import topics
from imgen_ros.core.action import DEFAULT_SCALE
from imgen_ros.core.command import DeltaCommand, Source
from imgen_ros.core.observation import ObjectEstimate, ObservationConfig, PoseNoise, build_observation
from imgen_ros.core.pose import pose_from_pos_quat
from imgen_ros.nodes._ros import command_to_msg, declare_config, now_s, pose_msg_arrays, qos, run, to_stamp

TERMINAL = (EpisodeEvent.EVENT_SUCCESS, EpisodeEvent.EVENT_FAILURE, EpisodeEvent.EVENT_ABORT)


@dataclass(frozen=True)
class PolicyNodeConfig:
    checkpoint: str = "expert"
    task: str = "block_grasp"
    rate_hz: float = 20.0
    max_input_age_s: float = 0.2
    max_object_age_s: float = 1.0
    device: str = "cpu"
    torch_threads: int = 1
    observation: ObservationConfig = field(default_factory=ObservationConfig)

    def __post_init__(self) -> None:
        if not (self.rate_hz > 0 and self.max_input_age_s > 0 and self.max_object_age_s > 0):
            raise ValueError(f"rate_hz, max_input_age_s and max_object_age_s must be > 0, got {self.rate_hz}, "
                             f"{self.max_input_age_s}, {self.max_object_age_s}")


def load(spec: str, task: str, device: str, torch_threads: int = 1):
    """(policy, world or None): the expert gets a MeasuredWorld to read its inputs from.

    Checkpoints run with ``torch_threads`` intra-op threads: one small LSTM step per tick gains
    nothing from more, and OpenMP's spinning workers would compete with the rest of the graph."""
    from imgen_ros.policy.evaluate import load_policy

    if spec.startswith("expert"):
        from imgen_ros.graph.mirror import MeasuredWorld

        world = MeasuredWorld(task)
        return load_policy("expert", world, device=device), world
    import torch

    torch.set_num_threads(max(1, torch_threads))
    return load_policy(spec, None, device=device), None


class PolicyNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("policy_node", **kwargs)
        self.config = declare_config(self, PolicyNodeConfig)
        self.policy, self.world = load(self.config.checkpoint, self.config.task, self.config.device,
                                       self.config.torch_threads)
        self.noise = PoseNoise(self.config.observation.noise)
        self.robot: tuple[float, RobotState] | None = None
        self.objects: dict[str, tuple[float, ObjectEstimate]] = {}
        self.revealed: ObjectEstimate | None = None
        self.revealed_object: str | None = None
        self.active = False
        self.episode_id = 0
        self.step = 0
        self.last_gripper = -1.0
        self.last_tick: float | None = None
        self.command_pub = self.create_publisher(DeltaPoseCommand, topics.POLICY_COMMAND, qos(topics.POLICY_COMMAND))
        self.timing_pub = self.create_publisher(LoopTiming, topics.POLICY_TIMING, qos(topics.POLICY_TIMING))
        self.create_subscription(RobotState, topics.ROBOT_STATE, self._on_robot, qos(topics.ROBOT_STATE))
        self.create_subscription(ObjectPoseEstimate, topics.OBJECT_POSE, self._on_pose, qos(topics.OBJECT_POSE))
        self.create_subscription(ObjectPoseEstimate, topics.OBJECT_REVEALED, self._on_revealed,
                                 qos(topics.OBJECT_REVEALED))
        self.create_subscription(EpisodeEvent, topics.EPISODE_EVENTS, self._on_event, qos(topics.EPISODE_EVENTS))
        self.create_timer(1.0 / self.config.rate_hz, self._tick)
        self.get_logger().info(f"policy {self.config.checkpoint!r} for {self.config.task} at {self.config.rate_hz} Hz")

    # ---------------------------------------------------------------- inputs
    def _on_robot(self, msg: RobotState) -> None:
        self.robot = (time.monotonic(), msg)

    def _on_pose(self, msg: ObjectPoseEstimate) -> None:
        pos, quat = pose_msg_arrays(msg.pose)
        if msg.valid and np.all(np.isfinite(pos)) and np.all(np.isfinite(quat)):
            self.objects[msg.object_id or self.config.observation.object_ids[0]] = (
                time.monotonic(), ObjectEstimate(pos, quat))

    def _on_revealed(self, msg: ObjectPoseEstimate) -> None:
        pos, quat = pose_msg_arrays(msg.pose)
        self.revealed = ObjectEstimate(pos, quat) if msg.valid else None
        self.revealed_object = msg.object_id or None

    def _on_event(self, msg: EpisodeEvent) -> None:
        if msg.event == EpisodeEvent.EVENT_START and msg.episode_id != self.episode_id:
            self.policy.reset()
            self.noise.new_episode(self.config.observation.noise.seed + msg.episode_id)
            self.revealed = None
            self.episode_id, self.step, self.active, self.last_gripper = msg.episode_id, 0, True, -1.0
            self.get_logger().info(f"episode {msg.episode_id}: policy reset, corruption {self.noise.offset}")
        elif msg.event in TERMINAL and msg.episode_id == self.episode_id:
            self.active = False

    # ---------------------------------------------------------------- the loop
    def _tick(self) -> None:
        t0 = time.monotonic()
        period = None if self.last_tick is None else t0 - self.last_tick
        self.last_tick = t0
        if not self.active or self.robot is None:
            return
        ids = self.config.observation.object_ids
        if any(i not in self.objects for i in ids):
            return
        oldest = min([self.robot[0]] + [self.objects[i][0] for i in ids])
        if t0 - self.robot[0] > self.config.max_input_age_s or \
                any(t0 - self.objects[i][0] > self.config.max_object_age_s for i in ids):
            return
        state = self.robot[1]
        tcp_pos, tcp_quat = pose_msg_arrays(state.tcp_pose)
        objects = {i: self.objects[i][1] for i in ids}
        offset = self.noise.sample()
        corruption = dict.fromkeys(ids, offset)
        try:
            obs = build_observation(self.config.observation, tcp_pos, tcp_quat, np.asarray(state.gripper_qpos),
                                    objects, corruption, self.revealed, self.revealed_object)
        except ValueError as exc:
            self.get_logger().warning(f"no command: {exc}", throttle_duration_sec=1.0)
            return
        if self.world is not None:
            believed = {i: pose_from_pos_quat(objects[i].position + offset, objects[i].quat_xyzw) for i in ids}
            self.world.sync(pose_from_pos_quat(tcp_pos, tcp_quat), believed, np.asarray(state.joint_positions),
                            np.asarray(state.gripper_qpos), self.last_gripper)
        action = np.asarray(self.policy.act(obs), float)
        stamp = now_s(self)
        command = DeltaCommand.from_action(action, DEFAULT_SCALE, source=Source.POLICY, stamp=stamp, step=self.step)
        self.last_gripper = command.gripper
        self.command_pub.publish(command_to_msg(command))
        self.step += 1
        t1 = time.monotonic()
        timing = LoopTiming()
        timing.header.stamp = to_stamp(stamp)
        timing.period_s = float("nan") if period is None else period
        timing.period_error_s = float("nan") if period is None else period - 1.0 / self.config.rate_hz
        timing.compute_s = t1 - t0
        timing.observation_age_s = t0 - oldest
        self.timing_pub.publish(timing)


def main(args: list[str] | None = None) -> None:
    run(PolicyNode, args)


if __name__ == "__main__":
    main()
