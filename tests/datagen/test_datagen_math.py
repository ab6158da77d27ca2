"""MimicGen adaptation math, source segmentation and the crash-tolerant journal (no simulator)."""

from __future__ import annotations

import numpy as np
import pytest
from imgen_ros.core.pose import make_pose, pose_inv
from imgen_ros.data.episode import Episode
from imgen_ros.datagen.journal import JournalWriter, journal_counts, read_journal
from imgen_ros.datagen.replay import ReplayConfig, adapt_segment
from imgen_ros.datagen.segments import (
    GRIPPER_SETTLE_STEPS,
    Segment,
    demo_segments,
    episode_interventions,
    held_steps,
    runs_of_mode,
    subtask_ends,
)
from imgen_ros.datagen.sources import choose_segment
from imgen_ros.sim.task import SubtaskSpec
from scipy.spatial.transform import Rotation


def random_pose(rng: np.random.Generator) -> np.ndarray:
    return make_pose(rng.uniform(-0.5, 0.5, 3), Rotation.random(random_state=int(rng.integers(1 << 30))).as_matrix())


def test_adapted_segment_keeps_object_relative_poses():
    rng = np.random.default_rng(0)
    src_obj, new_obj = random_pose(rng), random_pose(rng)
    targets = np.stack([random_pose(rng) for _ in range(8)])
    seg = Segment("demo_0", 0, "cube", 0, 8, targets, np.linspace(-1, 1, 8), src_obj, targets[0])
    cfg = ReplayConfig(num_interp_steps=4, num_fixed_steps=2)
    eef_now = random_pose(rng)
    poses, grippers = adapt_segment(seg, new_obj, eef_now, -1.0, cfg)
    assert poses.shape == (4 + 2 + 8, 4, 4) and grippers.shape == (14,)
    transformed = poses[6:]
    for before, after in zip(targets, transformed, strict=True):
        np.testing.assert_allclose(pose_inv(new_obj) @ after, pose_inv(src_obj) @ before, atol=1e-9)
    # the interpolation ends at the first transformed pose and the hold repeats it
    np.testing.assert_allclose(poses[3], transformed[0], atol=1e-9)
    np.testing.assert_allclose(poses[4], transformed[0], atol=1e-12)
    # the first interpolated pose is a quarter of the way from the current pose (position)
    np.testing.assert_allclose(poses[0][:3, 3], eef_now[:3, 3] + 0.25 * (transformed[0][:3, 3] - eef_now[:3, 3]))
    np.testing.assert_array_equal(grippers[:6], -1.0)
    np.testing.assert_array_equal(grippers[6:], seg.gripper)


def test_recovery_clearance_rises_crosses_above_and_descends():
    rng = np.random.default_rng(2)
    obj = random_pose(rng)
    targets = np.stack([random_pose(rng) for _ in range(3)])
    seg = Segment("i", 0, "cube", 0, 3, targets, np.ones(3), obj, targets[0])
    cfg = ReplayConfig(num_interp_steps=4, clearance_steps=2)
    eef_now = make_pose([0.5, 0.1, 0.02], np.eye(3))
    poses, grippers = adapt_segment(seg, obj, eef_now, 1.0, cfg, clearance_m=0.03)
    assert poses.shape == (2 + 4 + 2 + 3, 4, 4) and grippers.shape == (11,)
    top = max(eef_now[2, 3], targets[0][2, 3]) + 0.03
    np.testing.assert_allclose(poses[1][:3, 3], [0.5, 0.1, top])                # straight up first
    np.testing.assert_allclose(poses[5][:3, 3], [*targets[0][:2, 3], top])      # across at that height
    np.testing.assert_allclose(poses[7], targets[0], atol=1e-9)                 # down onto the recovery
    assert np.all(poses[:6, 2, 3] >= min(eef_now[2, 3], targets[0][2, 3]) - 1e-12)
    straight, _ = adapt_segment(seg, obj, eef_now, 1.0, cfg)                      # MimicGen: no clearance
    assert straight.shape == (4 + 3, 4, 4)


def test_identity_object_motion_leaves_segment_unchanged():
    rng = np.random.default_rng(1)
    obj = random_pose(rng)
    targets = np.stack([random_pose(rng) for _ in range(3)])
    seg = Segment("d", 0, "cube", 0, 3, targets, np.ones(3), obj, targets[0])
    poses, _ = adapt_segment(seg, obj, targets[0], 1.0, ReplayConfig(num_interp_steps=0))
    np.testing.assert_allclose(poses, targets, atol=1e-12)


def _episode(modes: list[int], signal: list[int]) -> Episode:
    n = len(modes)
    eye = np.tile(np.eye(4), (n, 1, 1))
    eye[:, 0, 3] = np.arange(n)
    return Episode(obs={"o": np.zeros((n, 1))}, next_obs={"o": np.zeros((n, 1))}, actions=np.zeros((n, 7)),
                   rewards=np.zeros(n), dones=np.zeros(n), states=np.zeros((n, 1)), action_modes=np.array(modes),
                   datagen_info={"eef_pose": eye, "target_pose": eye, "gripper_action": np.zeros((n, 1)),
                                 "object_poses/nut": eye, "object_poses/peg": eye,
                                 "subtask_term_signals/grasp": np.array(signal, dtype=float)})


def test_subtask_ends_and_intervention_split_at_signal():
    subtasks = [SubtaskSpec("nut", "grasp"), SubtaskSpec("peg", None)]
    # robot 0-2, human 3-7 (grasp fires at step 5), robot 8-9
    ep = _episode([0, 0, 0, 1, 1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 1, 1, 0, 1, 1])
    assert subtask_ends(ep, subtasks) == [6, 10]
    (intervention,) = episode_interventions(ep, "demo_3", subtasks)
    assert [(s.subtask, s.start, s.end, s.object_ref) for s in intervention.recovery] == [(0, 3, 6, "nut"),
                                                                                         (1, 6, 8, "peg")]
    assert [(s.start, s.end) for s in intervention.mistake] == [(0, 3)]
    assert intervention.recovery[1].object_pose[0, 3] == 6.0  # object pose at the piece's first step


def _held_episode() -> tuple[Episode, np.ndarray]:
    """A person moving 5 mm a step, holding still at steps 4-7, closing the gripper at step 10, then holding
    (still closing, then settled) until the end; the target is where the TCP is on a hold."""
    n = 30
    eef = np.tile(np.eye(4), (n, 1, 1))
    moving = np.r_[np.ones(4), np.zeros(4), np.ones(2), np.zeros(n - 10)]
    eef[:, 0, 3] = np.r_[0.0, np.cumsum(moving[:-1] * 0.005)]
    target = eef.copy()
    target[:, 0, 3] += moving * 0.005
    gripper = np.where(np.arange(n) >= 10, 1.0, -1.0)
    ep = Episode(obs={"o": np.zeros((n, 1))}, next_obs={"o": np.zeros((n, 1))}, actions=np.zeros((n, 7)),
                 rewards=np.zeros(n), dones=np.zeros(n), states=np.zeros((n, 1)), action_modes=np.ones(n, dtype=int),
                 datagen_info={"eef_pose": eef, "target_pose": target, "gripper_action": gripper[:, None],
                               "object_poses/cube": np.tile(np.eye(4), (n, 1, 1))})
    return ep, target


def test_holds_are_left_out_of_the_replayed_motion_but_not_the_gripper_settling():
    ep, target = _held_episode()
    held = held_steps(ep)
    # the pause (4-7) is a hold; after the gripper closes at 10 the fingers settle for GRIPPER_SETTLE_STEPS steps
    assert np.flatnonzero(held).tolist() == [4, 5, 6, 7, *range(10 + GRIPPER_SETTLE_STEPS, 30)]
    subtasks = [SubtaskSpec("cube", None)]
    (kept,) = demo_segments(ep, "demo_0", subtasks, drop_holds=True)
    (every,) = demo_segments(ep, "demo_0", subtasks)
    assert len(every.target_poses) == 30 and len(kept.target_poses) == 30 - int(held.sum())
    np.testing.assert_allclose(kept.target_poses[:4], target[:4])
    np.testing.assert_allclose(kept.target_poses[4], target[8])  # the move resumes where the pause began
    assert kept.gripper.tolist() == [-1.0] * 6 + [1.0] * GRIPPER_SETTLE_STEPS
    assert (kept.start, kept.end) == (every.start, every.end) == (0, 30)
    # a human run that starts on a hold still keeps its first step (it anchors the segment)
    (intervention,) = episode_interventions(ep, "demo_0", subtasks, drop_holds=True)
    assert len(intervention.recovery[0].target_poses) == len(kept.target_poses)
    ep.action_modes[:5] = 0  # robot 0-4, human from the pause on
    (intervention,) = episode_interventions(ep, "demo_0", subtasks, drop_holds=True)
    np.testing.assert_allclose(intervention.recovery[0].target_poses[0], target[5])


def test_runs_of_mode():
    assert runs_of_mode(np.array([1, 1, 0, 1, 0, 0, 1]), 1) == [(0, 2), (3, 4), (6, 7)]
    assert runs_of_mode(np.array([0, 0]), 1) == []


def test_nearest_selection_draws_from_the_k_closest():
    rng = np.random.default_rng(0)
    picks = {choose_segment(list(range(10)), "nearest", rng, 2, key=lambda c: abs(c - 6.2)) for _ in range(50)}
    assert picks == {6, 7}
    with pytest.raises(ValueError, match="unknown source selection"):
        choose_segment([1], "best", rng, 1, key=float)


def test_journal_drops_a_torn_tail_and_resumes(tmp_path):
    path = tmp_path / "out.hdf5.journal"
    writer = JournalWriter(path)
    for i in range(3):
        writer.append({"i": i, "blob": np.arange(100) * i})
    writer.close()
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00garbage")  # a record cut mid-write
    records, valid = read_journal(path)
    assert [r["i"] for r in records] == [0, 1, 2] and valid == size
    writer = JournalWriter(path, valid)
    writer.append({"i": 3, "blob": None})
    writer.close()
    assert [r["i"] for r in read_journal(path)[0]] == [0, 1, 2, 3]


def test_journal_round_trips_attempt_results_without_pickle(tmp_path):
    from imgen_ros.datagen.episodes import AttemptResult

    ep = _episode([0, 1, 1], [0, 1, 1])
    ep.attrs = {"source": "imgen", "takeover_step": np.int64(1), "ratio": np.float32(0.5), "pair": (1, "a")}
    header = {"format": 1, "job": {"kind": "imgen", "sizes": (3, 4)}, "n": 2, "x": float("nan")}
    results = [AttemptResult(0, 11, "success", ep, 3, 0.1, 0.2, 0.3, instances=2),
               AttemptResult(1, 12, "mistake_missed", None, 5, 0.0, 0.0, 0.4)]
    path = tmp_path / "out.hdf5.journal"
    writer = JournalWriter(path)
    for record in (header, *results):
        writer.append(record)
    writer.close()
    assert path.read_bytes()[12:14] == b"J1"  # the record marker right after the first length+crc header
    (got_header, *got), _ = read_journal(path)
    assert np.isnan(got_header.pop("x")) and got_header == {k: v for k, v in header.items() if k != "x"}
    assert got[1] == results[1] and isinstance(got[0], AttemptResult) and got[0].kept
    back = got[0].episode
    assert back.attrs == ep.attrs and type(back.attrs["takeover_step"]) is np.int64
    for name in ("actions", "rewards", "action_modes"):
        assert getattr(back, name).dtype == getattr(ep, name).dtype
        np.testing.assert_array_equal(getattr(back, name), getattr(ep, name))
    assert back.datagen_info.keys() == ep.datagen_info.keys()
    np.testing.assert_array_equal(back.datagen_info["eef_pose"], ep.datagen_info["eef_pose"])
    # progress without decoding arrays: 2 attempts, 1 kept; a torn tail does not count
    assert journal_counts(path) == (2, 1)
    with open(path, "ab") as f:
        f.write(b"\x05\x00")
    assert journal_counts(path) == (2, 1)
    assert journal_counts(tmp_path / "missing.journal") == (0, 0)


class _Planted:
    """Unpickles to ``os.system(command)``: what a planted pickle journal would run on resume."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        import os

        return os.system, (self.command,)


def _plant(path, payload: bytes) -> None:
    import struct
    import zlib

    path.write_bytes(struct.pack("<QI", len(payload), zlib.crc32(payload)) + payload)


def test_a_planted_pickle_journal_is_refused_and_never_run(tmp_path):
    import pickle

    from imgen_ros.datagen.journal import JournalError

    marker = tmp_path / "pwned"
    path = tmp_path / "out.hdf5.journal"
    _plant(path, pickle.dumps(_Planted(f"touch {marker}")))
    with pytest.raises(JournalError, match=r"record 0 is in the pickle format of an older imgen"):
        read_journal(path)
    _plant(path, b"J1" + b"\xff" * 12)  # intact (checksum matches) but not a record
    with pytest.raises(JournalError, match=r"record 0 is not a valid journal record"):
        read_journal(path)
    assert not marker.exists()


def test_fast_pose_action_matches_core_target_pose_to_action():
    from imgen_ros.core.action import DEFAULT_SCALE, target_pose_to_action
    from imgen_ros.datagen.replay import pose_action

    rng = np.random.default_rng(2)
    for _ in range(200):
        current = random_pose(rng)
        angle = rng.choice([1e-9, 1e-3, 0.2, 1.5, 3.1, np.pi - 1e-6])
        axis = rng.normal(size=3)
        delta = Rotation.from_rotvec(axis / np.linalg.norm(axis) * angle).as_matrix()
        target = make_pose(current[:3, 3] + rng.normal(0, 0.02, 3), delta @ current[:3, :3])
        np.testing.assert_allclose(pose_action(target, current, 1.0, DEFAULT_SCALE),
                                   target_pose_to_action(target, current, 1.0, DEFAULT_SCALE), atol=1e-6)


def test_shipped_inputs_are_materialized_on_a_node_without_the_files(tmp_path, monkeypatch):
    import dataclasses

    import imgen_ros.datagen.executors as ex
    from imgen_ros.datagen.job import GenerationJob

    seen = {}
    monkeypatch.setattr(ex, "run_attempt", lambda job, attempt: seen.setdefault("job", job))
    monkeypatch.setattr(ex.tempfile, "gettempdir", lambda: str(tmp_path))
    src = tmp_path / "src.hdf5"
    src.write_bytes(b"payload")
    job = GenerationJob(kind="mimicgen", task="block_grasp", source=str(src))
    files = ex.job_files(job)
    missing = dataclasses.replace(job, source="/nonexistent/node/src.hdf5")
    ex.run_shipped_attempt(missing, {missing.source: files[str(src)]}, 0)
    local = seen["job"].source
    assert local != missing.source and open(local, "rb").read() == b"payload"
