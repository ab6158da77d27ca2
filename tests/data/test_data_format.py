"""Round trip of the hdf5 format, masks, merge, summary and robomimic compatibility."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from imgen_ros.data import DatasetReader, DatasetWriter
from imgen_ros.data.merge import merge_datasets
from imgen_ros.data.summary import summarize


def test_round_trip_preserves_every_array_and_attr(tmp_path, make_ep, env_args):
    path = tmp_path / "d.hdf5"
    episodes = [make_ep(10, seed=0, mode=-1), make_ep(7, seed=1, mode=1)]
    with DatasetWriter(path, env_args) as writer:
        names = [writer.append(ep, masks=["source"] if i == 0 else ["generated", "recovery"])
                 for i, ep in enumerate(episodes)]
        writer.set_json_attr("imgen_stats", {"attempts": 3, "successes": 2})
    assert names == ["demo_0", "demo_1"]
    with DatasetReader(path) as reader:
        assert reader.env_args == env_args
        assert reader.demos() == names
        assert reader.demos("recovery") == ["demo_1"]
        assert reader.json_attr("imgen_stats") == {"attempts": 3, "successes": 2}
        for name, ep in zip(names, episodes, strict=True):
            back = reader.load_episode(name)
            np.testing.assert_array_equal(back.actions, ep.actions)
            np.testing.assert_array_equal(back.action_modes, ep.action_modes)
            np.testing.assert_array_equal(back.states, ep.states)
            for key in ep.obs:
                np.testing.assert_array_equal(back.obs[key], ep.obs[key])
                np.testing.assert_array_equal(back.next_obs[key], ep.next_obs[key])
            for key in ep.datagen_info:
                np.testing.assert_array_equal(back.datagen_info[key], ep.datagen_info[key])
            assert back.attrs["source"] == "test"
    with h5py.File(path, "r") as f:
        assert f["data"].attrs["total"] == 17
        assert f["data/demo_1"].attrs["num_samples"] == 7


def test_append_mode_continues_numbering_and_total(tmp_path, make_ep, env_args):
    path = tmp_path / "d.hdf5"
    with DatasetWriter(path, env_args) as writer:
        writer.append(make_ep(5), masks=["train"])
    with DatasetWriter(path, append=True) as writer:
        assert writer.append(make_ep(6), masks=["train"]) == "demo_1"
    with DatasetReader(path) as reader:
        assert reader.demos("train") == ["demo_0", "demo_1"]
    with h5py.File(path, "r") as f:
        assert f["data"].attrs["total"] == 11


def test_episode_with_mismatched_lengths_is_refused(tmp_path, make_ep, env_args):
    ep = make_ep(5)
    ep.rewards = ep.rewards[:3]
    with DatasetWriter(tmp_path / "d.hdf5", env_args) as writer, pytest.raises(ValueError, match="rewards"):
        writer.append(ep)


def test_merge_renumbers_demos_and_carries_masks(tmp_path, make_ep, env_args):
    a, b, out = tmp_path / "a.hdf5", tmp_path / "b.hdf5", tmp_path / "m.hdf5"
    with DatasetWriter(a, env_args) as w:
        w.append(make_ep(4, 0), masks=["source"])
        w.append(make_ep(5, 1), masks=["source"])
    with DatasetWriter(b, env_args) as w:
        w.append(make_ep(6, 2, mode=1), masks=["recovery"])
    counts = merge_datasets([a, b], out)
    assert list(counts.values()) == [2, 1]
    with DatasetReader(out) as reader:
        assert reader.demos() == ["demo_0", "demo_1", "demo_2"]
        assert reader.demos("source") == ["demo_0", "demo_1"]
        assert reader.demos("recovery") == ["demo_2"]
        np.testing.assert_array_equal(reader.load_episode("demo_2").actions, make_ep(6, 2).actions)


def test_merge_refuses_different_environments(tmp_path, make_ep, env_args):
    a, b = tmp_path / "a.hdf5", tmp_path / "b.hdf5"
    with DatasetWriter(a, env_args) as w:
        w.append(make_ep(4))
    with DatasetWriter(b, {**env_args, "env_name": "coffee"}) as w:
        w.append(make_ep(4))
    with pytest.raises(ValueError, match="different environments"):
        merge_datasets([a, b], tmp_path / "m.hdf5")


def test_summary_counts_modes_and_sources(tmp_path, make_ep, env_args):
    path = tmp_path / "d.hdf5"
    with DatasetWriter(path, env_args) as w:
        w.append(make_ep(10, mode=-1))
        ep = make_ep(10, mode=0)
        ep.action_modes[6:] = 1
        ep.attrs["source"] = "collect:interventions"
        w.append(ep)
    s = summarize(path)
    assert s["demos"] == 2 and s["samples"] == 20
    assert s["steps_by_mode"] == {"demo": 10, "robot": 6, "human": 4}
    assert s["intervention_fraction"] == pytest.approx(0.2)
    assert s["demos_with_intervention"] == 1
    assert s["sources"] == {"collect:interventions": 1, "test": 1}
    json.dumps(s)


def test_file_loads_in_robomimic_sequence_dataset(tmp_path, make_ep, env_args):
    import robomimic.utils.obs_utils as obs_utils
    from robomimic.utils.dataset import SequenceDataset

    path = tmp_path / "d.hdf5"
    with DatasetWriter(path, env_args) as w:
        w.append(make_ep(12, 0, mode=1), masks=["recovery"])
        w.append(make_ep(15, 1, mode=1), masks=["recovery"])
    obs_keys = ["robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object"]
    obs_utils.initialize_obs_utils_with_obs_specs({"obs": {"low_dim": obs_keys, "rgb": []}})
    ds = SequenceDataset(hdf5_path=str(path), obs_keys=obs_keys, dataset_keys=("actions", "rewards", "dones"),
                         seq_length=10, pad_seq_length=True, hdf5_cache_mode="low_dim",
                         filter_by_attribute="recovery")
    assert len(ds) == 27
    item = ds[0]
    assert item["actions"].shape == (10, 7)
    assert item["obs"]["object"].shape == (10, 10)
