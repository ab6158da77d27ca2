"""TERMINATE-POLICY waits (a bounded number of steps) for the observation channel that the robot's own
contact detector opens: a recovery must start from an observation that explains it (Assumption 4)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from imgen_ros.datagen.episodes import GenerationParams, MistakeStop
from imgen_ros.policy.evaluate import load_policy
from imgen_ros.sim import make_env


@dataclass
class FakeEnv:
    """Mistake from step ``mistake_at`` on (until ``mistake_until``), revealed from ``reveal_at``."""

    mistake_at: int
    reveal_at: int | None
    detector: object | None = object()
    mistake_until: int = 10**9
    t: int = 0

    def step(self) -> None:
        self.t += 1

    def mistake_detected(self) -> bool:
        return self.mistake_at <= self.t < self.mistake_until

    @property
    def revealed(self) -> bool:
        return self.reveal_at is not None and self.t >= self.reveal_at


def stop_step(env: FakeEnv, grace: int) -> int:
    stop = MistakeStop(env, grace)
    while not stop():
        env.step()
    return env.t


def test_stops_when_the_channel_opens_or_the_grace_is_spent():
    assert stop_step(FakeEnv(mistake_at=5, reveal_at=5), grace=2) == 5
    assert stop_step(FakeEnv(mistake_at=5, reveal_at=6), grace=2) == 6
    assert stop_step(FakeEnv(mistake_at=5, reveal_at=None), grace=2) == 7     # a contact that never reveals
    assert stop_step(FakeEnv(mistake_at=5, reveal_at=6), grace=0) == 5


def test_no_robot_detector_means_no_wait_and_a_fired_stop_stays_fired():
    assert stop_step(FakeEnv(mistake_at=5, reveal_at=None, detector=None), grace=2) == 5   # MuJoCo-contact channels
    env = FakeEnv(mistake_at=5, reveal_at=None, mistake_until=6)   # the contact ends during the grace steps
    assert stop_step(env, grace=2) == 7


def test_grace_is_bounded():
    with pytest.raises(ValueError, match="reveal_grace_steps"):
        GenerationParams(reveal_grace_steps=-1)


def _stops_on_block_grasp(grace: int, seeds: range) -> list[tuple[bool, bool, int]]:
    """(finger on the cube, revealed, steps waited) where the naive expert's run is stopped."""
    env = make_env("block_grasp", noise="on", observability="full")
    policy = load_policy("expert", env)   # steers by the corrupted pose: lands a finger on the cube
    out = []
    try:
        for seed in seeds:
            obs = env.reset(seed)
            policy.reset()
            stop = MistakeStop(env, grace)
            for _ in range(env.horizon):
                obs, _, done, _ = env.step(policy.act(obs))
                if stop() or done:
                    break
            assert stop.fired, f"seed {seed}: no mistake"
            out.append((env.touching("hand", "cube"), env.revealed, stop.waited))
    finally:
        env.close()
    return out


def test_block_grasp_recoveries_start_revealed_after_a_cube_contact():
    seeds = range(12)
    at_once = _stops_on_block_grasp(0, seeds)
    # the debounced wrench detector lags MuJoCo's first contact: stopping at once leaves most unrevealed
    assert sum(on_cube and not revealed for on_cube, revealed, _ in at_once) >= 3
    grace = GenerationParams().reveal_grace_steps
    waited = _stops_on_block_grasp(grace, seeds)
    assert sum(on_cube for on_cube, _, _ in waited) >= 8
    assert all(revealed for on_cube, revealed, _ in waited if on_cube)
    assert all(steps <= grace for _, _, steps in waited)
