"""Simulated human for human-gated interventions.

``SimulatedHuman(env, policy)`` lets ``policy`` act until ``env.mistake_detected()`` (the paper's
TERMINATE-POLICY signal), then takes over for the rest of the episode: it backs off (the task's
recovery waypoints), moves toward the *true* object pose and completes the task with the privileged
scripted expert. ``is_intervening`` labels each step robot (False) or human (True).
With ``patience=K`` the human also takes over a policy that has acted K steps without success
(a stalled robot); by default only detected mistakes trigger an intervention.
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

    def __init__(self, env: TaskEnv, policy: Policy, patience: int | None = None) -> None:
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be >= 1 step or None, got {patience}")
        self.env = env
        self.policy = policy
        self.patience = patience
        self._robot_steps = 0
        self.human = ScriptedExpert(env, use_true_poses=True)
        self.is_intervening = False
        self.interventions = 0

    def reset(self) -> None:
        self.policy.reset()
        self.human.reset()
        self.is_intervening = False
        self.interventions = 0
        self._robot_steps = 0

    def act(self, obs: dict[str, NDArray[np.float64]]) -> NDArray[np.float64]:
        stalled = self.patience is not None and self._robot_steps >= self.patience
        if not self.is_intervening and (self.env.mistake_detected() or stalled):
            self.is_intervening = True
            self.interventions += 1
            self.human.begin_recovery()
        if self.is_intervening:
            return self.human.act(obs)
        self._robot_steps += 1
        return self.policy.act(obs)
