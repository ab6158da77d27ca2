"""Simulated human for human-gated interventions.

``SimulatedHuman(env, policy)`` lets ``policy`` act until ``env.mistake_detected()`` (the paper's
TERMINATE-POLICY signal), then takes over for the rest of the episode: it backs off (the task's
recovery waypoints), moves toward the *true* object pose and completes the task with the privileged
scripted expert. ``is_intervening`` labels each step robot (False) or human (True).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from imgen_ros.sim.env import TaskEnv
from imgen_ros.sim.expert import ScriptedExpert


class Policy(Protocol):
    def reset(self) -> None: ...

    def act(self, obs: dict[str, NDArray[np.float64]]) -> NDArray[np.float64]: ...


class SimulatedHuman:
    """Human-gated wrapper around a robot policy; deterministic given the env's seed."""

    def __init__(self, env: TaskEnv, policy: Policy) -> None:
        self.env = env
        self.policy = policy
        self.human = ScriptedExpert(env, use_true_poses=True)
        self.is_intervening = False
        self.interventions = 0

    def reset(self) -> None:
        self.policy.reset()
        self.human.reset()
        self.is_intervening = False
        self.interventions = 0

    def act(self, obs: dict[str, NDArray[np.float64]]) -> NDArray[np.float64]:
        if not self.is_intervening and self.env.mistake_detected():
            self.is_intervening = True
            self.interventions += 1
            self.human.begin_recovery()
        if self.is_intervening:
            return self.human.act(obs)
        return self.policy.act(obs)
