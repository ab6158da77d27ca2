"""What a person watching the robot sees: a visibly misaligned approach, a failed grasp, a blocked motion.

This is the simulated operator's trigger, and deliberately not the generator's TERMINATE-POLICY
classifier (``env.mistake_detected()``, the task's contact-based ``mistake``): a person does not feel
contact forces, they see geometry. Per task and subtask a :class:`WatchSpec` names what moves (the
TCP, or the object held in the hand), the goal it must line up with (read from the TRUE poses: the
person sees the real scene) and how much lateral error the person can see. :class:`Watcher` keeps a
short history of positions and reports a :class:`Cue` when

- ``approach``: the mover descends (>= ``DESCENT_M`` over the last ``DESCENT_STEPS`` steps) within
  ``band`` m above the goal's top while laterally off the goal by more than ``tolerance``;
- ``failed_grasp``: in a grasp subtask, the gripper is commanded closed and the fingers have closed
  on nothing (gap below ``grasp_gap``);
- ``blocked``: something touches the goal (or the table) and the TCP has not moved more than
  ``STALL_M`` over the last ``STALL_STEPS`` steps, without success; in a grasp subtask only with the
  gripper open (a closed gripper standing still on the object is a grasp in progress).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from imgen_ros.sim.env import TaskEnv

DESCENT_STEPS = 3
DESCENT_M = 0.003
STALL_STEPS = 8
STALL_M = 0.002
CUE_KINDS = ("approach", "failed_grasp", "blocked")


@dataclass(frozen=True)
class WatchSpec:
    """What the person watches during one subtask."""

    goal: Callable[[TaskEnv], NDArray[np.float64]]  # true goal point: (x, y) to line up with, z = its top
    tolerance: float  # lateral error (m) the person sees as misaligned
    mover: str | None = None  # body carried to the goal; None: the TCP itself (a grasp)
    mover_bottom: float = 0.0  # the mover's lowest point below its origin (m)
    band: float = 0.04  # height above the goal's top (m) where a misaligned descent is visibly wrong
    contacts: tuple[tuple[str, str], ...] = ()  # touching pairs that, with no motion, are a blocked move
    grasp_gap: float | None = None  # grasp subtask: finger gap (m) below which closed fingers hold nothing


@dataclass(frozen=True)
class Cue:
    """A visible failure: its kind and the step it was seen at."""

    kind: str
    step: int


def _body_top(body: str, half_height: float) -> Callable[[TaskEnv], NDArray[np.float64]]:
    def goal(env: TaskEnv) -> NDArray[np.float64]:
        p = env.body_pose(body)[:3, 3].copy()
        p[2] += half_height
        return p

    return goal


def _fixed_top(body: str, top: float) -> Callable[[TaskEnv], NDArray[np.float64]]:
    def goal(env: TaskEnv) -> NDArray[np.float64]:
        p = env.body_pose(body)[:3, 3].copy()
        p[2] = top
        return p

    return goal


def _coffee_holder(env: TaskEnv) -> NDArray[np.float64]:
    from imgen_ros.sim.tasks.coffee import HOLDER_DEPTH, holder_pose

    p = holder_pose(env.body_pose("coffee_machine"))[:3, 3].copy()
    p[2] += HOLDER_DEPTH
    return p


def watch_specs(task: str) -> tuple[WatchSpec, ...]:
    """One spec per subtask of ``task`` (geometry from the task modules' public constants)."""
    if task == "block_grasp":
        from imgen_ros.sim.tasks.block_grasp import CUBE_HALF, EMPTY_GAP

        return (WatchSpec(_body_top("cube", CUBE_HALF), tolerance=0.015, grasp_gap=EMPTY_GAP,
                          contacts=(("fingers", "cube"), ("hand", "table"))),)
    if task == "nut_insertion":
        from imgen_ros.sim.tasks.nut_insertion import NUT_HALF_Z, PEG_HEIGHT

        return (WatchSpec(_fixed_top("peg", PEG_HEIGHT), tolerance=0.008, mover="nut", mover_bottom=NUT_HALF_Z,
                          contacts=(("nut", "peg"), ("nut", "table"), ("hand", "table"))),)
    if task == "two_piece_assembly":
        from imgen_ros.sim.tasks.two_piece_assembly import PIECE_HALF_Z, WALL_HEIGHT

        return (WatchSpec(_fixed_top("receptacle", WALL_HEIGHT), tolerance=0.006, mover="piece",
                          mover_bottom=PIECE_HALF_Z,
                          contacts=(("piece", "receptacle"), ("piece", "table"), ("hand", "table"))),)
    if task == "coffee":
        from imgen_ros.sim.tasks.coffee import POD_HALF_HEIGHT

        return (WatchSpec(_coffee_holder, tolerance=0.006, mover="pod", mover_bottom=POD_HALF_HEIGHT,
                          contacts=(("pod", "coffee_machine"), ("hand", "coffee_machine"))),)
    if task == "nut_peg_assembly":
        from imgen_ros.sim.tasks.nut_peg_assembly import EMPTY_GAP, NUT_HALF_HEIGHT, PEG_HEIGHT

        return (WatchSpec(_body_top("nut_handle", NUT_HALF_HEIGHT), tolerance=0.02, grasp_gap=EMPTY_GAP,
                          contacts=(("hand", "table"),)),
                WatchSpec(_fixed_top("peg", PEG_HEIGHT), tolerance=0.01, mover="nut", mover_bottom=NUT_HALF_HEIGHT,
                          contacts=(("nut", "peg"), ("nut", "table"))))
    raise ValueError(f"no watch spec for task {task!r}")


def current_subtask(env: TaskEnv) -> int:
    """Index of the first subtask whose termination signal has not fired (the last one otherwise)."""
    signals = env.term_signals()
    for i, sub in enumerate(env.subtasks):
        if sub.term_signal is None or not signals.get(sub.term_signal, False):
            return i
    return len(env.subtasks) - 1


class Watcher:
    """Watches one episode step by step; :meth:`see` returns the first visible failure of the current state."""

    def __init__(self, env: TaskEnv) -> None:
        self.env = env
        self.specs = watch_specs(env.name)
        self._tcp: deque[NDArray[np.float64]] = deque(maxlen=STALL_STEPS + 1)
        self._mover: deque[NDArray[np.float64]] = deque(maxlen=DESCENT_STEPS + 1)
        self._subtask = -1
        self.step = 0

    def reset(self) -> None:
        self._tcp.clear()
        self._mover.clear()
        self._subtask = -1
        self.step = 0

    def spec(self) -> WatchSpec:
        return self.specs[min(current_subtask(self.env), len(self.specs) - 1)]

    def mover_bottom(self, spec: WatchSpec) -> NDArray[np.float64]:
        if spec.mover is None:
            return self.env.eef_pose()[:3, 3].copy()
        p = self.env.body_pose(spec.mover)[:3, 3].copy()
        p[2] -= spec.mover_bottom
        return p

    def lateral_error(self, spec: WatchSpec | None = None) -> float:
        """Horizontal distance (m) between the mover and its goal now."""
        spec = spec or self.spec()
        return float(np.hypot(*(self.mover_bottom(spec)[:2] - spec.goal(self.env)[:2])))

    def see(self) -> Cue | None:
        """Record the current state and return what a person would see as going wrong, if anything."""
        env = self.env
        sub = current_subtask(env)
        if sub != self._subtask:  # a new subtask: a new thing to watch
            self._subtask = sub
            self._mover.clear()
        spec = self.specs[min(sub, len(self.specs) - 1)]
        self._tcp.append(env.eef_pose()[:3, 3].copy())
        mover = self.mover_bottom(spec)
        self._mover.append(mover)
        step = self.step
        self.step += 1
        if env.is_success():
            return None
        closed = env.gripper_command > 0
        if spec.grasp_gap is not None and closed and env.finger_width() < spec.grasp_gap:
            return Cue("failed_grasp", step)
        goal = spec.goal(env)
        off = float(np.hypot(*(mover[:2] - goal[:2]))) > spec.tolerance
        if off and len(self._mover) > DESCENT_STEPS:
            descending = self._mover[0][2] - mover[2] >= DESCENT_M
            if descending and mover[2] - goal[2] <= spec.band:
                return Cue("approach", step)
        if len(self._tcp) > STALL_STEPS and (spec.grasp_gap is None or not closed):
            still = max(float(np.linalg.norm(p - self._tcp[-1])) for p in self._tcp) <= STALL_M
            if still and any(env.touching(a, b) for a, b in spec.contacts):
                return Cue("blocked", step)
        return None
