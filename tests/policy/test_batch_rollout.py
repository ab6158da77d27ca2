"""Batched rollouts: each slot acts as its own one-by-one policy would; pooled episodes end as sequential ones."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _synthetic import write_synthetic_dataset
from imgen_ros.policy.batch_rollout import BatchedRnnPolicy, run_pooled
from imgen_ros.policy.evaluate import RobomimicPolicy, evaluate, run_episode
from imgen_ros.policy.train import TrainConfig, train
from imgen_ros.sim import make_env
from imgen_ros.sim.expert import ScriptedExpert

BLOCK_GRASP_OBJECT_DIM = 15
SEQ_LENGTH = 5  # the RNN state restarts every 5 steps (robomimic's rnn.horizon = seq_length)


def _checkpoint(tmp_path: Path, modes: int) -> str:
    data = write_synthetic_dataset(tmp_path / "data.hdf5", demos=4, object_dim=BLOCK_GRASP_OBJECT_DIM)
    cfg = TrainConfig(task="block_grasp", datasets=[str(data)], out_dir=str(tmp_path / f"run{modes}"), epochs=2,
                      steps_per_epoch=5, eval_every=0, batch_size=8, seq_length=SEQ_LENGTH, rnn_hidden_dim=16,
                      gmm_modes=modes, normalize_obs=True, num_threads=1)
    return train(cfg, progress=lambda _: None).last_checkpoint


@pytest.fixture(scope="module")
def two_mode_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _checkpoint(tmp_path_factory.mktemp("gmm2"), modes=2)


@pytest.fixture(scope="module")
def one_mode_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _checkpoint(tmp_path_factory.mktemp("gmm1"), modes=1)


def _observations(seed: int, steps: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"robot0_eef_pos": rng.normal(0.3, 0.1, 3), "robot0_eef_quat": rng.normal(size=4),
             "robot0_gripper_qpos": rng.uniform(0, 0.04, 2), "object": rng.normal(size=BLOCK_GRASP_OBJECT_DIM)}
            for _ in range(steps)]


def test_one_slot_is_bit_identical_to_robomimic_rollout_policy(two_mode_checkpoint: str) -> None:
    sequential = RobomimicPolicy.from_checkpoint(two_mode_checkpoint, task="block_grasp")
    batched = RobomimicPolicy.from_checkpoint(two_mode_checkpoint, task="block_grasp").batched(1)
    assert batched is not None
    stream = _observations(0, 3 * SEQ_LENGTH + 2)  # crosses three RNN restarts
    torch.manual_seed(7)
    sequential.reset()
    expected = [sequential.act(obs) for obs in stream]
    torch.manual_seed(7)
    batched.reset_slot(0)
    got = [batched.act([0], [obs])[0] for obs in stream]
    np.testing.assert_array_equal(np.array(got), np.array(expected))


def test_each_slot_keeps_its_own_rnn_state_and_restart_phase(one_mode_checkpoint: str) -> None:
    # one GMM mode: the action is the mode's mean plus 1e-4 noise, so draws cannot hide a state mix-up.
    # Episodes (slot, first step, length) start out of phase; slot 0 starts a second one mid-cycle.
    episodes = [(0, 0, 7), (1, 3, 17), (2, 7, 13), (0, 7, 13)]
    total = 20
    streams = [_observations(i, length) for i, (_slot, _start, length) in enumerate(episodes)]
    expected = []
    for stream in streams:
        single = RobomimicPolicy.from_checkpoint(one_mode_checkpoint, task="block_grasp")
        single.reset()
        expected.append(np.array([single.act(obs) for obs in stream]))
    batched = RobomimicPolicy.from_checkpoint(one_mode_checkpoint).batched(3)
    got: list[list[np.ndarray]] = [[] for _ in episodes]
    for step in range(total):
        running = [i for i, (_slot, start, length) in enumerate(episodes) if start <= step < start + length]
        for i in running:
            if step == episodes[i][1]:
                batched.reset_slot(episodes[i][0])
        actions = batched.act([episodes[i][0] for i in running], [streams[i][step - episodes[i][1]] for i in running])
        for i, action in zip(running, actions, strict=True):
            got[i].append(action)
    for i in range(len(episodes)):
        np.testing.assert_allclose(np.array(got[i]), expected[i], atol=2e-3)


class _PerSlotExperts:
    """A deterministic BatchPolicy: one privileged scripted expert per env."""

    def __init__(self, envs: list) -> None:
        self.slots = len(envs)
        self.experts = [ScriptedExpert(env, use_true_poses=True) for env in envs]

    def reset_slot(self, slot: int) -> None:
        self.experts[slot].reset()

    def act(self, slots: list[int], observations: list[dict]) -> np.ndarray:
        return np.array([self.experts[s].act(o) for s, o in zip(slots, observations, strict=True)])


def test_pooled_episodes_end_as_one_by_one_episodes() -> None:
    seeds = [1_000_000 + i for i in range(5)]
    env = make_env("block_grasp", noise="on")
    expected = {s: run_episode(env, ScriptedExpert(env, use_true_poses=True), s) for s in seeds}
    envs = [make_env("block_grasp", noise="on") for _ in range(2)]
    finished: list[tuple[int, bool, int, bool]] = []
    run_pooled(envs, _PerSlotExperts(envs), seeds, lambda *r: finished.append(r))
    assert sorted(r[0] for r in finished) == seeds
    for seed, success, steps, mistake in finished:
        want = expected[seed]
        assert (success, steps, mistake) == (want.success, want.steps, want.mistake), seed
    assert len({r[2] for r in finished}) > 1  # episodes of different lengths: envs were refilled mid-pool


def test_evaluate_batches_a_checkpoint_and_reports_in_seed_order(two_mode_checkpoint: str) -> None:
    calls: list[tuple[int, int, int]] = []
    result = evaluate("block_grasp", two_mode_checkpoint, trials=3, seed_base=5, batch=2,
                      progress=lambda *a: calls.append(a))
    assert [t.seed for t in result.per_trial] == [5, 6, 7]
    assert [c[0] for c in calls] == [1, 2, 3] and all(c[1] == 3 for c in calls)
    assert all(1 <= t.steps <= 400 for t in result.per_trial)
    with pytest.raises(ValueError, match=r"batch must be in 1\.\.64"):
        evaluate("block_grasp", two_mode_checkpoint, trials=3, batch=0)


def test_a_policy_that_cannot_batch_says_so(two_mode_checkpoint: str) -> None:
    policy = RobomimicPolicy.from_checkpoint(two_mode_checkpoint)
    with pytest.raises(ValueError, match="slots must be >= 1"):
        BatchedRnnPolicy(policy.rollout_policy, policy.obs_keys, slots=0)
    with pytest.raises(ValueError, match="closed-loop robomimic BC-RNN"):
        BatchedRnnPolicy(object(), policy.obs_keys, slots=2)
    batched = policy.batched(2)
    with pytest.raises(ValueError, match="2 slots for 1 observations"):
        batched.act([0, 1], _observations(0, 1))
    with pytest.raises(KeyError, match="object"):
        batched.act([0], [{k: v for k, v in _observations(0, 1)[0].items() if k != "object"}])


def test_an_evaluation_repeats_exactly_and_leaves_the_callers_generator_alone(two_mode_checkpoint: str) -> None:
    """A GMM policy samples from torch's global generator, which torch seeds at random per process:
    evaluate() seeds it from the trial seed (the same actions every run) and restores it after."""
    runs = []
    for _ in range(2):
        policy = RobomimicPolicy.from_checkpoint(two_mode_checkpoint, task="block_grasp")
        actions: list[np.ndarray] = []
        act = policy.act
        policy.act = lambda obs, act=act, actions=actions: actions.append(act(obs)) or actions[-1]
        torch.manual_seed(123)   # whatever the caller's stream is
        evaluate("block_grasp", policy, trials=1, seed_base=11, batch=1)
        after = torch.rand(3)
        runs.append(np.array(actions))
        torch.manual_seed(123)
        np.testing.assert_array_equal(after.numpy(), torch.rand(3).numpy())   # restored
    assert len(runs[0]) > 10
    np.testing.assert_array_equal(runs[0], runs[1])
