"""The rehearsal's driver: an rclpy node that runs episodes on the graph and records what it publishes.

It is the operator and the supervisor's idle SpaceMouse: it resets the scene (``sim/reset``, the
episode's seed), waits until the estimator sees the new scene (three valid ICP estimates stamped after
the reset, within 6 cm of where the cube is), starts the episode (``start_episode``), and waits for
its end, which the simulator decides (``episode_events`` SUCCESS on success, FAILURE at the horizon).
It publishes an idle ``sensor_msgs/Joy`` (zero axes, no button) at 50 Hz (times the time scale) on
``spacenav/joy`` as the spacenav driver would, so joy_teleop's heartbeat is real and nobody takes over. With
``resume_latched`` it hands a latched fault back to the policy (``set_control_mode POLICY``, as an
operator would once the input is back) and counts it. The one rclpy module of the rehearsal.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile
from sensor_msgs.msg import Joy

from imgen_msgs.msg import ControlState, EpisodeEvent, LoopTiming, ObjectPoseEstimate, PoseError
from imgen_msgs.srv import SetControlMode, StartEpisode, StopEpisode
from imgen_ros.core import topics
from imgen_ros.nodes._ros import pose_msg_arrays, qos, to_sec
from imgen_ros.rehearsal.results import EpisodeRecord, is_fault

TERMINAL = {EpisodeEvent.EVENT_SUCCESS: "SUCCESS", EpisodeEvent.EVENT_FAILURE: "FAILURE",
            EpisodeEvent.EVENT_ABORT: "ABORT"}
JOY_TOPIC = "spacenav/joy"
JOY_RATE_HZ = 50.0            # spacenav_node's default publish rate
ICP_READY_TIMEOUT_S = 15.0    # after a reset, the estimator's time to settle on the new scene
ICP_READY_FRAMES = 3
ICP_READY_DISTANCE_M = 0.06   # an estimate this close to the new cube is of the new scene
RENDER_FLUSH_S = 0.15         # depth frames stamped this long after a reset show the new scene
RESTING_Z_M = 0.04            # a cube centre below this rests on the table (5 cm cube: 0.025)
PUSH_MIN_M = 0.005            # a resting cube moving this far between two ground-truth samples was pushed


class GraphError(RuntimeError):
    """The graph cannot go on (a process died, a service never answered)."""


def deep(profile: QoSProfile, depth: int = 1000) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=profile.reliability,
                      durability=profile.durability)


@dataclass
class Stamped:
    wall: float    # time.time() at arrival
    msg: object


class RehearsalDriver(Node):
    def __init__(self, time_scale: float = 1.0, **kwargs) -> None:
        super().__init__("imgen_rehearsal", **kwargs)
        self.time_scale = time_scale   # the graph's (plan.TIME_SCALED): the driver's own periods follow it
        self.lock = threading.Lock()
        self.events: list[EpisodeEvent] = []
        self.states: deque[ControlState] = deque(maxlen=20000)
        self.timing: deque[Stamped] = deque(maxlen=20000)
        self.pose_errors: dict[int, PoseError] = {}
        self.estimates: deque[Stamped] = deque(maxlen=600)
        self.truth: deque[Stamped] = deque(maxlen=3000)
        self.create_subscription(EpisodeEvent, topics.EPISODE_EVENTS, self._on_event, deep(qos(topics.EPISODE_EVENTS)))
        self.create_subscription(ControlState, topics.CONTROL_STATE, self._on_state, deep(qos(topics.CONTROL_STATE)))
        self.create_subscription(LoopTiming, topics.POLICY_TIMING, self._store(self.timing),
                                 deep(qos(topics.POLICY_TIMING)))
        self.create_subscription(PoseError, topics.POSE_ERROR, self._on_pose_error, deep(qos(topics.POSE_ERROR), 100))
        self.create_subscription(ObjectPoseEstimate, topics.OBJECT_POSE, self._store(self.estimates),
                                 deep(qos(topics.OBJECT_POSE)))
        self.create_subscription(ObjectPoseEstimate, topics.OBJECT_POSE_TRUE, self._store(self.truth),
                                 deep(qos(topics.OBJECT_POSE_TRUE)))
        self.joy_pub = self.create_publisher(Joy, JOY_TOPIC, 10)
        self.create_timer(1.0 / (JOY_RATE_HZ * time_scale), self._idle_joy)
        self.reset_client = self.create_client(StartEpisode, topics.SIM_RESET)
        self.start_client = self.create_client(StartEpisode, topics.START_EPISODE)
        self.stop_client = self.create_client(StopEpisode, topics.STOP_EPISODE)
        self.mode_client = self.create_client(SetControlMode, topics.SET_CONTROL_MODE)
        self._executor: SingleThreadedExecutor | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- spinning
    def spin_in_background(self) -> None:
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True, name="rehearsal-spin")
        self._thread.start()

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(timeout_sec=2.0)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self.destroy_node()

    # ---------------------------------------------------------------- inputs
    def _store(self, buffer: deque) -> Callable[[object], None]:
        def store(msg: object) -> None:
            with self.lock:
                buffer.append(Stamped(time.time(), msg))
        return store

    def _on_event(self, msg: EpisodeEvent) -> None:
        with self.lock:
            self.events.append(msg)

    def _on_state(self, msg: ControlState) -> None:
        with self.lock:
            self.states.append(msg)

    def _on_pose_error(self, msg: PoseError) -> None:
        with self.lock:
            self.pose_errors[msg.episode_id] = msg

    def _idle_joy(self) -> None:
        msg = Joy(axes=[0.0] * 6, buttons=[0, 0])
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = "spacenav"
        self.joy_pub.publish(msg)

    # ---------------------------------------------------------------- services
    def call(self, client, request, timeout: float = 15.0):
        if not client.wait_for_service(timeout_sec=timeout):
            raise GraphError(f"service {client.srv_name} is not available")
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                raise GraphError(f"service {client.srv_name} did not answer within {timeout:.0f} s")
            time.sleep(0.005)
        return future.result()

    # ---------------------------------------------------------------- readiness
    def wait_ready(self, nodes: tuple[str, ...], check_alive: Callable[[], None], timeout: float = 120.0) -> None:
        """Every node of the graph discovered, the services up, the episode topics matched."""
        deadline = time.monotonic() + timeout
        clients = (self.reset_client, self.start_client, self.stop_client, self.mode_client)
        while True:
            check_alive()
            names = set(self.get_node_names())
            missing = [n for n in nodes if n not in names]
            ready = (not missing and all(c.service_is_ready() for c in clients)
                     and self.count_subscribers(topics.EPISODE_EVENTS) >= 5   # sim, policy, contact, recorder, this
                     and self.count_subscribers(JOY_TOPIC) >= 1)
            with self.lock:
                ready = ready and bool(self.states) and bool(self.estimates)
            if ready:
                break
            if time.monotonic() > deadline:
                raise GraphError(f"graph not ready after {timeout:.0f} s (nodes missing: {missing or 'none'}; "
                                 f"episode_events subscribers {self.count_subscribers(topics.EPISODE_EVENTS)})")
            time.sleep(0.1)
        time.sleep(1.0)   # discovery settles (every stream matched both ways)

    def _since_reset(self, reset_done: float) -> tuple[list[Stamped], list[Stamped]]:
        """Ground truth published after the reset completed, and valid estimates of depth frames rendered
        after it (stamped RENDER_FLUSH_S later: frames of the old scene still in the render pipeline)."""
        with self.lock:
            truth = [s for s in self.truth if to_sec(s.msg.header.stamp) >= reset_done]
            valid = [s for s in self.estimates if s.msg.valid
                     and to_sec(s.msg.header.stamp) >= reset_done + RENDER_FLUSH_S / self.time_scale]
        return truth, valid

    def _icp_ready(self, reset_done: float) -> bool:
        truth, valid = self._since_reset(reset_done)
        if not truth or len(valid) < ICP_READY_FRAMES:
            return False
        cube = _position(truth[-1].msg)
        return all(np.linalg.norm(_position(s.msg) - cube) < ICP_READY_DISTANCE_M
                   for s in valid[-ICP_READY_FRAMES:])

    # ---------------------------------------------------------------- one episode
    def run_episode(self, index: int, seed: int, *, timeout_s: float, resume_latched: bool, measure_push: bool,
                    check_alive: Callable[[], None], eval_cube: np.ndarray | None = None) -> tuple[
                        EpisodeRecord, list[float], list[float]]:
        """Reset to ``seed``, start, wait for the end. Returns the record and the decisions' state / pose
        ages [s]. ``eval_cube``: imgen eval's true cube position for this seed (scene check)."""
        res = self.call(self.reset_client, StartEpisode.Request(seed=seed))
        if not res.success:
            raise GraphError(f"sim/reset refused seed {seed}: {res.message}")
        reset_done = self.get_clock().now().nanoseconds * 1e-9   # the nodes' clock (system time) as stamped
        deadline = time.monotonic() + ICP_READY_TIMEOUT_S / self.time_scale
        icp_ready = False
        while time.monotonic() < deadline:
            check_alive()
            if self._icp_ready(reset_done):
                icp_ready = True
                break
            time.sleep(0.02)
        truth, valid = self._since_reset(reset_done)
        cube = _position(truth[-1].msg) if truth else None
        icp_error = (float(np.linalg.norm(_position(valid[-1].msg) - cube)) * 1e3
                     if valid and cube is not None else None)
        scene_error = (float(np.linalg.norm(cube - eval_cube)) * 1e3
                       if cube is not None and eval_cube is not None else None)

        t_start = time.time()
        started = self.call(self.start_client, StartEpisode.Request(seed=seed))
        if not started.success:
            raise GraphError(f"start_episode refused: {started.message}")
        episode = started.episode_id
        end_by = time.monotonic() + timeout_s
        resumes = 0
        resumed_at_step = -1
        terminal: EpisodeEvent | None = None
        while terminal is None:
            check_alive()
            with self.lock:
                terminal = next((e for e in self.events if e.episode_id == episode and e.event in TERMINAL), None)
                state = self.states[-1] if self.states else None
            if terminal is not None:
                break
            if time.monotonic() > end_by:
                self.call(self.stop_client, StopEpisode.Request(outcome=EpisodeEvent.EVENT_ABORT,
                                                                reason="rehearsal_timeout"))
                break
            if (resume_latched and state is not None and state.episode_id == episode
                    and state.mode == ControlState.MODE_HOLD and state.reason.startswith("latched_")
                    and state.step != resumed_at_step):
                answer = self.call(self.mode_client, SetControlMode.Request(mode=ControlState.MODE_POLICY,
                                                                            reason="rehearsal_resume"))
                resumes += int(answer.success)   # refused when the episode ended meanwhile
                resumed_at_step = state.step
            time.sleep(0.02)
        t_end = time.time()
        if terminal is None:   # timed out: the ABORT we asked for
            time.sleep(0.2)
        record, state_ages, pose_ages = self._record(index, seed, episode, terminal, t_start, t_end, resumes,
                                                     measure_push, icp_error, scene_error)
        record.icp_ready = icp_ready
        return record, state_ages, pose_ages

    def _record(self, index: int, seed: int, episode: int, terminal: EpisodeEvent | None, t_start: float,
                t_end: float, resumes: int, measure_push: bool, icp_error: float | None,
                scene_error: float | None) -> tuple[EpisodeRecord, list[float], list[float]]:
        with self.lock:
            events = [e for e in self.events if e.episode_id == episode]
            states = [s for s in self.states if s.episode_id == episode]
            timing = [s.msg for s in self.timing if t_start <= s.wall <= t_end + 0.1]
            pose_error = self.pose_errors.get(episode)
            truth = [s.msg for s in self.truth if t_start <= s.wall <= t_end]
            arrivals = [s.wall for s in self.estimates if t_start <= s.wall <= t_end]
            # keep the buffers small: what a later episode needs arrives after its reset
            self.events = [e for e in self.events if e.episode_id > episode]
            self.states = deque((s for s in self.states if s.episode_id > episode), maxlen=self.states.maxlen)
        outcome = TERMINAL[terminal.event] if terminal is not None else "TIMEOUT"
        ends = [e for e in events if e.event in TERMINAL]
        end = terminal or (ends[0] if ends else None)
        holds = [e.reason for e in events if e.event == EpisodeEvent.EVENT_HOLD and is_fault(e.reason)]
        kinds = sorted({k for s in states if s.last_clip for k in s.last_clip.split(",")})
        state_ages = [float(m.state_age_s) for m in timing]
        pose_ages = [float(m.pose_age_s) for m in timing]
        record = EpisodeRecord(
            index=index, seed=seed, episode_id=episode, outcome=outcome,
            reason=end.reason if end is not None else "rehearsal_timeout",
            steps=int(end.step) if end is not None else max((s.step for s in states), default=0),
            wall_s=t_end - t_start,
            clipped=max((s.clipped_commands for s in states), default=0), clip_kinds=kinds,
            fault_holds=holds, resumes=resumes,
            takeovers=sum(e.event == EpisodeEvent.EVENT_TAKEOVER for e in events),
            icp_error_mm=icp_error, scene_error_mm=scene_error,
            state_age_p50_ms=_p50_ms(state_ages), pose_age_p50_ms=_p50_ms(pose_ages),
            pose_rate_hz=len(arrivals) / max(t_end - t_start, 1e-3),
            pose_max_gap_ms=float(np.max(np.diff([t_start, *arrivals, t_end]))) * 1e3)
        if pose_error is not None:
            record.pose_error_seed = int(pose_error.seed)
            if pose_error.offsets:
                o = pose_error.offsets[0]
                record.pose_error_m = [round(float(v), 6) for v in (o.x, o.y, o.z)]
        if measure_push:
            record.push_m = _first_resting_jump(truth)
        return record, state_ages, pose_ages


def _position(msg: ObjectPoseEstimate) -> np.ndarray:
    return pose_msg_arrays(msg.pose)[0]


def _p50_ms(values: list[float]) -> float | None:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.median(finite)) * 1e3 if finite else None


def _first_resting_jump(truth: list[ObjectPoseEstimate]) -> float:
    """Horizontal displacement of the first jump (> PUSH_MIN_M between consecutive ground-truth samples)
    of the resting cube: the push, which comes before the hand reaches the cube. 0.0 when none."""
    for a, b in itertools.pairwise(truth):
        pa, pb = _position(a), _position(b)
        jump = float(np.linalg.norm((pb - pa)[:2]))
        if pa[2] < RESTING_Z_M and pb[2] < RESTING_Z_M and jump > PUSH_MIN_M:
            return jump
    return 0.0
