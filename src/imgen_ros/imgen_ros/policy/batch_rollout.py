"""Many evaluation episodes at once: one batched network pass per control step serves a pool of envs.

A batch-1 BC-RNN step on one core is mostly framework overhead (module calls, tensor wrapping), so
rolling episodes out one by one spends about as long in the policy as in MuJoCo. Here ``n`` envs
run side by side; each control step stacks the observations of the envs that are mid-episode and
runs the network once. When an episode ends its env takes the next seed, so the pool stays full.

Per env, the policy does what robomimic's ``BC_RNN.get_action`` does for one env: its RNN state is
reset to the initial state every ``rnn.horizon`` steps counted from the episode's start, and the
observation is normalized with the checkpoint's statistics before the float32 cast. Only the random
draws of the GMM differ from one-by-one rollouts (one sample call per step for the whole batch), so
a given seed's outcome is the same in distribution, not bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

# envs rolled out side by side for a batchable checkpoint (each MuJoCo env holds ~50 MB)
DEFAULT_EVAL_BATCH = 25
MAX_EVAL_BATCH = 64  # 64 envs hold ~3 GB


class BatchPolicy(Protocol):
    """Acts for several envs (slots) at once; each slot is an independent episode."""

    slots: int

    def reset_slot(self, slot: int) -> None: ...

    def act(self, slots: Sequence[int], observations: Sequence[Mapping[str, NDArray]]) -> NDArray: ...


class BatchedRnnPolicy:
    """A robomimic BC-RNN ``RolloutPolicy`` acting for ``slots`` envs, each with its own RNN state."""

    def __init__(self, rollout_policy: Any, obs_keys: Sequence[str], slots: int) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        if not supports_batching(rollout_policy):
            raise ValueError("batched rollouts need a closed-loop robomimic BC-RNN policy")
        import torch

        algo = rollout_policy.policy
        algo.set_eval()
        self.slots = slots
        self.obs_keys = tuple(obs_keys)
        self._torch = torch
        self._net = algo.nets["policy"]
        self._device = algo.device
        self._horizon = int(algo.algo_config.rnn.horizon)
        stats = rollout_policy.obs_normalization_stats
        self._stats = None if stats is None else {
            k: (np.asarray(stats[k]["mean"], dtype=np.float64), np.asarray(stats[k]["std"], dtype=np.float64))
            for k in self.obs_keys}  # (1, D) in robomimic's format: broadcast over the batch
        self._initial = self._net.get_rnn_init_state(batch_size=slots, device=self._device)
        self._state = _map_state(self._initial, lambda t: t.clone())
        self._steps = np.zeros(slots, dtype=np.int64)

    def reset_slot(self, slot: int) -> None:
        """Start a new episode in ``slot`` (its RNN state is re-initialized at its first step)."""
        self._steps[slot] = 0

    def act(self, slots: Sequence[int], observations: Sequence[Mapping[str, NDArray]]) -> NDArray:
        """Actions (len(slots), 7) in [-1, 1] for the given slots' current observations."""
        if len(slots) != len(observations) or not slots:
            raise ValueError(f"{len(slots)} slots for {len(observations)} observations")
        torch = self._torch
        index = torch.as_tensor(np.asarray(slots, dtype=np.int64))
        fresh = [s for s in slots if self._steps[s] % self._horizon == 0]
        if fresh:
            rows = torch.as_tensor(np.asarray(fresh, dtype=np.int64))
            _copy_rows(self._state, self._initial, rows)
        obs = {k: torch.from_numpy(self._normalized(k, observations)).to(self._device) for k in self.obs_keys}
        with torch.no_grad():
            actions, new_state = self._net.forward_step(obs, rnn_state=_map_state(self._state, lambda t: t[:, index]))
        _scatter_rows(self._state, new_state, index)
        self._steps[list(slots)] += 1
        return np.clip(actions.detach().cpu().numpy().astype(np.float64), -1.0, 1.0)

    def _normalized(self, key: str, observations: Sequence[Mapping[str, NDArray]]) -> NDArray:
        try:
            stacked = np.stack([np.asarray(o[key], dtype=np.float64) for o in observations])
        except KeyError as exc:
            raise KeyError(f"observation lacks key {key!r} the policy was trained on") from exc
        if self._stats is not None:
            mean, std = self._stats[key]
            stacked = (stacked - mean) / std
        return stacked.astype(np.float32)


def supports_batching(rollout_policy: Any) -> bool:
    """True for a robomimic RolloutPolicy around a closed-loop RNN algo (BC-RNN, BC-RNN-GMM)."""
    algo = getattr(rollout_policy, "policy", None)
    nets = getattr(algo, "nets", None)
    config = getattr(algo, "algo_config", None)
    try:
        net = nets["policy"]
        rnn = config.rnn
        return bool(rnn.enabled) and not bool(rnn.get("open_loop", False)) and hasattr(net, "forward_step")
    except (TypeError, KeyError, AttributeError):
        return False


class EnvPool:
    """Envs of one (task, noise, observability) kept between evaluations in a process.

    Building a TaskEnv compiles its MuJoCo model (~0.1-0.2 s); a training run evaluates every few
    epochs, so its pool is built once. An env carries nothing from one episode to the next that
    ``reset(seed)`` does not set, as one-by-one evaluation already relies on.
    """

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._envs: list[Any] = []

    def get(self, key: tuple[Any, ...], count: int, make_env: Callable[[], Any]) -> list[Any]:
        if key != self._key:
            self.close()
            self._key = key
        while len(self._envs) < count:
            self._envs.append(make_env())
        return self._envs[:count]

    def close(self) -> None:
        for env in self._envs:
            env.close()
        self._envs, self._key = [], None


def run_pooled(envs: Sequence[Any], policy: BatchPolicy, seeds: Sequence[int],
               on_done: Callable[[int, bool, int, bool], None]) -> None:
    """Roll out one episode per seed on ``envs`` side by side (``len(envs) <= policy.slots``).

    Each env takes the next seed when its episode ends (success, ``done`` or the horizon), exactly
    as one-by-one evaluation ends it; ``on_done(seed, success, steps, mistake)`` is called then.
    """
    if len(envs) > policy.slots:
        raise ValueError(f"{len(envs)} envs for a policy with {policy.slots} slots")
    queue = list(seeds)[::-1]
    active: dict[int, dict[str, Any]] = {}

    def start(slot: int) -> None:
        seed = queue.pop()
        obs = envs[slot].reset(seed)
        policy.reset_slot(slot)
        active[slot] = {"seed": seed, "obs": obs, "steps": 0, "success": False, "mistake": False}

    for slot in range(min(len(envs), len(queue))):
        start(slot)
    while active:
        slots = sorted(active)
        actions = policy.act(slots, [active[s]["obs"] for s in slots])
        for slot, action in zip(slots, actions, strict=True):
            episode, env = active[slot], envs[slot]
            episode["obs"], _reward, done, info = env.step(action)
            episode["steps"] += 1
            episode["success"] = episode["success"] or bool(info.get("success", False))
            episode["mistake"] = episode["mistake"] or bool(info.get("mistake", False))
            if done or episode["success"] or episode["steps"] >= env.horizon:
                del active[slot]
                on_done(episode["seed"], episode["success"], episode["steps"], episode["mistake"])
                if queue:
                    start(slot)


def _map_state(state: Any, fn: Callable[[Any], Any]) -> Any:
    return tuple(fn(t) for t in state) if isinstance(state, tuple) else fn(state)


def _copy_rows(state: Any, source: Any, rows: Any) -> None:
    pairs = zip(state, source, strict=True) if isinstance(state, tuple) else [(state, source)]
    for target, src in pairs:
        target[:, rows] = src[:, rows]


def _scatter_rows(state: Any, new: Any, index: Any) -> None:
    pairs = zip(state, new, strict=True) if isinstance(state, tuple) else [(state, new)]
    for target, src in pairs:
        target[:, index] = src
