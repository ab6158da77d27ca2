"""Block grasp on the real Franka FR3 with a RealSense D415 and a human supervisor.

    ros2 launch imgen_ros block_grasp_real.launch.py robot_ip:=172.16.0.2 checkpoint:=/data/bc_rnn.pth \\
        extrinsics:=/data/hand_eye.yaml driver:=libfranka teleop:=joy record_dir:=/data/recordings

Nodes: realsense2_camera (depth 640x480 @ 30 Hz; topics camera/camera/depth/*; its own TF off),
a static transform fr3_link0 -> camera_depth_optical_frame from the hand-eye calibration file
``extrinsics`` (the same file cube_pose_estimator uses: one source of truth; the shipped
``config/camera_extrinsics_sim.yaml`` is the simulator's mount and is refused unless
``allow_sim_extrinsics:=true``), cube_pose_estimator (ICP), contact_detector (the contact reveal
from the FR3's external wrench and gripper width), policy_node (20 Hz), intervention_arbiter
(the one safety filter; config/arbiter.yaml; SCHED_FIFO where the host grants it, a warning where
not), teleop (``joy``: the spacenav driver + joy_teleop; ``spacemouse``: evdev directly;
``keyboard``: in an xterm), robot_driver (``libfranka``: FCI via franky, 1 kHz loop in libfranka;
``franka_ros2``: PoseStamped targets for crisp_controllers' Cartesian impedance controller, spawned
here from config/franka_controllers.yaml; with ``franka_bringup:=true`` also franka_ros2's
franka.launch.py), the recorder (one rosbag2 per episode) and viz_mirror (joint_states, the
PoseStamped mirrors and viz/markers for RViz / Foxglove, with the box of config/arbiter.yaml). With
``robot_description:=true`` robot_state_publisher runs with franka_description's FR3 + Franka Hand
(xacro), fed by viz_mirror's joint_states, so RViz shows the arm (needs franka_description, xacro and
robot_state_publisher; with ``franka_bringup:=true`` franka_bringup runs its own robot_state_publisher
and joint_states, and viz_mirror leaves joint_states to it). The launch ends when the robot driver or
the arbiter exits, and ``ros2 launch`` exits 1 when that process failed (0 when it ended cleanly).
Episodes: the arbiter's ``start_episode`` / ``stop_episode`` services.
A refused calibration, a missing checkpoint or SpaceMouse device, a missing config file or an
uninstalled package stops the launch before any process starts (``launch`` leaves processes it has
just started running when a later action fails).

Every imgen parameter file is keyed ``/**/<node>``, so ``namespace:=fr3`` keeps them applied.
Checked against franka_ros2 v3.4.0 (franka_bringup/launch/franka.launch.py: ``robot_type``,
``namespace``, ``controllers_yaml``), realsense-ros 4.56.1 (rs_launch.py parameters) and ros2_control's
jazzy spawner (``--param-file``, ``--controller-manager``); run with ros2cli/launch/launch_ros jazzy
from source (launch 3.4.3, launch_ros 0.26.6).
"""

import shutil
from pathlib import Path

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from imgen_ros.launch_exit import end_launch_on_exit
from imgen_ros.share import config_file as config
from launch.actions import (
    DeclareLaunchArgument,
    GroupAction,
    IncludeLaunchDescription,
    OpaqueFunction,
    SetEnvironmentVariable,
    Shutdown,
)
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import (
    AndSubstitution,
    EnvironmentVariable,
    EqualsSubstitution,
    LaunchConfiguration,
    NotSubstitution,
    PathJoinSubstitution,
    SubstitutionFailure,
)
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import ExecutableInPackage, FindPackageShare

from launch import LaunchDescription

PACKAGE = "imgen_ros"
# franka_description's FR3 (joints fr3_joint1..7; with the hand fr3_finger_joint1/2, as viz_mirror names them)
FR3_XACRO = ("robots", "fr3", "fr3.urdf.xacro")


def preflight(context, nodes: list[Node], franka: IncludeLaunchDescription,
              franka_launch: PathJoinSubstitution) -> list:
    """Refuse the launch before any process starts: when an action raises, `launch` does not stop the
    processes it has just started, and they outlive `ros2 launch`. Checks the numeric arguments, the
    calibration file, the checkpoint, the SpaceMouse device (teleop:=spacemouse) and that every
    executable the given arguments need is installed."""
    from imgen_ros.launch_args import check_pose_error_seed, check_rt_priority
    from imgen_ros.perception.extrinsics import load_extrinsics, require_calibrated

    check_pose_error_seed(LaunchConfiguration("pose_error_seed").perform(context))
    check_rt_priority(LaunchConfiguration("arbiter_rt_priority").perform(context))
    allow = LaunchConfiguration("allow_sim_extrinsics").perform(context).lower()
    if allow not in ("true", "false"):
        raise RuntimeError(f"allow_sim_extrinsics must be true or false, got '{allow}'")
    extrinsics = load_extrinsics(LaunchConfiguration("extrinsics").perform(context))  # names file and field
    require_calibrated(extrinsics, allow_simulated=allow == "true")
    check_checkpoint(context)
    needed = [("tf2_ros", "static_transform_publisher"), (PACKAGE, "cube_pose_estimator")]
    needed += [(n.node_package, n.node_executable) for n in nodes
               if n.condition is None or n.condition.evaluate(context)]
    missing = []
    for package, executable in needed:
        try:
            ExecutableInPackage(executable, package).perform(context)
        except (PackageNotFoundError, SubstitutionFailure) as err:
            missing.append(_reason(err))
    if franka.condition.evaluate(context):
        try:
            franka_launch.perform(context)
        except PackageNotFoundError as err:
            missing.append(_reason(err))
    if LaunchConfiguration("robot_description").perform(context) == "true":
        if franka.condition.evaluate(context):
            raise RuntimeError("robot_description:=true with franka_bringup:=true: franka_bringup runs its own "
                               "robot_state_publisher (leave robot_description false)")
        missing += _description_missing(context)
    teleop = LaunchConfiguration("teleop").perform(context)
    device = LaunchConfiguration("spacemouse_device").perform(context)
    if teleop == "spacemouse" and not Path(device).exists():
        # else spacemouse_teleop alone exits at start and the graph runs on without its supervisor
        raise RuntimeError(f"spacemouse_device:={device}: no such device (is the SpaceMouse plugged in? "
                           "ls /dev/input/by-id/*event-mouse)")
    if teleop == "keyboard" and shutil.which("xterm") is None:
        missing.append("xterm (teleop:=keyboard opens keyboard_teleop in one)")
    if missing:
        raise RuntimeError("not installed: " + "; ".join(missing) + " (imgen_ros's package.xml lists what the "
                           "launch files run)")
    return []


def check_checkpoint(context) -> None:
    """The policy spec is the scripted expert or a checkpoint policy_node will accept (safe load, task
    block_grasp, full observability's layout): else policy_node alone would exit at start and the
    rest of the graph would keep running without a policy."""
    from imgen_ros.policy.checkpoint import check_policy_spec

    check_policy_spec(LaunchConfiguration("checkpoint").perform(context), "block_grasp", "full")


def _description_missing(context) -> list[str]:
    """What robot_description:=true needs and is not installed."""
    missing = []
    try:
        ExecutableInPackage("robot_state_publisher", "robot_state_publisher").perform(context)
    except (PackageNotFoundError, SubstitutionFailure) as err:
        missing.append(_reason(err))
    try:
        if not Path(get_package_share_directory("franka_description"), *FR3_XACRO).is_file():
            missing.append(f"franka_description/{'/'.join(FR3_XACRO)}")
    except PackageNotFoundError as err:
        missing.append(_reason(err))
    try:
        import xacro  # noqa: F401
    except ImportError:
        missing.append("xacro (Python module)")
    return missing


def description_nodes(context, *_args, **_kwargs) -> list:
    """robot_state_publisher with franka_description's FR3 + Franka Hand (robot_description:=true), on
    viz_mirror's joint_states (the camera transform comes from the calibration file: camera_nodes)."""
    if LaunchConfiguration("robot_description").perform(context) != "true":
        return []
    import xacro

    path = Path(get_package_share_directory("franka_description"), *FR3_XACRO)
    urdf = xacro.process_file(str(path), mappings={"hand": "true", "ee_id": "franka_hand"}).toprettyxml(indent="  ")
    return [Node(package="robot_state_publisher", executable="robot_state_publisher", name="robot_state_publisher",
                 output="screen", parameters=[{"robot_description": urdf}])]


def _reason(err: Exception) -> str:
    """The first clause of ament_index's / launch_ros's message (without the search path)."""
    return str(err.args[0] if err.args else err).split(", searching")[0]


def camera_nodes(context, *_args, **_kwargs) -> list:
    """The static camera transform and the estimator, from the calibration file preflight checked."""
    from imgen_ros.perception.extrinsics import load_extrinsics

    path = LaunchConfiguration("extrinsics").perform(context)
    extrinsics = load_extrinsics(path)
    static_tf = Node(package="tf2_ros", executable="static_transform_publisher", name="camera_extrinsics",
                     output="screen", arguments=extrinsics.static_transform_arguments())
    estimator = Node(package=PACKAGE, executable="cube_pose_estimator", name="cube_pose_estimator", output="screen",
                     parameters=[config("cube_pose_estimator.yaml"), {"extrinsics_file": path}])
    return [static_tf, estimator]


def generate_launch_description() -> LaunchDescription:
    from imgen_ros.core.viz import arbiter_workspace

    lc = LaunchConfiguration
    args = [
        DeclareLaunchArgument("robot_ip", default_value="172.16.0.2", description="FR3 control box (FCI) address"),
        DeclareLaunchArgument("checkpoint", description="robomimic checkpoint (.pth) of the policy, or 'expert' "
                                                        "(the naive scripted expert)"),
        DeclareLaunchArgument("extrinsics", default_value=config("camera_extrinsics_sim.yaml"),
                              description="hand-eye calibration YAML: depth optical frame in fr3_link0 "
                                          "(imgen_ros.perception.extrinsics; the default is the simulator's)"),
        DeclareLaunchArgument("allow_sim_extrinsics", default_value="false", choices=["true", "false"],
                              description="accept a calibration file marked simulated: true"),
        DeclareLaunchArgument("driver", default_value="libfranka", choices=["libfranka", "franka_ros2"],
                              description="robot_driver backend: FCI via franky, or franka_ros2's controllers"),
        DeclareLaunchArgument("libfranka_realtime", default_value="true", choices=["true", "false"],
                              description="driver:=libfranka: refuse to run without a real-time kernel (false only "
                                          "for franky-sim or a bench test without the arm moving under load)"),
        DeclareLaunchArgument("record_dir", default_value="recordings", description="one rosbag2 per episode here"),
        DeclareLaunchArgument("teleop", default_value="joy", choices=["joy", "spacemouse", "keyboard"],
                              description="supervisor input: spacenav + joy_teleop, evdev SpaceMouse, or keys in "
                                          "an xterm"),
        DeclareLaunchArgument("spacemouse_device",
                              default_value="/dev/input/by-id/usb-3Dconnexion_SpaceMouse_Compact-event-mouse",
                              description="evdev node (teleop:=spacemouse)"),
        DeclareLaunchArgument("franka_bringup", default_value="false", choices=["true", "false"],
                              description="driver:=franka_ros2: also include franka_bringup/franka.launch.py"),
        DeclareLaunchArgument("arbiter_rt_priority", default_value="80",
                              description="SCHED_FIFO priority of the arbiter (its 200 Hz watchdog); 0 = off. "
                                          "Without an rtprio limit the arbiter runs unprioritized, with a warning"),
        DeclareLaunchArgument("namespace", default_value="", description="robot namespace for all topics"),
        DeclareLaunchArgument("pose_error", default_value="off", choices=["off", "task"],
                              description="task: corrupt the believed cube pose per episode with the task's own "
                                          "model (core.corruption, as in simulation; the paper's real-robot "
                                          "evaluation), recorded on policy/pose_error"),
        DeclareLaunchArgument("pose_error_seed", default_value="0",
                              description="pose_error:=task: episode k uses seed + k"),
        DeclareLaunchArgument("robot_description", default_value="false", choices=["true", "false"],
                              description="run robot_state_publisher with franka_description's FR3 + hand on "
                                          "viz_mirror's joint_states, so RViz shows the arm (where "
                                          "franka_description and xacro are installed; not with "
                                          "franka_bringup:=true, which runs its own)"),
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
                  parameters=[config("policy.yaml"), {
                      "checkpoint": ParameterValue(lc("checkpoint"), value_type=str),
                      "fresh_state_s": 0.005,   # act on a robot state ~1 ms old, not up to one period
                      "observation.noise.mode": ParameterValue(lc("pose_error"), value_type=str),
                      "observation.noise.seed": ParameterValue(lc("pose_error_seed"), value_type=int)}])
    # exec_name: launch labels a process by its first word, here the prefix's (`[python3-5]`)
    arbiter = Node(package=PACKAGE, executable="intervention_arbiter", name="intervention_arbiter", output="screen",
                   exec_name="intervention_arbiter", parameters=[config("arbiter.yaml")],
                   on_exit=end_launch_on_exit("intervention_arbiter", Shutdown),
                   prefix=["python3 -m imgen_ros.core.realtime --priority ", lc("arbiter_rt_priority"), " --"])
    spacenav = Node(package="spacenav", executable="spacenav_node", name="spacenav", output="screen",
                    condition=IfCondition(EqualsSubstitution(lc("teleop"), "joy")))
    joy = Node(package=PACKAGE, executable="joy_teleop", name="joy_teleop", output="screen",
               parameters=[config("joy_teleop.yaml")], condition=IfCondition(EqualsSubstitution(lc("teleop"), "joy")))
    spacemouse = Node(package=PACKAGE, executable="spacemouse_teleop", name="spacemouse_teleop", output="screen",
                      parameters=[config("spacemouse_teleop.yaml"),
                                  {"device_path": ParameterValue(lc("spacemouse_device"), value_type=str)}],
                      condition=IfCondition(EqualsSubstitution(lc("teleop"), "spacemouse")))
    keyboard = Node(package=PACKAGE, executable="keyboard_teleop", name="keyboard_teleop", prefix="xterm -e",
                    parameters=[config("keyboard_teleop.yaml")],
                    condition=IfCondition(EqualsSubstitution(lc("teleop"), "keyboard")))
    driver = Node(package=PACKAGE, executable="robot_driver", name="robot_driver", output="screen",
                  on_exit=end_launch_on_exit("robot_driver", Shutdown),
                  parameters=[config("robot_driver.yaml"), {
                      "driver": ParameterValue(lc("driver"), value_type=str),
                      "libfranka.robot_ip": ParameterValue(lc("robot_ip"), value_type=str),
                      "libfranka.enforce_realtime": ParameterValue(lc("libfranka_realtime"), value_type=bool)}])
    controller = Node(
        package="controller_manager", executable="spawner", name="imgen_cartesian_controller_spawner",
        output="screen", condition=IfCondition(franka_ros2),
        arguments=["--controller-manager", "controller_manager", "--controller-manager-timeout", "60",
                   "imgen_cartesian_controller", "--param-file", config("franka_controllers.yaml")])
    # the observability channel from the FR3's external wrench and gripper width (core/contact.py):
    # the reveal a sim-trained checkpoint learned to use
    contact = Node(package=PACKAGE, executable="contact_detector", name="contact_detector", output="screen",
                   parameters=[config("contact_detector.yaml")])
    recorder = Node(package=PACKAGE, executable="recorder", name="recorder", output="screen",
                    parameters=[config("recorder.yaml"),
                                {"record_dir": ParameterValue(lc("record_dir"), value_type=str), "robot": "fr3"}])
    # the mirrors for RViz / Foxglove; the box drawn is the box the arbiter enforces. franka_bringup's
    # joint_state_publisher publishes joint_states itself (same names): then viz_mirror does not
    viz = Node(package=PACKAGE, executable="viz_mirror", name="viz_mirror", output="screen",
               parameters=[config("viz_mirror.yaml"), arbiter_workspace(config("arbiter.yaml")), {
                   "publish_joint_states": ParameterValue(
                       NotSubstitution(AndSubstitution(lc("franka_bringup"), franka_ros2)), value_type=bool)}])
    # franka.launch.py namespaces its own nodes from its `namespace` argument: included outside the
    # group so that they are not pushed into the namespace twice
    franka_launch = PathJoinSubstitution([FindPackageShare("franka_bringup"), "launch", "franka.launch.py"])
    # franka.launch.py's other arguments would otherwise pass through from our command line; the ones
    # that would take robot_driver's inputs away (state broadcaster off, fake hardware, a topic prefix)
    # are pinned here (joint_state_rate, RViz's joint_states only, stays the user's)
    franka = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(franka_launch),
        launch_arguments={"robot_type": "fr3", "robot_ip": lc("robot_ip"), "namespace": lc("namespace"),
                          "load_gripper": "true", "controllers_yaml": config("franka_controllers.yaml"),
                          "arm_prefix": "", "use_fake_hardware": "false", "fake_sensor_commands": "false",
                          "load_franka_robot_state_broadcaster": "true"}.items(),
        condition=IfCondition(AndSubstitution(lc("franka_bringup"), franka_ros2)))
    nodes = [camera, policy, arbiter, contact, spacenav, joy, spacemouse, keyboard, driver, controller, recorder, viz]
    graph = GroupAction([PushRosNamespace(lc("namespace")),
                         OpaqueFunction(function=preflight, args=[nodes, franka, franka_launch]),
                         # the description before the camera: a failing xacro must not leave processes running
                         OpaqueFunction(function=description_nodes), OpaqueFunction(function=camera_nodes),
                         *nodes])
    # 640x480 depth frames (614 KB) exceed Fast DDS's default 512 KB shared-memory segment and then
    # go over fragmented UDP, losing most frames: config/fastdds_shm.xml, unless the user set a profile
    dds_profile = SetEnvironmentVariable(
        "FASTDDS_DEFAULT_PROFILES_FILE", config("fastdds_shm.xml"),
        condition=IfCondition(EqualsSubstitution(EnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                                                                     default_value=""), "")))
    return LaunchDescription([*args, dds_profile, graph, franka])
