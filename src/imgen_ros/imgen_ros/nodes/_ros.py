"""Shared rclpy glue for the imgen nodes (not a node): QoS profiles, message <-> core conversions,
typed configs from ROS parameters (read-only unless live), ``/diagnostics`` publication, and a
main() runner with a clean shutdown.
"""

from __future__ import annotations

import array
import importlib
import math
import signal
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose as PoseMsg
from numpy.typing import NDArray
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.duration import Duration
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    LivelinessPolicy,
    QoSProfile,
    ReliabilityPolicy,
)

from imgen_msgs.msg import DeltaPoseCommand
from imgen_ros.core import qos as qos_profiles
from imgen_ros.core import topics
from imgen_ros.core.command import DeltaCommand
from imgen_ros.core.diagnostics import PERIOD_S as DIAGNOSTICS_PERIOD_S
from imgen_ros.core.diagnostics import Level, Status
from imgen_ros.core.params import (
    BUILTIN_PARAMETERS,
    ConfigError,
    Interval,
    ParamInfo,
    ParamSpec,
    build_config,
    check_sections,
    extra_table,
    fully_qualified,
    overrides_for,
    param_table,
    ros_param_sources,
    with_values,
)
from imgen_ros.core.pose import Pose, pos_quat_from_pose, pose_from_pos_quat

T = TypeVar("T")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class StartupError(RuntimeError):
    """A node cannot start, for a reason it has already logged as one FATAL line (e.g. the robot is
    unreachable, a checkpoint unreadable): :func:`run` exits with ``exit_code`` without a traceback.
    Raise it through :func:`refuse_start`, which logs the line."""

    def __init__(self, reason: str, exit_code: int = 1) -> None:
        super().__init__(reason)
        self.exit_code = exit_code


def refuse_start(node: Node, reason: str, exit_code: int = 1) -> NoReturn:
    """Log ``refusing to start: <reason>`` as one FATAL line of ``node`` and raise :class:`StartupError`
    (exit 2 for a bad parameter or input file, as ``imgen``'s CLI; 1 for an unreachable device)."""
    node.get_logger().fatal(f"refusing to start: {_one_line(reason)}")
    raise StartupError(reason, exit_code)


def rclpy_qos(profile: qos_profiles.QosProfile) -> QoSProfile:
    """The rclpy QoSProfile of a ROS-free description (core.qos); unset durations stay rclpy's default."""
    durations = {name: Duration(nanoseconds=ns) for name, ns in (("deadline", profile.deadline_ns),
                                                                 ("lifespan", profile.lifespan_ns),
                                                                 ("liveliness_lease_duration",
                                                                  profile.liveliness_lease_ns)) if ns is not None}
    return QoSProfile(history=HistoryPolicy[profile.history.upper()], depth=profile.depth,
                      reliability=ReliabilityPolicy[profile.reliability.upper()],
                      durability=DurabilityPolicy[profile.durability.upper()],
                      liveliness=LivelinessPolicy[profile.liveliness.upper()],
                      avoid_ros_namespace_conventions=profile.avoid_ros_namespace_conventions, **durations)


_PROFILES = {name: rclpy_qos(profile) for name, profile in qos_profiles.PROFILES.items()}


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
_process_sources_checked = False   # the process's --params-file / -p sources were checked (by its first node)


READ_ONLY_NOTE = "read-only: read at start-up; change it in the parameter file (or -p) and restart the node"


def _descriptor(name: str, info: ParamInfo, read_only: bool = False) -> ParameterDescriptor:
    """description, type, (scalar numbers) the range of a parameter, from its spec, and whether it
    is read-only (its description then says how to change it)."""
    spec = info.spec or ParamSpec()
    doc = f"{spec.doc} ({READ_ONLY_NOTE})" if read_only and spec.doc else READ_ONLY_NOTE if read_only else spec.doc
    descriptor = ParameterDescriptor(name=name, type=Parameter.Type.from_parameter_value(info.default).value,
                                     description=doc, additional_constraints=spec.constraint(),
                                     read_only=read_only)
    span = spec.range
    if isinstance(span, Interval) and math.isfinite(span.lo) and math.isfinite(span.hi):
        if info.type is float:
            descriptor.floating_point_range = [FloatingPointRange(from_value=span.lo, to_value=span.hi, step=0.0)]
        elif info.type is int:
            lo = math.floor(span.lo) + 1 if span.lo_open or span.lo != math.floor(span.lo) else int(span.lo)
            hi = math.ceil(span.hi) - 1 if span.hi_open or span.hi != math.ceil(span.hi) else int(span.hi)
            descriptor.integer_range = [IntegerRange(from_value=lo, to_value=hi, step=0)]
    return descriptor


def declare_config(node: Node, cls: type[T], extra: Mapping[str, Any] | None = None, *,
                   process_nodes: Mapping[str, Iterable[str]] | None = None,
                   on_change: Callable[[T], None] | None = None) -> T:
    """Declare every field of ``cls`` (dotted names, dataclass defaults, a ParameterDescriptor with the
    field's description and range) and build the config; refuse to start on a bad configuration.

    ``extra``: further node-level parameters that are not part of ``cls`` (name -> default or
    ``params.param(...)``). ``process_nodes``: the other nodes this process may host (name in this
    node's namespace -> the parameter names it declares), for the check of the process's sources.

    Live parameters: a field declared ``live=True`` can be set while the node runs when the node
    passes ``on_change`` (called with the new config; a ValueError it raises rejects the set with
    its message); an extra declared ``param(..., live=True)`` is the node's own to handle (its own
    set-parameters callback). Every other parameter is declared read-only, so rclpy rejects a set
    ("Trying to set a read-only parameter: <name>."), and its description says to restart the node.
    A live value outside its range or choices, or one the config's validation refuses, is rejected
    with the reason (the range included).

    Raises ``params.ConfigError`` (and logs it as one FATAL line naming the file, the key and the
    allowed values) on: a ``--params-file`` section or ``-p`` rule of the process (``sys.argv``) that
    matches none of its nodes, or whose parameter none of the nodes it matches declares (checked once,
    by the first node of the process); a parameter override given to this node (``parameter_overrides``)
    that it does not declare; a value of the wrong type or outside its range / choices; a ``required``
    block (the arbiter's ``safety``) not given in full by the overrides (file, ``-p`` or
    ``parameter_overrides``); and whatever the config's own validation refuses."""
    global _process_sources_checked
    extras = extra_table(extra or {})
    table = {**param_table(cls), **extras}
    fqn = node.get_fully_qualified_name()
    label = f"node '{fqn}'"
    try:
        sources = ros_param_sources(sys.argv)
        origins = {name: origin for name, (_, origin) in overrides_for(sources, fqn).items()}
        own = set(node._parameters) | set(table) | BUILTIN_PARAMETERS
        problems: list[str] = []
        if not _process_sources_checked:
            _process_sources_checked = True
            nodes: dict[str, set[str]] = {fqn: own}
            for name, names in (process_nodes or {}).items():
                nodes[fully_qualified(name, node.get_namespace())] = set(names) | BUILTIN_PARAMETERS
            problems += check_sections(sources, nodes)
        overrides = dict(node._parameter_overrides)   # what rclpy applies: files, -p rules, parameter_overrides
        for name in sorted(set(overrides) - own - set(origins)):
            problems.append(f"{label}: unknown parameter '{name}' in its parameter_overrides")
        for name, override in sorted(overrides.items()):
            if name not in table or override.type_ == Parameter.Type.NOT_SET:
                continue
            expected = Parameter.Type.from_parameter_value(table[name].default)
            # (an INTEGER for a DOUBLE is refused below, by build_config's exact types: "write 1.0")
            if override.type_ != expected and not (expected == Parameter.Type.DOUBLE
                                                   and override.type_ == Parameter.Type.INTEGER):
                problems.append(f"{origins.get(name, label)}: parameter '{name}' = {override.value!r} is "
                                f"{override.type_.name}, expected {expected.name}")
        if problems:
            raise ConfigError("; ".join(problems))
        values = {name: _plain(overrides[name].value) for name in table if name in overrides}
        config = build_config(cls, values, source=label, extra=extras, exact_types=True,
                              origins={name: origins.get(name, f"{label} parameter_overrides") for name in values})
    except ConfigError as exc:
        node.get_logger().fatal(f"refusing to start: {exc}")
        raise
    def live(name: str) -> bool:
        info = table[name]
        return info.spec is not None and info.spec.live and (name in extras or on_change is not None)

    for name, info in table.items():
        node.declare_parameter(name, info.default, _descriptor(name, info, read_only=not live(name)))
    if on_change is not None:
        current = [config]

        def on_set(params: list[Parameter]) -> SetParametersResult:
            changes = {p.name: _plain(p.value) for p in params if p.name in table and p.name not in extras}
            if not changes:
                return SetParametersResult(successful=True)
            try:
                new = with_values(current[0], changes, source=label)
                on_change(new)
            except (ConfigError, ValueError) as exc:
                node.get_logger().warning(f"rejected parameter set {changes}: {exc}")
                return SetParametersResult(successful=False, reason=str(exc))
            current[0] = new
            node.get_logger().info(f"parameters set live: {changes}")
            return SetParametersResult(successful=True)

        node.add_on_set_parameters_callback(on_set)
    return config


def declare_fixed(node: Node, name: str, default: Any, doc: str, range: str | None = None) -> Any:
    """Declare one read-only node parameter outside a config class (described, ranged) and return
    its value. A value outside ``range`` refuses the start (ConfigError)."""
    spec = ParamSpec(doc, Interval.parse(range) if range else None)
    info = ParamInfo(type(default), default, spec)
    try:
        value = node.declare_parameter(name, default, _descriptor(name, info, read_only=True)).value
    except InvalidParameterTypeException as exc:   # e.g. -p command_rate_hz:=abc
        given = node._parameter_overrides.get(name)
        expected = Parameter.Type.from_parameter_value(default).name
        problem = (f"parameter '{name}' = {given.value!r} is {given.type_.name}, expected {expected}" if given
                   else str(exc))
        node.get_logger().fatal(f"refusing to start: {problem} ({doc})")
        raise ConfigError(f"node '{node.get_fully_qualified_name()}': {problem}") from None
    if (problem := spec.problem(value)) is not None:
        node.get_logger().fatal(f"refusing to start: parameter '{name}' = {value!r} {problem} ({doc})")
        raise ConfigError(f"node '{node.get_fully_qualified_name()}': parameter '{name}' = {value!r} {problem}")
    return value


# ---------------------------------------------------------------- /diagnostics
DIAGNOSTICS_TOPIC = "/diagnostics"   # absolute, as diagnostic_updater publishes it; the status names carry namespaces
_DIAGNOSTICS_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.VOLATILE)


def status_msg(node_name: str, status: Status, hardware_id: str) -> DiagnosticStatus:
    """A core.diagnostics Status as a DiagnosticStatus named "<node fqn>: <aspect>"."""
    return DiagnosticStatus(level=bytes([int(status.level)]), name=f"{node_name}: {status.aspect}",
                            message=status.message,
                            hardware_id=hardware_id if status.hardware_id is None else status.hardware_id,
                            values=[KeyValue(key=k, value=str(v)) for k, v in status.values.items()])


def attach_diagnostics(node: Node, collect: Callable[[], Iterable[Status]], hardware_id: str,
                       period_s: float = DIAGNOSTICS_PERIOD_S, callback_group: Any = None) -> None:
    """Publish ``collect()`` on ``/diagnostics`` every ``period_s`` (a DiagnosticArray per call). A
    ``collect`` that raises is reported as one ERROR status instead of stopping the node."""
    publisher = node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, _DIAGNOSTICS_QOS)
    name = node.get_fully_qualified_name()

    def tick() -> None:
        try:
            statuses = list(collect())
        except Exception as exc:  # a diagnostics bug must not take the node down
            node.get_logger().error(f"diagnostics failed: {type(exc).__name__}: {exc}", throttle_duration_sec=10.0)
            statuses = [Status("diagnostics", Level.ERROR, f"diagnostics failed: {type(exc).__name__}: {exc}")]
        msg = DiagnosticArray(status=[status_msg(name, s, hardware_id) for s in statuses])
        msg.header.stamp = node.get_clock().now().to_msg()
        publisher.publish(msg)

    node.create_timer(period_s, tick, callback_group=callback_group)


def _plain(value: Any) -> Any:
    """rclpy array values as lists."""
    return list(value) if isinstance(value, array.array | tuple) else value


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
        try:
            made = make_node()
        except ConfigError:
            raise   # logged by declare_config / declare_fixed; exit 2 below
        except (OSError, ValueError) as exc:   # a file, device or directory the node was given (the
            # calibration, the SpaceMouse, record_dir): one line to act on, not a traceback
            name = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "imgen_node"
            rclpy.logging.get_logger(name).fatal(f"refusing to start: {_one_line(exc)}")
            raise SystemExit(1) from None
        nodes = [made] if isinstance(made, Node) else list(made)
        if threads_fn is not None:
            threads = threads_fn(nodes)
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
        for node in nodes:
            executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ConfigError:
        raise SystemExit(2) from None   # declare_config logged the one-line reason
    except StartupError as exc:
        raise SystemExit(exc.exit_code) from None   # refuse_start logged the one-line reason
    except Exception:
        if rclpy.ok():
            raise   # a real error; otherwise SIGINT/SIGTERM shut the context down while spinning, and
            # taking a message from an invalidated handle raises RCLError or pybind11's TypeError
            # ("Unable to convert call argument '0' to Python object", seen once in ~10 launch stops)
    finally:
        for node in reversed(nodes):
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
