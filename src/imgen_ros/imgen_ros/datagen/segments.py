"""Source segments: object-centric pieces of recorded episodes that generation transforms and replays.

A segment is a run of steps ``[start, end)`` of one source episode inside one subtask: its
controller target poses, gripper actions, and the (true) pose of the subtask's reference object at
the segment's first step. Full demonstrations split at the subtask termination signals (MimicGen);
interventions contribute their human runs (``action_modes == 1``), split the same way (I-MG).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.pose import Pose, pose_distance, pose_inv
from imgen_ros.data.episode import ACTION_MODE_HUMAN, ACTION_MODE_ROBOT, Episode

TARGET_KEY = "target_pose"
EEF_KEY = "eef_pose"
GRIPPER_KEY = "gripper_action"

# A step where the person held still: commanded motion under these, and the gripper command unchanged
# for GRIPPER_SETTLE_STEPS (the fingers still closing or opening are part of the motion).
HOLD_TRANSLATION_M = 0.001
HOLD_ROTATION_RAD = 0.01
GRIPPER_SETTLE_STEPS = 10


def object_pose_key(name: str) -> str:
    return f"object_poses/{name}"


def signal_key(name: str) -> str:
    return f"subtask_term_signals/{name}"


@dataclass(frozen=True)
class Segment:
    """Steps ``[start, end)`` of source episode ``source`` within subtask ``subtask``."""

    source: str
    subtask: int
    object_ref: str
    start: int
    end: int
    target_poses: NDArray[np.float64]  # (T, 4, 4)
    gripper: NDArray[np.float64]  # (T,)
    object_pose: Pose  # true pose of object_ref at step ``start``
    eef_pose: Pose  # TCP pose at step ``start``

    def __len__(self) -> int:
        return self.end - self.start

    @property
    def eef_in_object(self) -> Pose:
        """The TCP pose at the segment start expressed in the reference object's frame."""
        return pose_inv(self.object_pose) @ self.eef_pose


def subtask_ends(episode: Episode, subtasks: list[Any]) -> list[int]:
    """End step (exclusive) of each subtask: one past the first step its termination signal is 1.

    Signals are read in order, each searched only after the previous subtask ended; a signal that
    never fires ends its subtask at the episode end. The last subtask always ends at the episode end.
    """
    n = episode.num_samples
    ends: list[int] = []
    start = 0
    for spec in subtasks[:-1]:
        key = signal_key(spec.term_signal)
        if key not in episode.datagen_info:
            raise ValueError(f"source episode lacks datagen_info/{key} (subtask signal {spec.term_signal!r})")
        fired = np.flatnonzero(np.asarray(episode.datagen_info[key]).reshape(n)[start:] > 0.5)
        end = n if len(fired) == 0 else start + int(fired[0]) + 1
        ends.append(end)
        start = end
    ends.append(n)
    return ends


def subtask_of_steps(episode: Episode, subtasks: list[Any]) -> NDArray[np.int64]:
    """The subtask index of every step (from :func:`subtask_ends`)."""
    out = np.zeros(episode.num_samples, dtype=np.int64)
    start = 0
    for i, end in enumerate(subtask_ends(episode, subtasks)):
        out[start:end] = i
        start = end
    return out


def held_steps(episode: Episode) -> NDArray[np.bool_]:
    """Steps where the person held still: a commanded move (target vs. TCP) under ``HOLD_TRANSLATION_M``
    and ``HOLD_ROTATION_RAD`` with the gripper command the same for the last ``GRIPPER_SETTLE_STEPS``.

    A replayed hold is a state whose only label is "stay": a BC-RNN that reaches it (the operator
    pausing above the cube before the final descent) can hover there for the rest of the episode.
    """
    info = episode.datagen_info
    for needed in (TARGET_KEY, EEF_KEY, GRIPPER_KEY):
        if needed not in info:
            raise ValueError(f"source lacks datagen_info/{needed} (not recorded by imgen collect?)")
    targets, eefs = np.asarray(info[TARGET_KEY], dtype=float), np.asarray(info[EEF_KEY], dtype=float)
    gripper = np.asarray(info[GRIPPER_KEY], dtype=float).reshape(-1)
    still = np.array([all(d < lim for d, lim in zip(pose_distance(t, e), (HOLD_TRANSLATION_M, HOLD_ROTATION_RAD),
                                                      strict=True)) for t, e in zip(targets, eefs, strict=True)],
                     dtype=bool)
    steps = np.arange(len(gripper))
    changed = np.r_[False, np.sign(gripper[1:]) != np.sign(gripper[:-1])]
    # the last change at or before each step; none before the episode counts as long settled
    last_change = np.maximum.accumulate(np.where(changed, steps, -GRIPPER_SETTLE_STEPS))
    return still & (steps - last_change >= GRIPPER_SETTLE_STEPS)


def make_segment(episode: Episode, source: str, subtasks: list[Any], subtask: int, start: int, end: int,
                 drop: NDArray[np.bool_] | None = None) -> Segment:
    """Steps ``[start, end)`` as a segment; ``drop`` (per episode step) leaves those steps out of its motion
    (never the first, which anchors the segment)."""
    info = episode.datagen_info
    ref = subtasks[subtask].object_ref
    key = object_pose_key(ref)
    for needed in (TARGET_KEY, EEF_KEY, GRIPPER_KEY, key):
        if needed not in info:
            raise ValueError(f"source {source} lacks datagen_info/{needed} (not recorded by imgen collect?)")
    keep = np.ones(end - start, dtype=bool)
    if drop is not None:
        keep[1:] = ~np.asarray(drop[start + 1:end], dtype=bool)
    return Segment(source=source, subtask=subtask, object_ref=ref, start=start, end=end,
                   target_poses=np.asarray(info[TARGET_KEY][start:end], dtype=float)[keep],
                   gripper=np.asarray(info[GRIPPER_KEY][start:end], dtype=float).reshape(-1)[keep],
                   object_pose=np.asarray(info[key][start], dtype=float),
                   eef_pose=np.asarray(info[EEF_KEY][start], dtype=float))


def demo_segments(episode: Episode, source: str, subtasks: list[Any], drop_holds: bool = False) -> list[Segment]:
    """MimicGen: one segment per subtask (empty subtasks are skipped: the caller checks coverage);
    ``drop_holds``: without the steps where the person held still (:func:`held_steps`)."""
    drop = held_steps(episode) if drop_holds else None
    segments = []
    start = 0
    for i, end in enumerate(subtask_ends(episode, subtasks)):
        if end > start:
            segments.append(make_segment(episode, source, subtasks, i, start, end, drop))
        start = end
    return segments


def runs_of_mode(modes: NDArray, mode: int) -> list[tuple[int, int]]:
    """Maximal runs ``[start, end)`` where ``modes == mode``."""
    hit = np.r_[False, np.asarray(modes) == mode, False]
    edges = np.flatnonzero(np.diff(hit.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def split_by_subtask(episode: Episode, source: str, subtasks: list[Any], start: int, end: int,
                     drop: NDArray[np.bool_] | None = None) -> list[Segment]:
    """Steps ``[start, end)`` cut at subtask boundaries into per-subtask segments (``drop``: see make_segment)."""
    labels = subtask_of_steps(episode, subtasks)
    pieces = []
    a = start
    while a < end:
        b = a
        while b < end and labels[b] == labels[a]:
            b += 1
        pieces.append(make_segment(episode, source, subtasks, int(labels[a]), a, b, drop))
        a = b
    return pieces


@dataclass(frozen=True)
class Intervention:
    """One human intervention of a source episode: the preceding robot run and the human run."""

    source: str
    mistake: list[Segment]  # robot segment(s) before the take-over (for --no-policy-execution)
    recovery: list[Segment]  # the human segment, split at subtask boundaries

    @property
    def subtask(self) -> int:
        return self.recovery[0].subtask


def episode_interventions(episode: Episode, source: str, subtasks: list[Any],
                          drop_holds: bool = False) -> list[Intervention]:
    """Every human run of an intervention episode, with the robot run right before it; ``drop_holds``: the
    human runs without the steps where the person held still (:func:`held_steps`)."""
    drop = held_steps(episode) if drop_holds else None
    modes = np.asarray(episode.action_modes)
    robot_runs = runs_of_mode(modes, ACTION_MODE_ROBOT)
    out = []
    for start, end in runs_of_mode(modes, ACTION_MODE_HUMAN):
        before = [r for r in robot_runs if r[1] == start]
        mistake = split_by_subtask(episode, source, subtasks, *before[0]) if before else []
        out.append(Intervention(source=source, mistake=mistake,
                                recovery=split_by_subtask(episode, source, subtasks, start, end, drop)))
    return out
