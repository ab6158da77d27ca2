"""BC-RNN-GMM training on tiny datasets: checkpoints load with robomimic, weighting draws as intended."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _synthetic import OBJECT_DIM, write_synthetic_dataset
from imgen_ros.policy.evaluate import EvalResult, RobomimicPolicy
from imgen_ros.policy.robomimic_compat import robomimic_modules
from imgen_ros.policy.train import TrainConfig, inspect_dataset, make_sampler, sample_weights, train
from imgen_ros.sim.task_digest import task_digest

TINY = {"batch_size": 8, "seq_length": 5, "rnn_hidden_dim": 16, "gmm_modes": 2, "num_threads": 1}


def _obs() -> dict[str, np.ndarray]:
    return {"robot0_eef_pos": np.zeros(3), "robot0_eef_quat": np.array([1.0, 0, 0, 0]),
            "robot0_gripper_qpos": np.zeros(2), "object": np.zeros(OBJECT_DIM)}


def test_train_writes_checkpoint_loadable_by_robomimic(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = write_synthetic_dataset(tmp_path / "base.hdf5", demos=4)
    cfg = TrainConfig(task="block_grasp", datasets=[str(data)], out_dir=str(tmp_path / "run"), epochs=3,
                      steps_per_epoch=4, eval_every=0, **TINY)
    result = train(cfg, progress=lambda _: None)
    assert [row["step"] for row in result.history] == [4, 8, 12]
    # robomimic's own loader restores a BC-RNN-GMM that acts on the contract's observation keys
    rm = robomimic_modules()
    policy, ckpt = rm.FileUtils.policy_from_checkpoint(ckpt_path=result.best_checkpoint)
    assert ckpt["algo_name"] == "bc"
    assert type(policy.policy).__name__ == "BC_RNN_GMM"
    assert ckpt["shape_metadata"]["all_shapes"]["object"] == [OBJECT_DIM]
    policy.start_episode()
    assert policy(_obs()).shape == (7,)
    # imgen's wrapper: reset()/act() contract, actions clipped to [-1, 1]; loading keeps stdout clean (--json)
    capsys.readouterr()
    wrapped = RobomimicPolicy.from_checkpoint(result.last_checkpoint)
    assert capsys.readouterr().out == ""
    assert wrapped.trained_task_digest == task_digest("block_grasp")  # the task definition it was trained on
    wrapped.reset()
    action = wrapped.act(_obs())
    assert action.shape == (7,) and np.all(np.abs(action) <= 1.0)
    with pytest.raises(KeyError, match="object"):
        wrapped.act({k: v for k, v in _obs().items() if k != "object"})
    # logs
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    summary = json.loads((tmp_path / "run" / "train.json").read_text())
    assert summary["config"]["datasets"] == [str(data)]
    assert (tmp_path / "run" / "training.png").stat().st_size > 0


def test_best_checkpoint_follows_evaluation(tmp_path: Path) -> None:
    data = write_synthetic_dataset(tmp_path / "base.hdf5", demos=3)
    rates = iter([0.2, 0.6, 0.4])
    seen: list[dict] = []

    def fake_eval(task: str, policy: RobomimicPolicy, **kw: object) -> EvalResult:
        policy.reset()
        policy.act(_obs())
        seen.append(kw)
        sr = next(rates)
        return EvalResult(task=task, policy="p", noise=str(kw["noise"]), observability=str(kw["observability"]),
                          trials=5, successes=int(sr * 5), success_rate=sr, ci_low=0.0, ci_high=1.0,
                          seed_base=int(kw["seed_base"]), mean_steps=1.0, mistakes=0, wall_s=0.0)

    cfg = TrainConfig(task="block_grasp", datasets=[str(data)], out_dir=str(tmp_path / "run"), epochs=6,
                      steps_per_epoch=2, eval_every=2, eval_trials=5, **TINY)
    result = train(cfg, progress=lambda _: None, evaluate_fn=fake_eval)
    assert [e["epoch"] for e in result.evaluations] == [2, 4, 6]
    assert result.best_epoch == 4 and result.best_success_rate == pytest.approx(0.6)
    assert all(kw["noise"] == "on" and kw["trials"] == 5 for kw in seen)
    import torch

    best = torch.load(result.best_checkpoint, weights_only=False)
    assert best["imgen"]["epoch"] == 4


def test_learning_rate_decays_linearly_to_the_end_factor(tmp_path: Path) -> None:
    data = write_synthetic_dataset(tmp_path / "base.hdf5", demos=3)
    cfg = TrainConfig(task="block_grasp", datasets=[str(data)], out_dir=str(tmp_path / "run"), epochs=4,
                      steps_per_epoch=1, eval_every=0, learning_rate=1e-3, lr_end_factor=0.2, **TINY)
    result = train(cfg, progress=lambda _: None)
    # the rate in effect after each epoch: 1e-3 * (1 - 0.8 * epoch / 4), the last epoch ends at the end factor
    assert [row["lr"] for row in result.history] == pytest.approx([8e-4, 6e-4, 4e-4, 2e-4])
    constant = train(TrainConfig(task="block_grasp", datasets=[str(data)], out_dir=str(tmp_path / "const"), epochs=2,
                                 steps_per_epoch=1, eval_every=0, **TINY), progress=lambda _: None)
    assert [row["lr"] for row in constant.history] == pytest.approx([1e-3, 1e-3])
    with pytest.raises(ValueError, match="lr_end_factor"):
        TrainConfig(task="block_grasp", datasets=[str(data)], out_dir=str(tmp_path / "bad"), lr_end_factor=0.0)


def test_sample_weights_balance_files() -> None:
    probs = sample_weights([900, 100], [1.0, 1.0])
    assert probs.sum() == pytest.approx(1.0)
    assert probs[:900].sum() == pytest.approx(0.5) and probs[900:].sum() == pytest.approx(0.5)
    uniform = sample_weights([900, 100], None)
    assert uniform[900:].sum() == pytest.approx(0.1)
    with pytest.raises(ValueError, match="weights"):
        sample_weights([10, 10], [1.0])


def test_weighted_sampler_draws_intervention_samples_at_intended_rate() -> None:
    lengths = [2000, 50]  # base data, a few interventions
    for weights, expected in (([1.0, 1.0], 0.5), (None, 50 / 2050), ([3.0, 1.0], 0.25)):
        indices = np.array(list(make_sampler(lengths, weights, num_samples=20000, seed=0)))
        share = float(np.mean(indices >= lengths[0]))
        assert share == pytest.approx(expected, abs=0.015), (weights, share)


def test_weighted_training_uses_each_file(tmp_path: Path) -> None:
    base = write_synthetic_dataset(tmp_path / "base.hdf5", demos=6, mode=-1)
    ints = write_synthetic_dataset(tmp_path / "int.hdf5", demos=1, mode=1, seed=3)
    cfg = TrainConfig(task="block_grasp", datasets=[str(base), str(ints)], weights=[1.0, 1.0],
                      out_dir=str(tmp_path / "run"), epochs=1, steps_per_epoch=2, eval_every=0, **TINY)
    train(cfg, progress=lambda _: None)
    summary = json.loads((tmp_path / "run" / "train.json").read_text())
    assert summary["draw_shares"] == pytest.approx([0.5, 0.5])


def test_bad_dataset_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.hdf5"):
        inspect_dataset(tmp_path / "missing.hdf5", ["object"])
    data = write_synthetic_dataset(tmp_path / "d.hdf5", demos=1)
    with pytest.raises(ValueError, match="obs/wrist_image missing"):
        inspect_dataset(data, ["wrist_image"])
    with pytest.raises(ValueError, match="2 weights for 1 datasets"):
        TrainConfig(task="block_grasp", datasets=[str(data)], out_dir="x", weights=[1.0, 1.0])


def test_an_evaluation_names_a_task_definition_that_changed_since_training(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from imgen_ros.policy.evaluate import evaluate
    from imgen_ros.sim import task_digest as digest_module
    from imgen_ros.sim.tasks.block_grasp import BlockGrasp

    data = write_synthetic_dataset(tmp_path / "base.hdf5", demos=4, object_dim=15)  # block_grasp's layout
    cfg = TrainConfig(task="block_grasp", datasets=[str(data)], out_dir=str(tmp_path / "run"), epochs=1,
                      steps_per_epoch=2, eval_every=0, **TINY)
    checkpoint = train(cfg, progress=lambda _: None).last_checkpoint
    same = evaluate("block_grasp", checkpoint, trials=1, batch=1)
    assert same.trained_task_digest == same.task_digest and same.task_changed() == ""
    digest_module.task_digest.cache_clear()
    try:
        with monkeypatch.context() as patch:
            patch.setattr(BlockGrasp, "horizon", 20)  # a setting of the task changed since the training
            changed = evaluate("block_grasp", checkpoint, trials=1, batch=1)
    finally:
        digest_module.task_digest.cache_clear()
    assert changed.trained_task_digest == same.task_digest != changed.task_digest
    assert "trained on another definition of task block_grasp" in changed.task_changed()
    assert changed.task_changed() in changed.summary() and changed.to_dict()["task_digest"] == changed.task_digest
