"""bf16 training precision: the LSTM computes in bfloat16 only while training; checkpoints stay float32."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _synthetic import OBJECT_DIM, write_synthetic_dataset
from imgen_ros.policy.evaluate import RobomimicPolicy
from imgen_ros.policy.precision import use_bf16_recurrence
from imgen_ros.policy.train import TrainConfig, train


def test_lstm_is_bf16_in_training_and_unchanged_in_eval() -> None:
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(8, 16, 2, batch_first=True)
    x = torch.randn(4, 5, 8)
    reference_train, _state = lstm(x)
    lstm.eval()
    with torch.no_grad():
        reference_eval, _state = lstm(x)
    keys = list(lstm.state_dict())
    assert use_bf16_recurrence(torch.nn.ModuleDict({"rnn": lstm})) == 1
    assert use_bf16_recurrence(lstm) == 0  # wrapped once
    assert list(lstm.state_dict()) == keys
    lstm.train()
    out, (h, c) = lstm(x)
    assert out.dtype == h.dtype == c.dtype == torch.float32
    assert not torch.equal(out, reference_train)  # computed in bfloat16 ...
    torch.testing.assert_close(out, reference_train, atol=3e-2, rtol=0)  # ... to bfloat16's precision
    out.sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in lstm.parameters())
    lstm.eval()
    with torch.no_grad():
        evaluated, _ = lstm(x)
    torch.testing.assert_close(evaluated, reference_eval, atol=0, rtol=0)


def test_bad_precisions_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        TrainConfig(task="block_grasp", datasets=["x.hdf5"], out_dir=str(tmp_path), precision="fp16")
    with pytest.raises(ValueError, match="for device 'cpu' only"):
        TrainConfig(task="block_grasp", datasets=["x.hdf5"], out_dir=str(tmp_path), precision="bf16", device="cuda")


def test_bf16_training_writes_a_float32_checkpoint(tmp_path: Path) -> None:
    data = write_synthetic_dataset(tmp_path / "base.hdf5", demos=4)
    cfg = TrainConfig(task="block_grasp", datasets=[str(data)], out_dir=str(tmp_path / "run"), epochs=2,
                      steps_per_epoch=4, eval_every=0, batch_size=8, seq_length=5, rnn_hidden_dim=16, gmm_modes=2,
                      num_threads=1, precision="bf16")
    result = train(cfg, progress=lambda _: None)
    assert all(np.isfinite(row["loss"]) for row in result.history)
    ckpt = torch.load(result.last_checkpoint, weights_only=False)
    assert ckpt["imgen"]["precision"] == "bf16"
    model = ckpt["model"].get("nets", ckpt["model"])
    tensors = [v for v in model.values() if isinstance(v, torch.Tensor)]
    assert tensors and all(t.dtype == torch.float32 for t in tensors if t.is_floating_point())
    assert json.loads((tmp_path / "run" / "train.json").read_text())["config"]["precision"] == "bf16"
    policy = RobomimicPolicy.from_checkpoint(result.last_checkpoint)
    policy.reset()
    obs = {"robot0_eef_pos": np.zeros(3), "robot0_eef_quat": np.array([1.0, 0, 0, 0]),
           "robot0_gripper_qpos": np.zeros(2), "object": np.zeros(OBJECT_DIM)}
    assert policy.act(obs).shape == (7,)


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    from imgen_ros.policy.precision import cpu_has_native_bf16

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert cpu_has_native_bf16(str(cpuinfo))
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni\n")
    assert not cpu_has_native_bf16(str(cpuinfo))
    assert not cpu_has_native_bf16(str(tmp_path / "missing"))
