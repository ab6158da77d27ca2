"""Generation outputs: resume only against the same inputs, partial files marked incomplete, the
source never overwritten, refused runs leave nothing behind (block_grasp, scripted expert)."""

from __future__ import annotations

import hashlib
import os
import shutil

import h5py
import numpy as np
import pytest
from imgen_ros.cli.main import main
from imgen_ros.data import DatasetReader
from imgen_ros.data.outputs import partial_path
from imgen_ros.data.summary import completion
from imgen_ros.datagen.job import GenerationJob
from imgen_ros.datagen.journal import JournalWriter, journal_path, read_journal
from imgen_ros.datagen.runner import RunOptions, journal_header, run_generation


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _mg_job(source) -> GenerationJob:
    return GenerationJob(kind="mimicgen", task="block_grasp", source=str(source), seed=1)


def _leftovers(out) -> list:
    return [p for p in (out, partial_path(out), journal_path(out)) if p.exists()]


def test_resume_is_refused_when_the_source_was_replaced_and_allowed_once_it_is_restored(source_demos, tmp_path,
                                                                                         capsys):
    src = tmp_path / "src.hdf5"
    shutil.copy(source_demos, src)
    out = tmp_path / "mg.hdf5"
    with pytest.raises(RuntimeError, match="gave up after 2 attempts"):
        run_generation(_mg_job(src), out, RunOptions(n=3, max_attempts=2, progress=False))
    # interrupted: nothing at --out, a partial file marked incomplete, the journal
    assert not out.exists() and journal_path(out).exists()
    complete, progress = completion(partial_path(out))
    assert not complete and progress["target"] == 3 and progress["attempts"] == 2
    assert main(["dataset", "info", str(partial_path(out))]) == 0
    assert "INCOMPLETE" in capsys.readouterr().out
    # the source is replaced at the same path by a different file
    original = tmp_path / "original.hdf5"
    shutil.copy(src, original)
    replacement = tmp_path / "replacement.hdf5"
    shutil.copy(src, replacement)
    with h5py.File(replacement, "a") as f:
        f["data"].attrs["note"] = "re-recorded"
    os.replace(replacement, src)
    journal_before = sha(journal_path(out))
    with pytest.raises(ValueError, match=rf"source {src} changed: sha256 {sha(original)[:12]} -> {sha(src)[:12]}"):
        run_generation(_mg_job(src), out, RunOptions(n=3, progress=False))
    argv = ["generate", "mimicgen", "--task", "block_grasp", "--source", str(src), "--n", "3", "--seed", "1",
            "--out", str(out), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the inputs changed since the interrupted run" in err
    assert sha(journal_path(out)) == journal_before and not out.exists()
    # the original content back at that path: the resume goes ahead and publishes a complete file
    os.replace(original, src)
    report = run_generation(_mg_job(src), out, RunOptions(n=3, progress=False))
    assert report.kept == 3 and report.resumed_attempts == 2
    assert _leftovers(out) == [out]
    assert completion(out) == (True, {"kept": 3, "target": 3, "attempts": report.attempts})
    with DatasetReader(out) as r:
        assert r.json_attr("imgen_config")["inputs"]["source"]["sha256"] == sha(src)


def test_resume_is_refused_when_the_checkpoint_changed(tmp_path):
    src, ckpt = tmp_path / "src.hdf5", tmp_path / "policy.pth"
    src.write_bytes(b"source bytes")
    ckpt.write_bytes(b"checkpoint v1")
    job = GenerationJob(kind="imgen", task="block_grasp", source=str(src), policy=str(ckpt))
    out = tmp_path / "img.hdf5"
    journal = JournalWriter(journal_path(out))
    journal.append(journal_header(job, 5))
    journal.close()
    old = hashlib.sha256(b"checkpoint v1").hexdigest()[:12]
    ckpt.write_bytes(b"checkpoint v2, retrained")
    new = sha(ckpt)[:12]
    with pytest.raises(ValueError, match=rf"\(checkpoint {ckpt} changed: sha256 {old} -> {new}\)") as info:
        run_generation(job, out, RunOptions(n=5, progress=False))
    assert "source" not in str(info.value).split("(checkpoint")[1].split(")")[0]
    assert len(read_journal(journal_path(out))[0]) == 1  # the journal is left as it was


def test_resume_is_refused_when_the_task_definition_changed(tmp_path, monkeypatch):
    from imgen_ros.sim import task_digest as digest_module
    from imgen_ros.sim.tasks.nut_insertion import NutInsertion

    src = tmp_path / "src.hdf5"
    src.write_bytes(b"source bytes")
    job = GenerationJob(kind="mimicgen", task="nut_insertion", source=str(src))
    out = tmp_path / "mg.hdf5"
    journal = JournalWriter(journal_path(out))
    journal.append(journal_header(job, 5))
    journal.close()
    before = digest_module.task_digest("nut_insertion")[:12]
    digest_module.task_digest.cache_clear()
    try:
        with monkeypatch.context() as patch:
            patch.setattr(NutInsertion, "hole_half", NutInsertion.hole_half + 0.00425)  # a looser nut
            after = digest_module.task_digest("nut_insertion")[:12]
            with pytest.raises(ValueError, match=rf"task definition task nut_insertion \(scene and settings\) "
                                                 rf"changed: sha256 {before} -> {after}"):
                run_generation(job, out, RunOptions(n=5, progress=False))
    finally:
        digest_module.task_digest.cache_clear()
    assert len(read_journal(journal_path(out))[0]) == 1  # the journal is left as it was


@pytest.mark.parametrize("alias", ["same", "hardlink", "symlink"])
def test_the_source_is_never_the_output_even_with_overwrite(source_demos, tmp_path, monkeypatch, capsys, alias):
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "src.hdf5"
    shutil.copy(source_demos, src)
    out = {"same": "./src.hdf5", "hardlink": "link.hdf5", "symlink": "sym.hdf5"}[alias]
    if alias == "hardlink":
        os.link(src, out)
    if alias == "symlink":
        os.symlink(src, out)
    before = sha(src)
    assert main(["generate", "mimicgen", "--task", "block_grasp", "--source", "src.hdf5", "--n", "2", "--out", out,
                 "--overwrite", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is the input" in err
    assert sha(src) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"src.hdf5", os.path.basename(out)})


def test_a_refused_run_leaves_nothing_behind_and_the_corrected_rerun_works(source_demos, tmp_path, capsys):
    out = tmp_path / "new" / "mg.hdf5"
    with pytest.raises(ValueError, match="unknown executor"):  # refused after the journal was opened
        run_generation(_mg_job(source_demos), out, RunOptions(n=1, executor="nope", progress=False))
    assert not (tmp_path / "new").exists()
    assert main(["generate", "imgen", "--task", "block_grasp", "--source", str(source_demos), "--n", "1",
                 "--policy", str(tmp_path / "missing.pth"), "--out", str(out), "--quiet"]) == 2
    assert "missing.pth" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    report = run_generation(_mg_job(source_demos), out, RunOptions(n=1, progress=False))
    assert report.kept == 1 and _leftovers(out) == [out]


def test_an_existing_output_survives_until_the_replacement_is_complete(source_demos, tmp_path, capsys):
    out = tmp_path / "mg.hdf5"
    shutil.copy(source_demos, out)  # some finished dataset the user cares about
    before = sha(out)
    argv = ["generate", "mimicgen", "--task", "block_grasp", "--source", str(source_demos), "--n", "3", "--seed", "1",
            "--out", str(out), "--quiet"]
    assert main(argv) == 2
    assert "exists" in capsys.readouterr().err and sha(out) == before
    assert main([*argv, "--overwrite", "--max-attempts", "1"]) == 2  # the replacement run gives up
    assert "gave up" in capsys.readouterr().err
    assert sha(out) == before


def test_an_unwritable_output_is_one_line_and_leaves_nothing(source_demos, tmp_path, capsys):
    import subprocess

    (tmp_path / "file").write_text("x")
    ro = tmp_path / "ro"
    ro.mkdir()
    immutable = subprocess.run(["chattr", "+i", str(ro)], capture_output=True).returncode == 0
    try:
        for out, reason in [(tmp_path / "file" / "mg.hdf5", "Not a directory"),
                            *([(ro / "mg.hdf5", "Operation not permitted")] if immutable else [])]:
            assert main(["generate", "mimicgen", "--task", "block_grasp", "--source", str(source_demos), "--n", "1",
                         "--out", str(out), "--quiet"]) == 2
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and "Traceback" not in err
            assert err.startswith("imgen: error: cannot write ") and err.endswith(reason)
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(ro)], check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "ro"] and not list(ro.iterdir())


@pytest.mark.parametrize("kind", ["mimicgen", "imgen"])
def test_a_source_with_nan_poses_is_named_before_any_attempt(source_demos, tmp_path, capsys, kind):
    src = tmp_path / "src.hdf5"
    shutil.copy(source_demos, src)
    with h5py.File(src, "r+") as f:
        f["data/demo_1/datagen_info/object_poses/cube"][3] = float("nan")
    out = tmp_path / "out.hdf5"
    assert main(["generate", kind, "--task", "block_grasp", "--source", str(src), "--n", "1", "--out", str(out),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"imgen: error: {src} data/demo_1 [datagen_info/object_poses/cube]: non-finite value (NaN/Inf) "
                   "at step 3; generation replays these poses")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.hdf5"]


def _replace(f: h5py.File, key: str, value) -> None:
    del f[key]
    f[key] = value


def _zero_cube(f: h5py.File) -> None:
    f["data/demo_1/datagen_info/object_poses/cube"][2] = 0.0


def _scale_target(f: h5py.File) -> None:
    f["data/demo_0/datagen_info/target_pose"][5, :3, :3] *= 1e6


def _text_gripper(f: h5py.File) -> None:
    n = f["data/demo_0"].attrs["num_samples"]
    _replace(f, "data/demo_0/datagen_info/gripper_action", np.full((n, 1), b"x"))


def _modes_2d(f: h5py.File) -> None:
    modes = f["data/demo_0/action_modes"][()]
    _replace(f, "data/demo_0/action_modes", np.stack([modes, modes], axis=1))


BAD_SOURCES = {  # each once reached scipy/numpy and failed there, naming no file
    "zero rotation": (_zero_cube, "data/demo_1 [datagen_info/object_poses/cube]: not a rigid transform at step 2 "
                      "(rotation part not orthonormal with determinant +1); generation replays these poses"),
    "scaled rotation": (_scale_target, "data/demo_0 [datagen_info/target_pose]: not a rigid transform at step 5 "),
    "text gripper": (_text_gripper, "data/demo_0 [datagen_info/gripper_action]: not numbers (dtype |S1)"),
    "2-D action_modes": (_modes_2d, "data/demo_0 [action_modes]: shape ("),
}


@pytest.mark.parametrize("kind", ["mimicgen", "imgen"])
@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
def test_a_malformed_source_is_named_in_one_line_before_any_attempt(source_demos, tmp_path, capsys, kind, case):
    corrupt, expected = BAD_SOURCES[case]
    src = tmp_path / "src.hdf5"
    shutil.copy(source_demos, src)
    with h5py.File(src, "r+") as f:
        corrupt(f)
    out = tmp_path / "out.hdf5"
    assert main(["generate", kind, "--task", "block_grasp", "--source", str(src), "--n", "1", "--out", str(out),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imgen: error: ") and len(err.strip().splitlines()) == 1, err
    assert f"{src} {expected}" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.hdf5"]


@pytest.mark.parametrize("mask", ["", " "])
def test_an_empty_source_mask_name_is_refused(source_demos, tmp_path, capsys, mask):
    with pytest.raises(SystemExit) as exc:
        main(["generate", "mimicgen", "--task", "block_grasp", "--source", str(source_demos), "--n", "1",
              "--out", str(tmp_path / "out.hdf5"), "--source-mask", mask])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "argument --source-mask: expected a mask name, got an empty string" in err
    with DatasetReader(source_demos) as reader, pytest.raises(ValueError, match="no mask ''"):
        reader.demos("")
    assert list(tmp_path.iterdir()) == []


def test_a_directory_as_source_is_named_as_one(tmp_path, capsys):
    folder = tmp_path / "demos.hdf5"
    folder.mkdir()
    assert main(["generate", "mimicgen", "--task", "block_grasp", "--source", str(folder), "--n", "1", "--out",
                 str(tmp_path / "out.hdf5")]) == 2
    assert capsys.readouterr().err == f"imgen: error: --source {folder}: is a directory, not an hdf5 file\n"


def test_a_foreign_file_at_the_journal_path_is_never_truncated(source_demos, tmp_path, capsys):
    out = tmp_path / "mg.hdf5"
    notes = journal_path(out)
    notes.write_text("my notes, not a journal\n")
    argv = ["generate", "mimicgen", "--task", "block_grasp", "--source", str(source_demos), "--n", "1", "--out",
            str(out), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"imgen: error: {notes} exists and is not a readable generation journal")
    assert err.endswith("move it away, or pass --overwrite to discard it\n") and err.count("\n") == 1
    assert notes.read_text() == "my notes, not a journal\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [notes.name]
    notes.unlink()
    notes.mkdir()
    assert main(argv) == 2
    assert capsys.readouterr().err == f"imgen: error: cannot read {notes}: Is a directory\n"


def test_an_existing_output_with_a_foreign_config_record_is_refused_not_a_traceback(source_demos, tmp_path, capsys):
    out = tmp_path / "mg.hdf5"
    shutil.copy(source_demos, out)
    with h5py.File(out, "r+") as f:
        f["data"].attrs["imgen_config"] = "[1]"  # valid JSON, not a generation record
    before = sha(out)
    assert main(["generate", "mimicgen", "--task", "block_grasp", "--source", str(source_demos), "--n", "1", "--out",
                 str(out), "--quiet"]) == 2
    assert capsys.readouterr().err == (f"imgen: error: {out} exists and has no journal to resume from; pass "
                                       "--overwrite to replace it\n")
    assert sha(out) == before


def test_an_old_pickle_journal_is_refused_without_loading_and_discarded_with_overwrite(source_demos, tmp_path,
                                                                                     capsys):
    import pickle
    import struct
    import zlib

    class Planted:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    marker = tmp_path / "pwned"
    out = tmp_path / "mg.hdf5"
    payload = pickle.dumps(Planted())
    journal_path(out).write_bytes(struct.pack("<QI", len(payload), zlib.crc32(payload)) + payload)
    before = sha(journal_path(out))
    argv = ["generate", "mimicgen", "--task", "block_grasp", "--source", str(source_demos), "--n", "1", "--out",
            str(out), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (f"imgen: error: {journal_path(out)}: record 0 is in the pickle format of an older imgen, which is "
                   "no longer read (a planted file could run code); move it away, or pass --overwrite to discard it\n")
    assert not marker.exists() and sha(journal_path(out)) == before and not out.exists()
    assert main([*argv, "--overwrite"]) == 0
    assert not marker.exists() and _leftovers(out) == [out]


@pytest.mark.parametrize(("extra", "message"), [
    (["--address", "127.0.0.1:1"], "--address 127.0.0.1:1 applies to --executor ray only"),
    (["--executor", "ray", "--address", "nonsense"], "expected host:port, ray://host:port or auto"),
    (["--executor", "ray", "--address", "127.0.0.1:1"], "--address 127.0.0.1:1: no Ray cluster reachable there"),
])
def test_a_ray_address_is_checked_before_any_work(source_demos, tmp_path, capsys, extra, message):
    """An unreachable cluster once made ray.init retry for over 10 minutes without a word; an --address
    without Ray was silently ignored."""
    import socket

    with socket.socket() as probe:  # the closed port the test uses is closed here
        assert probe.connect_ex(("127.0.0.1", 1)) != 0
    out = tmp_path / "out.hdf5"
    argv = ["generate", "mimicgen", "--task", "block_grasp", "--source", str(source_demos), "--n", "1",
            "--out", str(out), "--quiet", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []
