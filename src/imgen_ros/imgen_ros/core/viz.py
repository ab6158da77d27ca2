"""What a viewer (RViz, Foxglove, robot_state_publisher) is shown of the graph, as plain data (ROS-free).

``nodes/viz_mirror.py`` feeds a :class:`VizScene` with what the graph publishes (robot state, the
pose estimates, the control state, the safety-filtered command, episode events, the policy's pose
error) and turns what it returns into standard messages, all in ``fr3_link0``:

- ``joint_states``: :func:`joint_state`, the FR3's joint names as franka_description names them
  (``fr3_joint1..7``; the Franka Hand's ``fr3_finger_joint1/2``, each at half the gripper width);
- ``tcp_pose``, ``object_pose/believed_pose`` (:meth:`VizScene.believed`: the estimate the robot
  acts on plus the policy's pose error of the running episode), ``object_pose/true_pose``;
- ``viz/markers``: :meth:`VizScene.markers`, one fixed set of (namespace, id) per call, each
  ADD or DELETE, so markers update in place and vanish when their input does:

  ========================  ==  ===================================================================
  namespace                 id  what
  ========================  ==  ===================================================================
  ``workspace``             0   the arbiter's safety box, yellow lines (no lifetime)
  ``cube/true``             0   the true cube, solid green (simulation only)
  ``cube/believed``         0   the believed cube, transparent purple ...
  ``cube/believed``         1   ... with purple edges
  ``cube/revealed``         0   the revealed pose (observability channel valid), red edges ...
  ``cube/revealed``         1   ... and a red sphere at its position
  ``tcp``                   0   a sphere at the TCP in the colour of the control mode
  ``command``               0   the commanded TCP translation as an arrow from the TCP (x ``arrow_gain``),
                                in the colour of its source
  ``status``                0   text above the box: mode, episode, step, reason, last event
  ========================  ==  ===================================================================

Colours (as ``imgen bag plot``): POLICY blue, HUMAN orange, HOLD grey; believed purple, true green,
revealed red. An input not heard from for ``stale_after_s`` (a command: ``COMMAND_SHOWN_S``) is not
drawn; dynamic markers also carry a ``DYNAMIC_LIFETIME_S`` lifetime, so a viewer clears them when
the node stops. Times: ``now`` and the ``arrived`` arguments are one clock of the caller (arrival
times, seconds); message stamps are passed through.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from imgen_ros.core.arbiter import Event, Mode
from imgen_ros.core.command import Source
from imgen_ros.core.params import ConfigError, check_fields, param, read_ros_params
from imgen_ros.core.safety import _BOX_RANGES as BOX_RANGES  # the arbiter's plausibility bounds of the box
from imgen_ros.core.safety import SafetyConfig
from imgen_ros.core.topics import BASE_FRAME

ARM_JOINTS = tuple(f"fr3_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("fr3_finger_joint1", "fr3_finger_joint2")   # franka_description: each 0 .. 0.04 m
FINGER_TRAVEL_M = 0.04
COMMAND_SHOWN_S = 0.25        # a command arrow older than this (5 steps at 20 Hz) is not drawn
DYNAMIC_LIFETIME_S = 1.0      # lifetime of every marker but the workspace box
TEXT_HEIGHT_M = 0.03
IDENTITY_QUAT = np.array([0.0, 0.0, 0.0, 1.0])

RGBA = tuple[float, float, float, float]


def rgba(hex_color: str, alpha: float = 1.0) -> RGBA:
    """``#rrggbb`` (matplotlib's notation, as ``data.bag_plot``) as RGBA floats in [0, 1]."""
    h = hex_color.lstrip("#")
    return (int(h[0:2], 16) / 255.0, int(h[2:4], 16) / 255.0, int(h[4:6], 16) / 255.0, float(alpha))


MODE_HEX = {Mode.POLICY: "#1f77b4", Mode.HUMAN: "#ff7f0e", Mode.HOLD: "#7f7f7f"}   # as data.bag_plot.MODE_COLORS
SOURCE_HEX = {Source.POLICY: MODE_HEX[Mode.POLICY], Source.HUMAN: MODE_HEX[Mode.HUMAN], Source.REPLAY: "#17becf",
              Source.SAFETY: MODE_HEX[Mode.HOLD]}
BELIEVED_HEX, TRUE_HEX, REVEALED_HEX, WORKSPACE_HEX = "#9467bd", "#2ca02c", "#d62728", "#e6b800"


class MarkerType(IntEnum):
    """Values match visualization_msgs/Marker."""

    ARROW = 0
    CUBE = 1
    SPHERE = 2
    LINE_LIST = 5
    TEXT_VIEW_FACING = 9


class MarkerAction(IntEnum):
    """Values match visualization_msgs/Marker."""

    ADD = 0
    DELETE = 2


# ---------------------------------------------------------------- config
@dataclass(frozen=True)
class VizConfig:
    """viz_mirror's parameters (``config/viz_mirror.yaml``; the launch files pass the arbiter file's box)."""

    object_id: str = param("cube", "the object whose believed, true and revealed poses are mirrored and drawn")
    cube_size_m: float = param(0.05, "edge of the drawn cube [m] (block_grasp: 5 cm)", "(0, 0.5]")
    workspace_min: tuple[float, float, float] = param(
        SafetyConfig().workspace_min, "the arbiter's safety.workspace_min [m] (x, y, z) in fr3_link0, drawn as a box",
        BOX_RANGES)
    workspace_max: tuple[float, float, float] = param(
        SafetyConfig().workspace_max, "the arbiter's safety.workspace_max [m] (x, y, z) in fr3_link0", BOX_RANGES)
    marker_rate_hz: float = param(10.0, "viz/markers publication rate [Hz]", "[1, 50]")
    state_rate_hz: float = param(50.0, "joint_states and tcp_pose at most this often [Hz] (robot_state decimated)",
                                 "[1, 1000]")
    stale_after_s: float = param(1.0, "an input not heard from for this long is no longer drawn [s]", "(0, 10]")
    arrow_gain: float = param(5.0, "the command arrow is one step's commanded TCP translation times this (1: true "
                                   "length; 5: where the TCP is 0.25 s later at this command)", "(0, 100]")
    publish_joint_states: bool = param(True, "publish joint_states (off where franka_bringup's joint_state_publisher "
                                             "already does)")

    def __post_init__(self) -> None:
        check_fields(self)
        SafetyConfig(workspace_min=self.workspace_min, workspace_max=self.workspace_max)   # min < max, reach


def arbiter_workspace(path: str | Path, node: str = "intervention_arbiter") -> dict[str, list[float]]:
    """The safety box an arbiter parameter file gives ``node``, as viz_mirror parameters
    (``workspace_min``, ``workspace_max``): the launch files draw the box the arbiter enforces."""
    values = read_ros_params(path, node)
    try:
        lo, hi = values["safety.workspace_min"], values["safety.workspace_max"]
    except KeyError as exc:
        raise ConfigError(f"{path}: no safety.{exc.args[0].split('.')[-1]} for {node}") from None
    try:
        box = SafetyConfig(workspace_min=tuple(float(v) for v in lo), workspace_max=tuple(float(v) for v in hi))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {node} safety box: {exc}") from None
    return {"workspace_min": list(box.workspace_min), "workspace_max": list(box.workspace_max)}


# ---------------------------------------------------------------- joint states and poses
@dataclass(frozen=True)
class JointPositions:
    """A sensor_msgs/JointState's content: names, positions [rad | m], velocities (NaN: unknown)."""

    names: tuple[str, ...]
    position: tuple[float, ...]
    velocity: tuple[float, ...]


def joint_state(joint_positions: ArrayLike, joint_velocities: ArrayLike, gripper_width: float) -> JointPositions | None:
    """The FR3 + Franka Hand joints of a robot state (None when the arm joints are not finite). Each
    finger joint is half the gripper width (clipped to its 0 .. 4 cm travel); an unknown (non-finite)
    width leaves the fingers out rather than inventing them. Finger velocities are unknown (NaN)."""
    q = np.asarray(joint_positions, dtype=float).reshape(-1)
    dq = np.asarray(joint_velocities, dtype=float).reshape(-1)
    if q.shape != (7,) or not np.all(np.isfinite(q)):
        return None
    if dq.shape != (7,):
        dq = np.full(7, np.nan)
    names, position, velocity = list(ARM_JOINTS), [float(v) for v in q], [float(v) for v in dq]
    if math.isfinite(gripper_width):
        finger = float(np.clip(gripper_width / 2.0, 0.0, FINGER_TRAVEL_M))
        names += FINGER_JOINTS
        position += [finger, finger]
        velocity += [math.nan, math.nan]
    return JointPositions(tuple(names), tuple(position), tuple(velocity))


@dataclass(frozen=True)
class StampedPose:
    """A geometry_msgs/PoseStamped's content."""

    stamp: float
    position: NDArray[np.float64]
    quat_xyzw: NDArray[np.float64]
    frame_id: str = BASE_FRAME


@dataclass(frozen=True)
class PoseErrorInfo:
    """An episode's pose corruption (imgen_msgs/PoseError): offsets added to the believed positions."""

    episode_id: int
    mode: str
    seed: int
    offsets: Mapping[str, NDArray[np.float64]] = field(default_factory=dict)


def believed_position(estimate: ArrayLike, object_id: str, error: PoseErrorInfo | None,
                      episode_id: int) -> NDArray[np.float64]:
    """Where the robot believes the object is: the estimate plus the policy's offset for it, when the
    pose error belongs to the running episode (mode ``gaussian`` draws per step: its offsets are zero)."""
    position = np.asarray(estimate, dtype=float).copy()
    if error is not None and error.episode_id == episode_id and object_id in error.offsets:
        position += np.asarray(error.offsets[object_id], dtype=float)
    return position


# ---------------------------------------------------------------- markers
@dataclass(frozen=True)
class MarkerSpec:
    """A visualization_msgs/Marker's content (frame ``fr3_link0``). ``points`` are in the marker's
    frame (``position``, ``quat_xyzw``); ``scale`` as Marker.scale for the type; lifetime 0: forever."""

    ns: str
    id: int
    type: MarkerType
    action: MarkerAction = MarkerAction.ADD
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    quat_xyzw: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    color: RGBA = (1.0, 1.0, 1.0, 1.0)
    points: tuple[tuple[float, float, float], ...] = ()
    text: str = ""
    lifetime_s: float = DYNAMIC_LIFETIME_S
    frame_id: str = BASE_FRAME

    @property
    def key(self) -> tuple[str, int]:
        return self.ns, self.id


# (namespace, id, type) of every marker, in publication order
MARKER_SLOTS: tuple[tuple[str, int, MarkerType], ...] = (
    ("workspace", 0, MarkerType.LINE_LIST),
    ("cube/true", 0, MarkerType.CUBE),
    ("cube/believed", 0, MarkerType.CUBE),
    ("cube/believed", 1, MarkerType.LINE_LIST),
    ("cube/revealed", 0, MarkerType.LINE_LIST),
    ("cube/revealed", 1, MarkerType.SPHERE),
    ("tcp", 0, MarkerType.SPHERE),
    ("command", 0, MarkerType.ARROW),
    ("status", 0, MarkerType.TEXT_VIEW_FACING),
)


def box_edges(lo: ArrayLike, hi: ArrayLike) -> NDArray[np.float64]:
    """The 12 edges of an axis-aligned box as 24 LINE_LIST points (pairs), shape (24, 3)."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    corners = np.array([[hi[0] if i & 1 else lo[0], hi[1] if i & 2 else lo[1], hi[2] if i & 4 else lo[2]]
                        for i in range(8)])
    pairs = [(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1]
    return np.array([corners[i] for pair in pairs for i in pair])


def cube_edges(size: float) -> NDArray[np.float64]:
    """The edges of a cube of edge ``size`` centred at the origin, (24, 3) LINE_LIST points."""
    h = size / 2.0
    return box_edges((-h, -h, -h), (h, h, h))


def _vec(v: ArrayLike) -> tuple[float, ...]:
    return tuple(float(x) for x in np.asarray(v, dtype=float).reshape(-1))


def _points(points: NDArray[np.float64]) -> tuple[tuple[float, float, float], ...]:
    return tuple((float(p[0]), float(p[1]), float(p[2])) for p in points)


def _delete(ns: str, marker_id: int, kind: MarkerType) -> MarkerSpec:
    return MarkerSpec(ns, marker_id, kind, MarkerAction.DELETE)


def mode_color(mode: int | None) -> RGBA:
    """The colour of a control mode (unknown or none: HOLD's grey)."""
    try:
        return rgba(MODE_HEX[Mode(mode)])
    except (ValueError, TypeError):
        return rgba(MODE_HEX[Mode.HOLD])


def source_color(source: int) -> RGBA:
    """The colour of a command's source (DeltaPoseCommand.SOURCE_*)."""
    try:
        return rgba(SOURCE_HEX[Source(source)])
    except ValueError:
        return rgba(MODE_HEX[Mode.HOLD])


def _event_name(event: int) -> str:
    try:
        return Event(event).name
    except ValueError:
        return f"event {event}"


@dataclass
class _Latest:
    """The newest sample of one input and when it arrived."""

    position: NDArray[np.float64]
    quat_xyzw: NDArray[np.float64]
    stamp: float
    arrived: float


@dataclass
class _Control:
    mode: int
    episode_id: int
    step: int
    reason: str
    arrived: float


class VizScene:
    """The newest of every input a viewer needs, and the mirrors and markers made of them."""

    def __init__(self, config: VizConfig | None = None) -> None:
        self.config = config or VizConfig()
        self.tcp: _Latest | None = None
        self.estimate: _Latest | None = None       # last valid estimate (the policy bridges invalid fits with it)
        self.estimate_heard: float | None = None   # arrival of the last estimate, valid or not
        self.true: _Latest | None = None
        self.revealed: _Latest | None = None       # None while the channel is not valid
        self.control: _Control | None = None
        self.command: tuple[NDArray[np.float64], int, float] | None = None   # translation, source, arrival
        self.pose_error: PoseErrorInfo | None = None
        self.episode_id = 0
        self.last_event: tuple[int, int, str] | None = None   # episode, event, reason

    # ---------------------------------------------------------------- inputs
    def on_robot_state(self, tcp_position: ArrayLike, tcp_quat: ArrayLike, stamp: float, arrived: float) -> StampedPose:
        """Take a robot state's TCP; returns the ``tcp_pose`` mirror."""
        self.tcp = _Latest(np.asarray(tcp_position, float), np.asarray(tcp_quat, float), stamp, arrived)
        return StampedPose(stamp, self.tcp.position.copy(), self.tcp.quat_xyzw.copy())

    def _wanted(self, object_id: str) -> bool:
        return not object_id or object_id == self.config.object_id

    def on_estimate(self, object_id: str, position: ArrayLike, quat: ArrayLike, valid: bool, stamp: float,
                    arrived: float) -> StampedPose | None:
        """Take an ``object_pose`` estimate; returns the ``believed_pose`` mirror for a valid, finite one
        of the configured object (else None; the last valid estimate stays believed)."""
        if not self._wanted(object_id):
            return None
        self.estimate_heard = arrived
        sample = _finite_sample(position, quat, stamp, arrived)
        if not valid or sample is None:
            return None
        self.estimate = sample
        return self.believed()

    def on_true_pose(self, object_id: str, position: ArrayLike, quat: ArrayLike, stamp: float,
                     arrived: float) -> StampedPose | None:
        """Take an ``object_pose/true`` sample (simulation); returns the ``true_pose`` mirror."""
        if not self._wanted(object_id) or (sample := _finite_sample(position, quat, stamp, arrived)) is None:
            return None
        self.true = sample
        return StampedPose(stamp, sample.position.copy(), sample.quat_xyzw.copy())

    def on_revealed(self, object_id: str, position: ArrayLike, quat: ArrayLike, valid: bool, stamp: float,
                    arrived: float) -> None:
        """Take the observability channel (``object_pose/revealed``): drawn while valid."""
        if self._wanted(object_id):
            self.revealed = _finite_sample(position, quat, stamp, arrived) if valid else None

    def on_control(self, mode: int, episode_id: int, step: int, reason: str, arrived: float) -> None:
        self.control = _Control(int(mode), int(episode_id), int(step), reason, arrived)
        if episode_id:
            self.episode_id = int(episode_id)

    def on_event(self, episode_id: int, event: int, reason: str) -> None:
        if event == Event.START:
            self.episode_id = int(episode_id)
            self.revealed = None
        self.last_event = (int(episode_id), int(event), reason)

    def on_command(self, translation: ArrayLike, source: int, arrived: float) -> None:
        self.command = (np.asarray(translation, dtype=float).reshape(3), int(source), arrived)

    def on_pose_error(self, error: PoseErrorInfo) -> None:
        self.pose_error = error

    # ---------------------------------------------------------------- mirrors
    def believed(self) -> StampedPose | None:
        """The believed pose: the last valid estimate plus the running episode's pose error."""
        if self.estimate is None:
            return None
        position = believed_position(self.estimate.position, self.config.object_id, self.pose_error, self.episode_id)
        return StampedPose(self.estimate.stamp, position, self.estimate.quat_xyzw.copy())

    # ---------------------------------------------------------------- markers
    def _fresh(self, arrived: float | None, now: float, limit: float | None = None) -> bool:
        return arrived is not None and now - arrived <= (self.config.stale_after_s if limit is None else limit)

    def markers(self, now: float) -> list[MarkerSpec]:
        """Every slot of ``MARKER_SLOTS`` once, in that order: ADD what is known and fresh, else DELETE."""
        cfg = self.config
        size = cfg.cube_size_m
        out: dict[tuple[str, int], MarkerSpec] = {}

        def add(spec: MarkerSpec) -> None:
            out[spec.key] = spec

        add(MarkerSpec("workspace", 0, MarkerType.LINE_LIST, scale=(0.004, 0.0, 0.0),
                       color=rgba(WORKSPACE_HEX, 0.9), points=_points(box_edges(cfg.workspace_min, cfg.workspace_max)),
                       lifetime_s=0.0))
        if self.true is not None and self._fresh(self.true.arrived, now):
            add(MarkerSpec("cube/true", 0, MarkerType.CUBE, position=_vec(self.true.position),
                           quat_xyzw=_vec(self.true.quat_xyzw), scale=(size, size, size), color=rgba(TRUE_HEX, 0.9)))
        believed = self.believed()
        if believed is not None and self._fresh(self.estimate_heard, now):
            where = {"position": _vec(believed.position), "quat_xyzw": _vec(believed.quat_xyzw)}
            add(MarkerSpec("cube/believed", 0, MarkerType.CUBE, scale=(size, size, size),
                           color=rgba(BELIEVED_HEX, 0.25), **where))
            add(MarkerSpec("cube/believed", 1, MarkerType.LINE_LIST, scale=(0.003, 0.0, 0.0),
                           color=rgba(BELIEVED_HEX), points=_points(cube_edges(size)), **where))
        if self.revealed is not None and self._fresh(self.revealed.arrived, now):
            where = {"position": _vec(self.revealed.position), "quat_xyzw": _vec(self.revealed.quat_xyzw)}
            add(MarkerSpec("cube/revealed", 0, MarkerType.LINE_LIST, scale=(0.003, 0.0, 0.0),
                           color=rgba(REVEALED_HEX), points=_points(cube_edges(size * 1.1)), **where))
            add(MarkerSpec("cube/revealed", 1, MarkerType.SPHERE, scale=(0.015, 0.015, 0.015),
                           color=rgba(REVEALED_HEX), **where))
        control = self.control
        mode = control.mode if control is not None else None
        tcp = self.tcp if self.tcp is not None and self._fresh(self.tcp.arrived, now) else None
        if tcp is not None:
            add(MarkerSpec("tcp", 0, MarkerType.SPHERE, position=_vec(tcp.position), scale=(0.02, 0.02, 0.02),
                           color=mode_color(mode)))
            if self.command is not None and self._fresh(self.command[2], now, COMMAND_SHOWN_S):
                translation, source, _ = self.command
                if np.all(np.isfinite(translation)) and np.linalg.norm(translation) > 1e-6:
                    tip = tcp.position + cfg.arrow_gain * translation
                    add(MarkerSpec("command", 0, MarkerType.ARROW, scale=(0.006, 0.012, 0.012),
                                   color=source_color(source), points=(_vec(tcp.position), _vec(tip))))
        lo, hi = np.asarray(cfg.workspace_min), np.asarray(cfg.workspace_max)
        add(MarkerSpec("status", 0, MarkerType.TEXT_VIEW_FACING, text=self.status_text(now),
                       position=((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, hi[2] + 0.08),
                       scale=(0.0, 0.0, TEXT_HEIGHT_M), color=mode_color(mode)))
        return [out.get((ns, i)) or _delete(ns, i, kind) for ns, i, kind in MARKER_SLOTS]

    def status_text(self, now: float) -> str:
        """Mode, episode and step; the reason; the last episode event (and its reason where it differs);
        the running episode's pose error when nonzero."""
        c = self.control
        if c is None:
            lines = ["no control_state"]
        else:
            try:
                name = Mode(c.mode).name
            except ValueError:
                name = f"mode {c.mode}"
            stale = "" if self._fresh(c.arrived, now) else " (stale)"
            lines = [f"{name}  episode {c.episode_id}  step {c.step}{stale}"]
            if c.reason:
                lines.append(c.reason)
        if self.last_event is not None:
            episode, event, reason = self.last_event
            said = reason and (c is None or reason != c.reason)   # not twice
            lines.append(f"episode {episode}: {_event_name(event)}" + (f" ({reason})" if said else ""))
        error = self.pose_error
        if error is not None and error.episode_id == self.episode_id:
            offset = error.offsets.get(self.config.object_id)
            if offset is not None and np.any(np.asarray(offset) != 0):
                mm = ", ".join(f"{1000 * v:+.0f}" for v in np.asarray(offset, dtype=float))
                lines.append(f"pose error {error.mode} (seed {error.seed}): ({mm}) mm")
        return "\n".join(lines)


def _finite_sample(position: ArrayLike, quat: ArrayLike, stamp: float, arrived: float) -> _Latest | None:
    p, q = np.asarray(position, dtype=float).reshape(-1), np.asarray(quat, dtype=float).reshape(-1)
    if p.shape != (3,) or q.shape != (4,) or not (np.all(np.isfinite(p)) and np.all(np.isfinite(q))):
        return None
    norm = np.linalg.norm(q)
    return _Latest(p, q / norm if norm > 0 else IDENTITY_QUAT.copy(), stamp, arrived)


# ---------------------------------------------------------------- rate limit
class RateLimiter:
    """Lets a stream through at most ``rate_hz`` (by the caller's clock, e.g. the measurement stamps),
    e.g. a 250 Hz robot state mirrored at 50 Hz: a sample passes when a period has elapsed since the
    last one that passed (less 10 % slack, so a stream at exactly the rate is not halved by jitter).
    A clock that jumps back (a new stamp source, a replayed bag) restarts the count."""

    def __init__(self, rate_hz: float) -> None:
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        self.min_interval = 0.9 / rate_hz
        self.last: float | None = None

    def ready(self, now: float) -> bool:
        if self.last is not None and 0.0 <= now - self.last < self.min_interval:
            return False
        self.last = now
        return True

