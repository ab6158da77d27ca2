"""Interventional MimicGen generation as a ROS 2 action server.

    ros2 launch imgen_ros generate.launch.py
    ros2 action send_goal --feedback /generate_interventions imgen_msgs/action/GenerateInterventions \\
      "{task: block_grasp, source_path: /data/interventions.hdf5, policy: expert, num_episodes: 100, \\
        workers: 0, seed: 0, output_path: /data/imgen_100.hdf5}"

Each goal runs ``imgen generate imgen`` (journaled and resumable: a canceled or killed goal resumes
when sent again) and reports attempts, successes, success rate, episodes per minute and the ETA.
``ros2 launch`` exits 1 when the server fails (0 after a clean exit or Ctrl-C).
"""

from imgen_ros.launch_exit import end_launch_on_exit
from launch.actions import DeclareLaunchArgument, GroupAction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    lc = LaunchConfiguration
    args = [
        DeclareLaunchArgument("feedback_period_s", default_value="1.0", description="progress feedback period"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the action server"),
    ]
    server = Node(package="imgen_ros", executable="generation_server", name="generation_server", output="screen",
                  parameters=[{"feedback_period_s": ParameterValue(lc("feedback_period_s"), value_type=float)}],
                  on_exit=end_launch_on_exit("generation_server", Shutdown))
    return LaunchDescription([*args, GroupAction([PushRosNamespace(lc("namespace")), server])])
