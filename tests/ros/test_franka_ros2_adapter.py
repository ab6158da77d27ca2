"""The franka_ros2 adapter on real DDS with stand-in gripper action types (franka_msgs is not
installable here): the broadcaster's convenience topics in (PoseStamped, JointState, WrenchStamped,
published here by a stand-in broadcaster node) -> PoseStamped target out, hold, stale-state refusal,
gripper errors."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped, WrenchStamped
from imgen_ros.core.command import DeltaCommand
from imgen_ros.core.pose import make_pose, pos_quat_from_pose, pose_distance
from imgen_ros.nodes._ros import pose_from_msg
from imgen_ros.robot.franka_ros2 import FrankaRos2Config, FrankaRos2Driver
from imgen_ros.robot.interface import DriverError
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from imgen_msgs.action import GenerateInterventions

# Any real action types let the adapter create its action clients (franka_msgs is not on PyPI).
STAND_IN = SimpleNamespace(Homing=GenerateInterventions, Move=GenerateInterventions, Grasp=GenerateInterventions)


def current_pose(node: Node, pose: np.ndarray) -> PoseStamped:
    pos, quat = pos_quat_from_pose(pose)
    msg = PoseStamped()
    msg.header.stamp = node.get_clock().now().to_msg()
    msg.header.frame_id = "fr3_link0"
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in pos)
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in quat)
    return msg


def test_targets_are_published_for_the_impedance_controller(ros_context, ros_spin, wait_until):
    host = Node("robot_driver", context=ros_context)
    listener = Node("impedance_controller", context=ros_context)
    broadcaster = Node("franka_robot_state_broadcaster", context=ros_context)
    pose_pub = broadcaster.create_publisher(PoseStamped, "franka_robot_state_broadcaster/current_pose",
                                            qos_profile_sensor_data)
    wrench_pub = broadcaster.create_publisher(WrenchStamped, "franka_robot_state_broadcaster/"
                                              "external_wrench_in_base_frame", qos_profile_sensor_data)
    targets: list[PoseStamped] = []
    listener.create_subscription(PoseStamped, "target_pose", targets.append,
                                 QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    driver = FrankaRos2Driver(host, FrankaRos2Config(home_gripper_on_start=False, state_timeout_s=0.5), STAND_IN)
    ros_spin(host, listener, broadcaster)
    wait_until(lambda: host.count_subscribers("target_pose") > 0, 15, "the controller's subscription")
    wait_until(lambda: pose_pub.get_subscription_count() > 0 and wrench_pub.get_subscription_count() > 0, 15,
               "the driver's state subscriptions")

    with pytest.raises(DriverError, match="not started"):
        driver.execute(DeltaCommand.hold(-1.0))
    driver.start()
    with pytest.raises(DriverError, match="no pose received on 'franka_robot_state_broadcaster/current_pose'"):
        driver.execute(DeltaCommand.hold(-1.0))

    measured = make_pose([0.45, 0.05, 0.3], np.diag([1.0, -1.0, -1.0]))
    wrench = WrenchStamped()
    wrench.wrench.force.z, wrench.wrench.torque.x = 4.5, -0.25
    wrench_pub.publish(wrench)
    wait_until(lambda: driver._wrench_msg is not None, 10, "the wrench")
    pose_pub.publish(current_pose(broadcaster, measured))
    wait_until(lambda: driver._pose_msg is not None, 10, "the current pose")
    np.testing.assert_allclose(driver.read_state().external_wrench, [0, 0, 4.5, -0.25, 0, 0])
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
