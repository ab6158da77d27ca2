"""Synthetic episodes for format tests (no simulator needed)."""

from __future__ import annotations

import numpy as np
import pytest
from imgen_ros.data import Episode

ENV_ARGS = {"env_name": "block_grasp", "type": 4, "env_kwargs": {"noise": "off"}}


def make_episode(length: int = 12, seed: int = 0, mode: int = -1) -> Episode:
    rng = np.random.default_rng(seed)
    obs = {"robot0_eef_pos": rng.normal(size=(length, 3)), "robot0_eef_quat": rng.normal(size=(length, 4)),
           "robot0_gripper_qpos": rng.normal(size=(length, 2)), "object": rng.normal(size=(length, 10))}
    next_obs = {k: np.roll(v, -1, axis=0) for k, v in obs.items()}
    return Episode(
        obs=obs, next_obs=next_obs, actions=rng.uniform(-1, 1, size=(length, 7)),
        rewards=np.r_[np.zeros(length - 1), 1.0], dones=np.r_[np.zeros(length - 1, dtype=int), 1],
        states=rng.normal(size=(length, 20)), action_modes=np.full(length, mode),
        datagen_info={"eef_pose": np.tile(np.eye(4), (length, 1, 1)),
                      "object_poses/cube": np.tile(np.eye(4), (length, 1, 1)),
                      "subtask_term_signals/grasp": np.zeros(length)},
        attrs={"source": "test", "seed": seed})


@pytest.fixture
def make_ep():
    """Factory ``make_ep(length, seed, mode) -> Episode`` of random but valid episodes."""
    return make_episode


@pytest.fixture
def env_args() -> dict:
    return dict(ENV_ARGS)
