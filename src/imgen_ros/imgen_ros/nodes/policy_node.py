"""policy_node: a 20 Hz policy loop on the ROS graph (observation: core.observation).

Subscribes ``robot_state``, ``object_pose`` (and ``object_pose/revealed`` for the observability
channel) and ``episode_events``; publishes ``policy/command`` and ``policy/loop_timing``. The
policy is a robomimic checkpoint or ``expert`` (the scripted naive expert acting on the believed
poses, via graph.mirror.MeasuredWorld). It acts only inside an episode; at every START its
recurrent state and the corruption sample are reset. When an input is missing or older than
``max_input_age_s`` (robot state) / ``max_object_age_s`` (last *valid* pose estimate: short
occlusions are bridged with it) it publishes nothing, so the arbiter's watchdog holds the robot.
With ``fresh_state_s`` > 0 a tick that finds only an older robot state acts on the next one to
arrive (the real robot's inputs are then ~1 ms old instead of up to one state period).
``policy/loop_timing`` reports, per decision, the robot state's and the pose's age by their
measurement stamps (``state_age_s``, ``pose_age_s``) besides compute time. ``observation.noise.mode``
is a live parameter: a new mode takes effect at the next episode START (an episode keeps the
corruption it started with). ``/diagnostics``: loop (period error, compute time), inputs (ages now).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np
from geometry_msgs.msg import Vector3
from rclpy.node import Node

from imgen_msgs.msg import DeltaPoseCommand, EpisodeEvent, LoopTiming, ObjectPoseEstimate, PoseError, RobotState
from imgen_ros.core import diagnostics as diag
from imgen_ros.core import topics
from imgen_ros.core.action import DEFAULT_SCALE
from imgen_ros.core.command import DeltaCommand, Source
from imgen_ros.core.observation import ObjectEstimate, ObservationConfig, PoseNoise, build_observation
from imgen_ros.core.params import check_fields, param
from imgen_ros.core.pose import pose_from_pos_quat
from imgen_ros.nodes._ros import (
    attach_diagnostics,
    command_to_msg,
    declare_config,
    now_s,
    pose_msg_arrays,
    qos,
    refuse_start,
    run,
    to_sec,
    to_stamp,
)

TERMINAL = (EpisodeEvent.EVENT_SUCCESS, EpisodeEvent.EVENT_FAILURE, EpisodeEvent.EVENT_ABORT)


@dataclass(frozen=True)
class PolicyNodeConfig:
    checkpoint: str = param("expert", "robomimic checkpoint (.pth), or 'expert' (the naive scripted expert)")
    task: str = param("block_grasp", "task the checkpoint was trained on")
    rate_hz: float = param(20.0, "policy step rate [Hz] (the 20 Hz control rate)", "[1, 100]")
    max_input_age_s: float = param(0.2, "robot state older than this: no command [s]", "(0, 1)")
    max_object_age_s: float = param(1.0, "last valid pose estimate older than this: no command [s]", "(0, 2]")
    device: str = param("cpu", "torch device (cpu, cuda, cuda:N)")
    torch_threads: int = param(1, "torch intra-op threads", "[1, 64]")
    fresh_state_s: float = param(
        0.0, "0: act at the tick on the newest robot state. > 0: a tick whose newest robot state (by its "
        "measurement stamp) is older than this defers the decision to the next robot state's arrival, so "
        "the policy acts on a state about one DDS hop old (the real robot: 0.005; costs up to one state "
        "period of jitter)", "[0, 0.05]")
    observation: ObservationConfig = field(default_factory=ObservationConfig)

    def __post_init__(self) -> None:
        check_fields(self)


def load(spec: str, task: str, device: str, torch_threads: int = 1,
         obs_shapes: dict[str, tuple[int, ...]] | None = None):
    """(policy, world or None): the expert gets a MeasuredWorld to read its inputs from.

    A checkpoint must have been trained on ``task`` and read this node's observation layout
    (``obs_shapes``; None: not checked), else ValueError (policy.checkpoint.CheckpointError).
    Checkpoints run with ``torch_threads`` intra-op threads: one small LSTM step per tick gains
    nothing from more, and OpenMP's spinning workers would compete with the rest of the graph."""
    from imgen_ros.policy.evaluate import load_policy

    if spec.startswith("expert"):
        from imgen_ros.graph.mirror import MeasuredWorld

        world = MeasuredWorld(task)
        return load_policy("expert", world, device=device), world
    import torch

    torch.set_num_threads(max(1, torch_threads))
    return load_policy(spec, None, device=device, task=task, obs_shapes=obs_shapes,
                       task_label="parameter 'task'"), None


def _obs_shapes(observation: ObservationConfig) -> dict[str, tuple[int, ...]]:
    from imgen_ros.policy.checkpoint import observation_shapes

    return observation_shapes(len(observation.object_ids), observation.observability)


class PolicyNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("policy_node", **kwargs)
        self.config = declare_config(self, PolicyNodeConfig, on_change=self._reconfigure)
        self._check_object_ids()
        try:
            self.policy, self.world = load(self.config.checkpoint, self.config.task, self.config.device,
                                           self.config.torch_threads, _obs_shapes(self.config.observation))
        except (ValueError, FileNotFoundError) as exc:
            refuse_start(self, str(exc), exit_code=2)
        try:
            self.noise = PoseNoise(self.config.observation.noise, task=self.config.task)
        except ValueError as exc:
            refuse_start(self, f"observation.noise: {exc}", exit_code=2)
        self.robot: tuple[float, RobotState] | None = None
        self.objects: dict[str, tuple[float, ObjectEstimate]] = {}
        self.object_stamps: dict[str, float] = {}   # header stamps of the estimates (measurement times)
        self.revealed: ObjectEstimate | None = None
        self.revealed_object: str | None = None
        self.active = False
        self.episode_id = 0
        self.step = 0
        self.last_gripper = -1.0
        self.last_tick: float | None = None
        self.deferred: tuple[float | None] | None = None   # (period,) of a tick waiting for a fresh state
        self.next_noise: PoseNoise | None = None   # a live noise change, applied at the next START
        self.period_errors: deque[float] = deque(maxlen=diag.LOOP_WINDOW)
        self.compute_times: deque[float] = deque(maxlen=diag.LOOP_WINDOW)
        self.command_pub = self.create_publisher(DeltaPoseCommand, topics.POLICY_COMMAND, qos(topics.POLICY_COMMAND))
        self.timing_pub = self.create_publisher(LoopTiming, topics.POLICY_TIMING, qos(topics.POLICY_TIMING))
        self.pose_error_pub = self.create_publisher(PoseError, topics.POSE_ERROR, qos(topics.POSE_ERROR))
        self.create_subscription(RobotState, topics.ROBOT_STATE, self._on_robot, qos(topics.ROBOT_STATE))
        self.create_subscription(ObjectPoseEstimate, topics.OBJECT_POSE, self._on_pose, qos(topics.OBJECT_POSE))
        self.create_subscription(ObjectPoseEstimate, topics.OBJECT_REVEALED, self._on_revealed,
                                 qos(topics.OBJECT_REVEALED))
        self.create_subscription(EpisodeEvent, topics.EPISODE_EVENTS, self._on_event, qos(topics.EPISODE_EVENTS))
        self.create_timer(1.0 / self.config.rate_hz, self._tick)
        attach_diagnostics(self, self._diagnostics, "fr3")
        self.get_logger().info(f"policy {self.config.checkpoint!r} for {self.config.task} at {self.config.rate_hz} Hz")

    def _check_object_ids(self) -> None:
        """The observation's objects are the task's, in its order (a checkpoint's input layout): an
        unknown id would never receive a pose, and the node would run without ever acting."""
        from imgen_ros.sim import task_object_names

        try:
            expected = task_object_names(self.config.task)
        except ValueError as exc:
            refuse_start(self, f"parameter 'task': {exc}", exit_code=2)
        given = tuple(self.config.observation.object_ids)
        if given != expected:
            refuse_start(self, f"observation.object_ids {list(given)} are not the objects of task "
                               f"'{self.config.task}': {list(expected)} (in that order)", exit_code=2)

    # ---------------------------------------------------------------- live parameters, diagnostics
    def _reconfigure(self, config: PolicyNodeConfig) -> None:
        """A new noise mode (the only live field): checked now (ValueError rejects the set), used from
        the next episode START on."""
        noise = PoseNoise(config.observation.noise, task=config.task)
        self.config, self.next_noise = config, noise
        self.get_logger().info(f"pose error mode {config.observation.noise.mode!r} from the next episode on")

    def _diagnostics(self) -> list[diag.Status]:
        now = now_s(self)
        state_age = math.inf if self.robot is None else now - to_sec(self.robot[1].header.stamp)
        ids = self.config.observation.object_ids
        pose_age = now - min(self.object_stamps[i] for i in ids) if all(i in self.object_stamps for i in ids) \
            else math.inf
        inputs = diag.policy_input_status(state_age, pose_age, self.config.max_input_age_s,
                                          self.config.max_object_age_s)
        loop = diag.policy_loop_status(list(self.period_errors), list(self.compute_times), self.config.rate_hz)
        return [loop, replace(inputs, values={**inputs.values, "episode_active": str(self.active)})]

    # ---------------------------------------------------------------- inputs
    def _on_robot(self, msg: RobotState) -> None:
        self.robot = (time.monotonic(), msg)
        if self.deferred is not None:   # a tick waited for this fresh state
            period = self.deferred[0]
            self.deferred = None
            self._decide(period)

    def _on_pose(self, msg: ObjectPoseEstimate) -> None:
        pos, quat = pose_msg_arrays(msg.pose)
        if msg.valid and np.all(np.isfinite(pos)) and np.all(np.isfinite(quat)):
            object_id = msg.object_id or self.config.observation.object_ids[0]
            self.objects[object_id] = (time.monotonic(), ObjectEstimate(pos, quat))
            self.object_stamps[object_id] = to_sec(msg.header.stamp)

    def _on_revealed(self, msg: ObjectPoseEstimate) -> None:
        pos, quat = pose_msg_arrays(msg.pose)
        self.revealed = ObjectEstimate(pos, quat) if msg.valid else None
        self.revealed_object = msg.object_id or None

    def _on_event(self, msg: EpisodeEvent) -> None:
        if msg.event == EpisodeEvent.EVENT_START and msg.episode_id != self.episode_id:
            self.policy.reset()
            if self.next_noise is not None:
                self.noise, self.next_noise = self.next_noise, None
            self.noise.new_episode(self.config.observation.noise.seed + msg.episode_id)
            self.revealed = None
            self.episode_id, self.step, self.active, self.last_gripper = msg.episode_id, 0, True, -1.0
            error = self._pose_error_msg(msg.episode_id)
            self.pose_error_pub.publish(error)
            offsets = {i: [round(v, 4) for v in (o.x, o.y, o.z)] for i, o in zip(error.object_ids, error.offsets,
                                                                                 strict=True)}
            self.get_logger().info(f"episode {msg.episode_id}: policy reset; pose error "
                                   f"{self.config.observation.noise.mode} (seed {self.noise.seed}) {offsets}")
        elif msg.event in TERMINAL and msg.episode_id == self.episode_id:
            self.active = False

    def _pose_error_msg(self, episode_id: int) -> PoseError:
        """This episode's corruption (offsets that stay for the episode; gaussian draws per step: zeros)."""
        ids = list(self.config.observation.object_ids)
        per_step = self.config.observation.noise.mode == "gaussian"
        offsets = {i: np.zeros(3) for i in ids} if per_step else self.noise.sample_for(ids)
        msg = PoseError(episode_id=episode_id, task=self.config.task, mode=self.config.observation.noise.mode,
                        seed=int(self.noise.seed), object_ids=ids)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = topics.BASE_FRAME
        msg.offsets = [Vector3(x=float(o[0]), y=float(o[1]), z=float(o[2])) for o in (offsets[i] for i in ids)]
        return msg

    # ---------------------------------------------------------------- the loop
    def _tick(self) -> None:
        t0 = time.monotonic()
        period = None if self.last_tick is None else t0 - self.last_tick
        self.last_tick = t0
        self.deferred = None
        if not self.active or self.robot is None:
            return
        fresh = self.config.fresh_state_s
        if fresh > 0 and now_s(self) - to_sec(self.robot[1].header.stamp) > fresh:
            self.deferred = (period,)   # act when the next robot state arrives (or skip to the next tick)
            return
        self._decide(period)

    def _decide(self, period: float | None) -> None:
        """One policy step on the newest inputs (at the tick, or deferred to a fresh robot state);
        ``period``: time between the last two ticks, for the timing report."""
        ids = self.config.observation.object_ids
        if any(i not in self.objects for i in ids):
            return
        t_decide = time.monotonic()
        oldest = min([self.robot[0]] + [self.objects[i][0] for i in ids])
        if t_decide - self.robot[0] > self.config.max_input_age_s or \
                any(t_decide - self.objects[i][0] > self.config.max_object_age_s for i in ids):
            return
        state = self.robot[1]
        tcp_pos, tcp_quat = pose_msg_arrays(state.tcp_pose)
        objects = {i: self.objects[i][1] for i in ids}
        corruption = self.noise.sample_for(ids)
        try:
            obs = build_observation(self.config.observation, tcp_pos, tcp_quat, np.asarray(state.gripper_qpos),
                                    objects, corruption, self.revealed, self.revealed_object)
        except ValueError as exc:
            self.get_logger().warning(f"no command: {exc}", throttle_duration_sec=1.0)
            return
        if self.world is not None:
            believed = {i: pose_from_pos_quat(objects[i].position + corruption[i], objects[i].quat_xyzw) for i in ids}
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
        timing.compute_s = t1 - t_decide
        timing.observation_age_s = t_decide - oldest
        timing.state_age_s = stamp - to_sec(state.header.stamp)
        timing.pose_age_s = stamp - min(self.object_stamps[i] for i in ids)
        self.period_errors.append(timing.period_error_s)
        self.compute_times.append(timing.compute_s)
        self.timing_pub.publish(timing)


def main(args: list[str] | None = None) -> None:
    run(PolicyNode, args)


if __name__ == "__main__":
    main()
