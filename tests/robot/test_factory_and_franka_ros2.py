"""Driver selection, and the franka_ros2 adapter's pieces that need no DDS (the missing-package error,
state conversion, gripper goals)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from imgen_ros.core.pose import make_pose, pos_quat_from_pose
from imgen_ros.robot.factory import make_driver
from imgen_ros.robot.interface import MissingDependencyError


def _franka_msgs_installed() -> bool:
    try:
        import franka_msgs  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(_franka_msgs_installed(), reason="franka_msgs is installed here")
def test_franka_ros2_without_franka_msgs_says_what_is_missing():
    with pytest.raises(MissingDependencyError,
                       match=r"'franka_msgs' from franka_ros2.*not in the ROS apt repository for Jazzy"):
        make_driver("franka_ros2", node=object())
    from imgen_ros.robot.franka_ros2 import load_franka_interfaces

    with pytest.raises(MissingDependencyError, match="No module named 'franka_msgs'"):
        load_franka_interfaces()


def test_unknown_driver_and_missing_arguments():
    with pytest.raises(ValueError, match="unknown robot driver 'ur5'; valid: sim, libfranka, franka_ros2"):
        make_driver("ur5")
    with pytest.raises(ValueError, match="sim driver needs env="):
        make_driver("sim")


def test_broadcaster_messages_to_arm_state():
    from imgen_ros.robot.franka_ros2 import arm_state_from_msgs

    pose = make_pose([0.4, -0.1, 0.3], np.diag([1.0, -1.0, -1.0]))
    pos, quat = pos_quat_from_pose(pose)
    ns = SimpleNamespace
    pose_msg = ns(header=ns(stamp=ns(sec=12, nanosec=250_000_000)),
                  pose=ns(position=ns(x=pos[0], y=pos[1], z=pos[2]),
                          orientation=ns(x=quat[0], y=quat[1], z=quat[2], w=quat[3])))
    joints = ns(position=list(range(7)), velocity=[0.1] * 7)
    wrench = ns(wrench=ns(force=ns(x=1.0, y=2.0, z=3.0), torque=ns(x=0.1, y=0.2, z=0.3)))
    state = arm_state_from_msgs(pose_msg, joints, wrench, gripper_width=0.05)
    assert state.stamp_s == pytest.approx(12.25)
    np.testing.assert_allclose(state.tcp_pose, pose, atol=1e-12)
    assert state.joint_positions.tolist() == list(range(7)) and state.gripper_qpos.tolist() == [0.025, 0.025]
    assert state.external_wrench.tolist() == [1.0, 2.0, 3.0, 0.1, 0.2, 0.3]
    partial = arm_state_from_msgs(pose_msg, None, None, gripper_width=0.0)
    assert partial.joint_positions.tolist() == [0.0] * 7 and np.isnan(partial.external_wrench).all()


def test_gripper_goals_grasp_anything_and_open_fully():
    from imgen_ros.robot.franka_ros2 import FrankaRos2Config, gripper_goal

    class Goal(SimpleNamespace):
        def __init__(self) -> None:
            super().__init__(epsilon=SimpleNamespace())

    types = SimpleNamespace(Grasp=SimpleNamespace(Goal=Goal), Move=SimpleNamespace(Goal=Goal))
    config = FrankaRos2Config(gripper_force_n=30.0)
    grasp = gripper_goal(types, config, close=True)
    assert (grasp.width, grasp.force, grasp.epsilon.outer) == (0.0, 30.0, 0.08)
    move = gripper_goal(types, config, close=False)
    assert move.width == 0.08 and move.speed == config.gripper_speed_mps
