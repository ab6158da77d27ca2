"""Malformed files are refused with errors naming the file, demo, key and problem."""

from __future__ import annotations

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
