"""sim_node: the MuJoCo world standing in for the FR3 and the D415 (world logic: graph.sim_world).

Executes each ``robot/command`` on arrival through the ``sim`` robot driver (robot.sim.SimDriver):
one 20 Hz control step per command, as a real arm starts moving when the command arrives, so the
next observation already shows its effect whatever the phase between the policy's timer and this
node; with no command for 1.5 periods it steps holding (physics time keeps going). It publishes ``robot_state``
(50 Hz), the believed cube pose on ``object_pose`` (30 Hz; corrupted until contact reveals it under full
observability, as the policy observes it in simulation; the estimator's stand-in, turn off with
``publish_observed_pose: false`` when cube_pose_estimator runs on the depth stream), the ground
truth on ``object_pose/true``, the observability channel on ``object_pose/revealed`` (the world's
contact detector on the simulated FR3 wrench; ``publish_revealed: false`` leaves the topic to the
contact_detector node) and ``robot_state.external_wrench`` (sim.wrench's estimate), and, with
``depth_rate_hz`` > 0, the simulated D415 depth image + camera_info on realsense-ros' topics.
``sim/reset`` (StartEpisode: task, seed) samples a new scene; on success or at the horizon it ends
the running episode through the arbiter's ``stop_episode``; ``auto_episodes`` > 0 runs that many
episodes back to back (reset, start, wait for the end). Runtime parameters ``fault.*`` inject
faults for tests (NaN pose, frozen pose/camera/robot state); every other parameter is read-only.
``/diagnostics``: the world (episode, steps; an injected fault is WARN). Perturbations for ``imgen rehearse``
(default off): ``depth_noise_scale`` multiplies the D415's axial depth noise, ``push_step`` > 0 pushes
the cube ``push_distance_m`` sideways at that step of every episode (rehearsal.perturbations). With
``simulated_human: true`` the
process also runs the simulated human teleop (nodes.sim_human_teleop) on the same world, and with
``serve_generation: true`` the GenerateInterventions action server (nodes.generation_server; the
launch files run it as a process of its own: composed here it needs a multi-threaded executor,
which busy-waits).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from imgen_msgs.msg import DeltaPoseCommand, EpisodeEvent, ObjectPoseEstimate, RobotState
from imgen_msgs.srv import StartEpisode, StopEpisode
from imgen_ros.core import diagnostics as diag
from imgen_ros.core import topics
from imgen_ros.core.command import DeltaCommand
from imgen_ros.core.observation import OBSERVABILITY_CHANNEL_DIMS
from imgen_ros.core.params import check_fields, param, param_table
from imgen_ros.core.pose import make_pose, pose_from_pos_quat
from imgen_ros.graph.sim_world import DepthRenderThread, gripper_qpos, make_world, revealed_estimate
from imgen_ros.nodes._ros import attach_diagnostics, command_from_msg, declare_config, pose_to_msg, qos, run
from imgen_ros.nodes.generation_server import GenerationServerConfig
from imgen_ros.nodes.sim_human_teleop import SimHumanTeleopConfig
from imgen_ros.rehearsal.perturbations import push_body, push_offset
from imgen_ros.robot.sim import SimDriver
from imgen_ros.sim.cameras import D415Config, DepthNoiseConfig

FAULTS = ("nan_pose", "freeze_pose", "freeze_camera", "freeze_robot_state")
# The nodes this process may host besides sim_node (make_nodes) and their parameters.
HOSTED_NODES = {"sim_human_teleop": tuple(param_table(SimHumanTeleopConfig)),
                "generation_server": tuple(param_table(GenerationServerConfig))}
TERMINAL = (EpisodeEvent.EVENT_SUCCESS, EpisodeEvent.EVENT_FAILURE, EpisodeEvent.EVENT_ABORT)


@dataclass(frozen=True)
class SimNodeConfig:
    task: str = param("block_grasp", "simulated task")
    noise: str = param("off", "pose-corruption mode of the task (on: the believed cube pose is corrupted)")
    observability: str = param("full", "observability channel", choices=OBSERVABILITY_CHANNEL_DIMS)
    seed: int = param(0, "scene seed of the first episode", "[0, 2147483647]")
    step_rate_hz: float = param(20.0, "holding-step timer rate [Hz]", "[1, 200]")
    state_rate_hz: float = param(50.0, "robot_state publication rate [Hz]", "[1, 1000]")
    pose_rate_hz: float = param(30.0, "object pose publication rate [Hz]", "[1, 200]")
    depth_rate_hz: float = param(0.0, "simulated D415 depth rate (0: off) [Hz]", "[0, 90]")
    publish_observed_pose: bool = param(True, "publish the believed cube pose (off when cube_pose_estimator runs)")
    publish_revealed: bool = param(True, "publish the simulator's observability channel on object_pose/revealed "
                                   "(off when the contact_detector node serves it from robot_state)")
    hold_after_s: float = param(0.075, "no command for this long: one holding step [s]", "(0, 1)")
    end_episodes: bool = param(True, "end the running episode on success or at the horizon")
    auto_episodes: int = param(0, "> 0: run this many episodes back to back", "[0, 1000000]")
    episode_gap_s: float = param(1.0, "pause between automatic episodes [s]", "(0, 60]")
    simulated_human: bool = param(False, "also run the simulated human teleop in this process")
    serve_generation: bool = param(False, "also serve GenerateInterventions in this process")
    depth_noise_scale: float = param(1.0, "simulated D415 axial depth noise sigma x this (rehearsal: 2)", "[0, 10]")
    push_step: int = param(0, "> 0: at this control step of every episode push the task's first object "
                           "push_distance_m sideways, direction from the scene seed (rehearsal)", "[0, 100000]")
    push_distance_m: float = param(0.03, "length of that push [m]", "[0, 0.2]")

    def __post_init__(self) -> None:
        check_fields(self)


class SimNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("sim_node", **kwargs)
        faults = {f"fault.{f}": param(False, f"inject the fault {f} (tests; live)", live=True) for f in FAULTS}
        self.config = cfg = declare_config(self, SimNodeConfig, faults, process_nodes=HOSTED_NODES)
        self.faults = dict.fromkeys(FAULTS, False)
        self.add_on_set_parameters_callback(self._on_parameters)
        d415 = D415Config(noise=DepthNoiseConfig().scaled(cfg.depth_noise_scale))
        self.env = make_world(cfg.task, cfg.noise, cfg.observability, cfg.depth_rate_hz > 0, d415)
        self.camera = DepthRenderThread(self.env.model, self._publish_frame, d415) if cfg.depth_rate_hz > 0 else None
        self.driver = SimDriver(self.env)
        self.driver.start()
        self.driver.reset(cfg.seed)
        self.group = MutuallyExclusiveCallbackGroup()   # every touch of the world is serialized
        self.last_step_t = 0.0
        self.episode_id = 0
        self.episode_active = False
        self.episode_steps = 0
        self.ending = False
        self.auto_done = 0
        self.auto_state = "idle" if cfg.auto_episodes else "off"
        self.auto_next_t = 0.0
        self.last_result: dict = {}
        g = self.group
        self.state_pub = self.create_publisher(RobotState, topics.ROBOT_STATE, qos(topics.ROBOT_STATE))
        self.pose_pub = self.create_publisher(ObjectPoseEstimate, topics.OBJECT_POSE, qos(topics.OBJECT_POSE))
        self.true_pub = self.create_publisher(ObjectPoseEstimate, topics.OBJECT_POSE_TRUE, qos(topics.OBJECT_POSE_TRUE))
        self.revealed_pub = (self.create_publisher(ObjectPoseEstimate, topics.OBJECT_REVEALED,
                                                   qos(topics.OBJECT_REVEALED)) if cfg.publish_revealed else None)
        self.depth_pub = self.create_publisher(Image, topics.DEPTH_IMAGE, qos(topics.DEPTH_IMAGE))
        self.info_pub = self.create_publisher(CameraInfo, topics.DEPTH_INFO, qos(topics.DEPTH_INFO))
        self.create_subscription(DeltaPoseCommand, topics.ROBOT_COMMAND, self._on_command, qos(topics.ROBOT_COMMAND),
                                 callback_group=g)
        self.create_subscription(EpisodeEvent, topics.EPISODE_EVENTS, self._on_event, qos(topics.EPISODE_EVENTS),
                                 callback_group=g)
        self.create_service(StartEpisode, topics.SIM_RESET, self._on_reset, callback_group=g)
        self.stop_client = self.create_client(StopEpisode, topics.STOP_EPISODE, callback_group=g)
        self.start_client = self.create_client(StartEpisode, topics.START_EPISODE, callback_group=g)
        self.create_timer(1.0 / cfg.step_rate_hz, self._hold_tick, callback_group=g)
        self.create_timer(1.0 / cfg.state_rate_hz, self._publish_state, callback_group=g)
        self.create_timer(1.0 / cfg.pose_rate_hz, self._publish_poses, callback_group=g)
        if self.camera is not None:
            self.camera.start()
            self.create_timer(1.0 / cfg.depth_rate_hz, self._render_depth, callback_group=g)
        attach_diagnostics(self, self._diagnostics, "sim", callback_group=g)
        self.get_logger().info(f"sim world {cfg.task} (noise {cfg.noise}, observability {cfg.observability}, "
                               f"seed {cfg.seed}, depth {'on' if self.camera else 'off'})")

    # ---------------------------------------------------------------- parameters / faults
    def _on_parameters(self, params) -> SetParametersResult:
        for p in params:
            if p.name.startswith("fault."):
                name = p.name.removeprefix("fault.")
                if name not in FAULTS:
                    return SetParametersResult(successful=False, reason=f"unknown fault {name}; known: {FAULTS}")
                self.faults[name] = bool(p.value)
                self.get_logger().warning(f"fault {name} = {bool(p.value)}")
        return SetParametersResult(successful=True)

    def _diagnostics(self) -> list[diag.Status]:
        active = [name for name, on in self.faults.items() if on]
        episode = (f"episode {self.episode_id} step {self.episode_steps}" if self.episode_active
                   else f"no episode running (last {self.episode_id})")
        values = {"task": self.config.task, "noise": self.config.noise, "episode_id": str(self.episode_id),
                  "episode_active": str(self.episode_active), "steps": str(self.episode_steps),
                  "faults": ",".join(active), "auto_episodes": self.auto_state}
        return [diag.flag_status("world", not active, f"{self.config.task}: {episode}",
                                 f"{self.config.task}: {episode}; injected fault(s) {', '.join(active)}", values)]

    # ---------------------------------------------------------------- commands and stepping
    def _on_command(self, msg: DeltaPoseCommand) -> None:
        command = command_from_msg(msg)
        if not command.is_finite():
            self.get_logger().error("refusing a non-finite command (the arbiter never sends one)")
            return
        self._execute(command)

    def _hold_tick(self) -> None:
        if time.monotonic() - self.last_step_t > self.config.hold_after_s:
            self._execute(None)

    def _execute(self, command: DeltaCommand | None) -> None:
        """One control step: ``command``, or holding (None)."""
        self.last_step_t = time.monotonic()
        if command is None:
            self.driver.hold()
        else:
            self.driver.execute(command)
        _, _, _, info = self.driver.last_step
        self.last_result = info
        if self.episode_active:
            self.episode_steps += 1
            if self.episode_steps == self.config.push_step:
                self._push()
            if info.get("success") and not self.ending:
                self._end_episode(EpisodeEvent.EVENT_SUCCESS, "task_success")
            elif self.episode_steps >= self.env.horizon and not self.ending:
                self._end_episode(EpisodeEvent.EVENT_FAILURE, "horizon")
        self._publish_state()
        self._auto_tick(self.last_step_t)

    def _push(self) -> None:
        body = self.env.task.object_names[0]
        offset = push_body(self.env, body, push_offset(self.env.seed, self.config.push_distance_m))
        self.get_logger().info(f"episode {self.episode_id} step {self.episode_steps}: pushed {body} by "
                               f"{np.round(offset, 4).tolist()} m" + ("" if offset.any() else " (refused: the "
                                                                     "fingers are there)"))

    def _end_episode(self, outcome: int, reason: str) -> None:
        if not self.config.end_episodes:
            return
        self.ending = True
        self.stop_client.call_async(StopEpisode.Request(outcome=outcome, reason=reason))

    def _on_event(self, msg: EpisodeEvent) -> None:
        if msg.event == EpisodeEvent.EVENT_START:
            self.episode_id, self.episode_active, self.episode_steps, self.ending = msg.episode_id, True, 0, False
        elif msg.event in TERMINAL and msg.episode_id == self.episode_id:
            self.episode_active = False
            if self.auto_state == "running":
                self.auto_state, self.auto_next_t = "gap", time.monotonic() + self.config.episode_gap_s

    def _on_reset(self, request: StartEpisode.Request, response: StartEpisode.Response):
        if request.task and request.task != self.config.task:
            response.success = False
            response.message = f"this world simulates {self.config.task!r}, not {request.task!r}"
            return response
        self.reset_world(request.seed)
        response.success, response.episode_id = True, self.episode_id
        response.message = f"{self.config.task} scene reset with seed {request.seed}"
        return response

    def reset_world(self, seed: int) -> None:
        self.driver.reset(seed)
        if self.camera is not None:
            self.camera.seed(seed)
        self._publish_state()
        self._publish_poses()

    # ---------------------------------------------------------------- automatic episodes
    def _auto_tick(self, now: float) -> None:
        if self.auto_state == "idle" or (self.auto_state == "gap" and now >= self.auto_next_t):
            if self.auto_done >= self.config.auto_episodes:
                self.auto_state = "done"
                self.get_logger().info(f"ran {self.auto_done} automatic episodes")
                return
            if not self.start_client.service_is_ready():
                return
            self.reset_world(self.config.seed + self.auto_done)
            self.auto_done += 1
            self.auto_state = "running"
            self.start_client.call_async(StartEpisode.Request(task=self.config.task,
                                                              seed=self.config.seed + self.auto_done - 1))

    # ---------------------------------------------------------------- publishing
    def _publish_state(self) -> None:
        if self.faults["freeze_robot_state"]:
            return
        state = self.driver.read_state()
        msg = RobotState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = topics.BASE_FRAME
        msg.joint_positions = [float(v) for v in state.joint_positions]
        msg.joint_velocities = [float(v) for v in state.joint_velocities]
        msg.tcp_pose = pose_to_msg(state.tcp_pose)
        msg.gripper_qpos = [float(v) for v in gripper_qpos(self.env)]
        msg.gripper_width = float(state.gripper_width)
        msg.external_wrench = [float(v) for v in state.external_wrench]
        self.state_pub.publish(msg)

    def _estimate(self, name: str, pose, valid: bool = True, status: str = "ok") -> ObjectPoseEstimate:
        msg = ObjectPoseEstimate(object_id=name, valid=valid, fit_rmse=0.0, fitness=1.0, status=status)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = topics.BASE_FRAME
        msg.pose = pose_to_msg(pose)
        return msg

    def _publish_poses(self) -> None:
        for name, pose in self.env.object_poses().items():
            self.true_pub.publish(self._estimate(name, pose))
        if self.config.publish_observed_pose and not (self.faults["freeze_pose"] or self.faults["freeze_camera"]):
            for name, pose in self.env.believed_poses().items():   # corrupted until contact reveals the truth
                msg = self._estimate(name, pose)
                if self.faults["nan_pose"]:
                    msg.pose.position.x = float("nan")
                self.pose_pub.publish(msg)
        if not self.config.publish_revealed:
            return
        revealed = revealed_estimate(self.env)
        name = self.env.task.object_names[0]
        if revealed is None:
            self.revealed_pub.publish(self._estimate(name, make_pose(np.zeros(3)), valid=False, status="not_revealed"))
        else:
            self.revealed_pub.publish(self._estimate(name, pose_from_pos_quat(revealed.position, revealed.quat_xyzw)))

    def _render_depth(self) -> None:
        if self.camera.error is not None:
            raise RuntimeError(f"simulated D415 rendering failed: {self.camera.error}") from self.camera.error
        if not self.faults["freeze_camera"]:
            self.camera.submit(self.env.data)

    def _publish_frame(self, frame) -> None:
        """Depth image (16UC1, mm) + camera_info like realsense-ros (called from the render thread)."""
        stamp = self.get_clock().now().to_msg()
        info = frame.info
        image = Image(height=info.height, width=info.width, encoding="16UC1", is_bigendian=0, step=info.width * 2)
        image.header.stamp, image.header.frame_id = stamp, info.frame_id
        image.data = frame.to_z16().tobytes()
        cam = CameraInfo(height=info.height, width=info.width, distortion_model=info.distortion_model)
        cam.header.stamp, cam.header.frame_id = stamp, info.frame_id
        cam.d = [float(v) for v in info.d]
        cam.k = [float(v) for v in info.k.reshape(-1)]
        cam.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        cam.p = [float(v) for v in info.p.reshape(-1)]
        self.depth_pub.publish(image)
        self.info_pub.publish(cam)

    def close(self) -> None:
        for timer in list(self.timers):
            timer.cancel()
        if self.camera is not None:
            self.camera.stop()
        self.driver.close()
        self.env.close()


def make_nodes() -> list[Node]:
    """The sim process: the world, plus the simulated human teleop on the same world if configured."""
    sim = SimNode()
    nodes: list[Node] = [sim]
    if sim.config.simulated_human:
        from imgen_ros.nodes.sim_human_teleop import SimHumanTeleop

        nodes.append(SimHumanTeleop(sim.env, callback_group=sim.group))
    if sim.config.serve_generation:
        from imgen_ros.nodes.generation_server import GenerationServer

        nodes.append(GenerationServer())
    return nodes


def main(args: list[str] | None = None) -> None:
    # One thread unless the generation server's long-running goals need their own: rclpy's
    # multi-threaded executor busy-waits while a mutually exclusive group is running (CPU cost).
    def threads_needed(nodes: list[Node]) -> int:
        return 3 if any(type(n).__name__ == "GenerationServer" for n in nodes) else 1

    run(make_nodes, args, threads_fn=threads_needed)


if __name__ == "__main__":
    main()
