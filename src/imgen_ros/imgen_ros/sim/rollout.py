"""Run policies in a ``TaskEnv`` and summarize the episodes."""

from __future__ import annotations

from dataclasses import dataclass

from imgen_ros.sim.env import TaskEnv
from imgen_ros.sim.human import Policy


@dataclass(frozen=True)
class EpisodeResult:
    seed: int
    success: bool
    steps: int
    intervened: bool
    mistake: bool  # a mistake was detected at some step


def run_episode(env: TaskEnv, policy: Policy, seed: int) -> EpisodeResult:
    """One episode from ``env.reset(seed)`` until success or the horizon."""
    obs = env.reset(seed)
    policy.reset()
    done, info, steps, mistake = False, {"success": False}, 0, False
    while not done:
        obs, _, done, info = env.step(policy.act(obs))
        steps += 1
        mistake = mistake or bool(info["mistake"])
    intervened = bool(getattr(policy, "interventions", 0))
    return EpisodeResult(seed, bool(info["success"]), steps, intervened, mistake)
