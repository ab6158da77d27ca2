"""``imgen train`` / ``imgen eval`` argument handling."""

from __future__ import annotations

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
