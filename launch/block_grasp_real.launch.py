"""Block grasp on the real Franka FR3 with a RealSense D415 and a human supervisor.

    ros2 launch imgen_ros block_grasp_real.launch.py robot_ip:=172.16.0.2 \\
        checkpoint:=/data/bc_rnn.pth driver:=libfranka teleop:=joy record_dir:=/data/recordings

Nodes: realsense2_camera (depth 640x480 @ 30 Hz; topics camera/camera/depth/*), cube_pose_estimator
(ICP; extrinsics in config/cube_pose_estimator.yaml), policy_node (20 Hz), intervention_arbiter
(the one safety filter; config/arbiter.yaml), teleop (``joy``: the spacenav driver + joy_teleop;
``spacemouse``: evdev directly; ``keyboard``: in an xterm), robot_driver (``libfranka``: FCI via
franky, 1 kHz loop in libfranka; ``franka_ros2``: targets to a Cartesian impedance controller,
with ``franka_bringup:=true`` also franka_ros2's franka.launch.py) and the recorder (one rosbag2 per
episode). Episodes: ``start_episode`` / ``stop_episode`` services of the arbiter.
"""

from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import (
    AndSubstitution,
    EqualsSubstitution,
    LaunchConfiguration,
    PathJoinSubstitution,
    PythonExpression,
)
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

PACKAGE = "imgen_ros"


def config(name: str) -> PathJoinSubstitution:
    return PathJoinSubstitution([FindPackageShare(PACKAGE), "config", name])


def generate_launch_description() -> LaunchDescription:
    lc = LaunchConfiguration
    args = [
        DeclareLaunchArgument("robot_ip", default_value="172.16.0.2", description="FR3 control box (FCI) address"),
        DeclareLaunchArgument("checkpoint", description="robomimic checkpoint (.pth) of the policy"),
        DeclareLaunchArgument("driver", default_value="libfranka", choices=["libfranka", "franka_ros2"]),
        DeclareLaunchArgument("record_dir", default_value="recordings", description="one rosbag2 per episode here"),
        DeclareLaunchArgument("teleop", default_value="joy", choices=["joy", "spacemouse", "keyboard"]),
        DeclareLaunchArgument("spacemouse_device",
                              default_value="/dev/input/by-id/usb-3Dconnexion_SpaceMouse_Compact-event-mouse",
                              description="evdev node (teleop:=spacemouse)"),
        DeclareLaunchArgument("franka_bringup", default_value="false", choices=["true", "false"],
                              description="driver:=franka_ros2: also include franka_bringup/franka.launch.py"),
        DeclareLaunchArgument("arbiter_rt_priority", default_value="80",
                              description="SCHED_FIFO priority of the arbiter (its 200 Hz watchdog); 0 = off. "
                                          "Needs an rtprio limit (docker/compose.yaml grants it)"),
        DeclareLaunchArgument("namespace", default_value="", description="robot namespace for all topics"),
    ]
    camera = Node(
        package="realsense2_camera", executable="realsense2_camera_node", namespace="camera", name="camera",
        output="screen",
        parameters=[{"enable_depth": True, "enable_color": False, "enable_infra1": False, "enable_infra2": False,
                     "depth_module.depth_profile": "640x480x30", "pointcloud.enable": False,
                     "align_depth.enable": False}])
    estimator = Node(package=PACKAGE, executable="cube_pose_estimator", name="cube_pose_estimator", output="screen",
                     parameters=[config("cube_pose_estimator.yaml")])
    policy = Node(package=PACKAGE, executable="policy_node", name="policy_node", output="screen",
                  parameters=[config("policy.yaml"), {"checkpoint": ParameterValue(lc("checkpoint"), value_type=str)}])
    rt = lc("arbiter_rt_priority")
    arbiter = Node(package=PACKAGE, executable="intervention_arbiter", name="intervention_arbiter", output="screen",
                   parameters=[config("arbiter.yaml")],
                   prefix=PythonExpression(["'chrt -f ", rt, "' if int('", rt, "') > 0 else ''"]))
    spacenav = Node(package="spacenav", executable="spacenav_node", name="spacenav", output="screen",
                    condition=IfCondition(EqualsSubstitution(lc("teleop"), "joy")))
    joy = Node(package=PACKAGE, executable="joy_teleop", name="joy_teleop", output="screen",
               parameters=[config("teleop.yaml")], condition=IfCondition(EqualsSubstitution(lc("teleop"), "joy")))
    spacemouse = Node(package=PACKAGE, executable="spacemouse_teleop", name="spacemouse_teleop", output="screen",
                      parameters=[config("teleop.yaml"),
                                  {"device_path": ParameterValue(lc("spacemouse_device"), value_type=str)}],
                      condition=IfCondition(EqualsSubstitution(lc("teleop"), "spacemouse")))
    keyboard = Node(package=PACKAGE, executable="keyboard_teleop", name="keyboard_teleop", prefix="xterm -e",
                    parameters=[config("teleop.yaml")],
                    condition=IfCondition(EqualsSubstitution(lc("teleop"), "keyboard")))
    driver = Node(package=PACKAGE, executable="robot_driver", name="robot_driver", output="screen",
                  parameters=[config("robot_driver.yaml"), {
                      "driver": ParameterValue(lc("driver"), value_type=str),
                      "libfranka.robot_ip": ParameterValue(lc("robot_ip"), value_type=str)}])
    franka = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare("franka_bringup"), "launch",
                                                            "franka.launch.py"])),
        launch_arguments={"robot_ip": lc("robot_ip"), "arm_id": "fr3", "load_gripper": "true"}.items(),
        condition=IfCondition(AndSubstitution(lc("franka_bringup"), EqualsSubstitution(lc("driver"), "franka_ros2"))))
    recorder = Node(package=PACKAGE, executable="recorder", name="recorder", output="screen",
                    parameters=[config("recorder.yaml"),
                                {"record_dir": ParameterValue(lc("record_dir"), value_type=str), "robot": "fr3"}])
    graph = GroupAction([PushRosNamespace(lc("namespace")), camera, estimator, policy, arbiter, spacenav, joy,
                         spacemouse, keyboard, driver, franka, recorder])
    return LaunchDescription([*args, graph])
