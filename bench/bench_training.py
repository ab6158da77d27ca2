"""Training speed as a ratio, and the share of an experiment's time spent in checkpoint-selection rollouts.

In one process, one torch thread, CPU time of the process (``time.process_time``: other load on the
shared machine distorts it little), for the demo scale's network (2x128 LSTM, GMM 5, batch 64,
sequence 10) and the paper's (2x400, batch 100):

- ``loop``: gradient steps per second of ``imgen train``'s training loop (``policy.train.train``:
  robomimic ``SequenceDataset`` -> ``DataLoader`` with the normalizing collate -> ``train_on_batch``
  and its per-step logging), epochs 2..E (the first one warms up);
- ``bare``: the same network's ``train_on_batch`` (forward, backward, Adam step) on random tensors of
  the same shapes, no data path; ``fwd+bwd``: forward and backward only;
- ``data``: batches per second of the data path alone (the same ``DataLoader``, no network);
- ``ratio`` = loop / bare: 1.0 means the data path costs nothing.

Then it times selection rollouts (``policy.evaluate.evaluate`` of the trained demo-size policy under
corruption, or of ``--checkpoint``, ``--rollouts`` episodes; a barely trained policy runs the full
horizon, as most selection rollouts do early on), one at a time and batched as training runs them
(one forward pass per step for all envs, ``policy.batch_rollout``), and projects the demo scale's
split of a training run into gradient epochs and selection rollouts. With ``--experiment DIR`` it
also prints the split an experiment recorded (``results.json`` ``time_split``, or its ``train.json``
files).

    scripts/with-env python bench/bench_training.py [--steps 50] [--epochs 3] [--rollouts 10] [--checkpoint CKPT]
                                                    [--experiment DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from imgen_ros.data.episode import Episode
from imgen_ros.data.writer import DatasetWriter
from imgen_ros.policy.experiment_spec import SCALES
from imgen_ros.policy.robomimic_compat import robomimic_modules
from imgen_ros.policy.train import TrainConfig, _robomimic_config, train

SIZES = {"demo (2x128, batch 64)": (128, 64), "paper (2x400, batch 100)": (400, 100)}
OBS_DIMS = {"robot0_eef_pos": 3, "robot0_eef_quat": 4, "robot0_gripper_qpos": 2, "object": 15}  # block_grasp, full


def synthetic_dataset(path: Path, episodes: int = 200, length: int = 100) -> Path:
    """Random block_grasp-shaped episodes (the data path's cost does not depend on the values)."""
    rng = np.random.default_rng(0)
    with DatasetWriter(path, env_args={"env_name": "block_grasp", "type": 4, "env_kwargs": {}}) as writer:
        for _ in range(episodes):
            obs = {k: rng.normal(size=(length, d)) for k, d in OBS_DIMS.items()}
            writer.append(Episode(obs=obs, next_obs=obs, actions=np.clip(rng.normal(size=(length, 7)), -1, 1),
                                  rewards=np.zeros(length), dones=np.zeros(length), states=np.zeros((length, 4)),
                                  action_modes=np.full(length, -1)))
    return path


def _config(data: Path, out: Path, hidden: int, batch: int, steps: int, epochs: int) -> TrainConfig:
    demo = SCALES["demo"].train
    return TrainConfig(task="block_grasp", datasets=[str(data)], out_dir=str(out), epochs=epochs,
                       steps_per_epoch=steps, batch_size=batch, rnn_hidden_dim=hidden, seq_length=demo.seq_length,
                       gmm_modes=demo.gmm_modes, eval_every=0, num_threads=1, normalize_obs=True)


def loop_rate(cfg: TrainConfig) -> tuple[float, str]:
    """Gradient steps per CPU second of the training loop (epochs after the first); and the last checkpoint."""
    marks: list[float] = []

    def progress(message: str) -> None:
        if message.startswith("epoch"):
            marks.append(time.process_time())

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = train(cfg, progress=progress)
    return (len(marks) - 1) * cfg.steps_per_epoch / (marks[-1] - marks[0]), result.last_checkpoint


def _model(cfg: TrainConfig):
    rm = robomimic_modules()
    config = _robomimic_config(cfg, rm)
    with contextlib.redirect_stdout(io.StringIO()):
        rm.ObsUtils.initialize_obs_utils_with_config(config)
    return rm.algo_factory(config.algo_name, config, obs_key_shapes={k: [d] for k, d in OBS_DIMS.items()}, ac_dim=7,
                           device=torch.device("cpu"))


def _random_batch(cfg: TrainConfig) -> dict:
    b, t = cfg.batch_size, cfg.seq_length
    return {"obs": {k: torch.randn(b, t, d) for k, d in OBS_DIMS.items()},
            "actions": torch.rand(b, t, 7) * 2.0 - 1.0}


def bare_rates(cfg: TrainConfig, steps: int) -> tuple[float, float]:
    """(train_on_batch steps/s, forward+backward steps/s) of the same network on random tensors."""
    model = _model(cfg)
    model.set_train()
    batches = [_random_batch(cfg) for _ in range(4)]

    def step(i: int) -> None:
        batch = model.postprocess_batch_for_training(model.process_batch_for_training(batches[i % 4]),
                                                     obs_normalization_stats=None)
        model.train_on_batch(batch, 1, validate=False)

    def fwd_bwd(i: int) -> None:
        batch = model.process_batch_for_training(batches[i % 4])
        losses = model._compute_losses(model._forward_training(batch), batch)
        model.nets.zero_grad()
        losses["action_loss"].backward()

    rates = []
    for fn in (step, fwd_bwd):
        for i in range(5):
            fn(i)
        t0 = time.process_time()
        for i in range(steps):
            fn(i)
        rates.append(steps / (time.process_time() - t0))
    return rates[0], rates[1]


def data_rate(cfg: TrainConfig, batches: int) -> float:
    """Batches per second of the data path alone (SequenceDataset + sampler + normalizing collate)."""
    from imgen_ros.policy.train import _normalizing_collate, compute_obs_stats, make_sampler
    from torch.utils.data import DataLoader

    rm = robomimic_modules()
    config = _robomimic_config(cfg, rm)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rm.ObsUtils.initialize_obs_utils_with_config(config)
        dataset = rm.SequenceDataset(hdf5_path=cfg.datasets[0], obs_keys=cfg.obs_keys, dataset_keys=("actions",),
                                     frame_stack=1, seq_length=cfg.seq_length, pad_frame_stack=True,
                                     pad_seq_length=True, get_pad_mask=False, goal_mode=None, hdf5_cache_mode="all",
                                     hdf5_use_swmr=True, hdf5_normalize_obs=False, load_next_obs=False)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, num_workers=0, drop_last=True,
                        sampler=make_sampler([len(dataset)], None, cfg.batch_size * batches, 0),
                        collate_fn=_normalizing_collate(compute_obs_stats(cfg.datasets, cfg.obs_keys)))
    t0 = time.process_time()
    n = sum(1 for _ in loader)
    return n / (time.process_time() - t0)


def rollout_seconds(checkpoint: str, trials: int, batch: int) -> tuple[float, float]:
    """(seconds per selection rollout, mean steps per rollout) of ``checkpoint`` on block_grasp under noise,
    with ``batch`` envs side by side (1: one at a time). The envs are built before the clock starts."""
    from imgen_ros.policy.evaluate import SELECTION_SEED_BASE, RobomimicPolicy, evaluate

    with contextlib.redirect_stdout(io.StringIO()):
        policy = RobomimicPolicy.from_checkpoint(checkpoint, task="block_grasp")
        evaluate("block_grasp", policy, trials=batch, noise="on", seed_base=0, batch=batch)  # warm the env pool
        t0 = time.process_time()
        result = evaluate("block_grasp", policy, trials=trials, noise="on", seed_base=SELECTION_SEED_BASE,
                          batch=batch)
    steps = float(np.mean([t.steps for t in result.per_trial]))
    return (time.process_time() - t0) / trials, steps


def recorded_split(directory: Path) -> None:
    """Print the gradient / selection-rollout split an experiment directory recorded."""
    results = directory / "results.json"
    if results.is_file() and "time_split" in (summary := json.loads(results.read_text())):
        split = summary["time_split"]
        print(f"{directory}: step time {split['step_s_total']:.0f} s by kind {split['step_s_by_kind']}; training: "
              f"gradient {split['train_grad_s']:.0f} s, selection rollouts {split['train_selection_rollouts_s']:.0f} s "
              f"= {split['selection_rollouts_share']:.0%} of all step time; wall {summary['wall_s']:.0f} s")
        return
    from imgen_ros.policy.experiment_jobs import training_time_split

    grad = sel = wall = 0.0
    for path in sorted(directory.glob("*/train/*/train.json")):
        run = json.loads(path.read_text())
        split = training_time_split(run["history"], run["wall_s"])
        grad, sel, wall = grad + split["grad_s"], sel + split["selection_s"], wall + run["wall_s"]
    if wall == 0.0:
        print(f"{directory}: no results.json time_split and no */train/*/train.json")
        return
    print(f"{directory}: training {wall:.0f} s = gradient {grad:.0f} s + selection rollouts {sel:.0f} s "
          f"({sel / wall:.0%} of training) + other {wall - grad - sel:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=50, help="gradient steps per timed epoch / bare run")
    parser.add_argument("--epochs", type=int, default=3, help="training-loop epochs (the first is not timed)")
    parser.add_argument("--rollouts", type=int, default=10, help="selection rollouts to time (each way)")
    parser.add_argument("--checkpoint", default=None,
                        help="time the rollouts of this block_grasp checkpoint (e.g. a make demo policy) instead of "
                             "the barely trained one")
    parser.add_argument("--experiment", type=Path, default=None, help="an experiment directory to read the split of")
    args = parser.parse_args()
    torch.set_num_threads(1)
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = synthetic_dataset(Path(tmp) / "synthetic.hdf5")
        demo_checkpoint = None
        for name, (hidden, batch) in SIZES.items():
            cfg = _config(data, Path(tmp) / f"run_{hidden}", hidden, batch, args.steps, args.epochs)
            loop, checkpoint = loop_rate(cfg)
            bare, fwd_bwd = bare_rates(cfg, args.steps)
            batches = data_rate(cfg, args.steps)
            demo_checkpoint = demo_checkpoint or checkpoint
            figures[name] = {"loop_steps_s": round(loop, 1), "bare_steps_s": round(bare, 1),
                             "fwd_bwd_steps_s": round(fwd_bwd, 1), "data_batches_s": round(batches, 1),
                             "ratio": round(loop / bare, 3)}
            print(f"{name:26s} imgen train loop {loop:6.1f} steps/s | bare train_on_batch {bare:6.1f} steps/s "
                  f"(fwd+bwd {fwd_bwd:6.1f}) | data path alone {batches:6.1f} batches/s | loop/bare = "
                  f"{loop / bare:.2f}", flush=True)
        demo = SCALES["demo"].train
        timed = args.checkpoint or demo_checkpoint
        one_by_one, steps = rollout_seconds(timed, args.rollouts, 1)
        per_rollout, _ = rollout_seconds(timed, args.rollouts, min(args.rollouts, demo.eval_trials))
    print(f"rollouts of {'--checkpoint' if args.checkpoint else 'the barely trained policy'}: {steps:.0f} steps "
          f"each, {1000 * one_by_one / steps:.2f} ms per step one at a time, {1000 * per_rollout / steps:.2f} ms "
          f"batched over {min(args.rollouts, demo.eval_trials)} envs ({one_by_one / per_rollout:.2f}x)")
    grad_s = demo.epochs * demo.steps_per_epoch / figures["demo (2x128, batch 64)"]["loop_steps_s"]
    evaluations = demo.epochs // demo.eval_every + (demo.epochs % demo.eval_every != 0)
    select_s = evaluations * demo.eval_trials * per_rollout
    print(f"selection rollout: {per_rollout:.2f} s ({steps:.0f} steps) each; demo-scale training run projected: "
          f"{demo.epochs * demo.steps_per_epoch} gradient steps {grad_s:.0f} s + {evaluations} x "
          f"{demo.eval_trials} selection rollouts {select_s:.0f} s -> rollouts {select_s / (grad_s + select_s):.0%} "
          "of a training run (full-horizon rollouts: an upper bound; successful ones end early)")
    figures["selection"] = {"rollout_s": round(per_rollout, 3), "rollout_s_one_by_one": round(one_by_one, 3),
                            "rollout_steps": steps,
                            "demo_train_grad_s": round(grad_s, 1), "demo_train_selection_s": round(select_s, 1)}
    if args.experiment is not None:
        recorded_split(args.experiment)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
