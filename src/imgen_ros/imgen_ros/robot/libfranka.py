"""FR3 over the Franka Control Interface with franky-control (``import franky``, libfranka 0.21).

Why franky rather than pylibfranka: a delta-pose command at 20 Hz needs a Cartesian trajectory to
a new target every 50 ms. pylibfranka exposes libfranka's raw 1 kHz control callback, so Python
would have to run the real-time loop (jitter -> communication_constraints_violation); franky runs
the 1 kHz loop in C++ with an on-line trajectory generator (Ruckig) and lets a new asynchronous
Cartesian motion pre-empt the running one smoothly, which is exactly "move toward this target,
replace it when the next command arrives". It also ships asynchronous gripper calls. (pylibfranka
and franky cannot share one process; only franky is used here.)

Use ``enforce_realtime=False`` only against ``franky-sim`` or for bench tests; the real FR3 wants a
PREEMPT_RT kernel.

Scheduling: libfranka's ``Robot`` constructor raises the *calling* thread to SCHED_FIFO 99 (even
with ``RealtimeConfig.Ignore`` where the host grants it), and franky's 1 kHz control thread inherits
the scheduling of the thread that starts a motion. Left alone, the ROS executor thread that started
the driver ran every callback at FIFO 99, and every process it spawned inherited it (in the test
suite: all later node processes, which starved each other on 2 cores). So the caller's scheduling is
restored right after construction, and the granted real-time scheduling is applied only around
``move()`` when ``enforce_realtime`` is set, so that the control thread it spawns runs real-time
and the caller does not.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from imgen_ros.core.command import DeltaCommand
from imgen_ros.core.pose import Pose, pose_distance
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


def _franky():
    try:
        import franky
    except ImportError as err:
        raise MissingDependencyError(
            "the libfranka driver needs the Python package 'franky-control' (pip install franky-control==2.0.0); "
            f"import failed: {err}") from err
    return franky


@dataclass(frozen=True)
class LibfrankaConfig:
    robot_ip: str = "172.16.0.2"
    enforce_realtime: bool = True          # False only for franky-sim / non-RT test machines
    relative_dynamics_factor: float = 0.15  # scales franky's velocity/acceleration/jerk limits
    collision_torque_threshold_nm: float = 20.0
    collision_force_threshold_n: float = 30.0
    gripper_speed_mps: float = 0.1
    gripper_force_n: float = 40.0
    gripper_open_width_m: float = 0.08
    # A grasp command closes to 0 and succeeds at any width in (0 - inner, 0 + outer): "grasp whatever is there".
    gripper_epsilon_outer_m: float = 0.08
    move_home_on_start: bool = False
    home_joint_positions: tuple[float, ...] = (0.0, -0.785398, 0.0, -2.356194, 0.0, 1.570796, 0.785398)  # rad
    connect_timeout_s: float = 10.0
    # Streaming (see robot.interface.TargetChain): chain 20 Hz deltas on the last target while the
    # arm keeps up, so it covers the commanded path; false = always from the measured pose.
    chain_targets: bool = True
    max_target_lead_m: float = 0.02
    max_target_lead_rad: float = 0.2
    stream_timeout_s: float = 0.15

    def __post_init__(self) -> None:
        if not self.robot_ip:
            raise ValueError("LibfrankaConfig.robot_ip must not be empty")
        if not 0.0 < self.relative_dynamics_factor <= 1.0:
            raise ValueError(f"relative_dynamics_factor must be in (0, 1], got {self.relative_dynamics_factor}")
        if len(self.home_joint_positions) != 7:
            raise ValueError(f"home_joint_positions needs 7 values, got {len(self.home_joint_positions)}")
        if not 0.0 < self.gripper_open_width_m <= 0.08:
            raise ValueError(f"gripper_open_width_m must be in (0, 0.08], got {self.gripper_open_width_m}")


def external_wrench(state) -> np.ndarray:
    """libfranka's ``O_F_ext_hat_K`` (force N, torque N m at the TCP, base frame; the wrench the robot
    applies to the environment) as (6,), NaN-filled when the state does not carry a 6-vector."""
    try:
        wrench = np.asarray(state.O_F_ext_hat_K, dtype=float).ravel()
    except (AttributeError, TypeError, ValueError):
        return np.full(6, np.nan)
    return wrench if wrench.shape == (6,) else np.full(6, np.nan)


Scheduling = tuple[int, int]   # (policy, priority) of a thread


def thread_scheduling() -> Scheduling:
    """The calling thread's scheduling policy and priority."""
    return os.sched_getscheduler(0), os.sched_getparam(0).sched_priority


def set_thread_scheduling(scheduling: Scheduling) -> None:
    os.sched_setscheduler(0, scheduling[0], os.sched_param(scheduling[1]))


@contextmanager
def scheduled_as(scheduling: Scheduling | None) -> Iterator[None]:
    """Run the block with the calling thread at ``scheduling`` (threads it spawns inherit it), then
    restore; ``None`` changes nothing."""
    if scheduling is None:
        yield
        return
    before = thread_scheduling()
    set_thread_scheduling(scheduling)
    try:
        yield
    finally:
        set_thread_scheduling(before)


class LibfrankaDriver(RobotDriver):
    """Asynchronous Cartesian targets to the FR3 through franky (1 kHz loop inside libfranka)."""

    name = "libfranka"
    MIN_MOVE_M = 2e-4
    MIN_MOVE_RAD = 2e-3

    def __init__(self, config: LibfrankaConfig | None = None) -> None:
        self.config = config or LibfrankaConfig()
        self._franky = _franky()
        self._robot = None
        self._gripper = None
        self._gripper_closed: bool | None = None
        self._gripper_future = None
        self._lock = threading.Lock()  # franky's Robot is not documented as thread-safe
        cfg = self.config
        self.chain = TargetChain(cfg.chain_targets, cfg.max_target_lead_m, cfg.max_target_lead_rad,
                                 cfg.stream_timeout_s)
        self.last_motion_error = ""
        # what libfranka granted at construction, for the control threads that motions spawn
        self.control_scheduling: Scheduling | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        fr, cfg = self._franky, self.config
        realtime = fr.RealtimeConfig.Enforce if cfg.enforce_realtime else fr.RealtimeConfig.Ignore
        deadline = time.monotonic() + cfg.connect_timeout_s
        caller = thread_scheduling()
        while True:
            try:
                try:
                    self._robot = fr.Robot(cfg.robot_ip, realtime_config=realtime)
                finally:
                    granted = thread_scheduling()
                    set_thread_scheduling(caller)   # see the module docstring
                if cfg.enforce_realtime and granted != caller:
                    self.control_scheduling = granted
                break
            except fr.RealtimeException as err:
                raise DriverError(f"libfranka refuses to run without a real-time kernel ({err}); use a PREEMPT_RT "
                                  "kernel or enforce_realtime=False for simulation") from err
            except Exception as err:
                if time.monotonic() > deadline:
                    raise DriverError(f"cannot connect to the FR3 at {cfg.robot_ip} within {cfg.connect_timeout_s} s: "
                                      f"{err}") from err
                time.sleep(0.2)
        robot = self._robot
        robot.recover_from_errors()
        robot.relative_dynamics_factor = cfg.relative_dynamics_factor
        robot.set_collision_behavior(cfg.collision_torque_threshold_nm, cfg.collision_force_threshold_n)
        try:
            self._gripper = fr.Gripper(cfg.robot_ip)
        except Exception as err:
            raise DriverError(f"cannot connect to the Franka Hand at {cfg.robot_ip}: {err}") from err
        if cfg.move_home_on_start:
            with scheduled_as(self.control_scheduling):
                robot.move(fr.JointMotion(list(cfg.home_joint_positions)))

    def close(self) -> None:
        if self._robot is not None:
            try:
                if self._robot.is_in_control:
                    self._robot.stop()
            finally:
                self._robot = None
                self._gripper = None

    def _require(self):
        if self._robot is None:
            raise DriverError("libfranka driver is not started (call start() or use it as a context manager)")
        return self._robot

    # ------------------------------------------------------------------ state
    def read_state(self) -> ArmState:
        robot = self._require()
        with self._lock:
            state = robot.state  # one libfranka RobotState: pose and joints from the same instant
        pose = np.asarray(state.O_T_EE.matrix, dtype=float)
        q = np.asarray(state.q, dtype=float)
        dq = np.asarray(state.dq, dtype=float)
        width = float(self._gripper.width) if self._gripper is not None else 0.0
        return ArmState(stamp_s=time.time(), tcp_pose=pose, joint_positions=q, joint_velocities=dq,
                        gripper_width=width, external_wrench=external_wrench(state))

    # ------------------------------------------------------------------ commands
    def execute(self, command: DeltaCommand) -> Pose:
        checked(command)
        robot = self._require()
        with self._lock:
            self._poll(robot)
            current = np.asarray(robot.current_cartesian_state.pose.end_effector_pose.matrix, dtype=float)
            now = time.monotonic()
            target = target_from(command, self.chain.reference(current, now))
            self._move_to(robot, target, current)
            self.chain.commit(target, now)
        self._command_gripper(closes_gripper(command))
        return target

    def hold(self) -> None:
        robot = self._require()
        self.chain.reset()
        with self._lock:
            if self._poll(robot):
                try:
                    robot.stop()  # pre-empts the running motion; libfranka then holds the pose
                except Exception as err:
                    self.last_motion_error = str(err)
                    if not robot.recover_from_errors():
                        raise DriverError(f"FR3 did not stop cleanly and cannot recover: {err}") from err

    def _move_to(self, robot, target: Pose, current: Pose) -> None:
        """Pre-empt the running motion with one to ``target``. A target within MIN_MOVE of the current
        pose sends nothing: the trajectory generator rejects (near-)zero-length moves (Ruckig -111), a
        robot at rest holds its pose between motions, and a running motion is at most one step from it."""
        dpos, dang = pose_distance(target, current)
        if dpos < self.MIN_MOVE_M and dang < self.MIN_MOVE_RAD:
            return
        fr = self._franky
        with scheduled_as(self.control_scheduling):
            robot.move(fr.CartesianMotion(fr.Affine(target), fr.ReferenceType.Absolute), asynchronous=True)

    def wait_until_settled(self, timeout_s: float) -> bool:
        robot = self._require()
        try:
            return bool(robot.join_motion(timeout=timeout_s))
        except Exception as err:
            self.last_motion_error = str(err)
            robot.recover_from_errors()
            raise DriverError(f"FR3 motion failed: {err}") from err

    def wait_for_gripper(self, timeout_s: float) -> bool:
        """Block until the last gripper command finished; True if it did within ``timeout_s``."""
        future = self._gripper_future
        if future is None:
            return True
        return bool(future.wait(timeout_s))

    def _poll(self, robot) -> bool:
        """Whether a motion is running. A motion that ended in an error (reflex, planner failure) is
        recovered from and recorded in ``last_motion_error``; DriverError if recovery fails."""
        try:
            return bool(robot.poll_motion())
        except Exception as err:
            self.last_motion_error = str(err)
            self.chain.reset()  # the motion was aborted: start again from where the arm is
            if not robot.recover_from_errors():
                raise DriverError(f"FR3 motion failed and automatic error recovery did not succeed: {err}") from err
            return False

    def _command_gripper(self, close: bool) -> None:
        if self._gripper is None or close == self._gripper_closed:
            return
        cfg = self.config
        if close:
            self._gripper_future = self._gripper.grasp_async(0.0, cfg.gripper_speed_mps, cfg.gripper_force_n,
                                                             epsilon_inner=0.005,
                                                             epsilon_outer=cfg.gripper_epsilon_outer_m)
        else:
            self._gripper_future = self._gripper.move_async(cfg.gripper_open_width_m, cfg.gripper_speed_mps)
        self._gripper_closed = close
