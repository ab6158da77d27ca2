"""Hostile inputs to ``imgen`` commands: each is refused with one line naming it (exit 2), no traceback,
and nothing is written or destroyed."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from imgen_ros.cli.main import main
from imgen_ros.data import DatasetReader, Episode
from imgen_ros.data.bag import _one_line
from imgen_ros.data.summary import completion
from imgen_ros.data.writer import DatasetWriter
from imgen_ros.policy.train import TrainConfig

ENV_ARGS = {"env_name": "block_grasp", "type": 4, "env_kwargs": {}}


def _dataset(path: Path, demos: int = 2, length: int = 8) -> Path:
    rng = np.random.default_rng(0)
    with DatasetWriter(path, env_args=ENV_ARGS) as writer:
        for _ in range(demos):
            obs = {"robot0_eef_pos": rng.normal(size=(length, 3)),
                   "robot0_eef_quat": np.tile([1.0, 0, 0, 0], (length, 1)),
                   "robot0_gripper_qpos": np.zeros((length, 2)), "object": rng.normal(size=(length, 15))}
            writer.append(Episode(obs=obs, next_obs=obs, actions=rng.uniform(-1, 1, (length, 7)),
                                  rewards=np.zeros(length), dones=np.zeros(length), states=np.zeros((length, 5)),
                                  action_modes=np.full(length, -1)))
    return path


def _refused(argv: list[str], capsys: pytest.CaptureFixture, *expected: str) -> str:
    """Run ``imgen argv``: exit 2 (returned or argparse's), one error line holding ``expected``, no traceback."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err
    return err


def test_bag_with_malformed_relative_file_paths_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bag = tmp_path / "ep_1"
    bag.mkdir()
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information:\n  version: 9\n  storage_identifier: mcap\n"
                                       "  relative_file_paths: 7\n  custom_data: {imgen_task: block_grasp}\n")
    _refused(["bag", "info", str(bag)], capsys, "malformed relative_file_paths")
    out = tmp_path / "out.hdf5"
    _refused(["bag2hdf5", str(bag), "--out", str(out)], capsys, "malformed relative_file_paths")
    assert not out.exists()


@pytest.mark.parametrize("field", ["relative_file_paths", "custom_data"])
def test_bag_metadata_with_a_yaml_alias_bomb_is_refused_at_once(field: str, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    """Nine levels of nine aliases: printing or walking the loaded value would take forever."""
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    bag = tmp_path / "ep_1"
    bag.mkdir()
    value = "*a8" if field == "relative_file_paths" else "{imgen_task: *a8}"
    (bag / "metadata.yaml").write_text("bomb:\n" + "".join(f"  {line}\n" for line in levels)
                                       + "rosbag2_bagfile_information:\n  version: 9\n  storage_identifier: mcap\n"
                                       + f"  {field}: {value}\n")
    _refused(["bag", "info", str(bag)], capsys, "uses aliases")
    _refused(["bag2hdf5", str(bag), "--out", str(tmp_path / "out.hdf5")], capsys, "uses aliases")


@pytest.mark.parametrize("name", ["../outside.mcap", "/etc/passwd", "sub/ep.mcap", ".."])
def test_bag_listing_a_file_outside_itself_is_refused(name: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    bag = tmp_path / "ep_1"
    bag.mkdir()
    (tmp_path / "outside.mcap").write_bytes(b"\x89MCAP0\r\n" * 2)
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information:\n  version: 9\n  storage_identifier: mcap\n"
                                       f"  relative_file_paths: ['{name}']\n"
                                       "  custom_data: {imgen_task: block_grasp}\n")
    _refused(["bag", "info", str(bag)], capsys, "not a file name inside the bag")


def test_memory_error_from_a_corrupt_record_is_explained() -> None:
    assert _one_line(MemoryError()) == "a corrupt record claims an impossible size"
    assert _one_line(ValueError("bad\n  chunk")) == "bad chunk"


def test_merge_reports_an_input_named_twice_truly(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The same file twice goes in twice; the counts printed and recorded must say so (they said 2 of 4)."""
    data = _dataset(tmp_path / "a.hdf5")
    out = tmp_path / "merged.hdf5"
    assert main(["dataset", "merge", str(data), str(data), "--out", str(out)]) == 0
    assert f"wrote {out}: 4 demos" in capsys.readouterr().out
    with DatasetReader(out) as reader:
        assert len(reader.demos()) == 4
        assert json.loads(reader._file["data"].attrs["imgen_merged_from"]) == {str(data): 4}


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("--task", "nope", "unknown task 'nope'"),
    ("--noise", "bogus", "noise must be one of ['off', 'on'], got 'bogus'"),
])
def test_train_refuses_a_bad_task_or_noise_before_reading_data(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                               option: str, value: str, expected: str) -> None:
    data = _dataset(tmp_path / "a.hdf5")
    argv = {"--task": "block_grasp", "--noise": "on", option: value}
    out = tmp_path / "run"
    err = _refused(["train", "--task", argv["--task"], "--noise", argv["--noise"], "--data", str(data), "--out",
                    str(out), "--epochs", "1", "--eval-every", "0"], capsys, expected)
    assert "recorded for task" not in err
    assert not out.exists()
    with pytest.raises(ValueError, match="noise must be one of"):  # also with evaluations off (the default 50)
        TrainConfig(task="nut_peg_assembly", datasets=[str(data)], out_dir=str(out), eval_noise="bogus")
    TrainConfig(task="nut_peg_assembly", datasets=[str(data)], out_dir=str(out), eval_noise="mixture")


@pytest.mark.parametrize("argv", [
    ["dataset", "info", ""],
    ["dataset", "validate", "x.hdf5", " "],
    ["dataset", "merge", "x.hdf5", "--out", ""],
    ["bag", "info", ""],
    ["bag", "plot", "b", "--out", ""],
    ["bag2hdf5", "", "--out", "x.hdf5"],
    ["collect", "demos", "--task", "block_grasp", "--out", ""],
    ["generate", "mimicgen", "--task", "block_grasp", "--n", "1", "--source", "", "--out", "g.hdf5"],
    ["generate", "imgen", "--task", "block_grasp", "--n", "1", "--source", "s.hdf5", "--out", ""],
    ["generate", "imgen", "--task", "block_grasp", "--n", "1", "--source", "s.hdf5", "--out", "g", "--policy", ""],
    ["train", "--task", "block_grasp", "--data", "", "--out", "o"],
    ["train", "--task", "block_grasp", "--data", "d.hdf5", "--out", ""],
    ["eval", "--task", "block_grasp", "--policy", ""],
    ["eval", "--task", "block_grasp", "--policy", "expert", "--video-dir", ""],
    ["sim", "video", "--task", "block_grasp", "--out", ""],
    ["experiment", "block_grasp", "--scale", "smoke", "--out", ""],
    ["experiment", "block_grasp", "--scale", "smoke", "--out", "e", "--reuse", ""],
    ["rehearse", "--checkpoint", "expert", "--out", ""],
])
def test_empty_paths_are_refused_at_parse_time(argv: list[str], capsys: pytest.CaptureFixture,
                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Path("")`` is the current directory: an empty path must not become "." (merging into it, reading its
    subdirectories as bags, a traceback from ``Path('.').with_suffix``)."""
    monkeypatch.chdir(tmp_path)
    _refused(argv, capsys, "expected a path, got an empty string")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("marker, complete", [(True, True), (np.bool_(True), True), (1, True), (False, False),
                                               ("false", False), ("maybe", False), (2, False)])
def test_only_a_true_completion_marker_counts_as_finished(marker: object, complete: bool, tmp_path: Path) -> None:
    """``imgen_complete`` is written as a bool; a string such as "false" was once read as complete."""
    path = _dataset(tmp_path / "d.hdf5")
    with h5py.File(path, "r+") as f:
        f["data"].attrs["imgen_complete"] = marker
    assert completion(path)[0] is complete


@pytest.mark.parametrize("device", ["bogus", "cuda:x", ""])
def test_eval_refuses_a_bad_device_for_a_scripted_policy_too(device: str, capsys: pytest.CaptureFixture) -> None:
    _refused(["eval", "--task", "block_grasp", "--policy", "expert", "--trials", "1", "--device", device],
             capsys, "--device", "not a torch device")


@pytest.mark.parametrize(("argv", "command"), [
    (["train", "--task", "block_grasp", "--out", "o", "stray.hdf5"], "imgen train"),
    (["dataset", "info", "x.hdf5", "--what"], "imgen dataset info"),
    (["collect", "demos", "--task", "block_grasp", "--out", "x.hdf5", "--bogus"], "imgen collect demos")])
def test_an_unrecognized_argument_names_the_commands_own_help(argv: list[str], command: str,
                                                              capsys: pytest.CaptureFixture) -> None:
    err = _refused(argv, capsys, f"{command}: error: unrecognized arguments: {argv[-1]}", f"(see '{command} --help')")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [
    ["train", "--task", "block_grasp", "--data", "d.hdf5", "--out", "tu\udcfc"],
    ["dataset", "merge", "bad\udcff.hdf5", "--out", "x.hdf5"],
    ["bag2hdf5", "bag\udcfe", "--out", "x.hdf5"],
])
def test_paths_that_are_not_utf8_are_refused_at_parse_time(argv: list[str], capsys: pytest.CaptureFixture,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Undecodable bytes in a name (os.fsdecode's surrogates) reach HDF5, matplotlib or rosbag2, which cannot
    name such a file: train failed after training, bag2hdf5 with a traceback."""
    monkeypatch.chdir(tmp_path)
    _refused(argv, capsys, "is not valid UTF-8; rename it")
    assert not any(tmp_path.iterdir())
