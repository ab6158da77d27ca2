"""How much a partial-observability cue can ground a recovery: a scripted probe, no learning.

The task's scripted expert acts on the believed (corrupted) pose until contact reveals the channel;
then it backs off (the task's recovery waypoints) and replans on the revealed object's position as
one source of belief gives it:

- ``truth``: the true position (what full observability shows);
- ``cue``: the xy of the first-contact position (partial observability's ``contact_position`` cue),
  the height believed;
- ``believed``: nothing learned from the contact (the corrupted belief).

A learned policy under partial observability sees no more than ``cue``; the probe's ``cue`` rate is
what a recovery that moves straight to the cue achieves. Same seeds for every source.
``--clearance-mm`` rebuilds Nut Insertion's nut with another hole-to-peg clearance per side (imgen's
is 2.5 mm; robosuite's square nut on its square peg, the paper's likely geometry, has 6.75 mm).

    python -m imgen_ros.sim.cue_probe [--task nut_insertion] [--episodes 50] [--seed0 1000000]
                                      [--clearance-mm C]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from imgen_ros.cli._args import EPISODES, SEED, OneLineErrorParser, bounded_float
from imgen_ros.sim import make_env
from imgen_ros.sim.env import TaskEnv
from imgen_ros.sim.expert import ScriptedExpert
from imgen_ros.sim.tasks.nut_insertion import PEG_HALF, RING_HALF, NutInsertion

BELIEF_SOURCES = ("truth", "cue", "believed")


class CueGroundedExpert(ScriptedExpert):
    """The naive expert (believed poses, replanning when a plan runs out) whose belief of the revealed
    object's position, once contact revealed it, comes from ``source``."""

    def __init__(self, env: TaskEnv, source: str) -> None:
        if source not in BELIEF_SOURCES:
            raise ValueError(f"belief source must be one of {list(BELIEF_SOURCES)}, got {source!r}")
        self.source = source
        super().__init__(env, use_true_poses=False, retry=True)

    def poses(self) -> dict[str, NDArray[np.float64]]:
        poses = self.env.object_poses(observed=True)
        channel = self.env.task.channel
        if channel is None or not self.env.revealed or self.source == "believed":
            return poses
        revealed = poses[channel.revealed].copy()
        if self.source == "truth":
            revealed[:2, 3] = self.env.object_poses()[channel.revealed][:2, 3]
        else:
            revealed[:2, 3] = self.env.cue[:2]
        poses[channel.revealed] = revealed
        return poses


@dataclass(frozen=True)
class ProbeResult:
    source: str
    successes: int
    episodes: int
    revealed: int   # episodes in which contact revealed the channel at all


def looser_nut_insertion(clearance_m: float) -> type[NutInsertion]:
    """Nut Insertion with ``clearance_m`` between the nut's hole and the peg per side; an inserted nut
    counts as a success when centred within the clearance plus 1 mm (never tighter than the task's)."""
    if not 0.0 < clearance_m < RING_HALF - PEG_HALF - 0.005:
        raise ValueError(f"clearance must be in (0, {1000 * (RING_HALF - PEG_HALF - 0.005):.0f}) mm, "
                         f"got {1000 * clearance_m:g} mm")
    return type("LooserNutInsertion", (NutInsertion,), {
        "hole_half": PEG_HALF + clearance_m, "align_tol": max(NutInsertion.align_tol, clearance_m + 0.001)})


def position_cue_env(task: str, clearance_m: float | None = None) -> TaskEnv:
    """``task``'s env with pose noise and partial observability; ValueError unless its cue is a position.
    ``clearance_m``: Nut Insertion only, its nut rebuilt with that clearance (:func:`looser_nut_insertion`)."""
    if clearance_m is None:
        env = make_env(task, noise="on", observability="partial")
    elif task != NutInsertion.name:
        raise ValueError(f"a clearance applies to {NutInsertion.name} only, not {task!r}")
    else:
        env = TaskEnv(looser_nut_insertion(clearance_m)("on"), observability="partial")
    channel = env.task.channel
    if channel is None or channel.partial_cue != "contact_position":
        cue = "none" if channel is None else channel.partial_cue
        raise ValueError(f"task {task!r} has no contact-position cue (its partial cue: {cue}); the probe "
                         "places the revealed object at the cue, which only a position cue allows")
    return env


def probe(task: str, source: str, seeds: Sequence[int], clearance_m: float | None = None) -> ProbeResult:
    """Roll the cue-grounded expert out on ``seeds`` (pose noise on, partial observability)."""
    env = position_cue_env(task, clearance_m)
    try:
        return _probe(env, source, seeds)
    finally:
        env.close()


def _probe(env: TaskEnv, source: str, seeds: Sequence[int]) -> ProbeResult:
    successes = revealed = 0
    for seed in seeds:
        obs = env.reset(seed)
        expert = CueGroundedExpert(env, source)
        recovering = False
        for _ in range(env.horizon):
            obs, _, done, info = env.step(expert.act(obs))
            if info["revealed"] and not recovering:
                recovering = True
                expert.begin_recovery()
            if info["success"]:
                successes += 1
                break
            if done:
                break
        revealed += recovering
    return ProbeResult(source, successes, len(seeds), revealed)


def cue_error_mm(task: str, seeds: Sequence[int], clearance_m: float | None = None) -> NDArray[np.float64]:
    """xy distance (mm) from the contact-position cue to the revealed object's true position, at the
    reveal, for the naive expert's first contact on each seed (seeds without a reveal are left out)."""
    env = position_cue_env(task, clearance_m)
    try:
        return _cue_errors(env, seeds)
    finally:
        env.close()


def _cue_errors(env: TaskEnv, seeds: Sequence[int]) -> NDArray[np.float64]:
    channel = env.task.channel
    assert channel is not None
    errors = []
    for seed in seeds:
        obs = env.reset(seed)
        expert = ScriptedExpert(env, use_true_poses=False)
        for _ in range(env.horizon):
            obs, _, done, info = env.step(expert.act(obs))
            if info["revealed"] or done:
                break
        if env.revealed:
            true_xy = env.object_poses()[channel.revealed][:2, 3]
            errors.append(1000.0 * float(np.linalg.norm(env.cue[:2] - true_xy)))
    return np.array(errors)


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineErrorParser(prog="python -m imgen_ros.sim.cue_probe", description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="nut_insertion")
    parser.add_argument("--episodes", type=EPISODES, default=50)
    parser.add_argument("--seed0", type=SEED, default=1_000_000, help="first seed (imgen eval's held-out seeds)")
    widest_mm = 1000.0 * (RING_HALF - PEG_HALF - 0.005)
    parser.add_argument("--clearance-mm", type=bounded_float(0.0, widest_mm), default=None,
                        help="nut_insertion only: rebuild the nut with this hole-to-peg clearance per side")
    args = parser.parse_args(argv)
    seeds = range(args.seed0, args.seed0 + args.episodes)
    try:   # an unknown task, one without a position cue, a clearance out of the nut's range
        env = position_cue_env(args.task, None if args.clearance_mm is None else args.clearance_mm / 1000.0)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        errors = _cue_errors(env, seeds)
        spread = (f"p10 / p50 / p90 {' / '.join(f'{v:.1f}' for v in np.percentile(errors, [10, 50, 90]))} mm"
                  if len(errors) else "no reveal")
        print(f"{args.task}: cue to true position, xy, at the reveal ({len(errors)} of {args.episodes} revealed): "
              f"{spread}", flush=True)
        for source in BELIEF_SOURCES:
            result = _probe(env, source, seeds)
            print(f"recovery on {source:8s}: {result.successes}/{result.episodes} succeeded "
                  f"({result.revealed} revealed)", flush=True)
    finally:
        env.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
