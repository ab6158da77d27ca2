"""A simulated operator that a real one resembles: sees failures late, moves like a teleoperator.

Two roles, one person:

- :class:`Teleoperator` drives the robot on the TRUE poses (like the paper's human): it plans each
  subtask with the task's object-centric waypoints and moves through them with
  :class:`~imgen_ros.sim.operator_motion.HumanMotion` (bounded speed, uneven curved strokes, pauses,
  overshoot); the first waypoint above the object is moved sideways by a sampled offset, so the
  approach direction varies. After a take-over it first backs off (the task's recovery waypoints).
  It watches its own work too: a failed grasp or a stroke that makes no progress for
  ``stuck_steps`` makes it back off and try again. With ``miss_prob`` (interventions only, when at
  least ``miss_min_steps`` remain) its first attempt after a take-over is aimed off by a sampled
  horizontal error (``MISS_OFFSET``, a misjudged position), so it misses and tries again. Before each
  precise move it looks again (re-plans the rest of the attempt from the scene as it is then).
- :class:`SimulatedOperator` is human-gated control around a robot policy: the policy acts while a
  :class:`~imgen_ros.sim.operator_watch.Watcher` looks for what a person sees going wrong (not the
  generator's contact-based ``env.mistake_detected()``); once it sees something, the person reacts
  after a sampled delay (:class:`ReactionDelay`: lognormal, median 0.5 s, log-sd 0.35, clipped to
  0.25-1.2 s, i.e. 5-24 control steps at 20 Hz) during which the policy keeps acting, then takes
  over for the rest of the episode. ``is_intervening`` labels each step.

Everything random comes from one generator seeded by ``(config.seed, env.seed)`` at ``reset()``
(call it after ``env.reset(seed)``), so an episode is deterministic given its seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.action import CONTROL_DT
from imgen_ros.sim.env import TaskEnv
from imgen_ros.sim.operator_motion import FINE_TOL, HumanMotion, MotionConfig
from imgen_ros.sim.operator_watch import Cue, Watcher, current_subtask, watch_specs
from imgen_ros.sim.task import Waypoint

PROGRESS_M = 5e-4  # m closer to the waypoint that counts as progress
NEAR_M = 0.005  # m; within this of a waypoint, slow settling is not a blocked attempt


class Policy(Protocol):
    def reset(self) -> None: ...

    def act(self, obs: dict[str, NDArray[np.float64]]) -> NDArray[np.float64]: ...


@dataclass(frozen=True)
class ReactionDelay:
    """Time from seeing a failure to taking over: lognormal (median, log-sd), clipped to [low, high] s."""

    median_s: float = 0.5
    log_sd: float = 0.35
    low_s: float = 0.25
    high_s: float = 1.2

    def __post_init__(self) -> None:
        if not 0.0 < self.low_s <= self.median_s <= self.high_s:
            raise ValueError(f"reaction delay needs 0 < low <= median <= high, got {self}")
        if self.log_sd < 0.0:
            raise ValueError(f"log_sd must be >= 0, got {self.log_sd}")

    def sample_steps(self, rng: np.random.Generator) -> int:
        """A delay in whole 20 Hz control steps."""
        seconds = float(np.clip(self.median_s * np.exp(self.log_sd * rng.standard_normal()), self.low_s, self.high_s))
        return max(1, round(seconds / CONTROL_DT))


# misjudged-depth aim error of a deliberate first miss (m), per task
MISS_OFFSET = {"block_grasp": (0.04, 0.045), "nut_peg_assembly": (0.035, 0.045), "nut_insertion": (0.012, 0.018),
               "two_piece_assembly": (0.01, 0.015), "coffee": (0.01, 0.014)}


@dataclass(frozen=True)
class OperatorConfig:
    """The simulated operator's perception, reaction and skill."""

    seed: int = 0
    delay: ReactionDelay = field(default_factory=ReactionDelay)
    motion: MotionConfig = field(default_factory=MotionConfig)
    approach_offset: tuple[float, float] = (0.015, 0.04)  # m, sideways offset of the first waypoint above
    stuck_steps: int = 12  # a stroke without progress this long (0.6 s) is a blocked attempt
    miss_prob: float = 0.15  # a deliberately missed first attempt after a take-over
    miss_min_steps: int = 150  # only when at least this many steps remain in the episode
    patience: int | None = None  # also take over a policy that acted this many steps without success

    def __post_init__(self) -> None:
        lo, hi = self.approach_offset
        if not 0.0 <= lo <= hi:
            raise ValueError(f"approach_offset must be a range 0 <= low <= high, got {self.approach_offset}")
        if self.stuck_steps < 1:
            raise ValueError(f"stuck_steps must be >= 1, got {self.stuck_steps}")
        if not 0.0 <= self.miss_prob <= 1.0:
            raise ValueError(f"miss_prob must be a probability, got {self.miss_prob}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 step or None, got {self.patience}")


def episode_rng(config: OperatorConfig, env: TaskEnv) -> np.random.Generator:
    """The operator's generator for the episode ``env`` was last reset to."""
    return np.random.default_rng([int(config.seed), int(env.seed or 0), 0x0BE7])


class Teleoperator:
    """A person driving the robot on the true poses with human kinematics (see the module doc)."""

    def __init__(self, env: TaskEnv, config: OperatorConfig | None = None, believed: bool = False) -> None:
        """``believed=True``: plan on the observed (corrupted) poses and never check the result, i.e. a naive
        robot policy moving like the operator's demonstrations (a stand-in for BC trained on them)."""
        self.env = env
        self.config = config or OperatorConfig()
        self.believed = believed
        self.rng = episode_rng(self.config, env)
        self.motion = HumanMotion(env, self.config.motion, self.rng)
        self._specs = watch_specs(env.name)
        self.reset()

    def reset(self, rng: np.random.Generator | None = None) -> None:
        """New episode (the generator defaults to the one of ``env``'s current seed)."""
        self.rng = rng if rng is not None else episode_rng(self.config, self.env)
        self.motion.reset(self.rng)
        self._plan: list[Waypoint] = []
        self._index = 0
        self._held = 0
        self._subtask = -1
        self._backing_off = False
        self._stuck = 0
        self._best = np.inf
        self._aim_error: NDArray[np.float64] | None = None  # drawn at a take-over, used by the next attempt
        self._attempt_error: NDArray[np.float64] | None = None
        self.attempts = 0  # subtask plans started (a retry counts again)
        self._reaimed: tuple[int, int] = (-1, -1)

    def begin_recovery(self, allow_miss: bool = True) -> None:
        """Take over now: back off from wherever the robot got to, then redo the current subtask."""
        env, c = self.env, self.config
        self._aim_error = None
        remaining = env.horizon - env.step_count
        if allow_miss and remaining >= c.miss_min_steps and self.rng.random() < c.miss_prob:
            angle = self.rng.uniform(0.0, 2.0 * np.pi)
            size = self.rng.uniform(*MISS_OFFSET.get(env.name, (0.01, 0.015)))
            self._aim_error = size * np.array([np.cos(angle), np.sin(angle), 0.0])
        self._back_off()

    def _back_off(self) -> None:
        self._subtask = current_subtask(self.env)
        self._set_plan(self.env.task.recovery_waypoints(self.env, self.env.object_poses()), backing_off=True)

    def _set_plan(self, plan: list[Waypoint], backing_off: bool) -> None:
        if not plan:
            raise RuntimeError(f"task {self.env.name!r} gave no waypoints")
        self._plan, self._index, self._held = plan, 0, 0
        self._backing_off = backing_off
        self._stuck, self._best = 0, np.inf
        self.motion.reset()

    def _plan_subtask(self, sub: int) -> None:
        """Start an attempt at subtask ``sub`` (the deliberate aim error, if drawn, applies to this one only)."""
        self._subtask = sub
        self._attempt_error, self._aim_error = self._aim_error, None
        self.attempts += 1
        self._set_plan(self._vary_approach(self._waypoints(sub)), backing_off=False)

    def _waypoints(self, sub: int) -> list[Waypoint]:
        env = self.env
        poses = env.object_poses(observed=self.believed)  # a person sees the real scene
        if self._attempt_error is not None:
            ref = env.subtasks[sub].object_ref
            poses[ref] = poses[ref].copy()
            poses[ref][:3, 3] += self._attempt_error
        return list(env.task.expert_waypoints(env, sub, poses))

    def _reaim(self) -> None:
        """Before a precise move, look again: the plan's remaining waypoints from the scene as it is now
        (a held object may have sagged in the grasp since the attempt started)."""
        fresh = self._waypoints(self._subtask)
        if len(fresh) == len(self._plan):
            self._plan = [*self._plan[:self._index], *fresh[self._index:]]

    def _vary_approach(self, plan: list[Waypoint]) -> list[Waypoint]:
        """Move the first coarse waypoint that precedes a precise one sideways: a varied approach direction."""
        for i, wp in enumerate(plan[:-1]):
            if wp.tol > FINE_TOL and plan[i + 1].tol <= FINE_TOL:
                angle = self.rng.uniform(0.0, 2.0 * np.pi)
                pose = wp.pose.copy()
                pose[:3, 3] += self.rng.uniform(*self.config.approach_offset) * np.array(
                    [np.cos(angle), np.sin(angle), 0.0])
                return [*plan[:i], Waypoint(pose, wp.gripper, wp.max_step, wp.tol, wp.rot_tol, wp.wait), *plan[i + 1:]]
        return plan

    def _failed_grasp(self) -> bool:
        spec = self._specs[min(self._subtask, len(self._specs) - 1)]
        env = self.env
        return spec.grasp_gap is not None and env.gripper_command > 0 and env.finger_width() < spec.grasp_gap

    def act(self, obs: dict[str, NDArray[np.float64]] | None = None) -> NDArray[np.float64]:
        env = self.env
        sub = current_subtask(env)
        if not self._plan or (sub != self._subtask and not self._backing_off):
            self._plan_subtask(sub)
        elif self.believed:
            pass  # a naive policy: no idea it failed
        elif not self._backing_off and self._failed_grasp():
            self._back_off()  # closed on nothing: back off and try again
        elif self._index >= len(self._plan):
            if self._backing_off:
                self._plan_subtask(sub)
            elif not env.is_success():
                self._plan_subtask(sub)  # the plan ran out without success: try again
        wp = self._plan[min(self._index, len(self._plan) - 1)]
        if (not self._backing_off and not self.believed and wp.tol <= FINE_TOL
                and self._reaimed != (self.attempts, self._index)):
            self._reaimed = (self.attempts, self._index)
            self._reaim()
            wp = self._plan[min(self._index, len(self._plan) - 1)]
        via = self._is_via(self._index)
        action, reached = self.motion.step(wp, via)
        self._track_progress(wp)
        if reached and self._index < len(self._plan):
            self._held += 1
            if self._held > wp.wait:
                self._index += 1
                self._held = 0
                self._stuck, self._best = 0, np.inf
                if not via:
                    self.motion.maybe_pause()
        return action

    def _is_via(self, i: int) -> bool:
        """Waypoint ``i`` is only passed through: coarse, no waiting, and the next one moves on with the same
        gripper command (a person blends such corners instead of stopping at them)."""
        plan = self._plan
        if self._backing_off or i + 1 >= len(plan):
            return False
        wp, nxt = plan[i], plan[i + 1]
        far = float(np.linalg.norm(nxt.pose[:3, 3] - wp.pose[:3, 3])) > 0.01
        return wp.tol > FINE_TOL and wp.wait == 0 and nxt.gripper == wp.gripper and far

    def _track_progress(self, wp: Waypoint) -> None:
        """Count steps without getting closer to ``wp``; too many: the attempt is blocked, back off."""
        if self.motion.pause_left > 0 or self.believed:
            return
        dist = float(np.linalg.norm(wp.pose[:3, 3] - self.env.eef_pose()[:3, 3]))
        if dist < self._best - PROGRESS_M:
            self._best, self._stuck = dist, 0
        elif dist > max(wp.tol, NEAR_M):
            self._stuck += 1
            if self._stuck >= self.config.stuck_steps:
                if self._backing_off:  # cannot back off further: go on from here
                    self._plan_subtask(current_subtask(self.env))
                else:
                    self._back_off()


class SimulatedOperator:
    """Human-gated control around ``policy``: a person watching, reacting late, teleoperating (module doc)."""

    def __init__(self, env: TaskEnv, policy: Policy, config: OperatorConfig | None = None) -> None:
        self.env = env
        self.policy = policy
        self.config = config or OperatorConfig()
        self.watcher = Watcher(env)
        self.human = Teleoperator(env, self.config)
        self.reset_state()

    def reset_state(self) -> None:
        self.is_intervening = False
        self.interventions = 0
        self.cue: Cue | None = None  # what the person saw
        self.takeover_step: int | None = None
        self._takeover_at: int | None = None
        self._step = 0

    def reset(self) -> None:
        self.policy.reset()
        self.watcher.reset()
        self.human.reset()  # the episode's generator: env.reset(seed) came first
        self.reset_state()

    def act(self, obs: dict[str, NDArray[np.float64]]) -> NDArray[np.float64]:
        step = self._step
        self._step += 1
        if not self.is_intervening:
            seen = self.watcher.see()
            stalled = self.config.patience is not None and step >= self.config.patience
            if self._takeover_at is None and (seen is not None or stalled):
                self.cue = seen or Cue("patience", step)
                self._takeover_at = step + self.config.delay.sample_steps(self.human.rng)
            if self._takeover_at is not None and step >= self._takeover_at:
                self.is_intervening = True
                self.interventions += 1
                self.takeover_step = step
                self.human.begin_recovery()
        if self.is_intervening:
            return self.human.act(obs)
        return self.policy.act(obs)
