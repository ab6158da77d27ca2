"""Malformed files are refused with errors naming the file, demo, key and problem."""

from __future__ import annotations

import dataclasses
import os
import signal

import h5py
import numpy as np
import pytest
from imgen_ros.cli.main import main as imgen_main
from imgen_ros.data import DatasetError, DatasetReader, DatasetWriter, validate_dataset


@pytest.fixture
def good_file(tmp_path, make_ep, env_args):
    path = tmp_path / "good.hdf5"
    with DatasetWriter(path, env_args) as w:
        w.append(make_ep(8, 0), masks=["source"])
        w.append(make_ep(9, 1), masks=["source"])
    return path


def _problems(path) -> list[str]:
    with pytest.raises(DatasetError) as err:
        validate_dataset(path, require_imgen=True)
    return [str(i) for i in err.value.issues]


def test_valid_file_passes(good_file):
    validate_dataset(good_file, require_imgen=True)


def test_missing_file_and_non_hdf5(tmp_path):
    assert "file does not exist" in _problems(tmp_path / "nope.hdf5")[0]
    junk = tmp_path / "junk.hdf5"
    junk.write_text("not hdf5")
    assert "not a readable HDF5 file" in _problems(junk)[0]


def test_missing_data_group(tmp_path):
    path = tmp_path / "empty.hdf5"
    h5py.File(path, "w").close()
    assert _problems(path) == [f"{path} [data]: missing group 'data'"]


def test_nan_action_is_named_with_step(good_file):
    with h5py.File(good_file, "a") as f:
        f["data/demo_1/actions"][3, 2] = np.nan
    assert _problems(good_file) == [f"{good_file} data/demo_1 [actions]: non-finite value (NaN/Inf) at step 3"]


def test_action_out_of_range(good_file):
    with h5py.File(good_file, "a") as f:
        f["data/demo_0/actions"][5, 0] = 1.7
    (problem,) = _problems(good_file)
    assert "data/demo_0 [actions]: values outside [-1, 1]" in problem and "step 5" in problem


def test_wrong_action_dim(good_file):
    with h5py.File(good_file, "a") as f:
        del f["data/demo_0/actions"]
        f["data/demo_0/actions"] = np.zeros((8, 6))
    assert "data/demo_0 [actions]: shape (8, 6), expected (8, 7)" in _problems(good_file)[0]


def test_length_mismatch_and_missing_keys(good_file):
    with h5py.File(good_file, "a") as f:
        del f["data/demo_1/obs/object"]
        f["data/demo_1/obs/object"] = np.zeros((4, 10))
        del f["data/demo_0/rewards"]
        del f["data/demo_0/action_modes"]
    problems = _problems(good_file)
    assert f"{good_file} data/demo_0 [rewards]: missing" in problems
    assert f"{good_file} data/demo_0 [action_modes]: missing" in problems
    assert f"{good_file} data/demo_1 [obs/object]: length 4 != num_samples 9" in problems


def test_bad_total_mask_and_labels(good_file):
    with h5py.File(good_file, "a") as f:
        f["data"].attrs["total"] = 99
        f["mask/source"][1] = b"demo_7"
        f["data/demo_0/action_modes"][0] = 5
        del f["data"].attrs["env_args"]
    problems = _problems(good_file)
    assert f"{good_file} [data.attrs[total]]: is 99 but demos hold 17 samples" in problems
    assert f"{good_file} [mask/source]: lists 'demo_7', which is not a demo in data/" in problems
    assert f"{good_file} data/demo_0 [action_modes]: unknown labels [5] (allowed [-1, 0, 1])" in problems
    assert f"{good_file} [data.attrs[env_args]]: missing attribute" in problems


def test_reader_validates_and_cli_reports(good_file, capsys):
    with h5py.File(good_file, "a") as f:
        del f["data/demo_1"].attrs["num_samples"]
    with pytest.raises(DatasetError, match=r"data/demo_1 \[attrs\[num_samples\]\]: missing attribute"):
        DatasetReader(good_file)
    assert imgen_main(["dataset", "info", str(good_file)]) == 2
    assert "demo_1 [attrs[num_samples]]: missing attribute" in capsys.readouterr().err


def test_cli_info_and_merge(good_file, tmp_path, capsys):
    assert imgen_main(["dataset", "info", str(good_file), "--json"]) == 0
    assert '"demos": 2' in capsys.readouterr().out
    out = tmp_path / "merged.hdf5"
    assert imgen_main(["dataset", "merge", str(good_file), str(good_file), "--out", str(out)]) == 0
    with DatasetReader(out) as r:
        assert len(r.demos()) == 4 and r.demos("source") == ["demo_0", "demo_1", "demo_2", "demo_3"]


def _replace(f: h5py.File, key: str, value) -> None:
    del f[key]
    f[key] = value


MALFORMED = {  # hostile layouts: each is named as one issue, never a traceback
    "demo is a dataset": (lambda f: _replace(f, "data/demo_1", np.zeros(3)), "data/demo_1: is not a group"),
    "obs is a dataset": (lambda f: _replace(f, "data/demo_1/obs", np.zeros((9, 3))),
                         "data/demo_1 [obs]: is not a group"),
    "actions is a group": (lambda f: (f.__delitem__("data/demo_0/actions"), f.create_group("data/demo_0/actions")),
                           "data/demo_0 [actions]: is not a dataset"),
    "text num_samples": (lambda f: f["data/demo_0"].attrs.__setitem__("num_samples", "eight"),
                         "data/demo_0 [attrs[num_samples]]: not a count ('eight')"),
    "text total": (lambda f: f["data"].attrs.__setitem__("total", "lots"),
                   "[data.attrs[total]]: not an integer ('lots')"),
    "mask is a dataset": (lambda f: _replace(f, "mask", np.zeros(2)), "[mask]: is not a group"),
    "text actions": (lambda f: _replace(f, "data/demo_0/actions", np.array([b"x"] * 8)),
                     "data/demo_0 [actions]: not numbers (dtype |S1)"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_layout_is_named_not_a_traceback(good_file, case, capsys):
    corrupt, expected = MALFORMED[case]
    with h5py.File(good_file, "a") as f:
        corrupt(f)
    assert any(expected in p for p in _problems(good_file)), _problems(good_file)
    assert imgen_main(["dataset", "validate", str(good_file)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imgen: error: invalid dataset") and len(err.strip().splitlines()) == 1 and expected in err


def test_info_names_a_malformed_json_attribute(good_file, capsys):
    with h5py.File(good_file, "a") as f:
        f["data"].attrs["imgen_stats"] = "{not json"
    assert imgen_main(["dataset", "info", str(good_file)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"imgen: error: invalid dataset: {good_file} [data.attrs[imgen_stats]]: not valid JSON (")
    assert len(err.strip().splitlines()) == 1
    assert imgen_main(["dataset", "validate", str(good_file)]) == 2   # validate says so too
    assert "[data.attrs[imgen_stats]]: not valid JSON" in capsys.readouterr().err
    with h5py.File(good_file, "a") as f:
        f["data"].attrs["imgen_stats"] = "[1, 2]"  # valid JSON, but not the stats record: not shown
    assert imgen_main(["dataset", "info", str(good_file)]) == 0
    assert "generation:" not in capsys.readouterr().out
    assert imgen_main(["dataset", "validate", str(good_file)]) == 0


def test_garbled_bytes_are_an_invalid_dataset_not_a_traceback(good_file, capsys):
    blob = bytearray(good_file.read_bytes())
    blob[len(blob) // 4: 3 * len(blob) // 4] = b"\xab" * (3 * len(blob) // 4 - len(blob) // 4)
    good_file.write_bytes(bytes(blob))
    for command in ("validate", "info"):
        assert imgen_main(["dataset", command, str(good_file)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("imgen: error: invalid dataset") and str(good_file) in err
        assert len(err.strip().splitlines()) == 1


def test_validate_checks_every_file_and_names_each_invalid_one(good_file, tmp_path, capsys):
    bad, missing = tmp_path / "bad.hdf5", tmp_path / "missing.hdf5"
    bad.write_bytes(good_file.read_bytes())
    with h5py.File(bad, "a") as f:
        f["data/demo_1/actions"][3, 2] = np.nan
    assert imgen_main(["dataset", "validate", str(bad), str(good_file), str(missing)]) == 2
    out, err = capsys.readouterr()
    assert out == f"{good_file}: ok\n"
    assert err.splitlines() == [
        f"imgen: error: invalid dataset: {bad} data/demo_1 [actions]: non-finite value (NaN/Inf) at step 3",
        f"imgen: error: invalid dataset: {missing}: file does not exist"]
    assert imgen_main(["dataset", "validate", str(good_file), str(good_file)]) == 0
    assert capsys.readouterr().out == f"{good_file}: ok\n" * 2


def _empty_demo(f: h5py.File) -> None:
    """demo_0 with every per-step array cut to 0 steps (robomimic asserts on it)."""
    group = f["data/demo_0"]
    for key, ds in _items(group):
        _replace(f, f"data/demo_0/{key}", ds[()][:0])
    group.attrs["num_samples"] = 0
    f["data"].attrs["total"] = 9


def _items(group: h5py.Group, prefix: str = "") -> list[tuple[str, h5py.Dataset]]:
    out: list[tuple[str, h5py.Dataset]] = []
    for key, item in group.items():
        out.extend([(prefix + key, item)] if isinstance(item, h5py.Dataset) else _items(item, prefix + key + "/"))
    return out


UNTRAINABLE = {  # accepted once, then crashed `imgen train` (or evaluation) with a traceback
    "float num_samples": (lambda f: f["data/demo_0"].attrs.__setitem__("num_samples", 8.0),
                          "data/demo_0 [attrs[num_samples]]: not a count (", "store an integer)"),
    "empty demo": (_empty_demo, "data/demo_0 [attrs[num_samples]]: 0 samples (a demo needs at least one step)"),
    "2-D action_modes": (lambda f: _replace(f, "data/demo_0/action_modes", np.zeros((8, 3), dtype=int)),
                         "data/demo_0 [action_modes]: shape (8, 3), expected (8,)"),
    "text rewards": (lambda f: _replace(f, "data/demo_0/rewards", np.array([b"a"] * 8)),
                     "data/demo_0 [rewards]: not numbers (dtype |S1)"),
    "NaN dones": (lambda f: _replace(f, "data/demo_1/dones", np.r_[np.zeros(4), np.nan, np.zeros(4)]),
                  "data/demo_1 [dones]: non-finite value (NaN/Inf) at step 4"),
    "text obs": (lambda f: _replace(f, "data/demo_0/obs/object", np.array([b"x"] * 8)),
                 "data/demo_0 [obs/object]: not numbers (dtype |S1)"),
    "complex obs": (lambda f: _replace(f, "data/demo_0/next_obs/object", np.zeros((8, 10), np.complex64)),
                    "data/demo_0 [next_obs/object]: not numbers (dtype complex64)"),
    "eef of 5": (lambda f: _replace(f, "data/demo_0/obs/robot0_eef_pos", np.zeros((8, 5))),
                 "data/demo_0 [obs/robot0_eef_pos]: shape (8, 5), expected (8, 3)"),
    "1-D eef": (lambda f: _replace(f, "data/demo_1/next_obs/robot0_eef_pos", np.zeros(9)),
                "data/demo_1 [next_obs/robot0_eef_pos]: shape (9,), expected (9, 3)"),
    "4-D object": (lambda f: _replace(f, "data/demo_0/obs/object", np.zeros((8, 2, 2, 2))),
                   "data/demo_0 [obs/object]: shape (8, 2, 2, 2), expected (8, D), a vector per step"),
    "huge obs": (lambda f: _replace(f, "data/demo_0/obs/object", np.full((8, 10), 1e308)),
                 "data/demo_0 [obs/object]: value 1e+308 beyond 1e+06"),
    "no observation": (lambda f: [f["data/demo_0/obs"].__delitem__(k) for k in list(f["data/demo_0/obs"])],
                       "data/demo_0 [obs]: holds no observation"),
    "demo twice in a mask": (lambda f: f.create_dataset("mask/train_twice", data=np.array([b"demo_0", b"demo_0"])),
                             "[mask/train_twice]: lists 'demo_0' twice"),
    "text datagen_info": (lambda f: _replace(f, "data/demo_0/datagen_info/subtask_term_signals/grasp",
                                             np.array([b"x"] * 8)),
                          "data/demo_0 [datagen_info/subtask_term_signals/grasp]: not numbers (dtype |S1)"),
}


@pytest.mark.parametrize("case", sorted(UNTRAINABLE))
def test_untrainable_content_is_named_in_one_line(good_file, case, capsys):
    corrupt, *expected = UNTRAINABLE[case]
    with h5py.File(good_file, "a") as f:
        corrupt(f)
    problems = _problems(good_file)
    assert any(all(e in p and p.startswith(f"{good_file} ") for e in expected) for p in problems), problems
    assert imgen_main(["dataset", "validate", str(good_file)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imgen: error: invalid dataset") and len(err.strip().splitlines()) == 1
    assert all(e in err for e in expected)


def test_a_fifo_is_refused_by_name_without_opening_it(good_file, tmp_path, capsys):
    fifo = tmp_path / "fifo.hdf5"
    os.mkfifo(fifo)
    previous = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("blocked opening a FIFO"))
    signal.alarm(60)
    try:
        for argv in (["dataset", "info", str(fifo)], ["dataset", "validate", str(fifo)],
                     ["dataset", "merge", str(good_file), str(fifo), "--out", str(tmp_path / "m.hdf5")]):
            assert imgen_main(argv) == 2
            assert capsys.readouterr().err == f"imgen: error: invalid dataset: {fifo}: not a regular file\n"
        assert imgen_main(["train", "--task", "block_grasp", "--data", str(fifo), "--out", str(tmp_path / "t")]) == 2
        assert capsys.readouterr().err == f"imgen: error: --data {fifo}: not a regular file\n"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.hdf5", "good.hdf5"]


@pytest.mark.parametrize("case", ["float num_samples", "empty demo", "text obs", "eef of 5"])
def test_train_refuses_untrainable_data_before_training(good_file, tmp_path, case, capsys):
    corrupt, *expected = UNTRAINABLE[case]
    with h5py.File(good_file, "a") as f:
        corrupt(f)
    out = tmp_path / "run"
    assert imgen_main(["train", "--task", "block_grasp", "--data", str(good_file), "--out", str(out),
                       "--epochs", "1", "--eval-every", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imgen: error: invalid dataset") and len(err.strip().splitlines()) == 1
    assert all(e in err for e in expected) and not out.exists()


def test_merge_refuses_an_invalid_input_and_inputs_of_different_shapes_writing_nothing(good_file, tmp_path,
                                                                                       make_ep, env_args, capsys):
    bad = tmp_path / "bad.hdf5"
    bad.write_bytes(good_file.read_bytes())
    with h5py.File(bad, "a") as f:
        for demo in ("demo_0", "demo_1"):
            _replace(f, f"data/{demo}/obs/robot0_eef_pos", np.zeros((f[f"data/{demo}"].attrs["num_samples"], 5)))
    wide = tmp_path / "wide.hdf5"  # valid alone: object of 12 per step, where good_file's has 10
    with DatasetWriter(wide, env_args) as w:
        ep = make_ep(8, 2)
        w.append(dataclasses.replace(ep, obs={**ep.obs, "object": np.zeros((8, 12))},
                                     next_obs={**ep.next_obs, "object": np.zeros((8, 12))}))
    validate_dataset(wide)
    out = tmp_path / "merged.hdf5"
    for other, expected in ((bad, f"{bad} data/demo_0 [obs/robot0_eef_pos]: shape (8, 5), expected (8, 3)"),
                            (wide, f"{wide} data/demo_0 [obs/object]: per-step shape (12,) differs from "
                                   f"{good_file} data/demo_0's (10,)")):
        assert imgen_main(["dataset", "merge", str(good_file), str(other), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and expected in err, err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.hdf5", "good.hdf5", "wide.hdf5"]
