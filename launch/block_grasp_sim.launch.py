"""Block grasp in simulation: the real robot's graph with sim_node standing in for the FR3 + D415
and the simulated human as the teleop supervisor.

    ros2 launch imgen_ros block_grasp_sim.launch.py checkpoint:=expert noise:=on auto_episodes:=10

Nodes: sim_node (world + simulated human), policy_node, intervention_arbiter, recorder,
generation_server (the GenerateInterventions action), viz_mirror (joint_states, the PoseStamped mirrors
and viz/markers for RViz / Foxglove, with the box of config/arbiter_sim.yaml), and with
``perception:=true`` cube_pose_estimator on the simulated D415 depth stream (else sim_node publishes
the believed cube pose itself). Episodes: call ``sim/reset`` then ``start_episode`` (services), or set
``auto_episodes``. As on the robot, the launch ends when sim_node (the stand-in robot) or the arbiter
exits, and ``ros2 launch`` exits 1 when that process failed.
"""


from imgen_ros.launch_exit import end_launch_on_exit
from imgen_ros.share import config_file as config
from launch.actions import DeclareLaunchArgument, GroupAction, OpaqueFunction, Shutdown
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription

PACKAGE = "imgen_ros"


def check_checkpoint(context) -> list:
    """Refuse a checkpoint policy_node would refuse (missing, corrupt, another task or observation
    layout) before any process starts: else policy_node alone exits and the simulation runs on
    without a policy. Also a seed or auto_episodes that is no integer or outside sim_node's range."""
    from imgen_ros.launch_args import check_sim_arguments
    from imgen_ros.policy.checkpoint import check_policy_spec

    check_sim_arguments({name: LaunchConfiguration(name).perform(context) for name in ("seed", "auto_episodes")})
    check_policy_spec(LaunchConfiguration("checkpoint").perform(context), "block_grasp",
                      LaunchConfiguration("observability").perform(context))
    return []


def generate_launch_description() -> LaunchDescription:
    from imgen_ros.core.viz import arbiter_workspace

    lc = LaunchConfiguration
    perception = lc("perception")
    args = [
        DeclareLaunchArgument("checkpoint", default_value="expert",
                              description="robomimic checkpoint (.pth) or 'expert' (the naive scripted expert)"),
        DeclareLaunchArgument("noise", default_value="on", choices=["on", "off"],
                              description="corrupt the believed cube pose per episode (the paper's setting)"),
        DeclareLaunchArgument("observability", default_value="full", choices=["full", "partial", "none"],
                              description="what the policy observes of the cube (the task's observability)"),
        DeclareLaunchArgument("seed", default_value="0", description="scene seed of the first episode"),
        DeclareLaunchArgument("auto_episodes", default_value="0",
                              description="> 0: run this many episodes back to back"),
        DeclareLaunchArgument("record_dir", default_value="recordings", description="one rosbag2 per episode here"),
        DeclareLaunchArgument("record", default_value="true", choices=["true", "false"],
                              description="run the recorder"),
        DeclareLaunchArgument("perception", default_value="false", choices=["true", "false"],
                              description="estimate the cube pose with ICP on the simulated D415 depth"),
        DeclareLaunchArgument("namespace", default_value="", description="robot namespace for all topics"),
    ]
    # no `name=`: a name remap would rename every node of the process (sim_node also hosts the
    # simulated human teleop and the generation server)
    sim = Node(
        package=PACKAGE, executable="sim_node", output="screen", on_exit=end_launch_on_exit("sim_node", Shutdown),
        parameters=[config("sim.yaml"), {
            "noise": ParameterValue(lc("noise"), value_type=str),
            "observability": ParameterValue(lc("observability"), value_type=str),
            "seed": ParameterValue(lc("seed"), value_type=int),
            "auto_episodes": ParameterValue(lc("auto_episodes"), value_type=int),
            "simulated_human": True,
            "depth_rate_hz": ParameterValue(PythonExpression(["30.0 if '", perception, "' == 'true' else 0.0"]),
                                            value_type=float),
            "publish_observed_pose": ParameterValue(PythonExpression(["'", perception, "' != 'true'"]),
                                                    value_type=bool),
        }])
    estimator = Node(package=PACKAGE, executable="cube_pose_estimator", name="cube_pose_estimator", output="screen",
                     parameters=[config("cube_pose_estimator.yaml")], condition=IfCondition(perception))
    policy = Node(
        package=PACKAGE, executable="policy_node", name="policy_node", output="screen",
        parameters=[config("policy.yaml"), {
            "checkpoint": ParameterValue(lc("checkpoint"), value_type=str),
            "observation.observability": ParameterValue(lc("observability"), value_type=str),
        }])
    arbiter = Node(package=PACKAGE, executable="intervention_arbiter", name="intervention_arbiter", output="screen",
                   parameters=[config("arbiter_sim.yaml")],
                   on_exit=end_launch_on_exit("intervention_arbiter", Shutdown))
    recorder = Node(
        package=PACKAGE, executable="recorder", name="recorder", output="screen", condition=IfCondition(lc("record")),
        parameters=[config("recorder.yaml"), {
            "record_dir": ParameterValue(lc("record_dir"), value_type=str),
            "noise": ParameterValue(lc("noise"), value_type=str),
            "observability": ParameterValue(lc("observability"), value_type=str),
            "robot": "sim",
        }])
    generation = Node(package=PACKAGE, executable="generation_server", name="generation_server", output="screen")
    # the box drawn is the box the arbiter enforces
    viz = Node(package=PACKAGE, executable="viz_mirror", name="viz_mirror", output="screen",
               parameters=[config("viz_mirror.yaml"), arbiter_workspace(config("arbiter_sim.yaml"))])
    # the checkpoint is checked before any process starts
    graph = GroupAction([PushRosNamespace(lc("namespace")), OpaqueFunction(function=check_checkpoint), sim,
                         estimator, policy, arbiter, recorder, generation, viz])
    return LaunchDescription([*args, graph])
