"""Checkpoints are checked, not trusted; training validates its data before the first gradient step.

Every case runs on a real file: empty, random bytes, a directory, an hdf5 file, torch files that
are not robomimic checkpoints, an unsafe pickle, and tiny real checkpoints trained here on another
task / another observation layout. Each must end in one line naming the file and the problem
(exit code 2 for commands), never a traceback, and never before a rollout or gradient step happens.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _synthetic import OBJECT_DIM, write_synthetic_dataset
from imgen_ros.cli.main import main
from imgen_ros.policy.checkpoint import (
    CheckpointError,
    check_compatible,
    check_policy_spec,
    observation_shapes,
    read_checkpoint,
    task_obs_shapes,
)
from imgen_ros.policy.evaluate import RobomimicPolicy, load_policy
from imgen_ros.policy.train import TrainConfig, train

TINY = {"batch_size": 8, "seq_length": 5, "rnn_hidden_dim": 16, "gmm_modes": 2, "num_threads": 1}
ROBOT = {"robot0_eef_pos": (3,), "robot0_eef_quat": (4,), "robot0_gripper_qpos": (2,)}


class Unsafe:
    """A class outside torch's safe-loading allow-list (pickled into a checkpoint below)."""


def _set_task(path: Path, task: str) -> Path:
    with h5py.File(path, "r+") as f:
        f["data"].attrs["env_args"] = json.dumps({"env_name": task, "type": 4, "env_kwargs": {}})
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Hostile and real files: checkpoints of task 'coffee' and of block_grasp with a foreign layout."""
    import torch

    tmp = tmp_path_factory.mktemp("ckpt")
    coffee = _set_task(write_synthetic_dataset(tmp / "coffee.hdf5", demos=3), "coffee")
    block = write_synthetic_dataset(tmp / "block.hdf5", demos=3)
    out = {"coffee_data": coffee, "block_data": block}
    for name, data, task in (("coffee_ckpt", coffee, "coffee"), ("layout_ckpt", block, "block_grasp")):
        cfg = TrainConfig(task=task, datasets=[str(data)], out_dir=str(tmp / name), epochs=1, steps_per_epoch=1,
                          eval_every=0, **TINY)
        out[name] = Path(train(cfg, progress=lambda _: None).last_checkpoint)
    (tmp / "empty.pth").write_bytes(b"")
    (tmp / "random.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp / "text.pth").write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n")
    (tmp / "folder.pth").mkdir()
    torch.save(torch.zeros(3), tmp / "tensor.pth")
    torch.save({"model": {}, "weights": [1, 2]}, tmp / "dict.pth")
    torch.save({"model": Unsafe()}, tmp / "unsafe.pth")
    torch.save({"model": os.system}, tmp / "blocked.pth")  # a GLOBAL of a module torch blocks (posix.system)
    blob = out["coffee_ckpt"].read_bytes()
    (tmp / "truncated.pth").write_bytes(blob[: len(blob) // 2])
    for name in ("empty", "random", "text", "folder", "tensor", "dict", "unsafe", "blocked", "truncated"):
        out[name] = tmp / f"{name}.pth"
    out["hdf5"] = block
    return out


BAD_FILES = {
    "empty": "empty file",
    "random": "not a torch checkpoint",
    "text": "not a torch checkpoint",  # /etc/passwd-like text: torch's unpickler raised IndexError
    "folder": "is a directory",
    "hdf5": "not a torch checkpoint",
    "tensor": "not a robomimic/imgen checkpoint (holds a Tensor",
    "dict": "missing keys ['config', 'algo_name', 'shape_metadata']",
    "unsafe": "Unsafe object, outside the safe-loading allow-list",
    "blocked": f"references {os.system.__module__}.system, code that imgen will not load",
    "truncated": "corrupt or truncated torch file",
}


def _one_line_error(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_checkpoint_is_one_line_naming_file_and_problem(kind: str, files: dict[str, Path],
                                                            capsys: pytest.CaptureFixture) -> None:
    path = files[kind]
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    message = str(err.value)
    assert str(path) in message and BAD_FILES[kind] in message and "\n" not in message
    assert "weights_only" not in message  # never the advice to turn safe loading off
    assert main(["eval", "--task", "block_grasp", "--policy", str(path), "--trials", "1"]) == 2
    line = _one_line_error(capsys)
    assert line.startswith("imgen: error: checkpoint ") and str(path) in line and BAD_FILES[kind] in line


def test_bad_checkpoint_in_a_real_process_exits_2_with_one_line(files: dict[str, Path]) -> None:
    res = subprocess.run([sys.executable, "-m", "imgen_ros.cli.main", "eval", "--task", "block_grasp", "--policy",
                          str(files["random"]), "--trials", "1"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"imgen: error: checkpoint {files['random']}: not a torch checkpoint (")


def test_checkpoint_robomimic_cannot_build_is_one_line(files: dict[str, Path], tmp_path: Path) -> None:
    import torch

    ckpt = read_checkpoint(files["coffee_ckpt"])
    ckpt["algo_name"] = "no_such_algo"  # robomimic raises a bare Exception for this one
    path = tmp_path / "algo.pth"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"algo\.pth: not a loadable robomimic checkpoint \(Exception: Config "
                                              "for algo name no_such_algo not found"):
        RobomimicPolicy.from_checkpoint(path, task="coffee")


def _shape_meta(ckpt: dict, **changes: object) -> None:
    ckpt["shape_metadata"] = {**ckpt["shape_metadata"], "all_shapes": dict(ckpt["shape_metadata"]["all_shapes"])}
    for key, value in changes.items():
        if key.startswith("shape_"):
            ckpt["shape_metadata"]["all_shapes"][key[len("shape_"):]] = value
        else:
            ckpt["shape_metadata"][key] = value


def _nan_weights(ckpt: dict) -> None:
    ckpt["model"] = dict(ckpt["model"])
    name = next(k for k, v in ckpt["model"].items() if v.is_floating_point())
    ckpt["model"][name] = ckpt["model"][name].clone().fill_(float("nan"))


MALFORMED = {  # how a real checkpoint is damaged -> what the one-line refusal says
    "obskeys_int": (lambda c: _shape_meta(c, all_obs_keys=5),
                    "shape_metadata all_obs_keys is 5 (int), expected a non-empty list of observation names"),
    "obskeys_empty": (lambda c: _shape_meta(c, all_obs_keys=[]), "shape_metadata all_obs_keys is [] (list)"),
    "obskey_not_str": (lambda c: _shape_meta(c, all_obs_keys=[3]), "shape_metadata all_obs_keys is [3] (list)"),
    "obskey_noshape": (lambda c: _shape_meta(c, all_obs_keys=[*c["shape_metadata"]["all_obs_keys"], "ghost"]),
                       "shape_metadata all_obs_keys lists 'ghost' but all_shapes has no shape for it"),
    "shape_int": (lambda c: _shape_meta(c, shape_object=15),
                  "shape_metadata all_shapes['object'] is 15 (int), expected a list of positive integers"),
    "shape_str": (lambda c: _shape_meta(c, shape_object=["x"]), "all_shapes['object'] is ['x'] (list), expected"),
    "shape_zero": (lambda c: _shape_meta(c, shape_object=[0]), "all_shapes['object'] is [0] (list), expected"),
    "acdim_str": (lambda c: _shape_meta(c, ac_dim="seven"), "shape_metadata ac_dim is 'seven' (str), expected"),
    "model_nan": (_nan_weights, "model parameter 'policy.nets."),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_checkpoint_contents_are_one_line_naming_file_and_problem(
        kind: str, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import torch

    damage, expected = MALFORMED[kind]
    ckpt = read_checkpoint(files["coffee_ckpt"])
    damage(ckpt)
    path = tmp_path / f"{kind}.pth"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    assert str(err.value).startswith(f"checkpoint {path}: ") and expected in str(err.value)
    assert "\n" not in str(err.value)
    if kind == "model_nan":
        assert "non-finite value(s) (NaN/Inf)" in str(err.value)
    # refused before any rollout by the commands that take a checkpoint, each in one line naming the file
    assert main(["eval", "--task", "coffee", "--policy", str(path), "--trials", "1"]) == 2
    line = _one_line_error(capsys)
    assert line.startswith(f"imgen: error: checkpoint {path}: ") and expected in line
    with pytest.raises(CheckpointError, match=kind):
        check_policy_spec(str(path), "coffee")  # the launch files' preflight (policy_node's check)


def test_malformed_checkpoint_is_refused_by_every_command_that_takes_one(files: dict[str, Path], tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    import torch

    ckpt = read_checkpoint(files["coffee_ckpt"])
    _shape_meta(ckpt, shape_object=["x"])
    path = tmp_path / "shape_str.pth"
    torch.save(ckpt, path)
    expected = f"checkpoint {path}: shape_metadata all_shapes['object'] is ['x'] (list)"
    out = tmp_path / "out"
    for argv in (["collect", "interventions", "--task", "coffee", "--policy", str(path), "--episodes", "1",
                  "--out", str(out / "i.hdf5"), "--quiet"],
                 ["generate", "imgen", "--task", "coffee", "--source", str(files["coffee_data"]), "--n", "1",
                  "--policy", str(path), "--out", str(out / "g.hdf5"), "--quiet"],
                 ["rehearse", "--checkpoint", str(path), "--out", str(out / "r"), "--episodes", "1"]):
        assert main(argv) == 2, argv
        assert expected in _one_line_error(capsys), argv
    assert not out.exists() or not any(out.rglob("*.hdf5"))


def test_checkpoint_of_another_task_is_refused_before_any_rollout(files: dict[str, Path],
                                                                  capsys: pytest.CaptureFixture) -> None:
    ckpt = str(files["coffee_ckpt"])
    expected = f"checkpoint {ckpt} was trained on task 'coffee' (obs {{robot0_eef_pos: [3]"
    # imgen eval
    assert main(["eval", "--task", "block_grasp", "--policy", ckpt, "--trials", "1", "--json"]) == 2
    line = _one_line_error(capsys)
    assert expected in line and "but --task is 'block_grasp'" in line and "object: [15]" in line
    # imgen collect interventions (the policy acts in a sim TaskEnv: load_policy checks against it)
    out = files["coffee_ckpt"].parent / "ints.hdf5"
    assert main(["collect", "interventions", "--task", "block_grasp", "--policy", ckpt, "--episodes", "1",
                 "--out", str(out), "--quiet"]) == 2
    assert "but --task is 'block_grasp'" in _one_line_error(capsys) and not out.exists()
    # imgen generate imgen --policy: refused in the main process, before any worker starts
    gen = files["coffee_ckpt"].parent / "gen.hdf5"
    assert main(["generate", "imgen", "--task", "block_grasp", "--source", str(files["block_data"]), "--n", "1",
                 "--policy", ckpt, "--out", str(gen), "--quiet"]) == 2
    assert expected in _one_line_error(capsys) and not gen.exists()
    # the experiment's evaluation step (policy.experiment_jobs -> evaluate) and the node's loader
    from imgen_ros.nodes.policy_node import load
    from imgen_ros.policy.experiment_jobs import evaluate_policy

    with pytest.raises(CheckpointError, match=r"trained on task 'coffee'.*but --task is 'block_grasp'"):
        evaluate_policy("block_grasp", ckpt, trials=1, noise="on", observability="full", seed_base=0)
    with pytest.raises(CheckpointError, match=r"trained on task 'coffee'.*but parameter 'task' is 'block_grasp'"):
        load(ckpt, "block_grasp", "cpu", 1, observation_shapes(1, "full"))


def test_checkpoint_with_another_observation_layout_is_refused(files: dict[str, Path],
                                                               capsys: pytest.CaptureFixture) -> None:
    ckpt = str(files["layout_ckpt"])  # block_grasp, but a 10-dim object observation (the sim gives 15)
    assert main(["eval", "--task", "block_grasp", "--policy", ckpt, "--trials", "1"]) == 2
    line = _one_line_error(capsys)
    assert f"checkpoint {ckpt} (task 'block_grasp') reads observations" in line
    assert f"object: [{OBJECT_DIM}]" in line and "object: [15]" in line and "(differing: object)" in line
    assert "with observability 'full'" in line
    # a layout that matches is accepted, and the policy then acts
    ckpt_dict = read_checkpoint(ckpt)
    check_compatible(ckpt, ckpt_dict, "block_grasp", {**ROBOT, "object": (OBJECT_DIM,)})
    policy = RobomimicPolicy.from_checkpoint(ckpt, task="block_grasp", obs_shapes={**ROBOT, "object": (OBJECT_DIM,)})
    policy.reset()
    obs = {k: np.zeros(s) for k, s in {**ROBOT, "object": (OBJECT_DIM,)}.items()}
    assert policy.act(obs).shape == (7,)


def test_load_policy_checks_against_the_env_it_will_act_in(files: dict[str, Path]) -> None:
    from imgen_ros.sim import make_env

    env = make_env("coffee", noise="off", observability="partial")
    try:
        with pytest.raises(CheckpointError, match=r"with observability 'partial' provides .*object: \[18\]"):
            load_policy(files["coffee_ckpt"], env)
    finally:
        env.close()


@pytest.mark.parametrize("task", ["block_grasp", "nut_insertion", "two_piece_assembly", "coffee", "nut_peg_assembly"])
def test_expected_layout_is_the_simulators(task: str) -> None:
    from imgen_ros.sim import make_env

    for observability in (("full", "partial", "none") if task == "block_grasp" else ("full",)):
        env = make_env(task, observability=observability)
        try:
            obs = env.reset(0)
        finally:
            env.close()
        assert task_obs_shapes(task, observability) == {k: v.shape for k, v in obs.items()}


# ------------------------------------------------------------------------------------------------
# imgen train validates its data before any gradient step
# ------------------------------------------------------------------------------------------------

def _train_argv(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--task", "block_grasp", "--data", str(data), "--out", str(out), "--epochs", "1",
            "--steps-per-epoch", "1", "--batch-size", "8", "--seq-length", "5", "--hidden", "16", "--gmm-modes", "2",
            "--threads", "1", *extra]


def _nothing_trained(out: Path) -> bool:
    return not (out / "models").exists() and not (out.exists() and list(out.rglob("*.pth")))


def test_train_refuses_a_dataset_of_another_task(files: dict[str, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    assert main(_train_argv(files["coffee_data"], out, "--eval-every", "1", "--eval-trials", "1")) == 2
    line = _one_line_error(capsys)
    assert str(files["coffee_data"]) in line and "recorded for task 'coffee', not 'block_grasp'" in line
    assert _nothing_trained(out)


def test_train_refuses_a_nan_action_naming_file_and_episode(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = write_synthetic_dataset(tmp_path / "nan.hdf5", demos=3)
    with h5py.File(data, "r+") as f:
        f["data/demo_1/actions"][4, 2] = np.nan
    out = tmp_path / "run"
    assert main(_train_argv(data, out, "--eval-every", "0")) == 2
    line = _one_line_error(capsys)
    assert f"{data} data/demo_1 [actions]: non-finite value (NaN/Inf) at step 4" in line
    assert _nothing_trained(out)


def test_train_refuses_an_episode_with_another_observation_shape(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    data = write_synthetic_dataset(tmp_path / "shape.hdf5", demos=3)
    with h5py.File(data, "r+") as f:
        length = f["data/demo_2/obs/object"].shape[0]
        del f["data/demo_2/obs/object"]
        f["data/demo_2/obs/object"] = np.zeros((length, OBJECT_DIM + 2))
    out = tmp_path / "run"
    assert main(_train_argv(data, out, "--eval-every", "0")) == 2
    line = _one_line_error(capsys)
    assert f"{data} data/demo_2 [obs/object]: per-step shape ({OBJECT_DIM + 2},) differs from demo_0's" in line
    assert _nothing_trained(out)


def test_train_refuses_data_its_evaluation_rollouts_could_not_use(files: dict[str, Path], tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    assert main(_train_argv(files["block_data"], out, "--eval-every", "1", "--eval-trials", "1")) == 2
    line = _one_line_error(capsys)
    assert f"{files['block_data']}: obs/object (every demo) has per-step shape ({OBJECT_DIM},)" in line
    assert "observability 'full' gives (15,)" in line
    assert _nothing_trained(out)


@pytest.mark.ros
def test_policy_node_refuses_a_checkpoint_of_another_task_at_start(files: dict[str, Path]) -> None:
    env = {**os.environ, "ROS_DOMAIN_ID": os.environ.get("ROS_DOMAIN_ID", "77")}
    res = subprocess.run([sys.executable, "-m", "imgen_ros.nodes.policy_node", "--ros-args", "-p",
                          f"checkpoint:={files['coffee_ckpt']}", "-p", "task:=block_grasp"],
                         capture_output=True, text=True, timeout=120, env=env)
    output = res.stdout + res.stderr
    assert res.returncode == 2, output
    assert "Traceback" not in output, output
    refusals = [line for line in output.splitlines() if "refusing to start" in line]
    assert len(refusals) == 1 and "trained on task 'coffee'" in refusals[0], output
    assert "but parameter 'task' is 'block_grasp'" in refusals[0]


@pytest.mark.parametrize("kind", ["empty", "random", "folder", "truncated", "coffee_ckpt", "layout_ckpt"])
def test_launch_preflight_refuses_what_policy_node_would_refuse(kind: str, files: dict[str, Path]) -> None:
    """The launch files' check: a bad checkpoint stops the whole launch before any process starts."""
    with pytest.raises(CheckpointError, match=str(files[kind]).replace(".", r"\.")):
        check_policy_spec(str(files[kind]), "block_grasp", "full")


def test_launch_preflight_accepts_the_expert_and_refuses_a_missing_file(tmp_path: Path) -> None:
    check_policy_spec("expert", "block_grasp")
    check_policy_spec("expert:true", "block_grasp", "partial")
    with pytest.raises(CheckpointError, match="no such file"):
        check_policy_spec(str(tmp_path / "nope.pth"), "block_grasp")
