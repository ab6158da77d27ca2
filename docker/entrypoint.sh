#!/usr/bin/env bash
# Source ROS 2, franka_ros2 (when built from source) and the imgen workspace, then run the command.
set -e
source "/opt/ros/${ROS_DISTRO}/setup.bash"
if [[ -f /opt/franka_ws/install/setup.bash ]]; then source /opt/franka_ws/install/setup.bash; fi
source /opt/imgen/install/setup.bash
exec "$@"
