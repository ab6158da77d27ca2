"""How a teleoperator moves the TCP: bounded speed, uneven and slightly curved paths, pauses, overshoot.

The scripted expert jumps straight at each waypoint at up to 4 cm per step (0.8 m/s). A person on a
SpaceMouse moves differently; :class:`HumanMotion` turns the same waypoints into such motion, one
*stroke* per waypoint, all randomness from the generator it is given:

- speed: at most ``max_speed`` (0.15 m/s = 7.5 mm per 20 Hz step, a hard bound on every action);
  each stroke cruises at a sampled fraction of it (precise strokes, those whose waypoint tolerance
  is <= ``FINE_TOL``, at ``fine_speed`` of that), ramps up over ``ramp_steps`` and slows down in
  proportion to the remaining distance; a slow sinusoidal modulation (sampled period and phase)
  makes the speed uneven;
- path: coarse strokes bow sideways (a half-sine of sampled amplitude, a fraction of the stroke
  length, plus a smaller full-sine wobble, both perpendicular to the stroke); precise strokes are
  straight;
- overshoot: a coarse stroke longer than ``OVERSHOOT_MIN_LENGTH`` that is not going down passes its
  waypoint by a sampled distance (``overshoot_prob``), then a short stroke corrects back;
- pauses: after a waypoint is reached the person sometimes holds still for a few steps.

Rotation goes toward the waypoint's orientation at up to ``max_rot_speed``. The gripper command is
the waypoint's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.action import CONTROL_DT, delta_to_action
from imgen_ros.sim.controller import rotation_error
from imgen_ros.sim.env import TaskEnv
from imgen_ros.sim.task import Waypoint

FINE_TOL = 0.004  # m; waypoints at least this precise are approached slowly and straight
OVERSHOOT_MIN_LENGTH = 0.04  # m
PASS_TOL = 0.012  # m; how close an overshoot point must be passed before correcting
MIN_SPEED = 0.0006  # m per step; the slowest creep near a target
VIA_TOL = 0.02  # m; a via waypoint counts as passed this close
VIA_ROT_TOL = 0.15  # rad


@dataclass(frozen=True)
class MotionConfig:
    """A teleoperator's kinematics (speeds in m/s, times in s; per-stroke values sampled uniformly)."""

    max_speed: float = 0.15
    cruise: tuple[float, float] = (0.8, 1.0)  # fraction of max_speed
    fine_speed: float = 0.55  # cruise factor on precise strokes
    ramp_steps: int = 4
    approach_gain: float = 0.45  # per step: speed <= gain * remaining distance
    modulation: float = 0.3  # relative amplitude of the speed modulation
    modulation_period: tuple[float, float] = (0.6, 1.6)
    bow: tuple[float, float] = (0.05, 0.15)  # lateral bow, fraction of the stroke length
    max_bow: float = 0.02  # m
    wobble: float = 0.3  # full-sine wobble amplitude relative to the bow
    overshoot_prob: float = 0.35
    overshoot: tuple[float, float] = (0.006, 0.015)  # m
    pause_prob: float = 0.25
    pause_steps: tuple[int, int] = (2, 8)  # inclusive
    max_rot_speed: float = 1.6  # rad/s

    def __post_init__(self) -> None:
        if not 0.0 < self.max_speed <= 1.0:
            raise ValueError(f"max_speed must be in (0, 1] m/s, got {self.max_speed}")
        for name in ("cruise", "bow", "overshoot", "modulation_period", "pause_steps"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be a range 0 <= low <= high, got {(lo, hi)}")
        if self.cruise[1] > 1.0:
            raise ValueError(f"cruise is a fraction of max_speed (<= 1), got {self.cruise}")
        for name in ("overshoot_prob", "pause_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability, got {getattr(self, name)}")

    @property
    def max_step(self) -> float:
        """The speed bound as a translation per control step (m)."""
        return self.max_speed * CONTROL_DT


@dataclass
class Stroke:
    """One movement of the TCP position from ``start`` to ``end`` along a bowed path."""

    start: NDArray[np.float64]
    end: NDArray[np.float64]
    bow: NDArray[np.float64]  # lateral offset at mid-stroke
    wobble: NDArray[np.float64]
    cruise: float  # m per step
    period: float  # steps
    phase: float
    passing: bool = False  # an overshoot point: done once passed, no need to settle
    via: bool = False  # passed on the way to the next waypoint: no slowing down
    s: float = 0.0  # progress along the stroke, 0..1
    t: int = 0

    @property
    def length(self) -> float:
        return float(np.linalg.norm(self.end - self.start))

    def point(self) -> NDArray[np.float64]:
        s = self.s
        return self.start + s * (self.end - self.start) + self.bow * np.sin(np.pi * s) + self.wobble * np.sin(
            2.0 * np.pi * s)


def _perpendicular(direction: NDArray[np.float64], rng: np.random.Generator) -> NDArray[np.float64]:
    """A random unit vector perpendicular to ``direction`` (unit)."""
    helper = np.array([0.0, 0.0, 1.0]) if abs(direction[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(direction, helper)
    u /= np.linalg.norm(u)
    v = np.cross(direction, u)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    return np.cos(angle) * u + np.sin(angle) * v


class HumanMotion:
    """Per-step actions that take the TCP through waypoints the way a teleoperator would."""

    def __init__(self, env: TaskEnv, config: MotionConfig, rng: np.random.Generator) -> None:
        self.env = env
        self.config = config
        self.rng = rng
        self._strokes: list[Stroke] = []
        self._waypoint: Waypoint | None = None
        self.pause_left = 0
        self.moving = False  # the last waypoint was passed at speed

    def reset(self, rng: np.random.Generator | None = None) -> None:
        if rng is not None:
            self.rng = rng
        self._strokes = []
        self._waypoint = None
        self.pause_left = 0
        self.moving = False

    def hold(self, steps: int) -> None:
        """Hold still for ``steps`` steps (a pause)."""
        self.pause_left = max(self.pause_left, steps)

    def maybe_pause(self) -> None:
        c = self.config
        if self.rng.random() < c.pause_prob:
            self.hold(int(self.rng.integers(c.pause_steps[0], c.pause_steps[1] + 1)))

    def _plan_strokes(self, wp: Waypoint, via: bool = False) -> None:
        c, rng = self.config, self.rng
        start = self.env.eef_pose()[:3, 3].copy()
        end = wp.pose[:3, 3].copy()
        fine = wp.tol <= FINE_TOL
        cruise = min(rng.uniform(*c.cruise) * c.max_step * (c.fine_speed if fine else 1.0), wp.max_step)
        period = rng.uniform(*c.modulation_period) / CONTROL_DT
        length = float(np.linalg.norm(end - start))
        strokes = []
        if length > 1e-6 and not fine:
            direction = (end - start) / length
            if (not via and length > OVERSHOOT_MIN_LENGTH and direction[2] > -0.3
                    and rng.random() < c.overshoot_prob):
                horizontal = np.array([direction[0], direction[1], 0.0])
                norm = float(np.linalg.norm(horizontal))
                way = horizontal / norm if norm > 0.3 else direction
                past = end + way * rng.uniform(*c.overshoot)
                strokes.append(self._stroke(start, past, cruise, period, rng, passing=True))
                start = past
            strokes.append(self._stroke(start, end, cruise, period, rng))
        else:
            strokes.append(Stroke(start, end, np.zeros(3), np.zeros(3), cruise, period, rng.uniform(0, 2 * np.pi)))
        strokes[-1].via = via
        if self.moving:  # coming through a via point at speed: no ramp-up
            strokes[0].t = c.ramp_steps
        self._strokes = strokes

    def _stroke(self, start: NDArray, end: NDArray, cruise: float, period: float, rng: np.random.Generator,
                passing: bool = False) -> Stroke:
        c = self.config
        length = float(np.linalg.norm(end - start))
        if length < 1e-6:
            return Stroke(start, end, np.zeros(3), np.zeros(3), cruise, period, 0.0, passing)
        direction = (end - start) / length
        amp = min(rng.uniform(*c.bow) * length, c.max_bow) * rng.choice((-1.0, 1.0))
        bow = amp * _perpendicular(direction, rng)
        wobble = c.wobble * amp * rng.uniform(-1.0, 1.0) * _perpendicular(direction, rng)
        if end[2] < start[2]:  # never bow below the straight line's lower end on the way down
            bow[2] = max(bow[2], 0.0)
            wobble[2] = 0.0
        return Stroke(start, end, bow, wobble, cruise, period, rng.uniform(0, 2 * np.pi), passing)

    def step(self, wp: Waypoint, via: bool = False) -> tuple[NDArray[np.float64], bool]:
        """The action of this step toward ``wp`` and whether ``wp`` is reached (within its tolerances).

        ``via``: ``wp`` is a point to pass on the way to the next one (a coarse waypoint the person
        does not stop at): no overshoot, no slowing down, passed within ``VIA_TOL``."""
        env, c = self.env, self.config
        if wp is not self._waypoint:
            self._waypoint = wp
            self._plan_strokes(wp, via)
        cur = env.eef_pose()
        drot = rotation_error(wp.pose[:3, :3], cur[:3, :3])
        ang = float(np.linalg.norm(drot))
        dist = float(np.linalg.norm(wp.pose[:3, 3] - cur[:3, 3]))
        tol, rot_tol = (max(wp.tol, VIA_TOL), max(wp.rot_tol, VIA_ROT_TOL)) if via else (wp.tol, wp.rot_tol)
        reached = dist <= tol and ang <= rot_tol and len(self._strokes) == 1 and self._strokes[0].s >= 1.0
        self.moving = via and reached
        if self.pause_left > 0:
            self.pause_left -= 1
            return delta_to_action(np.zeros(3), np.zeros(3), wp.gripper, env.scale), False
        stroke = self._strokes[0]
        if stroke.passing and stroke.s >= 1.0 and np.linalg.norm(stroke.end - cur[:3, 3]) <= PASS_TOL:
            self._strokes.pop(0)
            nxt = self._strokes[0]
            nxt.start = cur[:3, 3].copy()
            stroke = nxt
        if stroke.s < 1.0:
            remaining = (1.0 - stroke.s) * stroke.length
            v = stroke.cruise * min(1.0, (stroke.t + 1) / max(c.ramp_steps, 1))
            v *= 1.0 + c.modulation * np.sin(2.0 * np.pi * stroke.t / stroke.period + stroke.phase)
            if not stroke.via:
                v = min(v, max(c.approach_gain * remaining, MIN_SPEED))
            stroke.s = 1.0 if stroke.length < 1e-9 else min(1.0, stroke.s + v / stroke.length)
            stroke.t += 1
        dpos = stroke.point() - cur[:3, 3]
        limit = min(c.max_step, wp.max_step)
        norm = float(np.linalg.norm(dpos))
        if norm > limit:
            dpos *= limit / norm
        max_rot = c.max_rot_speed * CONTROL_DT
        if ang > max_rot:
            drot = drot * (max_rot / ang)
        return delta_to_action(dpos, drot, wp.gripper, env.scale), reached
