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
from imgen_ros.policy import precision as precision_module
from imgen_ros.policy.evaluate import RobomimicPolicy
from imgen_ros.policy.precision import bf16_unavailable_reason, runnable_precision, use_bf16_recurrence
from imgen_ros.policy.train import TrainConfig, train

needs_bf16_lstm = pytest.mark.skipif(bf16_unavailable_reason() is not None,
                                     reason=f"{bf16_unavailable_reason()} (test_bf16_this_cpu_cannot_run_is_refused)")


@needs_bf16_lstm
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


@needs_bf16_lstm
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


def test_bf16_this_cpu_cannot_run_is_refused(tmp_path: Path) -> None:
    """The probe's answer is what training does here: bf16 trains (see above), or is refused before any work."""
    reason = bf16_unavailable_reason()
    if reason is None:
        cfg = TrainConfig(task="block_grasp", datasets=["x.hdf5"], out_dir=str(tmp_path), precision="bf16")
        assert cfg.precision == "bf16"
        lstm = torch.nn.LSTM(4, 8)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert lstm(torch.zeros(3, 2, 4))[0].dtype == torch.bfloat16
    else:
        assert "no bfloat16 LSTM" in reason
        with pytest.raises(ValueError, match=r"precision 'bf16' cannot run here: .*train with precision fp32"):
            TrainConfig(task="block_grasp", datasets=["x.hdf5"], out_dir=str(tmp_path), precision="bf16")
        lstm = torch.nn.LSTM(4, 8)
        with pytest.raises(RuntimeError), torch.autocast("cpu", dtype=torch.bfloat16):
            lstm(torch.zeros(3, 2, 4))


def test_a_default_bf16_falls_back_to_fp32_and_an_asked_for_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision_module, "bf16_unavailable_reason", lambda: "no bfloat16 LSTM (stand-in)")
    assert runnable_precision("fp32", explicit=True) == ("fp32", "")
    assert runnable_precision("bf16", explicit=False) == ("fp32", "bf16 fell back to fp32: no bfloat16 LSTM (stand-in)")
    with pytest.raises(ValueError, match=r"precision 'bf16' cannot run here: no bfloat16 LSTM \(stand-in\)"):
        runnable_precision("bf16", explicit=True)
    with pytest.raises(ValueError, match="precision must be one of"):
        runnable_precision("fp16", explicit=False)
    monkeypatch.setattr(precision_module, "bf16_unavailable_reason", lambda: None)
    assert runnable_precision("bf16", explicit=True) == ("bf16", "")
