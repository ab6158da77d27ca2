"""One generation attempt: a MimicGen demo, or an I-MG intervention (Algorithm 1, lines 11-19).

Both functions are pure in (env, policy, sources, seed): the scene, the corruption, the source
choices and the action noise all derive from ``seed``, so an attempt gives the same result in any
process, in any order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from imgen_ros.data.episode import ACTION_MODE_DEMO, ACTION_MODE_HUMAN, ACTION_MODE_ROBOT, Episode, EpisodeRecorder
from imgen_ros.datagen.replay import ReplayConfig, StepTimer, adapt_segment, execute_poses, recorded_step
from imgen_ros.datagen.segments import Segment, signal_key
from imgen_ros.datagen.sources import DemoPool, InterventionPool

# attempt outcomes
RECOVERED = "recovered"  # I-MG: mistake, generated recovery, task success -> kept
SUCCESS = "success"  # MimicGen: task success -> kept
FAILED = "failed"  # replay did not complete the task
NO_MISTAKE_SUCCESS = "no_mistake_success"  # the policy succeeded alone: no intervention needed
NO_MISTAKE_TIMEOUT = "no_mistake_timeout"  # horizon without a detected mistake
NO_SOURCE = "no_source"  # no source intervention starts in the subtask where the mistake happened
KEPT_OUTCOMES = (RECOVERED, SUCCESS)


# Source selection when none is given, by generation kind: the one place this default lives.
# MimicGen and I-MG draw a random source, as the paper does. ``nearest`` (among the sources whose
# take-over TCP pose in the object frame is nearest) was I-MG's default while the simulated human was
# the oracle (Block Grasp 94 % vs 80 %); with the operator human it lost to random in 4 of 5
# comparisons (docs/results.md), so it is opt-in. Experiments run both I-MG selections side by side.
DEFAULT_SELECTION = {"mimicgen": "random", "imgen": "random"}

# Steps the robot may go on after the mistake detector fired, for the observation channel to open where
# it opens on the robot's own (debounced) contact detector; see MistakeStop.
DEFAULT_REVEAL_GRACE_STEPS = 2
REVEAL_GRACE_RANGE = (0, 50)


@dataclass(frozen=True)
class GenerationParams:
    """Per-attempt generation settings shared by MimicGen and I-MG."""

    replay: ReplayConfig = field(default_factory=ReplayConfig)
    selection: str | None = None  # source selection: random | nearest; None: DEFAULT_SELECTION of the kind
    nn_k: int = 3  # candidates for nearest selection
    policy_execution: bool = True  # I-MG; False = the "I-MG - policy" ablation
    max_instances: int = 4  # mistake/recovery instances per I-MG episode
    reveal_grace_steps: int = DEFAULT_REVEAL_GRACE_STEPS

    def __post_init__(self) -> None:
        low, high = REVEAL_GRACE_RANGE
        if not low <= self.reveal_grace_steps <= high:
            raise ValueError(f"reveal_grace_steps must be in [{low}, {high}], got {self.reveal_grace_steps}")

    def selection_for(self, kind: str) -> str:
        """The source selection a ``kind`` generation uses: the explicit one, else the kind's default."""
        if kind not in DEFAULT_SELECTION:
            raise ValueError(f"unknown generation kind {kind!r} (choose from {list(DEFAULT_SELECTION)})")
        return self.selection if self.selection is not None else DEFAULT_SELECTION[kind]

    def resolved(self, kind: str) -> GenerationParams:
        """These parameters with ``selection`` made explicit for ``kind`` (what a job records)."""
        return replace(self, selection=self.selection_for(kind))


@dataclass
class AttemptResult:
    attempt: int
    seed: int
    outcome: str
    episode: Episode | None
    env_steps: int
    physics_s: float
    policy_s: float
    total_s: float
    instances: int = 0

    @property
    def kept(self) -> bool:
        return self.episode is not None


def current_subtask(env: Any) -> int:
    """Index of the first subtask whose termination signal is not set now (the last one otherwise)."""
    subtasks = env.subtasks
    if len(subtasks) == 1:
        return 0
    info = env.datagen_info()
    for i, spec in enumerate(subtasks[:-1]):
        if float(np.asarray(info[signal_key(spec.term_signal)])) < 0.5:
            return i
    return len(subtasks) - 1


def subtask_complete(env: Any, subtask: int) -> bool:
    """Whether ``subtask`` (not the last) has its termination signal set now."""
    signal = env.subtasks[subtask].term_signal
    return signal is not None and float(np.asarray(env.datagen_info()[signal_key(signal)])) > 0.5


class MistakeStop:
    """TERMINATE-POLICY: true once the mistake detector fired, and, on a task whose observation channel
    opens on the robot's contact detector (``env.detector``: Block Grasp's wrench/width detector),
    once that channel opened too or ``grace_steps`` more steps have passed.

    The mistake detector reads MuJoCo contacts and fires on the first step of a contact; the robot's
    detector needs its force to build up over ``debounce_samples`` samples and fires up to 2 steps
    later (base policy, seed 0: 21 of 58 finger-on-cube mistakes 1 step later, 1 of 58 2 steps later).
    Stopping at the first could hand over to the human recovery, which lifts off at once, before the
    reveal: the recovery then steered to the true cube from an observation that still showed the
    corrupted one (40 % of Block Grasp's I-MG recoveries until the grasp ~70 steps in), which no policy
    can learn (the paper's Assumption 4). The detector latches once fired: the stop stays true even if
    the contact ends during the grace steps.
    """

    def __init__(self, env: Any, grace_steps: int) -> None:
        self.env = env
        self.grace_steps = grace_steps if getattr(env, "detector", None) is not None else 0
        self.waited: int | None = None   # steps since the mistake fired; None: it has not

    @property
    def fired(self) -> bool:
        return self.waited is not None

    def __call__(self) -> bool:
        if self.waited is None:
            if not self.env.mistake_detected():
                return False
            self.waited = 0
        if self.waited >= self.grace_steps or getattr(self.env, "revealed", True):
            return True
        self.waited += 1
        return False


def _gripper_now(env: Any, default: float) -> float:
    return float(getattr(env, "gripper_command", default))


def _run_segments(env: Any, obs: dict, segments: list[Segment], params: GenerationParams, rng: np.random.Generator,
                  mode: int, recorder: EpisodeRecorder | None, timer: StepTimer, budget: int,
                  stop_on_mistake: bool = False) -> tuple[dict, int, bool]:
    """Adapt each segment to its object's current true pose and execute it; returns (obs, steps, done).

    When the last segment belongs to the task's final subtask and the task is not yet done, its last
    target pose is held for up to ``replay.hold_steps`` steps (the source ended at success; the
    replay may lag a few steps behind it).
    """
    steps = 0
    done = False
    poses = grippers = None
    stop = MistakeStop(env, params.reveal_grace_steps) if stop_on_mistake else None
    for segment in segments:
        if steps >= budget:
            break
        obj = env.object_poses()[segment.object_ref]
        gripper = _gripper_now(env, float(segment.gripper[0]))
        clearance = params.replay.recovery_clearance_m if mode == ACTION_MODE_HUMAN else 0.0
        poses, grippers = adapt_segment(segment, obj, env.eef_pose(), gripper, params.replay, clearance)
        out = execute_poses(env, obs, poses, grippers, rng, params.replay.action_noise, mode, recorder, timer,
                            budget - steps, stop=stop)
        obs, steps, done = out.obs, steps + out.steps, out.done
        if done or (stop is not None and stop.fired):
            return obs, steps, done
    final = bool(segments) and segments[-1].subtask == len(env.subtasks) - 1
    hold = min(params.replay.hold_steps, budget - steps)
    if final and not stop_on_mistake and poses is not None and hold > 0 and not env.is_success():
        out = execute_poses(env, obs, np.repeat(poses[-1:], hold, axis=0), np.repeat(grippers[-1:], hold), rng,
                            params.replay.action_noise, mode, recorder, timer, hold, stop=env.is_success)
        obs, steps, done = out.obs, steps + out.steps, out.done
    return obs, steps, done


def generate_mimicgen(env: Any, pool: DemoPool, attempt: int, seed: int, params: GenerationParams) -> AttemptResult:
    """MimicGen: per subtask, pick a source segment, transform it to the object's pose, execute; keep on success."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    timer = StepTimer()
    obs = timer.reset(env, seed)
    recorder = EpisodeRecorder()
    steps = 0
    used = []
    for i, spec in enumerate(env.subtasks):
        segment = pool.choose(i, env.object_poses()[spec.object_ref], params.selection_for("mimicgen"), rng,
                              params.nn_k)
        used.append(segment.source)
        obs, n, done = _run_segments(env, obs, [segment], params, rng, ACTION_MODE_DEMO, recorder, timer,
                                     env.horizon - steps)
        steps += n
        if done or steps >= env.horizon:
            break
    success = bool(env.is_success())
    episode = None
    if success and len(recorder):
        episode = recorder.build({"source": "mimicgen", "attempt": attempt, "seed": seed, "source_demos": used})
    return AttemptResult(attempt, seed, SUCCESS if success else FAILED, episode, steps, timer.physics_s,
                         timer.policy_s, time.perf_counter() - t0)


def generate_imgen(env: Any, policy: Any, pool: InterventionPool, attempt: int, seed: int,
                   params: GenerationParams) -> AttemptResult:
    """I-MG: run the policy until the mistake detector fires, replay an adapted human recovery, keep the
    episode from the take-over on if the task succeeds.

    A recovery replays the source human's whole run (the paper's "human recovery portion"), split at
    subtask boundaries and each piece adapted to its subtask's object: a human who went on to finish the
    task is replayed to the end. Where the source human handed back after completing a subtask that is
    not the last, control goes back to the policy, which may err (and be recovered) again in a later
    subtask: several mistake/recovery instances per episode. A recovery that does not complete its last
    subtask ends the attempt as failed.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    timer = StepTimer()
    obs = timer.reset(env, seed)
    if policy is not None:
        policy.reset()
    horizon = env.horizon
    recorder: EpisodeRecorder | None = None
    takeover_step = -1
    steps = instances = 0
    done = False
    used: list[str] = []
    outcome = FAILED

    if not params.policy_execution:
        candidates = pool.with_mistake()
        if not candidates:
            raise ValueError("--no-policy-execution needs source interventions with a robot segment before the "
                             "take-over")
        chosen = candidates[int(rng.integers(len(candidates)))]
        obs, n, done = _run_segments(env, obs, chosen.mistake, params, rng, ACTION_MODE_ROBOT, None, timer,
                                     horizon, stop_on_mistake=True)
        steps += n
        if env.is_success():
            return AttemptResult(attempt, seed, NO_MISTAKE_SUCCESS, None, steps, timer.physics_s, timer.policy_s,
                                 time.perf_counter() - t0)
        recorder, takeover_step = EpisodeRecorder(), steps
        used.append(chosen.source)
        obs, n, done = _run_segments(env, obs, chosen.recovery, params, rng, ACTION_MODE_HUMAN, recorder, timer,
                                     horizon - steps)
        steps += n
        instances = 1
    else:
        while True:
            stop = MistakeStop(env, params.reveal_grace_steps)
            while steps < horizon and not done and not stop():
                action = timer.act(policy, obs)
                obs, _, done, _ = recorded_step(env, obs, action, ACTION_MODE_ROBOT, recorder, timer)
                steps += 1
            if done or steps >= horizon or env.is_success():
                break
            if instances >= params.max_instances:
                break
            subtask = current_subtask(env)
            ref = env.subtasks[subtask].object_ref
            chosen = pool.choose(subtask, env.object_poses()[ref], env.eef_pose(), params.selection_for("imgen"), rng,
                                 params.nn_k)
            if chosen is None:
                outcome = NO_SOURCE
                break
            if recorder is None:
                recorder, takeover_step = EpisodeRecorder(), steps
            used.append(chosen.source)
            # the human's whole run, as the source human did it: its piece of each subtask it worked on, each
            # adapted to that subtask's object; control returns to the policy where the source human handed back
            obs, n, done = _run_segments(env, obs, chosen.recovery, params, rng, ACTION_MODE_HUMAN, recorder,
                                         timer, horizon - steps)
            steps += n
            instances += 1
            if done or env.is_success() or steps >= horizon:
                break
            handed_back_after = chosen.recovery[-1].subtask
            if handed_back_after == len(env.subtasks) - 1 or not subtask_complete(env, handed_back_after):
                break  # the recovery did not complete its subtask: failed attempt
    success = bool(env.is_success())
    episode = None
    if recorder is None:
        outcome = NO_MISTAKE_SUCCESS if success else (outcome if outcome == NO_SOURCE else NO_MISTAKE_TIMEOUT)
    elif success and len(recorder):
        outcome = RECOVERED
        episode = recorder.build({"source": "imgen" if params.policy_execution else "imgen_no_policy",
                                  "attempt": attempt, "seed": seed, "takeover_step": takeover_step,
                                  "instances": instances, "source_demos": used})
    return AttemptResult(attempt, seed, outcome, episode, steps, timer.physics_s, timer.policy_s,
                         time.perf_counter() - t0, instances)
