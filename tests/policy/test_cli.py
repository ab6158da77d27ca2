"""``imgen train`` / ``imgen eval`` argument handling."""

from __future__ import annotations

import os

import pytest
from imgen_ros.cli.main import build_parser, main
from imgen_ros.cli.train import data_and_weights


def _items(argv: list[str]) -> list[list]:
    return build_parser().parse_args(["train", "--task", "block_grasp", "--out", "x", *argv]).data_items


def test_weight_attaches_to_preceding_data() -> None:
    items = _items(["--data", "base.hdf5", "--data", "int.hdf5", "--weight", "1"])
    assert data_and_weights(items) == (["base.hdf5", "int.hdf5"], [1.0, 1.0])
    items = _items(["--data", "a.hdf5", "--weight", "3", "--data", "b.hdf5"])
    assert data_and_weights(items) == (["a.hdf5", "b.hdf5"], [3.0, 1.0])
    assert data_and_weights(_items(["--data", "a.hdf5", "--data", "b.hdf5"])) == (["a.hdf5", "b.hdf5"], None)


def test_weight_without_data_is_rejected() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--task", "block_grasp", "--out", "x", "--weight", "2"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--task", "block_grasp", "--out", "x", "--data", "a", "--weight", "1",
                                   "--weight", "2"])


def test_missing_files_are_user_errors(tmp_path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--task", "block_grasp", "--data", str(tmp_path / "none.hdf5"), "--out",
                 str(tmp_path / "o")]) == 2
    assert "none.hdf5: file not found" in capsys.readouterr().err
    assert main(["eval", "--task", "block_grasp", "--policy", str(tmp_path / "none.pth"), "--trials", "1"]) == 2
    assert "neither 'expert'" in capsys.readouterr().err


def test_eval_expert_reports_wilson_interval(capsys: pytest.CaptureFixture) -> None:
    import json

    assert main(["eval", "--task", "block_grasp", "--policy", "expert:true", "--trials", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trials"] == 3 and out["noise"] == "on"
    assert out["ci_low"] <= out["success_rate"] <= out["ci_high"]
    assert len(out["per_trial"]) == 3 and out["per_trial"][0]["seed"] == 1_000_000


def test_a_directory_as_data_is_named_as_one(tmp_path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "a dir.hdf5"
    folder.mkdir()
    assert main(["train", "--task", "block_grasp", "--data", str(folder), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err == f"imgen: error: --data {folder}: is a directory, not an hdf5 file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a dir.hdf5"]


@pytest.mark.parametrize("where", ["under_a_file", "a_file"])
def test_an_unwritable_video_dir_is_refused_before_any_trial(tmp_path, capsys: pytest.CaptureFixture,
                                                              where: str) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me")
    video_dir = blocker / "videos" if where == "under_a_file" else blocker
    argv = ["eval", "--task", "block_grasp", "--policy", "expert", "--trials", "1", "--videos", "1",
            "--video-dir", str(video_dir)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"imgen: error: video directory {video_dir} ") and "is not a directory" in err
    assert len(err.splitlines()) == 1 and blocker.read_text() == "keep me"


def test_eval_refuses_existing_videos_before_any_trial(tmp_path, capsys: pytest.CaptureFixture) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    old = videos / "trial_1000001.mp4"
    old.write_bytes(b"an earlier video")
    argv = ["eval", "--task", "block_grasp", "--policy", "expert", "--video-dir", str(videos)]
    assert main([*argv, "--trials", "3", "--videos", "2"]) == 2
    out, err = capsys.readouterr()
    assert err == f"imgen: error: {old} exists; pass --overwrite to replace it\n" and "trial" not in out
    assert [p.name for p in videos.iterdir()] == [old.name] and old.read_bytes() == b"an earlier video"
    assert main([*argv, "--trials", "1", "--videos", "1", "--seed-base", "1000001", "--overwrite", "--json"]) == 0
    assert [p.name for p in videos.iterdir()] == [old.name] and old.read_bytes()[4:8] == b"ftyp"  # an MP4 now


def test_a_second_experiment_in_the_same_directory_is_refused(tmp_path, capsys: pytest.CaptureFixture) -> None:
    """Two runs in one --out would run the same steps twice and write the same records: the second is
    refused while the first holds the directory, and the directory is left as it was."""
    from imgen_ros.cli.experiment import exclusive_run

    out = tmp_path / "run"
    with exclusive_run(out):
        assert main(["experiment", "block_grasp", "--scale", "smoke", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"--out {out}: another imgen experiment is running there (pid {os.getpid()})" in err
        assert not out.exists()
    with exclusive_run(out):  # released when the first one ends
        pass
