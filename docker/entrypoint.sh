#!/usr/bin/env bash
# Source ROS 2 and the install space (franka_ros2, crisp_controllers, imgen), then run the command.
set -e
source "/opt/ros/${ROS_DISTRO}/setup.bash"
source /opt/ws/install/setup.bash
exec "$@"
