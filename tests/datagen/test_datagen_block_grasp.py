"""Collection, MimicGen and I-MG on block_grasp with the scripted expert: the datagen acceptance bar."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from imgen_ros.data import ACTION_MODE_HUMAN, DatasetReader, validate_dataset
from imgen_ros.data.outputs import partial_path
from imgen_ros.datagen.episodes import GenerationParams
from imgen_ros.datagen.executors import non_loopback_interfaces
from imgen_ros.datagen.job import GenerationJob
from imgen_ros.datagen.journal import journal_path, read_journal
from imgen_ros.datagen.runner import RunOptions, run_generation


def _imgen_job(source, **kw) -> GenerationJob:
    return GenerationJob(kind="imgen", task="block_grasp", source=str(source), policy="expert", seed=3, **kw)


def _assert_same_episodes(a, b) -> None:
    with DatasetReader(a) as ra, DatasetReader(b) as rb:
        assert ra.demos() == rb.demos()
        for demo in ra.demos():
            ea, eb = ra.load_episode(demo), rb.load_episode(demo)
            assert ea.attrs["attempt"] == eb.attrs["attempt"]
            np.testing.assert_array_equal(ea.actions, eb.actions)
            np.testing.assert_array_equal(ea.states, eb.states)
            np.testing.assert_array_equal(ea.obs["object"], eb.obs["object"])


def test_collected_sources_are_labelled(source_interventions, source_demos):
    with DatasetReader(source_interventions) as r:
        assert len(r.demos("source")) == 10
        for demo in r.demos():
            modes = r.action_modes(demo)
            takeover = int(np.argmax(modes == ACTION_MODE_HUMAN))
            assert takeover > 0 and np.all(modes[:takeover] == 0) and np.all(modes[takeover:] == 1)
        assert "datagen_info/subtask_term_signals" not in r._file["data/demo_0"]  # block_grasp: one subtask
        assert r.env_args["env_kwargs"]["noise"] == "on"
    with DatasetReader(source_demos) as r:
        assert all(np.all(r.action_modes(d) == -1) for d in r.demos())
        assert r.env_args["env_kwargs"]["noise"] == "off"


def test_imgen_50_from_10_sources_with_2_workers_loads_in_robomimic(source_interventions, tmp_path):
    out = tmp_path / "imgen.hdf5"
    report = run_generation(_imgen_job(source_interventions), out, RunOptions(n=50, workers=2, progress=False))
    assert report.kept == 50 and report.attempts >= 50
    validate_dataset(out, require_imgen=True)
    assert not journal_path(out).exists()
    with DatasetReader(out) as r:
        assert len(r.demos()) == 50 and len(r.demos("recovery")) == 50
        assert len(r.demos("train")) + len(r.demos("valid")) == 50
        for demo in r.demos():
            assert np.all(r.action_modes(demo) == ACTION_MODE_HUMAN)
            attrs = r.demo_attrs(demo)
            assert attrs["source"] == "imgen" and attrs["takeover_step"] > 0
            assert set(attrs["source_demos"]) <= set(f"demo_{i}" for i in range(10))
        stats = r.json_attr("imgen_stats")
        assert stats["kept"] == 50 and stats["attempts"] == report.attempts
        assert r.json_attr("imgen_bookkeeping")["complete"] is True
        # every stored episode starts at a take-over and ends in success
        last = r.load_episode(r.demos()[-1])
        assert last.rewards[-1] == 1.0 and last.dones[-1] == 1
    from imgen_ros.policy.robomimic_compat import robomimic_modules

    rm = robomimic_modules()
    obs_keys = ["robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object"]
    rm.ObsUtils.initialize_obs_utils_with_obs_specs({"obs": {"low_dim": obs_keys, "rgb": []}})
    from robomimic.utils.dataset import SequenceDataset

    ds = SequenceDataset(hdf5_path=str(out), obs_keys=obs_keys, dataset_keys=("actions", "rewards", "dones"),
                         seq_length=10, hdf5_cache_mode="low_dim", filter_by_attribute="recovery")
    assert len(ds) == stats_samples(out)
    assert ds[0]["actions"].shape == (10, 7)


def stats_samples(path) -> int:
    with DatasetReader(path) as r:
        return sum(r.num_samples(d) for d in r.demos())


def test_same_seed_same_file_with_1_and_2_workers(source_interventions, tmp_path):
    a, b = tmp_path / "w1.hdf5", tmp_path / "w2.hdf5"
    job = _imgen_job(source_interventions)
    run_generation(job, a, RunOptions(n=8, workers=1, progress=False))
    run_generation(job, b, RunOptions(n=8, workers=2, progress=False))
    _assert_same_episodes(a, b)
    with DatasetReader(a) as ra, DatasetReader(b) as rb:
        assert ra.json_attr("imgen_bookkeeping")["kept_attempts"] == rb.json_attr("imgen_bookkeeping")["kept_attempts"]


def test_kill_9_mid_run_then_resume_gives_exactly_n(source_interventions, tmp_path):
    out, ref = tmp_path / "killed.hdf5", tmp_path / "ref.hdf5"
    n = 20
    entry = "import sys; from imgen_ros.cli.main import main; sys.exit(main())"
    cmd = [sys.executable, "-c", entry, "generate", "imgen", "--task", "block_grasp", "--source",
           str(source_interventions), "--policy", "expert", "--n", str(n), "--seed", "3", "--workers", "2",
           "--selection", "random", "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    journal = journal_path(out)
    while time.monotonic() < deadline and proc.poll() is None:
        if len(read_journal(journal)[0]) >= 9:  # header + >= 8 attempts finished
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its worker processes, mid-run
    proc.wait()
    assert journal.exists()
    finished = len(read_journal(journal)[0]) - 1
    assert 8 <= finished
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resumed" in rerun.stdout
    validate_dataset(out, require_imgen=True)
    assert not journal.exists()
    with DatasetReader(out) as r:
        assert len(r.demos()) == n
        assert r.json_attr("imgen_stats")["resumed_attempts"] == finished
    # and the resumed file equals an uninterrupted run of the same command
    run_generation(_imgen_job(source_interventions, params=GenerationParams(selection="random")), ref,
                   RunOptions(n=n, workers=2, progress=False))
    _assert_same_episodes(out, ref)
    # a rerun of a finished command is a no-op
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already complete" in again.stdout


def test_resume_refuses_different_settings(source_interventions, tmp_path):
    out = tmp_path / "x.hdf5"
    from imgen_ros.datagen.journal import JournalWriter

    w = JournalWriter(journal_path(out))
    w.append({"format": 1, "job": {"kind": "imgen"}, "n": 5})
    w.close()
    with pytest.raises(ValueError, match="different settings"):
        run_generation(_imgen_job(source_interventions), out, RunOptions(n=5, progress=False))


def test_no_policy_execution_ablation_replays_source_mistakes(source_interventions, tmp_path):
    out = tmp_path / "ablation.hdf5"
    job = _imgen_job(source_interventions, params=GenerationParams(policy_execution=False))
    report = run_generation(job, out, RunOptions(n=5, progress=False))
    assert report.kept == 5
    with DatasetReader(out) as r:
        assert {r.demo_attrs(d)["source"] for d in r.demos()} == {"imgen_no_policy"}
        assert all(np.all(r.action_modes(d) == ACTION_MODE_HUMAN) for d in r.demos())


def test_mimicgen_from_source_demos(source_demos, tmp_path):
    out = tmp_path / "mg.hdf5"
    job = GenerationJob(kind="mimicgen", task="block_grasp", source=str(source_demos), seed=1)
    report = run_generation(job, out, RunOptions(n=5, progress=False))
    assert report.kept == 5
    validate_dataset(out, require_imgen=True)
    with DatasetReader(out) as r:
        assert len(r.demos("generated")) == 5 and "recovery" not in r.masks()
        for demo in r.demos():
            ep = r.load_episode(demo)
            assert np.all(ep.action_modes == -1) and ep.rewards[-1] == 1.0
            # the generated cube positions differ from every source's: the demo was adapted, not copied
            assert ep.datagen_info["object_poses/cube"].shape == (ep.num_samples, 4, 4)


def test_mimicgen_without_the_operators_holds_keeps_grasping(source_demos, tmp_path):
    """The operator's sources pause above the cube and after closing; replayed without those holds the
    demos are shorter and still succeed (the fingers' closing is kept)."""
    from imgen_ros.cli.main import main

    lengths = {}
    for flag in ([], ["--drop-holds"]):
        out = tmp_path / f"mg{len(flag)}.hdf5"
        assert main(["generate", "mimicgen", "--task", "block_grasp", "--source", str(source_demos), "--n", "4",
                     "--seed", "2", "--out", str(out), "--quiet", *flag]) == 0
        with DatasetReader(out) as r:
            episodes = [r.load_episode(d) for d in r.demos()]
        assert len(episodes) == 4 and all(ep.rewards[-1] == 1.0 for ep in episodes)
        lengths[bool(flag)] = sum(ep.num_samples for ep in episodes)
    assert lengths[True] < lengths[False]


@pytest.mark.parametrize("noise", ["off", "on"])
def test_mimicgen_noise_decides_whether_observations_carry_the_corruption(source_demos, tmp_path, noise):
    """MimicGen acts on the true poses either way; with noise 'on' (the MG Demo baseline: demos in the
    test environment) the recorded object observation is the corrupted pose until contact."""
    job = GenerationJob(kind="mimicgen", task="block_grasp", source=str(source_demos), seed=2, noise=noise)
    assert GenerationJob(kind="mimicgen", task="block_grasp", source="x").noise == "off"
    out = tmp_path / f"mg_{noise}.hdf5"
    assert run_generation(job, out, RunOptions(n=3, progress=False)).kept == 3
    with DatasetReader(out) as r:
        for demo in r.demos():
            ep = r.load_episode(demo)
            believed = ep.obs["object"][0, :3]
            true = ep.datagen_info["object_poses/cube"][0, :3, 3]
            error = np.linalg.norm(believed - true)
            assert error > 0.02 if noise == "on" else error < 1e-9, (noise, error)


def test_local_ray_refused_outside_a_private_netns(source_interventions, tmp_path, monkeypatch):
    if not non_loopback_interfaces():
        pytest.skip("inside a private network namespace: a local Ray instance is allowed here")
    monkeypatch.delenv("IMGEN_RAY_ALLOW_NETWORK", raising=False)
    with pytest.raises(RuntimeError, match="private network namespace"):
        run_generation(_imgen_job(source_interventions), tmp_path / "r.hdf5",
                       RunOptions(n=2, workers=2, executor="ray", progress=False))


def test_cli_errors_are_specific(source_demos, tmp_path):
    from imgen_ros.cli.main import main

    out = str(tmp_path / "o.hdf5")
    assert main(["generate", "imgen", "--task", "block_grasp", "--source", str(source_demos), "--n", "2",
                 "--out", out, "--quiet"]) == 2
    assert main(["generate", "imgen", "--task", "nope", "--source", str(source_demos), "--n", "2",
                 "--out", out, "--quiet"]) == 2
    assert main(["generate", "mimicgen", "--task", "block_grasp", "--source", str(tmp_path / "missing.hdf5"),
                 "--n", "2", "--out", out, "--quiet"]) == 2
    assert not os.path.exists(out)


@pytest.mark.slow
def test_ray_executor_matches_local(source_interventions, tmp_path):
    if non_loopback_interfaces():
        pytest.skip("a local Ray instance listens on all interfaces: run in a private netns (scripts/netns-run)")
    a, b = tmp_path / "local.hdf5", tmp_path / "ray.hdf5"
    job = _imgen_job(source_interventions)
    run_generation(job, a, RunOptions(n=6, workers=2, progress=False))
    run_generation(job, b, RunOptions(n=6, workers=2, executor="ray", progress=False))
    _assert_same_episodes(a, b)


def test_teleop_collection_without_a_display_is_a_clear_error(tmp_path, monkeypatch, capsys):
    from imgen_ros.cli.main import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    out = tmp_path / "kb.hdf5"
    assert main(["collect", "demos", "--task", "block_grasp", "--policy", "keyboard", "--episodes", "1",
                 "--out", str(out), "--quiet"]) == 2
    assert "needs a display" in capsys.readouterr().err
    assert not out.exists()


def test_gives_up_after_max_attempts_with_a_clear_error(source_interventions, tmp_path):
    out = tmp_path / "hopeless.hdf5"
    with pytest.raises(RuntimeError, match=r"gave up after 3 attempts with \d/50 kept"):
        run_generation(_imgen_job(source_interventions), out, RunOptions(n=50, max_attempts=3, progress=False))
    assert not out.exists()  # only a finished file appears at --out
    validate_dataset(partial_path(out), require_imgen=True)  # the kept ones are a valid partial file


def test_mimicgen_on_a_two_subtask_task_segments_at_the_signal(tmp_path):
    from imgen_ros.datagen.collect import CollectConfig, collect
    from imgen_ros.datagen.segments import subtask_ends
    from imgen_ros.sim import make_env

    demos = tmp_path / "nut_peg_demos.hdf5"
    collect(CollectConfig(task="nut_peg_assembly", kind="demos", episodes=3, seed=0), demos)
    subtasks = make_env("nut_peg_assembly").subtasks
    with DatasetReader(demos) as r:
        for demo in r.demos():
            ends = subtask_ends(r.load_episode(demo), subtasks)
            assert 0 < ends[0] < ends[1] == r.num_samples(demo)  # grasp ends inside the episode
    out = tmp_path / "nut_peg_mg.hdf5"
    job = GenerationJob(kind="mimicgen", task="nut_peg_assembly", source=str(demos), seed=0)
    assert run_generation(job, out, RunOptions(n=2, progress=False, max_attempts=40)).kept == 2
    validate_dataset(out, require_imgen=True)
