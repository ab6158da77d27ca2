"""The sim driver executes delta commands in the MuJoCo FR3 world."""

from __future__ import annotations

import numpy as np
import pytest
from imgen_ros.core.command import DeltaCommand
from imgen_ros.robot.interface import DriverError
from imgen_ros.robot.sim import SimDriver
from imgen_ros.sim import make_env


@pytest.fixture
def driver():
    env = make_env("block_grasp", noise="off")
    env.reset(seed=0)
    with SimDriver(env) as drv:
        yield drv
    env.close()


def test_each_step_reaches_its_target_within_5mm(driver):
    """One execute = one 50 ms step; the simulated controller tracks each target to a few mm."""
    start = driver.read_state()
    assert start.joint_positions.shape == (7,) and start.gripper_width > 0.07
    step = DeltaCommand(np.array([0.01, -0.005, 0.0]), np.zeros(3), -1.0)
    for _ in range(5):
        target = driver.execute(step)
        assert np.linalg.norm(driver.read_state().tcp_pose[:3, 3] - target[:3, 3]) < 0.005
    end = driver.read_state()
    moved = end.tcp_pose[:3, 3] - start.tcp_pose[:3, 3]
    direction = step.translation / np.linalg.norm(step.translation)
    assert moved @ direction > 0.6 * 5 * np.linalg.norm(step.translation)
    assert np.linalg.norm(moved - (moved @ direction) * direction) < 0.005
    assert end.stamp_s == pytest.approx(start.stamp_s + 5 * 0.05)
    assert driver.last_step is not None and "success" in driver.last_step[3]
    driver.hold()
    held = driver.read_state().tcp_pose
    driver.hold()
    assert np.linalg.norm(driver.read_state().tcp_pose[:3, 3] - held[:3, 3]) < 0.002


def test_gripper_closes_and_hold_keeps_it(driver):
    for _ in range(10):
        driver.execute(DeltaCommand.hold(1.0))
    driver.hold()
    assert driver.read_state().gripper_width < 0.01


def test_bad_command_and_unstarted_driver(driver):
    with pytest.raises(ValueError, match="non-finite"):
        driver.execute(DeltaCommand(np.array([0.0, np.inf, 0.0]), np.zeros(3), -1.0))
    driver.close()
    with pytest.raises(DriverError, match="not started"):
        driver.read_state()
