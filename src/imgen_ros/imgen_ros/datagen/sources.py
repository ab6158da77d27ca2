"""Source datasets as segment pools, and the choice of a source for the current scene."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imgen_ros.core.pose import Pose, pose_distance, pose_inv
from imgen_ros.data.episode import ACTION_MODE_HUMAN
from imgen_ros.data.reader import DatasetReader
from imgen_ros.datagen.segments import (
    EEF_KEY,
    TARGET_KEY,
    Intervention,
    Segment,
    demo_segments,
    episode_interventions,
    object_pose_key,
)

SELECTION_STRATEGIES = ("random", "nearest")
ROTATION_WEIGHT_M_PER_RAD = 0.05  # pose distance = translation + this * rotation angle
ROTATION_TOLERANCE = 1e-2  # max |R^T R - I| of a source pose's rotation part (recorded ones are orthonormal to ~1e-9)


def load_episodes(path: str | Path, task: str, mask: str | None = None) -> list[tuple[str, Any]]:
    """(demo name, Episode) pairs of a validated source file recorded on ``task``."""
    with DatasetReader(path) as reader:
        if reader.env_name != task:
            raise ValueError(f"{path}: source was recorded on task {reader.env_name!r}, not {task!r}")
        demos = reader.demos(mask)
        if not demos:
            raise ValueError(f"{path}: no source demos" + (f" in mask {mask!r}" if mask else ""))
        episodes = [(d, reader.load_episode(d)) for d in demos]
    for name, episode in episodes:
        _check_finite(path, name, episode.datagen_info)
        _check_poses(path, name, episode.datagen_info)
    return episodes


def _check_finite(path: str | Path, demo: str, info: dict[str, Any]) -> None:
    """Refuse NaN/Inf in a source's ``datagen_info`` (the poses generation replays), naming file, demo and key."""
    for key, value in info.items():
        array = np.asarray(value)
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            step = int(np.argwhere(~np.isfinite(array))[0][0])
            raise ValueError(f"{path} data/{demo} [datagen_info/{key}]: non-finite value (NaN/Inf) at step {step}; "
                             "generation replays these poses")


def _check_poses(path: str | Path, demo: str, info: dict[str, Any]) -> None:
    """Refuse source poses generation transforms that are not (T, 4, 4) rigid transforms (a zero or scaled
    rotation part would fail deep in scipy), naming file, demo, key and the first bad step."""
    for key, value in info.items():
        if key not in (TARGET_KEY, EEF_KEY) and not key.startswith(object_pose_key("")):
            continue
        where = f"{path} data/{demo} [datagen_info/{key}]"
        poses = np.asarray(value, dtype=float)
        if poses.ndim != 3 or poses.shape[1:] != (4, 4):
            raise ValueError(f"{where}: shape {poses.shape}, expected (T, 4, 4) poses")
        rotations = poses[:, :3, :3]
        error = np.abs(np.einsum("tji,tjk->tik", rotations, rotations) - np.eye(3)).max(axis=(1, 2), initial=0.0)
        bad = (error > ROTATION_TOLERANCE) | (np.linalg.det(rotations) <= 0)
        if np.any(bad):
            step = int(np.argmax(bad))
            raise ValueError(f"{where}: not a rigid transform at step {step} (rotation part not orthonormal with "
                             "determinant +1); generation replays these poses")


@dataclass
class DemoPool:
    """MimicGen sources: per source demo, one segment per subtask."""

    demos: list[list[Segment]]

    @classmethod
    def from_file(cls, path: str | Path, task: str, subtasks: list[Any], mask: str | None = None,
                  drop_holds: bool = False) -> DemoPool:
        demos = []
        for name, episode in load_episodes(path, task, mask):
            segments = demo_segments(episode, name, subtasks, drop_holds)
            if [s.subtask for s in segments] == list(range(len(subtasks))):
                demos.append(segments)
        if not demos:
            raise ValueError(f"{path}: no source demo covers all {len(subtasks)} subtasks (check the term signals)")
        return cls(demos)

    def choose(self, subtask: int, object_pose: Pose, strategy: str, rng: np.random.Generator,
               nn_k: int = 3) -> Segment:
        candidates = [d[subtask] for d in self.demos]
        return choose_segment(candidates, strategy, rng, nn_k,
                              key=lambda s: _distance(s.object_pose, object_pose))


@dataclass
class InterventionPool:
    """I-MG sources: every human intervention of every source episode."""

    interventions: list[Intervention]

    @classmethod
    def from_file(cls, path: str | Path, task: str, subtasks: list[Any], mask: str | None = None,
                  drop_holds: bool = False) -> InterventionPool:
        interventions: list[Intervention] = []
        for name, episode in load_episodes(path, task, mask):
            if np.any(episode.action_modes == ACTION_MODE_HUMAN):
                interventions.extend(episode_interventions(episode, name, subtasks, drop_holds))
        if not interventions:
            raise ValueError(f"{path}: no human-labelled steps (action_modes == 1); I-MG needs source "
                             "interventions (imgen collect interventions)")
        return cls(interventions)

    def for_subtask(self, subtask: int) -> list[Intervention]:
        return [i for i in self.interventions if i.subtask == subtask]

    def choose(self, subtask: int, object_pose: Pose, eef_pose: Pose, strategy: str, rng: np.random.Generator,
               nn_k: int = 3) -> Intervention | None:
        """A human intervention starting in ``subtask``; ``nearest`` compares the TCP pose in the object frame
        at take-over (similar mistakes first)."""
        candidates = self.for_subtask(subtask)
        if not candidates:
            return None
        eef_in_object = pose_inv(object_pose) @ eef_pose
        return choose_segment(candidates, strategy, rng, nn_k,
                              key=lambda i: _distance(i.recovery[0].eef_in_object, eef_in_object))

    def with_mistake(self) -> list[Intervention]:
        return [i for i in self.interventions if i.mistake]


def choose_segment(candidates: list, strategy: str, rng: np.random.Generator, nn_k: int, key) -> Any:
    """``random``: uniform; ``nearest``: uniform among the ``nn_k`` candidates with the smallest ``key``."""
    if strategy not in SELECTION_STRATEGIES:
        raise ValueError(f"unknown source selection {strategy!r} (choose from {list(SELECTION_STRATEGIES)})")
    if strategy == "nearest":
        order = np.argsort([key(c) for c in candidates], kind="stable")
        candidates = [candidates[i] for i in order[:max(1, nn_k)]]
    return candidates[int(rng.integers(len(candidates)))]


def _distance(a: Pose, b: Pose) -> float:
    dpos, dang = pose_distance(a, b)
    return dpos + ROTATION_WEIGHT_M_PER_RAD * dang
