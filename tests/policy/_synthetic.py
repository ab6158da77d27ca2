"""Tiny synthetic robomimic datasets for policy tests (written with imgen's DatasetWriter)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from imgen_ros.data.episode import Episode
from imgen_ros.data.writer import DatasetWriter

OBJECT_DIM = 10


def synthetic_episode(rng: np.random.Generator, length: int, mode: int, object_dim: int = OBJECT_DIM) -> Episode:
    """A smooth random episode with the contract's low-dim keys and a constant action mode."""
    t = np.linspace(0.0, 1.0, length)[:, None]
    start, goal = rng.uniform(-0.2, 0.2, 3), rng.uniform(-0.2, 0.2, 3)
    eef_pos = start + t * (goal - start)
    obs = {
        "robot0_eef_pos": eef_pos,
        "robot0_eef_quat": np.tile([1.0, 0.0, 0.0, 0.0], (length, 1)),
        "robot0_gripper_qpos": np.tile([0.04, -0.04], (length, 1)),
        "object": np.tile(np.concatenate([goal, rng.normal(size=object_dim - 3)]), (length, 1)),
    }
    actions = np.zeros((length, 7))
    actions[:, :3] = np.clip((goal - start) * 2, -1, 1)
    actions[:, 6] = np.where(t[:, 0] > 0.8, 1.0, -1.0)
    return Episode(obs=obs, next_obs=obs, actions=actions, rewards=np.zeros(length), dones=np.zeros(length),
                   states=np.zeros((length, 5)), action_modes=np.full(length, mode))


def write_synthetic_dataset(path: Path, demos: int, length: int = 20, mode: int = -1, seed: int = 0,
                            object_dim: int = OBJECT_DIM) -> Path:
    rng = np.random.default_rng(seed)
    env_args = {"env_name": "block_grasp", "type": 4, "env_kwargs": {}}
    with DatasetWriter(path, env_args=env_args) as writer:
        for _ in range(demos):
            writer.append(synthetic_episode(rng, length, mode, object_dim))
    return path
