"""Build a driver by name: ``sim`` | ``libfranka`` | ``franka_ros2``. Optional dependencies are
imported only for the driver selected, and a missing one is a MissingDependencyError naming it."""

from __future__ import annotations

from typing import Any

from imgen_ros.robot.interface import RobotDriver

DRIVER_KINDS = ("sim", "libfranka", "franka_ros2")


def make_driver(kind: str, *, env: Any = None, node: Any = None, libfranka: Any = None,
                franka_ros2: Any = None) -> RobotDriver:
    """``sim`` needs ``env`` (a TaskEnv); ``libfranka`` takes a LibfrankaConfig; ``franka_ros2`` needs
    ``node`` (an rclpy Node spun by the caller) and takes a FrankaRos2Config."""
    if kind == "sim":
        if env is None:
            raise ValueError("the sim driver needs env= (an imgen_ros.sim TaskEnv)")
        from imgen_ros.robot.sim import SimDriver

        return SimDriver(env)
    if kind == "libfranka":
        from imgen_ros.robot.libfranka import LibfrankaDriver

        return LibfrankaDriver(libfranka)
    if kind == "franka_ros2":
        from imgen_ros.robot.franka_ros2 import FrankaRos2Driver, load_franka_interfaces

        interfaces = load_franka_interfaces()  # fail on the missing package before anything else
        if node is None:
            raise ValueError("the franka_ros2 driver needs node= (an rclpy Node spun by the caller)")
        return FrankaRos2Driver(node, franka_ros2, interfaces)
    raise ValueError(f"unknown robot driver {kind!r}; valid: {', '.join(DRIVER_KINDS)}")
