"""Teleop devices (ROS-free): keyboard and SpaceMouse, all emitting one :class:`TeleopCommand` shape.

``from imgen_ros.teleop import KeyboardDevice, SpaceMouseDevice, TeleopPolicy``
"""

from imgen_ros.teleop.device import DeadDeviceDetector, TeleopCommand, TeleopDevice
from imgen_ros.teleop.keyboard import KeyboardConfig, KeyboardDevice, glfw_key_name
from imgen_ros.teleop.policy import TeleopPolicy
from imgen_ros.teleop.spacemouse import SpaceMouseConfig, SpaceMouseDevice

__all__ = ["DeadDeviceDetector", "KeyboardConfig", "KeyboardDevice", "SpaceMouseConfig", "SpaceMouseDevice",
           "TeleopCommand", "TeleopDevice", "TeleopPolicy", "glfw_key_name"]
