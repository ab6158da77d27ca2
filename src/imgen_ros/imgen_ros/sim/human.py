"""Simulated humans for human-gated interventions and demonstrations, and the choice between them.

Two models (``HUMAN_MODELS``), chosen by name with :func:`make_human` / :func:`make_demonstrator`:

- ``operator`` (the default, ``imgen_ros.sim.operator``): a person who takes over on what they SEE
  going wrong (a misaligned approach, a failed grasp, a blocked motion), after a sampled reaction
  delay while the policy keeps acting, and who moves like a teleoperator (bounded speed, uneven
  curved paths, pauses, overshoot, varied approach, sometimes a second attempt).
- ``oracle`` (:class:`SimulatedHuman`, below): takes over at the very step the generator's own
  TERMINATE-POLICY detector fires (``env.mistake_detected()``) and recovers along the privileged
  scripted expert's straight, fast path. Kept for comparison: every source intervention it records
  starts in the state I-MG stops in, which flatters I-MG.

``SimulatedHuman(env, policy)`` lets ``policy`` act until ``env.mistake_detected()``, then takes over
for the rest of the episode: it backs off (the task's recovery waypoints), moves toward the *true*
object pose and completes the task with the privileged scripted expert. ``is_intervening`` labels
each step robot (False) or human (True). With ``patience=K`` the human also takes over a policy
that has acted K steps without success (a stalled robot); by default only detected mistakes
trigger an intervention.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from imgen_ros.sim.env import TaskEnv
from imgen_ros.sim.expert import ScriptedExpert
from imgen_ros.sim.operator import Policy, SimulatedOperator, Teleoperator


class SimulatedHuman:
    """The oracle: human-gated wrapper around a robot policy that takes over on the generator's mistake
    detector; deterministic given the env's seed."""

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


HUMAN_MODELS = ("operator", "oracle")
DEFAULT_HUMAN = "operator"


def _check(name: str) -> None:
    if name not in HUMAN_MODELS:
        raise ValueError(f"unknown human model {name!r} (choose from {list(HUMAN_MODELS)})")


def make_human(name: str, env: TaskEnv, policy: Policy) -> SimulatedOperator | SimulatedHuman:
    """Human-gated control of ``policy`` by the human model ``name`` (``operator`` or ``oracle``)."""
    _check(name)
    if name == "oracle":
        return SimulatedHuman(env, policy)
    return SimulatedOperator(env, policy)


def make_demonstrator(name: str, env: TaskEnv) -> Teleoperator | ScriptedExpert:
    """Who records full demonstrations on the true poses: the operator teleoperating, or the scripted expert."""
    _check(name)
    if name == "oracle":
        return ScriptedExpert(env, use_true_poses=True)
    return Teleoperator(env)
