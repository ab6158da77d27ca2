"""The libfranka (franky) driver moves the simulated FR3 (franky-sim) by commanded deltas."""

from __future__ import annotations

import math
import os
import threading
import time

import numpy as np
import pytest
from imgen_ros.core.command import DeltaCommand
from imgen_ros.core.pose import pose_distance
from imgen_ros.robot.interface import DriverError

pytest.importorskip("franky")

from imgen_ros.robot.libfranka import LibfrankaConfig, LibfrankaDriver, scheduled_as, thread_scheduling

TOLERANCE_M = 0.005


CALLER_SCHEDULING: dict[str, tuple[int, int]] = {}


@pytest.fixture(scope="module")
def driver(franky_sim):
    config = LibfrankaConfig(robot_ip=franky_sim, enforce_realtime=False, relative_dynamics_factor=0.2,
                             connect_timeout_s=60.0)
    CALLER_SCHEDULING["before_start"] = thread_scheduling()
    with LibfrankaDriver(config) as drv:
        CALLER_SCHEDULING["after_start"] = thread_scheduling()
        yield drv


def _settle(driver) -> None:
    assert driver.wait_until_settled(30.0), "motion did not finish within 30 s"  # generous: loaded machines
    time.sleep(0.1)


@pytest.mark.parametrize(("translation", "rotation"), [
    ((0.03, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ((0.0, -0.04, 0.0), (0.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.05), (0.0, 0.0, 0.0)),
    ((-0.02, 0.02, -0.03), (0.0, 0.0, 0.3)),
    ((0.0, 0.0, 0.0), (0.15, -0.1, 0.0)),
])
def test_single_delta_is_executed_within_5mm(driver, translation, rotation):
    before = driver.read_state().tcp_pose
    target = driver.execute(DeltaCommand(np.array(translation), np.array(rotation), -1.0))
    _settle(driver)
    after = driver.read_state().tcp_pose
    moved = after[:3, 3] - before[:3, 3]
    assert np.linalg.norm(moved - np.array(translation)) < TOLERANCE_M, (moved, translation)
    dpos, dang = pose_distance(after, target)
    assert dpos < TOLERANCE_M and dang < math.radians(1.0), (dpos, math.degrees(dang))


def test_streamed_20hz_commands_track_the_last_target(driver):
    start = driver.read_state().tcp_pose
    step = DeltaCommand(np.array([0.004, 0.002, -0.002]), np.zeros(3), -1.0)
    target = None
    for _ in range(20):
        t0 = time.monotonic()
        target = driver.execute(step)
        time.sleep(max(0.0, 0.05 - (time.monotonic() - t0)))
    _settle(driver)
    end = driver.read_state().tcp_pose
    assert pose_distance(end, target)[0] < TOLERANCE_M
    moved = end[:3, 3] - start[:3, 3]
    direction = step.translation / np.linalg.norm(step.translation)
    assert moved @ direction > 0.03  # it went a fair way along the commanded direction
    assert np.linalg.norm(moved - (moved @ direction) * direction) < TOLERANCE_M
    assert driver.last_motion_error == ""  # pre-empting motions at 20 Hz never failed


def test_gripper_opens_and_closes(driver):
    driver.execute(DeltaCommand.hold(gripper=1.0))
    assert driver.wait_for_gripper(30.0)
    closed = driver.read_state().gripper_width
    driver.execute(DeltaCommand.hold(gripper=-1.0))
    assert driver.wait_for_gripper(30.0)
    opened = driver.read_state().gripper_width
    assert closed < 0.01 and opened > 0.07, (closed, opened)
    _settle(driver)


def test_state_is_consistent(driver):
    state = driver.read_state()
    assert state.joint_positions.shape == (7,) and state.joint_velocities.shape == (7,)
    assert np.allclose(state.tcp_pose[3], [0, 0, 0, 1]) and np.allclose(np.linalg.det(state.tcp_pose[:3, :3]), 1.0)
    assert state.gripper_qpos == pytest.approx([state.gripper_width / 2] * 2)


def test_hold_stops_at_the_current_pose(driver):
    driver.execute(DeltaCommand(np.array([0.0, 0.0, 0.04]), np.zeros(3), -1.0))
    time.sleep(0.1)
    driver.hold()
    _settle(driver)
    held = driver.read_state().tcp_pose
    time.sleep(0.3)
    assert pose_distance(driver.read_state().tcp_pose, held)[0] < 0.001


def test_unreachable_robot_is_a_clear_error():
    config = LibfrankaConfig(robot_ip="127.0.0.2", enforce_realtime=False, connect_timeout_s=0.5)
    with pytest.raises(DriverError, match=r"cannot connect to the FR3 at 127.0.0.2"):
        LibfrankaDriver(config).start()


def test_non_finite_command_is_refused_before_anything_moves():
    with pytest.raises(ValueError, match="non-finite command"):
        LibfrankaDriver(LibfrankaConfig(robot_ip="127.0.0.1")).execute(
            DeltaCommand(np.array([np.nan, 0, 0]), np.zeros(3), -1.0))


def test_commands_need_a_started_driver():
    with pytest.raises(DriverError, match="not started"):
        LibfrankaDriver(LibfrankaConfig(robot_ip="127.0.0.1")).execute(DeltaCommand.hold(-1.0))


def _fifo_threads() -> list[int]:
    return [int(tid) for tid in os.listdir("/proc/self/task") if os.sched_getscheduler(int(tid)) == os.SCHED_FIFO]


def test_the_caller_keeps_its_scheduling_and_sim_motions_are_not_realtime(driver):
    # libfranka's Robot() raises the calling thread to SCHED_FIFO 99; left so, the test process (or a
    # node's executor thread) and every process it started later ran at FIFO 99.
    assert CALLER_SCHEDULING["after_start"] == CALLER_SCHEDULING["before_start"]
    assert driver.control_scheduling is None          # enforce_realtime=False: nothing to hand on
    driver.execute(DeltaCommand(np.array([0.0, 0.0, 0.02]), np.zeros(3), -1.0))
    time.sleep(0.05)                                  # franky's control thread is running the motion
    assert _fifo_threads() == []
    _settle(driver)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CAP_SYS_NICE) for SCHED_FIFO")
def test_scheduled_as_hands_its_scheduling_to_spawned_threads_only():
    before = thread_scheduling()
    seen: list[int] = []
    with scheduled_as((os.SCHED_FIFO, 10)):
        spawned = threading.Thread(target=lambda: seen.append(os.sched_getscheduler(0)))
        spawned.start()
        spawned.join()
    assert seen == [os.SCHED_FIFO]
    assert thread_scheduling() == before
