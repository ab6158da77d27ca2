"""The franka_ros2 adapter on real DDS with stand-in interface types (franka_msgs is not installable
here): measured state in -> PoseStamped target out, hold, stale-state refusal, gripper errors."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from imgen_ros.core.command import DeltaCommand
from imgen_ros.core.pose import make_pose, pos_quat_from_pose, pose_distance
from imgen_ros.nodes._ros import pose_from_msg
from imgen_ros.robot.franka_ros2 import FrankaRos2Config, FrankaRos2Driver
from imgen_ros.robot.interface import DriverError
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState

from imgen_msgs.action import GenerateInterventions

# Any real message / action types let the adapter create its subscription and action clients; the
# FrankaRobotState contents are injected directly (franka_msgs is not available on PyPI).
STAND_IN = SimpleNamespace(FrankaRobotState=JointState, Homing=GenerateInterventions, Move=GenerateInterventions,
                           Grasp=GenerateInterventions)


def franka_state(node: Node, pose: np.ndarray) -> SimpleNamespace:
    pos, quat = pos_quat_from_pose(pose)
    ns = SimpleNamespace
    return ns(header=ns(stamp=node.get_clock().now().to_msg()),
              o_t_ee=ns(pose=ns(position=ns(x=pos[0], y=pos[1], z=pos[2]),
                                orientation=ns(x=quat[0], y=quat[1], z=quat[2], w=quat[3]))),
              measured_joint_state=ns(position=[0.0] * 7, velocity=[0.0] * 7))


def test_targets_are_published_for_the_impedance_controller(ros_context, ros_spin, wait_until):
    host = Node("robot_driver", context=ros_context)
    listener = Node("impedance_controller", context=ros_context)
    targets: list[PoseStamped] = []
    listener.create_subscription(PoseStamped, "target_pose", targets.append,
                                 QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    driver = FrankaRos2Driver(host, FrankaRos2Config(home_gripper_on_start=False, state_timeout_s=0.5), STAND_IN)
    ros_spin(host, listener)
    wait_until(lambda: host.count_subscribers("target_pose") > 0, 15, "the controller's subscription")

    with pytest.raises(DriverError, match="not started"):
        driver.execute(DeltaCommand.hold(-1.0))
    driver.start()
    with pytest.raises(DriverError, match="no franka_msgs/FrankaRobotState received"):
        driver.execute(DeltaCommand.hold(-1.0))

    measured = make_pose([0.45, 0.05, 0.3], np.diag([1.0, -1.0, -1.0]))
    driver._on_state(franka_state(host, measured))
    driver._gripper_closed = False  # the gripper is already open: no action goal needed
    expected = driver.execute(DeltaCommand(np.array([0.01, -0.02, 0.005]), np.array([0.0, 0.0, 0.1]), -1.0))
    wait_until(lambda: len(targets) == 1, 10, "a target pose")
    assert targets[0].header.frame_id == "fr3_link0"
    got = pose_from_msg(targets[0].pose)
    assert pose_distance(got, expected)[0] < 1e-9 and pose_distance(got, expected)[1] < 1e-6
    assert got[:3, 3] == pytest.approx([0.46, 0.03, 0.305])

    driver.hold()
    wait_until(lambda: len(targets) == 2, 10, "the hold target")
    assert pose_distance(pose_from_msg(targets[1].pose), measured)[0] < 1e-9

    with pytest.raises(DriverError, match="gripper action server 'franka_gripper/grasp' is not available"):
        driver.execute(DeltaCommand.hold(1.0))

    time.sleep(0.6)  # the measurement is now older than state_timeout_s
    with pytest.raises(DriverError, match=r"robot state is 0\.\d+ s old"):
        driver.execute(DeltaCommand.hold(-1.0))
    assert driver.read_state().tcp_pose == pytest.approx(measured)
    driver.close()
