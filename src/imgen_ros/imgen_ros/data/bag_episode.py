"""Recorded episode bags -> robomimic episodes with intervention labels (ROS-free).

One step per command the arbiter sent to the robot (``robot/command``) inside the episode (START
.. SUCCESS/FAILURE/ABORT), except HOLD commands (source SAFETY: nobody acted). Times are the
messages' header stamps (when measured, decided or happened; arrival where a stamp is unset), not
when the recorder received them: a recorder starved for a moment gets a burst of queued messages
at once. For a command stamped t:

- ``obs``: the newest robot state, believed object pose(s) (``object_pose``, valid only) and the
  observability channel (``object_pose/revealed``) stamped at or before t, in the policy's layout
  (core.observation); ``next_obs`` is the next step's ``obs`` (the last step: the newest state).
- ``actions``: the executed (safety-filtered) delta as the normalized 7-D action.
- ``action_modes``: the arbiter's control state in force at t: HUMAN -> 1, POLICY -> 0 (if the
  state message is missing or HOLD, the command's source decides).
- ``datagen_info``: ``eef_pose``, ``target_pose`` (action applied to eef_pose), ``gripper_action``,
  ``object_poses/<id>`` (ground truth ``object_pose/true`` when recorded - simulation - else the
  believed pose) and ``observed_object_poses/<id>``.
- ``states``: no simulator state is recorded, so a low-dim state: arm joints (7), finger qpos (2),
  then per object position (3) + quaternion xyzw (4) (true pose when recorded).
- ``rewards``: 1 on the last step of a SUCCESS episode; ``dones``: 1 on the last step.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from imgen_ros.core import topics
from imgen_ros.core.action import DEFAULT_SCALE, action_to_target_pose, delta_to_action
from imgen_ros.core.observation import ObjectEstimate, ObservationConfig, build_observation
from imgen_ros.core.pose import pos_quat_from_pose, pose_from_pos_quat
from imgen_ros.data.bag import bag_custom_data, read_bag
from imgen_ros.data.episode import ACTION_MODE_HUMAN, ACTION_MODE_ROBOT, Episode, EpisodeRecorder

SOURCE_POLICY, SOURCE_HUMAN, SOURCE_SAFETY = 0, 1, 3
MODE_POLICY, MODE_HUMAN = 0, 1
EVENT_START, TERMINAL_EVENTS = 0, {1: "SUCCESS", 2: "FAILURE", 3: "ABORT"}


def relative_topic(name: str) -> str | None:
    """The graph topic (core.topics) a recorded, namespaced name stands for (longest match)."""
    known = sorted(topics.QOS_CLASSES, key=len, reverse=True)
    stripped = name.lstrip("/")
    for rel in known:
        if stripped == rel or stripped.endswith("/" + rel):
            return rel
    return None


class _Timeline:
    """Messages of one topic with 'newest at or before t' lookup."""

    def __init__(self, items: Sequence[tuple[int, Any]]) -> None:
        self.times = [t for t, _ in items]
        self.msgs = [m for _, m in items]

    def at(self, t: int) -> Any | None:
        i = bisect.bisect_right(self.times, t) - 1
        return self.msgs[i] if i >= 0 else None


def _by_stamp(items: Sequence[tuple[int, Any]]) -> list[tuple[int, Any]]:
    """Messages keyed and ordered by their header stamp (measurement or decision time) where it is set,
    else by arrival. A recorder starved for a moment receives a burst of queued messages at once: by
    arrival, the commands of that burst would be paired with a robot state from before it."""
    keyed = []
    for t, m in items:
        stamp = getattr(getattr(m, "header", None), "stamp", None)
        ns = stamp.sec * 1_000_000_000 + stamp.nanosec if stamp is not None else 0
        keyed.append((ns if ns > 0 else t, m))
    keyed.sort(key=lambda item: item[0])
    return keyed


def _pos_quat(pose: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    p, q = pose.position, pose.orientation
    return np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w])


def _finite(*arrays: NDArray) -> bool:
    return all(np.all(np.isfinite(a)) for a in arrays)


@dataclass
class BagEpisode:
    path: Path
    episode: Episode
    task: str
    outcome: str
    human_steps: int
    skipped_hold: int


class _ObjectTimelines:
    """Per object id: valid believed estimates, ground truth, and the revealed channel."""

    def __init__(self, msgs: dict[str, list[tuple[int, Any]]], object_ids: Sequence[str]) -> None:
        def per_id(topic: str, valid_only: bool) -> dict[str, _Timeline]:
            out = {}
            for oid in object_ids:
                items = [(t, m) for t, m in msgs.get(topic, [])
                         if (m.object_id or object_ids[0]) == oid and (m.valid or not valid_only)
                         and _finite(*_pos_quat(m.pose))]
                out[oid] = _Timeline(items)
            return out

        self.believed = per_id(topics.OBJECT_POSE, valid_only=True)
        self.true = per_id(topics.OBJECT_POSE_TRUE, valid_only=True)
        self.revealed = _Timeline(msgs.get(topics.OBJECT_REVEALED, []))
        self.has_truth = bool(msgs.get(topics.OBJECT_POSE_TRUE))


def bag_to_episode(path: str | Path, object_ids: Sequence[str], observability: str) -> BagEpisode:
    """Convert one episode bag (see the module docstring); raises ValueError naming what is missing
    (``imgen_ros.data.bag.BagError``, a ValueError, when the bag or one of its files cannot be read)."""
    path = Path(path)
    raw = read_bag(path)
    msgs: dict[str, list[tuple[int, Any]]] = {}
    for name, items in raw.items():
        rel = relative_topic(name)
        if rel is not None:
            msgs.setdefault(rel, []).extend(items)
    msgs = {rel: _by_stamp(items) for rel, items in msgs.items()}
    custom = bag_custom_data(path)
    events = msgs.get(topics.EPISODE_EVENTS, [])
    starts = [t for t, e in events if e.event == EVENT_START]
    if not starts:
        raise ValueError(f"{path}: no START episode event recorded")
    t_start = starts[0]
    ends = [(t, TERMINAL_EVENTS[e.event]) for t, e in events if e.event in TERMINAL_EVENTS and t >= t_start]
    t_end, outcome = ends[0] if ends else (None, custom.get("imgen_outcome", "INCOMPLETE"))
    task = custom.get("imgen_task") or next((e.task for _, e in events if e.task), "")

    robot = _Timeline(msgs.get(topics.ROBOT_STATE, []))
    control = _Timeline(msgs.get(topics.CONTROL_STATE, []))
    objects = _ObjectTimelines(msgs, object_ids)
    obs_config = ObservationConfig(object_ids=tuple(object_ids), observability=observability)

    def snapshot(t: int) -> tuple[dict[str, NDArray], dict[str, Any]] | None:
        state = robot.at(t)
        if state is None:
            return None
        believed: dict[str, ObjectEstimate] = {}
        for oid in object_ids:
            m = objects.believed[oid].at(t)
            if m is None:
                return None
            believed[oid] = ObjectEstimate(*_pos_quat(m.pose))
        rev = objects.revealed.at(t)
        revealed = ObjectEstimate(*_pos_quat(rev.pose)) if rev is not None and rev.valid else None
        revealed_object = (rev.object_id or None) if revealed is not None else None
        tcp_pos, tcp_quat = _pos_quat(state.tcp_pose)
        obs = build_observation(obs_config, tcp_pos, tcp_quat, np.asarray(state.gripper_qpos, float), believed,
                                revealed=revealed, revealed_object=revealed_object)
        truth = {}
        for oid in object_ids:
            m = objects.true[oid].at(t) if objects.has_truth else None
            truth[oid] = pose_from_pos_quat(*_pos_quat(m.pose)) if m is not None else \
                pose_from_pos_quat(believed[oid].position, believed[oid].quat_xyzw)
        extra = {"state": state, "eef": pose_from_pos_quat(tcp_pos, tcp_quat), "truth": truth,
                 "believed": {k: pose_from_pos_quat(v.position, v.quat_xyzw) for k, v in believed.items()}}
        return obs, extra

    steps = []
    skipped_hold = 0
    for t, cmd in msgs.get(topics.ROBOT_COMMAND, []):
        if t < t_start or (t_end is not None and t > t_end):
            continue
        if cmd.source == SOURCE_SAFETY:
            skipped_hold += 1
            continue
        snap = snapshot(t)
        if snap is None:
            continue
        ctrl = control.at(t)
        mode = ctrl.mode if ctrl is not None and ctrl.mode in (MODE_POLICY, MODE_HUMAN) else \
            (MODE_HUMAN if cmd.source == SOURCE_HUMAN else MODE_POLICY)
        action = delta_to_action(np.asarray(cmd.translation, float), np.asarray(cmd.rotation, float), cmd.gripper,
                                 DEFAULT_SCALE)
        steps.append((t, snap, action, mode))
    if not steps:
        raise ValueError(f"{path}: no executed policy/human command with robot state and a valid object pose")

    final = snapshot(t_end if t_end is not None else max(t for items in msgs.values() for t, _ in items))
    recorder = EpisodeRecorder()
    for k, (_, (obs, extra), action, mode) in enumerate(steps):
        next_obs = steps[k + 1][1][0] if k + 1 < len(steps) else (final or (obs, extra))[0]
        last = k == len(steps) - 1
        state = extra["state"]
        low_dim = [np.asarray(state.joint_positions, float), np.asarray(state.gripper_qpos, float)]
        for oid in object_ids:
            pose = extra["truth"][oid]
            low_dim += list(pos_quat_from_pose(pose))
        info = {"eef_pose": extra["eef"], "target_pose": action_to_target_pose(action, extra["eef"], DEFAULT_SCALE),
                "gripper_action": np.array([1.0 if action[6] > 0 else -1.0])}
        for oid in object_ids:
            info[f"object_poses/{oid}"] = extra["truth"][oid]
            info[f"observed_object_poses/{oid}"] = extra["believed"][oid]
        recorder.add(obs=obs, action=action, reward=1.0 if last and outcome == "SUCCESS" else 0.0, done=last,
                     next_obs=next_obs, state=np.concatenate(low_dim),
                     action_mode=ACTION_MODE_HUMAN if mode == MODE_HUMAN else ACTION_MODE_ROBOT, datagen_info=info)
    episode = recorder.build(attrs={"source_bag": str(path), "outcome": outcome,
                                    "episode_id": int(custom.get("imgen_episode_id", 0) or 0),
                                    "complete": custom.get("imgen_complete") == "true"})
    human = int(np.sum(episode.action_modes == ACTION_MODE_HUMAN))
    return BagEpisode(path, episode, task, outcome, human, skipped_hold)
