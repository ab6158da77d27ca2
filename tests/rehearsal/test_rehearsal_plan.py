"""imgen rehearse without DDS: the rows and node command lines, the perturbations' mechanisms on real
files and a real simulated world, per-row statistics, results.md, and the CLI's refusals."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from imgen_ros.core.pose import pose_distance
from imgen_ros.perception.extrinsics import load_extrinsics
from imgen_ros.policy.evaluate import EVAL_SEED_BASE
from imgen_ros.rehearsal.perturbations import (
    ExtrinsicsError,
    push_body,
    push_offset,
    write_perturbed_extrinsics,
)
from imgen_ros.rehearsal.plan import (
    NODES,
    PARAMETER_FILES,
    TIME_SCALED,
    TIME_UNSCALED,
    CheckpointSpec,
    RehearsalConfig,
    RowPaths,
    eval_scenes,
    node_commands,
    plan_rows,
    time_scaled,
)
from imgen_ros.rehearsal.report import render
from imgen_ros.rehearsal.results import EpisodeRecord, RowResult
from imgen_ros.sim.cameras import DepthNoiseConfig

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"
SIM_EXTRINSICS = CONFIG / "camera_extrinsics_sim.yaml"


def _params(cmd: list[str]) -> dict[str, str]:
    """``-p key:=value`` pairs of a node command line."""
    return dict(cmd[i + 1].split(":=", 1) for i, a in enumerate(cmd) if a == "-p")


def _commands(perturbation: str, tmp_path: Path, **config) -> dict[str, list[str]]:
    row = plan_rows([CheckpointSpec("expert", "expert")], [perturbation])[0]
    paths = RowPaths(CONFIG, SIM_EXTRINSICS, tmp_path / "bags", tmp_path / "logs")
    return node_commands(row, RehearsalConfig(**config), paths, "python3")


def test_the_graph_is_the_real_one_with_the_simulator_as_robot_and_camera(tmp_path):
    cmds = _commands("none", tmp_path)
    assert list(cmds) == ["sim_node", "cube_pose_estimator", "contact_detector", "policy_node",
                          "intervention_arbiter", "joy_teleop", "recorder"]
    arbiter = cmds["intervention_arbiter"]
    assert arbiter[arbiter.index("--params-file") + 1] == str(CONFIG / "arbiter.yaml")   # the real robot's limits
    assert arbiter[:6] == ["python3", "-m", "imgen_ros.core.realtime", "--priority", "40", "--"]
    assert _params(arbiter) == {}
    sim = _params(cmds["sim_node"])
    assert sim["publish_observed_pose"] == "false" and sim["publish_revealed"] == "false"
    assert sim["simulated_human"] == "false" and sim["noise"] == "'off'" and float(sim["depth_rate_hz"]) == 30.0
    assert "depth_noise_scale" not in sim and "push_step" not in sim
    policy = _params(cmds["policy_node"])
    assert policy["observation.noise.mode"] == "'task'"
    # policy_node seeds episode k with seed + k and the arbiter's ids start at 1: episode i -> EVAL_SEED_BASE + i
    assert int(policy["observation.noise.seed"]) + 1 == EVAL_SEED_BASE
    assert policy["fresh_state_s"] == "0.005"
    assert _params(cmds["cube_pose_estimator"])["extrinsics_file"] == f"'{SIM_EXTRINSICS}'"
    assert _params(cmds["recorder"])["record_dir"] == f"'{tmp_path / 'bags'}'"


def test_each_perturbation_changes_only_its_mechanism(tmp_path):
    base = _params(_commands("none", tmp_path)["sim_node"])
    noisy = _params(_commands("depth_noise", tmp_path)["sim_node"])
    assert {k: v for k, v in noisy.items() if base.get(k) != v} == {"depth_noise_scale": "2.0"}
    pushed = _params(_commands("push", tmp_path)["sim_node"])
    assert {k: v for k, v in pushed.items() if base.get(k) != v} == {"push_step": "10", "push_distance_m": "0.03"}
    assert _params(_commands("extrinsics", tmp_path)["sim_node"]) == base   # a calibration file instead


def _node_config_classes() -> dict[str, tuple[type, tuple[str, ...]]]:
    """Each rehearsal node's parameter class and its node-level extras (as tests/core/test_config_files)."""
    from imgen_ros.nodes.contact_detector import ContactDetectorNodeConfig
    from imgen_ros.nodes.intervention_arbiter import ArbiterNodeConfig
    from imgen_ros.nodes.policy_node import PolicyNodeConfig
    from imgen_ros.nodes.recorder import RecorderConfig
    from imgen_ros.nodes.sim_node import SimNodeConfig
    from imgen_ros.perception.stream import CubePoseNodeConfig
    from imgen_ros.teleop.spacemouse import SpaceMouseConfig

    return {"sim_node": (SimNodeConfig, ()), "cube_pose_estimator": (CubePoseNodeConfig, ()),
            "contact_detector": (ContactDetectorNodeConfig, ()), "policy_node": (PolicyNodeConfig, ()),
            "intervention_arbiter": (ArbiterNodeConfig, ()),
            "joy_teleop": (SpaceMouseConfig, ("joy_topic", "joy_continuous", "command_rate_hz", "heartbeat_rate_hz")),
            "recorder": (RecorderConfig, ())}


def test_every_rate_and_duration_of_the_graph_is_time_scaled_or_exempt_with_a_reason():
    import re

    from imgen_ros.core.params import extra_table, param_table

    classes = _node_config_classes()
    assert set(classes) == set(NODES) == set(TIME_SCALED)
    for node, (cls, extra) in classes.items():
        names = set(param_table(cls)) | set(extra_table(extra))
        timed = {n for n in names if re.search(r"(_s|_hz|_mps|fps)$", n)}
        scaled = {name for _, name in TIME_SCALED[node]}
        exempt = TIME_UNSCALED.get(node, {})
        assert scaled <= names, f"{node}: TIME_SCALED names {scaled - names}, which the node does not declare"
        assert timed == scaled | set(exempt), f"{node}: {timed ^ (scaled | set(exempt))} neither scaled nor exempt"
        assert all(reason for reason in exempt.values())


def test_time_scale_half_runs_every_node_at_half_rate_with_doubled_time_outs(tmp_path):
    from imgen_ros.core.params import build_config, read_ros_params

    real = _commands("none", tmp_path)
    half = _commands("none", tmp_path, time_scale=0.5)
    classes = _node_config_classes()
    for node in NODES:
        before, after = _params(real[node]), _params(half[node])
        base = read_ros_params(CONFIG / PARAMETER_FILES[node], node)
        for kind, name in TIME_SCALED[node]:
            value = float(before[name]) if name in before else float(base[name])
            expected = value * 0.5 if kind == "rate" else value / 0.5
            assert float(after[name]) == pytest.approx(expected), (node, name)
        assert {k: v for k, v in after.items() if before.get(k) != v}.keys() == {n for _, n in TIME_SCALED[node]}
        # every scaled value is one the node accepts (its declared ranges)
        cls, extra = classes[node]
        values = {**base, **{k: yaml.safe_load(v) for k, v in after.items()}}
        build_config(cls, values, source=f"{node} at time scale 0.5", extra=extra)
    arbiter, policy = _params(half["intervention_arbiter"]), _params(half["policy_node"])
    assert float(arbiter["pose_timeout_s"]) == pytest.approx(0.15) and float(arbiter["watchdog_rate_hz"]) == 100.0
    assert float(policy["rate_hz"]) == 10.0 and float(policy["fresh_state_s"]) == pytest.approx(0.01)
    assert float(_params(half["sim_node"])["depth_rate_hz"]) == 15.0
    assert float(_params(half["contact_detector"])["detector.grasp_max_speed_mps"]) == pytest.approx(0.01)
    assert RehearsalConfig(time_scale=0.5).episode_timeout_s == 2 * RehearsalConfig().episode_timeout_s


def test_time_scale_refuses_a_parameter_it_cannot_find_and_scales_out_of_range():
    with pytest.raises(ValueError, match="hold_after_s is not set"):
        time_scaled("sim_node", None, {"step_rate_hz": 20.0, "state_rate_hz": 50.0, "pose_rate_hz": 30.0,
                                       "depth_rate_hz": 30.0}, 0.5)
    assert time_scaled("sim_node", None, {"x": 1}, 1.0) == {"x": 1}
    for bad in (0.25, 1.5, float("nan")):
        with pytest.raises(ValueError, match="time_scale"):
            RehearsalConfig(time_scale=bad)


def test_rows_labels_and_seeds(tmp_path, monkeypatch):
    ckpt = tmp_path / "i_mg" / "models" / "best.pth"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"x")
    assert CheckpointSpec.parse(str(ckpt)) == CheckpointSpec("i_mg", str(ckpt.resolve()))
    assert CheckpointSpec.parse(f"I-MG={ckpt}").label == "I-MG"
    assert CheckpointSpec.parse("expert") == CheckpointSpec("expert", "expert")
    with pytest.raises(ValueError, match="not a file"):
        CheckpointSpec.parse(str(tmp_path / "missing.pth"))
    experts = tmp_path / "experts" / "models" / "best.pth"  # a checkpoint whose path starts with "expert"
    experts.parent.mkdir(parents=True)
    experts.write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert CheckpointSpec.parse("experts/models/best.pth") == CheckpointSpec("experts", str(experts.resolve()))
    with_eq = tmp_path / "lr=1e-3" / "best.pth"  # a path holding '=' is a path, not LABEL=PATH
    with_eq.parent.mkdir()
    with_eq.write_bytes(b"x")
    assert CheckpointSpec.parse(str(with_eq)) == CheckpointSpec("best", str(with_eq.resolve()))
    rows = plan_rows([CheckpointSpec("a", "expert"), CheckpointSpec("b", "expert")], ["none", "push", "none"])
    assert [(r.checkpoint.label, r.perturbation) for r in rows] == [("a", "none"), ("a", "push"), ("b", "none"),
                                                                     ("b", "push")]
    with pytest.raises(ValueError, match="share the label"):
        plan_rows([CheckpointSpec("a", "expert"), CheckpointSpec("a", "expert:true")], ["none"])
    with pytest.raises(ValueError, match="unknown perturbation"):
        plan_rows([CheckpointSpec("a", "expert")], ["wind"])
    cfg = RehearsalConfig()
    assert [cfg.scene_seed(i) for i in range(3)] == [EVAL_SEED_BASE, EVAL_SEED_BASE + 1, EVAL_SEED_BASE + 2]


def test_perturbed_calibration_is_off_by_5_mm_and_2_deg(tmp_path):
    out = write_perturbed_extrinsics(SIM_EXTRINSICS, tmp_path / "perturbed.yaml", ExtrinsicsError())
    true, perturbed = load_extrinsics(SIM_EXTRINSICS), load_extrinsics(out)
    dpos, dang = pose_distance(true.pose, perturbed.pose)
    assert dpos == pytest.approx(0.005, abs=1e-9)
    assert math.degrees(dang) == pytest.approx(2.0, abs=1e-6)
    assert (perturbed.parent_frame, perturbed.child_frame) == (true.parent_frame, true.child_frame)
    assert "perturbation" in yaml.safe_load(out.read_text())["method"]


def test_depth_noise_scale_doubles_the_axial_sigma_only():
    base = DepthNoiseConfig()
    doubled = base.scaled(2.0)
    z = np.array([0.5, 0.85, 1.2])
    assert np.allclose(doubled.sigma_at(z, 615.0), 2.0 * base.sigma_at(z, 615.0))
    assert (doubled.dropout_prob, doubled.edge_jump_m) == (base.dropout_prob, base.edge_jump_m)
    with pytest.raises(ValueError):
        base.scaled(float("nan"))


def test_push_moves_the_resting_cube_by_the_seeded_offset():
    from imgen_ros.sim import make_env

    env = make_env("block_grasp", noise="off", observability="full")
    try:
        env.reset(EVAL_SEED_BASE + 3)
        before = env.object_poses()["cube"][:3, 3].copy()
        offset = push_offset(EVAL_SEED_BASE + 3, 0.03)
        assert np.linalg.norm(offset) == pytest.approx(0.03) and offset[2] == 0.0
        assert np.allclose(push_offset(EVAL_SEED_BASE + 3, 0.03), offset)          # the same for every checkpoint
        assert not np.allclose(push_offset(EVAL_SEED_BASE + 4, 0.03), offset)
        applied = push_body(env, "cube", offset)
        after = env.object_poses()["cube"][:3, 3]
        assert np.allclose(applied, offset) and np.allclose(after - before, offset, atol=1e-9)
        # a push that would land the cube on a finger is refused: the cube stays
        finger_geom = int(np.flatnonzero(env.geoms("left_finger").mask)[0])
        onto_finger = env.data.geom_xpos[finger_geom] - after
        assert not push_body(env, "cube", onto_finger).any()
        assert np.allclose(env.object_poses()["cube"][:3, 3], after)
    finally:
        env.close()


def test_eval_scenes_are_imgen_evals():
    from imgen_ros.sim import make_env

    scenes = eval_scenes("block_grasp", [EVAL_SEED_BASE, EVAL_SEED_BASE + 1])
    env = make_env("block_grasp", noise="on", observability="full")
    try:
        for seed, scene in scenes.items():
            env.reset(seed)
            assert np.allclose(scene.cube_position, env.object_poses()["cube"][:3, 3])
            assert np.allclose(scene.pose_error, env.corruption["cube"]) and abs(scene.pose_error[1]) >= 0.025
    finally:
        env.close()


def _record(i: int, outcome: str, **kw) -> EpisodeRecord:
    return EpisodeRecord(index=i, seed=EVAL_SEED_BASE + i, episode_id=i + 1, outcome=outcome, reason="r",
                         steps=40 + i, wall_s=2.0, **kw)


def test_row_statistics_and_report():
    row = RowResult("I-MG", "ckpt.pth", "none",
                    episodes=[_record(0, "SUCCESS", clipped=2, clip_kinds=["translation_step"]),
                              _record(1, "FAILURE", fault_holds=["stale_pose"], resumes=1),
                              _record(2, "SUCCESS", icp_error_mm=0.5), _record(3, "TIMEOUT")],
                    state_ages_s=[0.001, 0.002, 0.003, 0.100], pose_ages_s=[0.03] * 4, wall_s=20.0)
    row.in_process = {"trials": 4, "successes": 3, "success_rate": 0.75, "ci_low": 0.3, "ci_high": 0.95,
                      "per_trial_success": [True, True, True, False]}
    s = row.summary()
    assert (s["trials"], s["successes"], s["success_rate"]) == (4, 2, 0.5)
    assert s["ci_low"] == pytest.approx(0.15003898915214947) and s["ci_high"] == pytest.approx(0.8499610108478505)
    assert s["mean_steps"] == 41.5 and s["clipped_commands"] == 2 and s["clipped_episodes"] == 1
    assert s["clip_kinds"] == ["translation_step"] and s["fault_holds"] == 1 and s["resumes"] == 1
    assert s["timeouts"] == 1 and s["state_age_ms"]["p50"] == pytest.approx(2.5)
    assert s["inside_in_process_ci"] is True and s["same_outcome_as_in_process"] == 3
    text = render({"command": "imgen rehearse ...", "config": {"seed_base": EVAL_SEED_BASE, "horizon": 200}}, [s])
    line = next(x for x in text.splitlines() if x.startswith("| I-MG |"))
    assert "50% (15%–85%), 2/4" in line and "75% (30%–95%), 3/4" in line and "| yes |" in line


@pytest.mark.parametrize("argv, message", [
    (["--checkpoint", "expert", "--episodes", "1", "--perturb", "wind"], "invalid choice"),
    (["--checkpoint", "expert", "--episodes", "0"], "integer in [1, 100000]"),
    (["--checkpoint", "expert", "--depth-rate", "5"], "number in [15, 60]"),
    (["--checkpoint", "expert", "--time-scale", "0.25"], "number in [0.5, 1]"),
    (["--checkpoint", "expert", "--time-scale", "nan"], "number in [0.5, 1]"),
    (["--checkpoint", "/nonexistent/model.pth"], "is not a file"),
    (["--checkpoint", "expert_v2.pth"], "is not a file"),  # a path, not the scripted expert
    (["--checkpoint", "{text}"], "not a torch checkpoint"),
    (["--checkpoint", "{folder}"], "is not a file"),
    (["--checkpoint", "expert", "--out", "{text}/o"], "is not a directory"),
])
def test_cli_refuses_bad_arguments_in_one_line(tmp_path, argv, message):
    """Refused before any node starts (these never reach the network namespace)."""
    (tmp_path / "a dir").mkdir()
    (tmp_path / "notes.pth").write_text("not a checkpoint\n")
    argv = [a.format(text=tmp_path / "notes.pth", folder=tmp_path / "a dir") for a in argv]
    argv += [] if "--out" in argv else ["--out", str(tmp_path / "o")]
    res = subprocess.run([sys.executable, "-m", "imgen_ros.cli.main", "rehearse", *argv],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "o").exists()


def test_cli_refuses_a_non_empty_output_without_overwrite(tmp_path):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "keep.txt").write_text("results of another run")
    res = subprocess.run([sys.executable, "-m", "imgen_ros.cli.main", "rehearse", "--checkpoint", "expert",
                          "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--overwrite" in res.stderr, res.stderr
    assert (tmp_path / "o" / "keep.txt").read_text() == "results of another run"


def test_cli_refuses_a_file_as_output_even_with_overwrite_and_does_not_advise_it(tmp_path):
    out = tmp_path / "o"
    out.write_text("a file of the user's")
    res = subprocess.run([sys.executable, "-m", "imgen_ros.cli.main", "rehearse", "--checkpoint", "expert",
                          "--out", str(out), "--overwrite"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert "is not a directory" in res.stderr and "pass --overwrite" not in res.stderr, res.stderr
    assert out.read_text() == "a file of the user's"
