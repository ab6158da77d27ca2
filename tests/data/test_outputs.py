"""Outputs are never destroyed silently: existing outputs, outputs that are inputs, unwritable paths,
killed writes, incomplete datasets (imgen_ros.data.outputs through the real CLI commands)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
from imgen_ros.cli.main import main
from imgen_ros.data import DatasetReader
from imgen_ros.data.outputs import TEMP_SUFFIX, partial_path
from imgen_ros.data.writer import DatasetWriter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "policy"))
from _synthetic import write_synthetic_dataset

CLI = [sys.executable, "-m", "imgen_ros.cli.main"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path]:
    return (write_synthetic_dataset(tmp_path / "a.hdf5", demos=3),
            write_synthetic_dataset(tmp_path / "b.hdf5", demos=2, seed=1))


def test_merge_refuses_an_existing_output_and_overwrite_replaces_it(data, tmp_path, capsys):
    a, b = data
    out = tmp_path / "m.hdf5"
    assert main(["dataset", "merge", str(a), "--out", str(out)]) == 0
    before = digest(out)
    assert main(["dataset", "merge", str(a), str(b), "--out", str(out)]) == 2
    assert error_line(capsys).endswith(f"{out} exists; pass --overwrite to replace it")
    assert digest(out) == before
    assert main(["dataset", "merge", str(a), str(b), "--out", str(out), "--overwrite"]) == 0
    with DatasetReader(out) as r:
        assert len(r.demos()) == 5
    assert listing(tmp_path) == ["a.hdf5", "b.hdf5", "m.hdf5"]  # no temporary left


@pytest.mark.parametrize("special", ["fifo", "device"])
def test_overwrite_never_replaces_a_device_or_fifo(data, tmp_path, capsys, special):
    """``--out /dev/null --overwrite`` as root once replaced the device with a regular file."""
    from imgen_ros.data.outputs import OutputError, publish

    a, _ = data
    out = tmp_path / "out.hdf5"
    if special == "fifo":
        os.mkfifo(out)
    else:
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root (CI runs as root)")
        os.mknod(out, 0o666 | 0o020000, os.makedev(1, 3))  # a character device: the null device's numbers
    assert main(["dataset", "merge", str(a), "--out", str(out), "--overwrite"]) == 2
    assert error_line(capsys).endswith(f"{out} is not a regular file (a device, FIFO or socket); imgen writes "
                                       "and replaces only regular files")
    finished = tmp_path / "finished.hdf5"
    finished.write_bytes(a.read_bytes())
    with pytest.raises(OutputError, match="not a regular file"):
        publish(finished, out, overwrite=True)  # every writer's last step refuses too
    assert not out.is_file() and finished.is_file()


def test_a_path_the_system_refuses_is_one_line_naming_it(tmp_path, capsys):
    long_name = tmp_path / ("L" * 300 + ".hdf5")
    assert main(["dataset", "validate", str(long_name)]) == 2
    line = error_line(capsys)
    assert line.startswith("imgen: error: ") and line.endswith("File name too long") and "characters)" in line


@pytest.mark.parametrize("alias", ["same", "dot", "hardlink", "symlink"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_an_output_that_is_an_input_is_refused(data, tmp_path, monkeypatch, capsys, alias, overwrite):
    a, _ = data
    monkeypatch.chdir(tmp_path)
    out = {"same": "a.hdf5", "dot": "./sub/../a.hdf5", "hardlink": "link.hdf5", "symlink": "sym.hdf5"}[alias]
    (tmp_path / "sub").mkdir()
    if alias == "hardlink":
        os.link(a, tmp_path / out)
    if alias == "symlink":
        os.symlink(a, tmp_path / out)
    before = digest(a)
    assert main(["dataset", "merge", "a.hdf5", "b.hdf5", "--out", out] + (["--overwrite"] if overwrite else [])) == 2
    assert "is the input a.hdf5" in error_line(capsys)
    assert digest(a) == before and digest(tmp_path / out) == before


def test_unwritable_outputs_are_one_line_errors_and_leave_nothing(data, tmp_path, capsys):
    a, _ = data
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file" / "m.hdf5", tmp_path / "file" / "deeper" / "m.hdf5"):
        assert main(["dataset", "merge", str(a), "--out", str(out)]) == 2
        assert error_line(capsys) == f"imgen: error: cannot write {out}: Not a directory"
    assert main(["dataset", "merge", str(a), "--out", "/proc/imgen_test.hdf5"]) == 2
    assert error_line(capsys).startswith("imgen: error: cannot write /proc/imgen_test.hdf5: ")
    assert listing(tmp_path) == ["a.hdf5", "b.hdf5", "file"]


def test_an_immutable_directory_is_a_one_line_error(data, tmp_path, capsys):
    """Root ignores permission bits; an immutable directory (chattr +i) refuses even root."""
    a, _ = data
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["chattr", "+i", str(ro)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here (no CAP_LINUX_IMMUTABLE or unsupported filesystem)")
    try:
        assert main(["dataset", "merge", str(a), "--out", str(ro / "m.hdf5")]) == 2
        assert error_line(capsys) == f"imgen: error: cannot write {ro / 'm.hdf5'}: Operation not permitted"
        assert main(["train", "--task", "block_grasp", "--data", str(a), "--out", str(ro / "run")]) == 2
        assert error_line(capsys).startswith(f"imgen: error: cannot write {ro / 'run'}: ")
    finally:
        subprocess.run(["chattr", "-i", str(ro)], check=True)
    assert list(ro.iterdir()) == []


def test_a_refused_merge_creates_no_folders(tmp_path, capsys):
    a = write_synthetic_dataset(tmp_path / "a.hdf5", demos=1)
    other = tmp_path / "other.hdf5"
    with DatasetWriter(other, {"env_name": "nut_insertion", "type": 4, "env_kwargs": {}}) as w:
        w.append(DatasetReader(a).load_episode("demo_0"))
    assert main(["dataset", "merge", str(a), str(other), "--out", str(tmp_path / "new" / "deep" / "m.hdf5")]) == 2
    assert "different environments" in error_line(capsys)
    assert not (tmp_path / "new").exists()


def _big_dataset(path: Path, demos: int) -> Path:
    write_synthetic_dataset(path, demos=1, length=50)
    with h5py.File(path, "a") as f:
        for k in range(1, demos):
            f.copy(f["data/demo_0"], f["data"], name=f"demo_{k}")
        f["data"].attrs["total"] = 50 * demos
    return path


def test_a_merge_killed_mid_write_leaves_the_old_output_intact(tmp_path):
    big = _big_dataset(tmp_path / "big.hdf5", demos=2000)
    out = write_synthetic_dataset(tmp_path / "m.hdf5", demos=2, seed=5)  # the good file a merge replaces
    before = digest(out)
    proc = subprocess.Popen([*CLI, "dataset", "merge", str(big), "--out", str(out), "--overwrite"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    temp = None
    while time.monotonic() < deadline and proc.poll() is None:
        temps = list(tmp_path.glob(f".m.hdf5.*{TEMP_SUFFIX}"))
        if temps and temps[0].stat().st_size > 1_000_000:  # well into copying demos
            temp = temps[0]
            break
        time.sleep(0.005)
    assert proc.poll() is None and temp is not None, f"merge ended before it was killed: {proc.stderr.read()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert digest(out) == before  # the output path still holds the old, whole file
    with DatasetReader(out) as r:
        assert len(r.demos()) == 2
    assert temp.exists() and temp.name == f".m.hdf5.{proc.pid}{TEMP_SUFFIX}"  # hidden, named after the dead pid
    # the next run writing that output removes the dead run's temporary and finishes the job
    small = write_synthetic_dataset(tmp_path / "s.hdf5", demos=1)
    assert main(["dataset", "merge", str(small), "--out", str(out), "--overwrite"]) == 0
    assert not temp.exists() and not list(tmp_path.glob(f"*{TEMP_SUFFIX}"))
    with DatasetReader(out) as r:
        assert len(r.demos()) == 1


def _incomplete(path: Path) -> Path:
    write_synthetic_dataset(path, demos=2)
    with DatasetWriter(path, append=True) as w:
        w.set_progress(False, kept=2, target=50)
    return path


def test_an_incomplete_dataset_is_flagged_and_refused(tmp_path, capsys):
    part = _incomplete(tmp_path / "gen.hdf5.partial")
    assert main(["dataset", "info", str(part)]) == 0
    assert "status:       INCOMPLETE (2/50 episodes" in capsys.readouterr().out
    assert main(["dataset", "info", str(part), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["complete"] is False and info["progress"] == {"kept": 2, "target": 50}
    assert main(["train", "--task", "block_grasp", "--data", str(part), "--out", str(tmp_path / "run")]) == 2
    assert f"{part} is INCOMPLETE (2/50 episodes)" in error_line(capsys)
    assert main(["dataset", "merge", str(part), "--out", str(tmp_path / "m.hdf5")]) == 2
    assert "is INCOMPLETE" in error_line(capsys)
    assert listing(tmp_path) == ["gen.hdf5.partial"]
    done = write_synthetic_dataset(tmp_path / "done.hdf5", demos=1)
    assert main(["dataset", "info", str(done)]) == 0
    assert "INCOMPLETE" not in capsys.readouterr().out


TINY_TRAIN = ["--task", "block_grasp", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "4",
              "--seq-length", "3", "--hidden", "8", "--gmm-modes", "2", "--eval-every", "0", "--threads", "1"]


def test_train_refuses_a_used_output_dir_and_overwrite_swaps_only_after_success(data, tmp_path, capsys):
    a, _ = data
    run = tmp_path / "run"
    run.mkdir()
    (run / "models").mkdir()
    (run / "models" / "best.pth").write_bytes(b"old checkpoint")
    assert main(["train", *TINY_TRAIN, "--data", str(a), "--out", str(run)]) == 2
    assert "exists and is not empty; pass --overwrite" in error_line(capsys)
    # a failing replacement run leaves the old directory untouched and no staging directory
    assert main(["train", *TINY_TRAIN, "--data", str(a), "--out", str(run), "--overwrite", "--device", "cuda"]) == 2
    assert "cuda" in error_line(capsys)
    assert (run / "models" / "best.pth").read_bytes() == b"old checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.hdf5", "b.hdf5", "run"]
    # a successful one replaces it; recorded paths name --out, not the staging directory
    assert main(["train", *TINY_TRAIN, "--data", str(a), "--out", str(run), "--overwrite"]) == 0
    assert (run / "models" / "best.pth").read_bytes() != b"old checkpoint"
    summary = json.loads((run / "train.json").read_text())
    assert summary["out_dir"] == str(run) and summary["best_checkpoint"] == str(run / "models" / "best.pth")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.hdf5", "b.hdf5", "run"]
    # an input inside the directory to replace is never deleted with it
    inside = write_synthetic_dataset(run / "data.hdf5", demos=2)
    assert main(["train", *TINY_TRAIN, "--data", str(inside), "--out", str(run), "--overwrite"]) == 2
    assert "lies inside the output directory" in error_line(capsys)
    assert inside.exists()


def test_a_refused_training_leaves_no_directory(tmp_path, capsys):
    bad = tmp_path / "bad.hdf5"
    bad.write_bytes(b"not hdf5")
    out = tmp_path / "new" / "run"
    assert main(["train", *TINY_TRAIN, "--data", str(bad), "--out", str(out)]) == 2
    error_line(capsys)
    assert listing(tmp_path) == ["bad.hdf5"]


def test_collect_refuses_existing_outputs_and_inputs_and_leaves_nothing_when_refused(tmp_path, capsys):
    ckpt = tmp_path / "policy.pth"
    ckpt.write_bytes(b"a checkpoint")
    args = ["collect", "interventions", "--task", "block_grasp", "--episodes", "1", "--quiet"]
    assert main([*args, "--policy", str(ckpt), "--out", str(ckpt), "--overwrite"]) == 2
    assert "is the input" in error_line(capsys)
    assert ckpt.read_bytes() == b"a checkpoint"
    partial_path(tmp_path / "c.hdf5").write_bytes(b"episodes of an interrupted collection")
    assert main([*args, "--out", str(tmp_path / "c.hdf5")]) == 2
    assert "holds an interrupted collection's results" in error_line(capsys)
    # refused at validation (not a checkpoint): no partial file, no folder
    assert main([*args, "--policy", str(tmp_path / "missing.pth"), "--out", str(tmp_path / "new" / "c.hdf5")]) == 2
    error_line(capsys)
    assert listing(tmp_path) == ["c.hdf5.partial", "policy.pth"]


def test_experiment_directory_is_resumed_only_for_the_same_experiment(tmp_path, capsys):
    from imgen_ros.cli.experiment import IDENTITY, prepare_out

    unrelated = tmp_path / "mine"
    unrelated.mkdir()
    (unrelated / "notes.txt").write_text("keep me")
    assert main(["experiment", "block_grasp", "--scale", "smoke", "--out", str(unrelated)]) == 2
    assert "holds files that are not an imgen experiment" in error_line(capsys)
    assert listing(unrelated) == ["notes.txt"]
    ident = {"experiment": "block_grasp", "scale": "smoke", "seed": 0}
    out = tmp_path / "exp"
    assert prepare_out(out, ident, overwrite=False) is None
    (out / "steps").mkdir()
    assert prepare_out(out, ident, overwrite=False) is None  # the same experiment: resumed in place
    assert main(["experiment", "block_grasp", "--scale", "smoke", "--seed", "1", "--out", str(out)]) == 2
    assert "holds another experiment (experiment block_grasp, scale smoke, seed 0)" in error_line(capsys)
    aside = prepare_out(out, {**ident, "seed": 1}, overwrite=True)  # --overwrite: old contents moved aside
    assert aside is not None and (aside / "steps").is_dir()
    assert json.loads((out / IDENTITY).read_text())["seed"] == 1 and listing(out) == [IDENTITY]


@pytest.mark.parametrize("content", ["[1, 2]", "5", "{not json"])
def test_an_experiment_dir_with_a_foreign_identity_file_is_refused_in_one_line(tmp_path, capsys, content):
    out = tmp_path / "exp"
    out.mkdir()
    (out / "imgen_experiment.json").write_text(content)
    assert main(["experiment", "block_grasp", "--scale", "smoke", "--out", str(out)]) == 2
    assert "holds files that are not an imgen experiment" in error_line(capsys)
    assert listing(out) == ["imgen_experiment.json"] and (out / "imgen_experiment.json").read_text() == content
