"""Block grasp on the real Franka FR3 with a RealSense D415 and a human supervisor.

    ros2 launch imgen_ros block_grasp_real.launch.py robot_ip:=172.16.0.2 checkpoint:=/data/bc_rnn.pth \\
        extrinsics:=/data/hand_eye.yaml driver:=libfranka teleop:=joy record_dir:=/data/recordings

Nodes: realsense2_camera (depth 640x480 @ 30 Hz; topics camera/camera/depth/*; its own TF off),
a static transform fr3_link0 -> camera_depth_optical_frame from the hand-eye calibration file
``extrinsics`` (the same file cube_pose_estimator uses: one source of truth; the shipped
``config/camera_extrinsics_sim.yaml`` is the simulator's mount and is refused unless
``allow_sim_extrinsics:=true``), cube_pose_estimator (ICP), policy_node (20 Hz), intervention_arbiter
(the one safety filter; config/arbiter.yaml; SCHED_FIFO where the host grants it, a warning where
not), teleop (``joy``: the spacenav driver + joy_teleop; ``spacemouse``: evdev directly;
``keyboard``: in an xterm), robot_driver (``libfranka``: FCI via franky, 1 kHz loop in libfranka;
``franka_ros2``: PoseStamped targets for crisp_controllers' Cartesian impedance controller, spawned
here from config/franka_controllers.yaml; with ``franka_bringup:=true`` also franka_ros2's
franka.launch.py) and the recorder (one rosbag2 per episode). The launch ends when the robot
driver or the arbiter exits. Episodes: the arbiter's ``start_episode`` / ``stop_episode`` services.

Every imgen parameter file is keyed ``/**/<node>``, so ``namespace:=fr3`` keeps them applied.
Checked against franka_ros2 v3.4.0 (franka_bringup/launch/franka.launch.py: ``robot_type``,
``namespace``, ``controllers_yaml``), realsense-ros 4.56.1 (rs_launch.py parameters) and ros2_control's
jazzy spawner (``--param-file``, ``--controller-manager``).
"""

from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription, OpaqueFunction, Shutdown
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import (
    AndSubstitution,
    EqualsSubstitution,
    LaunchConfiguration,
    PathJoinSubstitution,
)
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

PACKAGE = "imgen_ros"


def config(name: str) -> PathJoinSubstitution:
    return PathJoinSubstitution([FindPackageShare(PACKAGE), "config", name])


def camera_nodes(context, *_args, **_kwargs) -> list:
    """The static camera transform and the estimator, from one checked calibration file."""
    from imgen_ros.perception.extrinsics import load_extrinsics, require_calibrated

    path = LaunchConfiguration("extrinsics").perform(context)
    allow = LaunchConfiguration("allow_sim_extrinsics").perform(context).lower()
    if allow not in ("true", "false"):
        raise RuntimeError(f"allow_sim_extrinsics must be true or false, got '{allow}'")
    extrinsics = load_extrinsics(path)           # ExtrinsicsError names the file and the field
    require_calibrated(extrinsics, allow_simulated=allow == "true")
    static_tf = Node(package="tf2_ros", executable="static_transform_publisher", name="camera_extrinsics",
                     output="screen", arguments=extrinsics.static_transform_arguments())
    estimator = Node(package=PACKAGE, executable="cube_pose_estimator", name="cube_pose_estimator", output="screen",
                     parameters=[config("cube_pose_estimator.yaml"), {"extrinsics_file": path}])
    return [static_tf, estimator]


def generate_launch_description() -> LaunchDescription:
    lc = LaunchConfiguration
    args = [
        DeclareLaunchArgument("robot_ip", default_value="172.16.0.2", description="FR3 control box (FCI) address"),
        DeclareLaunchArgument("checkpoint", description="robomimic checkpoint (.pth) of the policy"),
        DeclareLaunchArgument("extrinsics", default_value=config("camera_extrinsics_sim.yaml"),
                              description="hand-eye calibration YAML: depth optical frame in fr3_link0 "
                                          "(imgen_ros.perception.extrinsics; the default is the simulator's)"),
        DeclareLaunchArgument("allow_sim_extrinsics", default_value="false", choices=["true", "false"],
                              description="accept a calibration file marked simulated: true"),
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
                                          "Without an rtprio limit the arbiter runs unprioritized, with a warning"),
        DeclareLaunchArgument("namespace", default_value="", description="robot namespace for all topics"),
    ]
    franka_ros2 = EqualsSubstitution(lc("driver"), "franka_ros2")
    camera = Node(
        package="realsense2_camera", executable="realsense2_camera_node", namespace="camera", name="camera",
        output="screen",
        parameters=[{"enable_depth": True, "enable_color": False, "enable_infra1": False, "enable_infra2": False,
                     "depth_module.depth_profile": "640x480x30", "pointcloud.enable": False,
                     "align_depth.enable": False,
                     # the camera's pose comes from the hand-eye calibration (camera_extrinsics): a
                     # second TF tree rooted at camera_link would give the optical frame two parents
                     "publish_tf": False}])
    policy = Node(package=PACKAGE, executable="policy_node", name="policy_node", output="screen",
                  parameters=[config("policy.yaml"), {"checkpoint": ParameterValue(lc("checkpoint"), value_type=str)}])
    arbiter = Node(package=PACKAGE, executable="intervention_arbiter", name="intervention_arbiter", output="screen",
                   parameters=[config("arbiter.yaml")], on_exit=Shutdown(reason="intervention_arbiter exited"),
                   prefix=["python3 -m imgen_ros.core.realtime --priority ", lc("arbiter_rt_priority"), " --"])
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
                  on_exit=Shutdown(reason="robot_driver exited"),
                  parameters=[config("robot_driver.yaml"), {
                      "driver": ParameterValue(lc("driver"), value_type=str),
                      "libfranka.robot_ip": ParameterValue(lc("robot_ip"), value_type=str)}])
    controller = Node(
        package="controller_manager", executable="spawner", name="imgen_cartesian_controller_spawner",
        output="screen", condition=IfCondition(franka_ros2),
        arguments=["--controller-manager", "controller_manager", "--controller-manager-timeout", "60",
                   "imgen_cartesian_controller", "--param-file", config("franka_controllers.yaml")])
    recorder = Node(package=PACKAGE, executable="recorder", name="recorder", output="screen",
                    parameters=[config("recorder.yaml"),
                                {"record_dir": ParameterValue(lc("record_dir"), value_type=str), "robot": "fr3"}])
    graph = GroupAction([PushRosNamespace(lc("namespace")), camera, OpaqueFunction(function=camera_nodes), policy,
                         arbiter, spacenav, joy, spacemouse, keyboard, driver, controller, recorder])
    # franka.launch.py namespaces its own nodes from its `namespace` argument: included outside the
    # group so that they are not pushed into the namespace twice
    franka = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare("franka_bringup"), "launch",
                                                            "franka.launch.py"])),
        launch_arguments={"robot_type": "fr3", "robot_ip": lc("robot_ip"), "namespace": lc("namespace"),
                          "load_gripper": "true", "controllers_yaml": config("franka_controllers.yaml")}.items(),
        condition=IfCondition(AndSubstitution(lc("franka_bringup"), franka_ros2)))
    return LaunchDescription([*args, graph, franka])
