"""Shared rclpy glue for the imgen nodes (not a node): QoS profiles, message <-> core conversions,
typed configs from ROS parameters, and a main() runner with a clean shutdown.
"""

from __future__ import annotations

import importlib
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose as PoseMsg
from numpy.typing import NDArray
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

from imgen_msgs.msg import DeltaPoseCommand
from imgen_ros.core import topics
from imgen_ros.core.command import DeltaCommand
from imgen_ros.core.params import build_config, flat_defaults
from imgen_ros.core.pose import Pose, pos_quat_from_pose, pose_from_pos_quat

T = TypeVar("T")

_PROFILES = {
    "STATE": QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT,
                        durability=DurabilityPolicy.VOLATILE),
    "SENSOR": qos_profile_sensor_data,
    "COMMAND": QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.VOLATILE),
    "LATCHED": QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL),
    "EVENTS": QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL),
}


def qos(topic: str) -> QoSProfile:
    """The QoS profile of a graph topic (see imgen_ros.core.topics)."""
    return _PROFILES[topics.QOS_CLASSES[topic]]


# ---------------------------------------------------------------- time
def to_sec(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def to_stamp(seconds: float) -> Time:
    sec = int(np.floor(seconds))
    return Time(sec=sec, nanosec=min(round((seconds - sec) * 1e9), 999_999_999))


def now_s(node: Node) -> float:
    return node.get_clock().now().nanoseconds * 1e-9


# ---------------------------------------------------------------- conversions
def command_to_msg(command: DeltaCommand, frame_id: str = topics.BASE_FRAME) -> DeltaPoseCommand:
    msg = DeltaPoseCommand()
    msg.header.stamp = to_stamp(command.stamp)
    msg.header.frame_id = frame_id
    msg.translation = [float(v) for v in command.translation]
    msg.rotation = [float(v) for v in command.rotation]
    msg.gripper = float(command.gripper)
    msg.source = int(command.source)
    msg.step = int(command.step)
    return msg


def command_from_msg(msg: DeltaPoseCommand) -> DeltaCommand:
    return DeltaCommand(np.asarray(msg.translation, float), np.asarray(msg.rotation, float), msg.gripper,
                        msg.source, to_sec(msg.header.stamp), msg.step)


def pose_to_msg(pose: Pose) -> PoseMsg:
    pos, quat = pos_quat_from_pose(pose)
    msg = PoseMsg()
    msg.position.x, msg.position.y, msg.position.z = (float(v) for v in pos)
    msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w = (float(v) for v in quat)
    return msg


def pose_msg_arrays(msg: PoseMsg) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(position (3,), quaternion xyzw (4,)) without normalizing (NaN stays NaN)."""
    p, q = msg.position, msg.orientation
    return np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w])


def pose_from_msg(msg: PoseMsg) -> Pose:
    pos, quat = pose_msg_arrays(msg)
    return pose_from_pos_quat(pos, quat)


def message_class(type_name: str) -> type:
    """The rclpy message class of ``pkg/msg/Name``."""
    package, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


# ---------------------------------------------------------------- typed configs
def declare_config(node: Node, cls: type[T], extra: dict[str, Any] | None = None) -> T:
    """Declare every field of ``cls`` (dotted names, dataclass defaults) as a parameter and build it.

    ``extra`` declares further node-level parameters (name -> default) that are not part of ``cls``.
    """
    for name, default in {**flat_defaults(cls), **(extra or {})}.items():
        node.declare_parameter(name, default)
    values = {name: node.get_parameter(name).value for name in flat_defaults(cls)}
    return build_config(cls, values, source=f"node '{node.get_name()}' parameters")


# ---------------------------------------------------------------- main
def run(make_node: Callable[[], Node | Sequence[Node]], args: Sequence[str] | None = None,
        threads: int = 1, threads_fn: Callable[[list[Node]], int] | None = None) -> None:
    """Init rclpy, spin the node(s) ``make_node`` returns (``threads`` > 1: multi-threaded executor),
    shut down cleanly on SIGINT/SIGTERM (each node's optional ``close()`` runs first).

    Keep ``threads`` at 1 for anything with frequent callbacks: this rclpy's multi-threaded executor
    re-queues tasks that wait for a worker and so busy-waits a core and starves timers
    (ros2/rclpy#1452; measured here: a 100 Hz timer delivered 18 of 500 messages in 5 s at 100 % CPU).
    Only the generation server, whose one long goal runs as an executing task, uses more."""
    rclpy.init(args=args if args is not None else sys.argv)
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    nodes: list[Node] = []
    try:
        made = make_node()
        nodes = [made] if isinstance(made, Node) else list(made)
        if threads_fn is not None:
            threads = threads_fn(nodes)
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
        for node in nodes:
            executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RCLError:
        if rclpy.ok():
            raise   # a real error; otherwise SIGINT shut the context down while spinning
    finally:
        for node in reversed(nodes):
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
