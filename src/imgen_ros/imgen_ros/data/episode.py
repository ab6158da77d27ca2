"""One episode in memory, as stored in a robomimic ``data/demo_i`` group, and its step recorder.

Per-step arrays share the first dimension T. ``action_modes`` labels who produced each action:
-1 a full demonstration, 0 the robot policy, 1 a human (or the simulated human / generated
recovery). ``datagen_info`` holds MimicGen's per-step keys (``eef_pose``, ``target_pose``,
``gripper_action``, ``object_poses/<name>``, ``observed_object_poses/<name>``,
``subtask_term_signals/<signal>``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

ACTION_MODE_DEMO = -1
ACTION_MODE_ROBOT = 0
ACTION_MODE_HUMAN = 1
ACTION_MODES = (ACTION_MODE_DEMO, ACTION_MODE_ROBOT, ACTION_MODE_HUMAN)


@dataclass
class Episode:
    """A recorded episode; ``attrs`` are JSON-able scalars/strings stored as the demo's attributes."""

    obs: dict[str, NDArray]
    next_obs: dict[str, NDArray]
    actions: NDArray
    rewards: NDArray
    dones: NDArray
    states: NDArray
    action_modes: NDArray
    datagen_info: dict[str, NDArray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def num_samples(self) -> int:
        return int(self.actions.shape[0])

    def check(self) -> None:
        """Raise ValueError naming the first array whose length differs from ``num_samples``."""
        n = self.num_samples
        arrays: dict[str, NDArray] = {"rewards": self.rewards, "dones": self.dones, "states": self.states,
                                      "action_modes": self.action_modes}
        arrays.update({f"obs/{k}": v for k, v in self.obs.items()})
        arrays.update({f"next_obs/{k}": v for k, v in self.next_obs.items()})
        arrays.update({f"datagen_info/{k}": v for k, v in self.datagen_info.items()})
        for key, value in arrays.items():
            if len(value) != n:
                raise ValueError(f"episode array {key} has length {len(value)}, expected {n} (= len(actions))")

    def slice(self, start: int, stop: int | None = None) -> Episode:
        """The steps ``[start:stop]`` as a new episode (attrs copied); the last step is marked done."""
        sel = slice(start, stop)
        dones = np.array(self.dones[sel], copy=True)
        if len(dones):
            dones[-1] = 1
        return Episode(
            obs={k: v[sel] for k, v in self.obs.items()},
            next_obs={k: v[sel] for k, v in self.next_obs.items()},
            actions=self.actions[sel], rewards=self.rewards[sel], dones=dones, states=self.states[sel],
            action_modes=self.action_modes[sel], datagen_info={k: v[sel] for k, v in self.datagen_info.items()},
            attrs=dict(self.attrs))


class EpisodeRecorder:
    """Accumulates (obs, action, reward, done, next_obs, state, mode, datagen_info) steps into an Episode."""

    def __init__(self) -> None:
        self._obs: list[dict[str, NDArray]] = []
        self._next_obs: list[dict[str, NDArray]] = []
        self._actions: list[NDArray] = []
        self._rewards: list[float] = []
        self._dones: list[int] = []
        self._states: list[NDArray] = []
        self._modes: list[int] = []
        self._info: list[dict[str, NDArray]] = []

    def __len__(self) -> int:
        return len(self._actions)

    def add(self, *, obs: dict[str, NDArray], action: NDArray, reward: float, done: bool,
            next_obs: dict[str, NDArray], state: NDArray, action_mode: int,
            datagen_info: dict[str, NDArray] | None = None) -> None:
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode}")
        self._obs.append(obs)
        self._next_obs.append(next_obs)
        self._actions.append(np.asarray(action, dtype=np.float64))
        self._rewards.append(float(reward))
        self._dones.append(int(bool(done)))
        self._states.append(np.asarray(state, dtype=np.float64))
        self._modes.append(int(action_mode))
        self._info.append(datagen_info or {})

    def build(self, attrs: dict[str, Any] | None = None) -> Episode:
        """The recorded steps as an Episode; the final step is marked done."""
        if not self._actions:
            raise ValueError("cannot build an episode with no steps")
        dones = np.asarray(self._dones, dtype=np.int64)
        dones[-1] = 1
        info_keys = list(self._info[0].keys())
        return Episode(
            obs=_stack_dicts(self._obs), next_obs=_stack_dicts(self._next_obs),
            actions=np.stack(self._actions), rewards=np.asarray(self._rewards, dtype=np.float64), dones=dones,
            states=np.stack(self._states), action_modes=np.asarray(self._modes, dtype=np.int64),
            datagen_info={k: np.stack([np.asarray(step[k], dtype=np.float64) for step in self._info])
                          for k in info_keys},
            attrs=dict(attrs or {}))


def _stack_dicts(steps: list[dict[str, NDArray]]) -> dict[str, NDArray]:
    return {k: np.stack([np.asarray(s[k], dtype=np.float64) for s in steps]) for k in steps[0]}
