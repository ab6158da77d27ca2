"""Learning speed on one core: BC-RNN-GMM gradient steps and rollout inference, per network size.

For each size (the demo scale's 2x128 LSTM / batch 64 and the paper's 2x400 / batch 100) it trains
on a synthetic robomimic dataset with the contract's low-dim keys (200 episodes x 30 steps) and
times gradient steps, then times ``RobomimicPolicy.act`` (robomimic ``RolloutPolicy`` under
``torch.inference_mode``) on single observations. Times are CPU time of this process
(``time.process_time``, one torch thread), so other load on the machine distorts them little.
The last line estimates the CPU minutes of ``imgen experiment block_grasp --scale demo``'s training.

    scripts/with-env python bench/bench_policy.py [--steps 60]
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
from imgen_ros.policy.evaluate import RobomimicPolicy
from imgen_ros.policy.experiment_spec import SCALES
from imgen_ros.policy.train import TrainConfig, train

SIZES = {"demo (2x128, batch 64)": (128, 64), "paper (2x400, batch 100)": (400, 100)}


def synthetic_dataset(path: Path, episodes: int = 200, length: int = 30) -> Path:
    rng = np.random.default_rng(0)
    with DatasetWriter(path, env_args={"env_name": "block_grasp", "type": 4, "env_kwargs": {}}) as writer:
        for _ in range(episodes):
            obs = {"robot0_eef_pos": rng.normal(size=(length, 3)), "robot0_eef_quat": rng.normal(size=(length, 4)),
                   "robot0_gripper_qpos": rng.normal(size=(length, 2)), "object": rng.normal(size=(length, 15))}
            writer.append(Episode(obs=obs, next_obs=obs, actions=np.clip(rng.normal(size=(length, 7)), -1, 1),
                                  rewards=np.zeros(length), dones=np.zeros(length), states=np.zeros((length, 4)),
                                  action_modes=np.full(length, -1)))
    return path


def bench_size(data: Path, out: Path, hidden: int, batch: int, steps: int) -> dict[str, float]:
    cfg = TrainConfig(task="block_grasp", datasets=[str(data)], out_dir=str(out), epochs=2, steps_per_epoch=steps,
                      batch_size=batch, rnn_hidden_dim=hidden, eval_every=0, num_threads=1, normalize_obs=True)
    times: list[float] = []
    last = [time.process_time()]

    def progress(message: str) -> None:
        now = time.process_time()
        if message.startswith("epoch"):
            times.append(now - last[0])
        last[0] = now

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = train(cfg, progress=progress)
        policy = RobomimicPolicy.from_checkpoint(result.last_checkpoint)
    obs = {"robot0_eef_pos": np.zeros(3), "robot0_eef_quat": np.array([0, 0, 0, 1.0]),
           "robot0_gripper_qpos": np.zeros(2), "object": np.zeros(15)}
    policy.reset()
    for _ in range(20):
        policy.act(obs)
    t0 = time.process_time()
    n = 400
    for i in range(n):
        if i % 40 == 0:
            policy.reset()
        policy.act(obs)
    act_ms = (time.process_time() - t0) / n * 1e3
    step_ms = times[-1] / steps * 1e3  # second epoch: warm
    return {"train_step_ms": round(step_ms, 2), "act_ms": round(act_ms, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60, help="gradient steps per timed epoch")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = synthetic_dataset(Path(tmp) / "synthetic.hdf5")
        for name, (hidden, batch) in SIZES.items():
            results[name] = bench_size(data, Path(tmp) / f"run_{hidden}", hidden, batch, args.steps)
            print(f"{name:28s} train {results[name]['train_step_ms']:7.2f} ms/step (CPU)   "
                  f"act {results[name]['act_ms']:6.3f} ms/step (CPU)", flush=True)
    demo = SCALES["demo"].train
    per_training = demo.epochs * demo.steps_per_epoch * results["demo (2x128, batch 64)"]["train_step_ms"] / 1e3
    print(f"demo scale: {demo.epochs * demo.steps_per_epoch} steps -> {per_training / 60:.1f} CPU min per training, "
          f"{7 * per_training / 60:.1f} CPU min for the 7 block_grasp trainings")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
