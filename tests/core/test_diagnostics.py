"""Status levels for /diagnostics from the documented thresholds (core.diagnostics), and the live
parameter flags and re-validation that the nodes' parameter callbacks rely on (core.params)."""

from __future__ import annotations

import math

import pytest
from imgen_ros.core import diagnostics as diag
from imgen_ros.core.arbiter import ArbiterConfig
from imgen_ros.core.diagnostics import FitSample, Level, RecentEvents
from imgen_ros.core.params import ConfigError, param_table, with_values
from imgen_ros.nodes.policy_node import PolicyNodeConfig
from imgen_ros.perception.stream import CubePoseNodeConfig


# ---------------------------------------------------------------- thresholds
@pytest.mark.parametrize("age,level", [(0.01, Level.OK), (0.1, Level.WARN), (0.3, Level.ERROR),
                                       (math.inf, Level.WARN)])
def test_policy_state_age_levels(age, level):
    status = diag.policy_input_status(age, 0.05, max_state_age_s=0.2, max_pose_age_s=1.0)
    assert status.level == level
    assert status.aspect == "inputs"


@pytest.mark.parametrize("age,level", [(0.1, Level.OK), (0.5, Level.WARN), (1.5, Level.ERROR)])
def test_policy_pose_age_levels_follow_the_policy_limits(age, level):
    assert diag.policy_input_status(0.01, age, 0.2, 1.0).level == level
    # the ERROR line is where this policy stops acting: a tighter max_object_age_s moves it
    assert diag.policy_input_status(0.01, 0.5, 0.2, 0.4).level == Level.ERROR


def test_policy_loop_levels():
    assert diag.policy_loop_status([], [], 20.0).level == Level.OK
    steady = diag.policy_loop_status([0.0005] * 100, [0.004] * 100, 20.0)
    assert steady.level == Level.OK and steady.values["decisions"] == "100"
    assert diag.policy_loop_status([0.0005] * 90 + [0.010] * 10, [0.004] * 100, 20.0).level == Level.WARN
    assert diag.policy_loop_status([0.03] * 100, [0.004] * 100, 20.0).level == Level.ERROR   # > half a period
    assert diag.policy_loop_status([0.0] * 100, [0.03] * 100, 20.0).level == Level.WARN      # > half a period
    assert diag.policy_loop_status([0.0] * 100, [0.06] * 100, 20.0).level == Level.ERROR     # > one period
    assert diag.policy_loop_status([math.nan], [0.004], 20.0).level == Level.OK   # first tick: no period yet


@pytest.mark.parametrize("mode,reason,level", [
    ("POLICY", "policy", Level.OK), ("HUMAN", "takeover_button", Level.OK), ("HOLD", "no_episode", Level.OK),
    ("HOLD", "operator_hold", Level.OK), ("HOLD", "waiting_for_pose", Level.WARN),
    ("HOLD", "stale_pose", Level.ERROR), ("HOLD", "nan_pose", Level.ERROR),
    ("HOLD", "nonfinite_robot_state", Level.ERROR), ("HOLD", "latched_stale_policy", Level.ERROR)])
def test_arbiter_mode_levels(mode, reason, level):
    status = diag.arbiter_mode_status(mode, reason, 3, True)
    assert status.level == level
    assert status.values["reason"] == reason and reason in status.message


def test_arbiter_clip_levels():
    assert diag.arbiter_clip_status(0, 0, 0, ()).level == Level.OK
    assert diag.arbiter_clip_status(5, 100, 7, ("step",)).level == Level.OK
    warn = diag.arbiter_clip_status(11, 100, 11, ("step", "box"))
    assert warn.level == Level.WARN and "last: step,box" in warn.message and warn.values["clipped_total"] == "11"


def test_estimator_fit_rate_rejections_and_stale_estimate():
    now = 100.0
    assert diag.estimator_status([], now, None).level == Level.WARN
    good = [FitSample(now - 1.0 + i / 30, True, "ok", 0.9) for i in range(30)]
    status = diag.estimator_status(good, now, now - 0.01)
    assert status.level == Level.OK and status.values["fit_rate"] == "1.000"
    mixed = [FitSample(now - 1.0 + i / 30, i % 3 == 0, "ok" if i % 3 == 0 else "low_fitness", 0.8)
             for i in range(30)]
    status = diag.estimator_status(mixed, now, now - 0.05)
    assert status.level == Level.WARN and status.values["rejected_low_fitness"] == "20"
    assert "low_fitness 20" in status.message
    rejected = [FitSample(now - 1.0 + i / 30, False, "too_few_points", math.nan) for i in range(30)]
    assert diag.estimator_status(rejected, now, now - 5.0).level == Level.ERROR          # 0 % fit rate
    # frames that all fit but the last valid one is old: the pose is stale
    assert diag.estimator_status(good, now, now - 0.5).level == Level.WARN
    # no frame for more than a second: the camera is gone
    old = [FitSample(now - 3.0, True, "ok", 0.9)]
    status = diag.estimator_status(old, now, now - 3.0)
    assert status.level == Level.ERROR and "no depth frame" in status.message
    # only the window counts: old rejections do not lower the rate
    early = [FitSample(now - 3.0 + i / 30, False, "too_few_points", math.nan) for i in range(10)]
    status = diag.estimator_status(early + good, now, now)
    assert status.level == Level.OK and status.values["frames"] == "30" and status.values["fit_rate"] == "1.000"


def test_driver_levels_and_recent_counters():
    assert diag.driver_connection_status("sim", True, 0.02, "").level == Level.OK
    assert diag.driver_connection_status("sim", True, 0.5, "").level == Level.WARN
    err = diag.driver_connection_status("libfranka", True, 2.0, "no robot state: reflex")
    assert err.level == Level.ERROR and "reflex" in err.message
    assert diag.driver_connection_status("libfranka", False, math.inf, "").level == Level.ERROR
    dropped, refused = RecentEvents(window_s=5.0), RecentEvents(window_s=5.0)
    assert diag.driver_commands_status(10, dropped, refused, 0.0).level == Level.OK
    dropped.add(1.0)
    status = diag.driver_commands_status(10, dropped, refused, 2.0)
    assert status.level == Level.WARN and status.values["dropped_stale"] == "1"
    later = diag.driver_commands_status(10, dropped, refused, 7.0)        # the drop left the window
    assert later.level == Level.OK and later.values["dropped_stale"] == "1"
    refused.add(7.5)
    assert diag.driver_commands_status(10, dropped, refused, 8.0).level == Level.WARN


def test_recorder_chunk_lag_levels():
    assert diag.recorder_status(None, 0, 50.0, 1.0, 3).level == Level.OK
    assert diag.recorder_status("episode_0001", 2_000_000, 0.9, 1.0, 0).level == Level.OK
    assert diag.recorder_status("episode_0001", 2_000_000, 3.0, 1.0, 0).level == Level.WARN
    status = diag.recorder_status("episode_0001", 2_000_000, 6.0, 1.0, 0)
    assert status.level == Level.ERROR and status.values["bytes"] == "2000000"


def test_level_values_match_diagnostic_msgs():
    assert [int(v) for v in (Level.OK, Level.WARN, Level.ERROR, Level.STALE)] == [0, 1, 2, 3]
    assert diag.worst([Level.OK, Level.ERROR, Level.WARN]) == Level.ERROR and diag.worst([]) == Level.OK


# ---------------------------------------------------------------- live parameters
def test_live_flags_are_in_the_param_metadata():
    arbiter = {n for n, info in param_table(ArbiterConfig).items() if info.spec and info.spec.live}
    assert arbiter == {"policy_timeout_s", "teleop_timeout_s", "robot_state_timeout_s", "pose_timeout_s",
                       "valid_pose_timeout_s"}
    policy = {n for n, info in param_table(PolicyNodeConfig).items() if info.spec and info.spec.live}
    assert policy == {"observation.noise.mode"}
    estimator = {n for n, info in param_table(CubePoseNodeConfig).items() if info.spec and info.spec.live}
    assert estimator == {"estimator.min_fitness", "estimator.max_rmse_m"}


def test_with_values_changes_only_the_named_fields_and_keeps_the_rest():
    start = CubePoseNodeConfig().with_extrinsics()
    moved = start.estimator.with_camera_pose(start.estimator.camera_pose)
    config = CubePoseNodeConfig(estimator=moved)
    new = with_values(config, {"estimator.min_fitness": 0.9})
    assert new.estimator.min_fitness == 0.9 and new.estimator.camera_position == moved.camera_position
    assert config.estimator.min_fitness == 0.7        # frozen: the running config is untouched
    policy = with_values(PolicyNodeConfig(), {"observation.noise.mode": "episode_offset"})
    assert policy.observation.noise.mode == "episode_offset" and policy.observation.noise.seed == 0


@pytest.mark.parametrize("changes,message", [
    ({"pose_timeout_s": 1.5}, r"'pose_timeout_s' = 1.5 is outside its range \(0, 1\)"),
    ({"pose_timeout_s": 0.0}, r"'pose_timeout_s' = 0.0 is outside its range \(0, 1\)"),
    ({"pose_timeout_s": 1}, r"'pose_timeout_s' = 1 is an integer where a float is expected"),
    ({"pose_timeout_s": "fast"}, r"'pose_timeout_s' = 'fast' is not a valid float"),
    ({"pose_timeot_s": 0.1}, r"unknown parameter 'pose_timeot_s'"),
])
def test_with_values_refuses_with_the_reason(changes, message):
    with pytest.raises(ConfigError, match=message):
        with_values(ArbiterConfig(), changes, source="node '/intervention_arbiter'")


def test_with_values_checks_choices_and_runs_the_dataclass_validation():
    with pytest.raises(ConfigError, match=r"'observation.noise.mode' = 'sometimes' is not one of off, episode_offset"):
        with_values(PolicyNodeConfig(), {"observation.noise.mode": "sometimes"})
    with pytest.raises(ConfigError, match=r"noise: need 0 <= minimum_m < half_range_m"):   # a cross-field check
        with_values(PolicyNodeConfig(), {"observation.noise.minimum_m": [0.0, 0.08, 0.0]})
