"""The one safety filter: each limit, proven on commands that violate it."""

from __future__ import annotations

import numpy as np
import pytest
from imgen_ros.core.command import DeltaCommand, Source
from imgen_ros.core.safety import SafetyConfig, SafetyFilter

CFG = SafetyConfig(workspace_min=(0.2, -0.5, 0.0), workspace_max=(0.8, 0.5, 0.6),
                   max_translation_m=0.03, max_rotation_rad=0.2, max_input_age_s=0.1)
TCP = np.array([0.5, 0.0, 0.3])
NOW = 100.0


def cmd(t=(0, 0, 0), r=(0, 0, 0), g=-1.0, stamp=NOW, source=Source.POLICY) -> DeltaCommand:
    return DeltaCommand(np.array(t, float), np.array(r, float), g, source, stamp, 7)


def run(c: DeltaCommand, tcp=TCP, tcp_stamp=NOW):
    return SafetyFilter(CFG).filter(c, tcp, NOW, tcp_stamp)


def test_command_within_limits_passes_unchanged():
    c = cmd((0.01, -0.01, 0.02), (0.0, 0.1, 0.05), 0.3)
    res = run(c)
    assert res.violations == () and not res.hold
    assert res.command is c


def test_translation_step_is_scaled_down_along_its_direction():
    res = run(cmd((0.06, 0.08, 0.0)))
    assert res.violations == ("translation_step",)
    assert np.linalg.norm(res.command.translation) == pytest.approx(0.03)
    np.testing.assert_allclose(res.command.translation / 0.03, [0.6, 0.8, 0.0])


def test_rotation_step_is_scaled_down_about_the_same_axis():
    res = run(cmd(r=(0.0, 0.0, -1.0)))
    assert res.violations == ("rotation_step",)
    np.testing.assert_allclose(res.command.rotation, [0.0, 0.0, -0.2])


def test_workspace_box_clips_the_target():
    tcp = np.array([0.79, 0.0, 0.01])
    res = run(cmd((0.02, 0.0, -0.02)), tcp=tcp)
    assert "workspace" in res.violations
    target = tcp + res.command.translation
    np.testing.assert_allclose(target, [0.8, 0.0, 0.0])


def test_tcp_outside_box_is_led_back_within_step_limit():
    tcp = np.array([0.9, 0.0, 0.3])   # 10 cm beyond x max
    res = run(cmd((0.03, 0.0, 0.0)), tcp=tcp)
    assert res.violations == ("workspace", "translation_step")
    np.testing.assert_allclose(res.command.translation, [-0.03, 0.0, 0.0])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["translation", "rotation", "gripper"])
def test_nonfinite_command_is_rejected_with_hold(bad, where):
    c = cmd((0.01, 0, 0), (0, 0.1, 0), 0.5)
    fields = {"translation": c.translation.copy(), "rotation": c.rotation.copy(), "gripper": c.gripper}
    if where == "gripper":
        fields["gripper"] = bad
    else:
        fields[where][1] = bad
    res = run(DeltaCommand(fields["translation"], fields["rotation"], fields["gripper"], Source.HUMAN, NOW))
    assert res.hold and "nonfinite_command" in res.violations
    assert res.command.source == Source.SAFETY
    assert not np.any(res.command.translation) and not np.any(res.command.rotation)


def test_nonfinite_tcp_is_rejected():
    res = run(cmd((0.01, 0, 0)), tcp=np.array([0.5, np.nan, 0.3]))
    assert res.hold and res.violations == ("nonfinite_tcp",)


def test_stale_command_and_stale_robot_state_hold():
    res = run(cmd((0.01, 0, 0), stamp=NOW - 0.15))
    assert res.hold and res.violations == ("stale_command",)
    res = run(cmd((0.01, 0, 0)), tcp_stamp=NOW - 0.15)
    assert res.hold and res.violations == ("stale_robot_state",)
    res = run(cmd((0.01, 0, 0)), tcp=None, tcp_stamp=None)
    assert res.hold and res.violations == ("stale_robot_state",)
    fresh = run(cmd((0.01, 0, 0), stamp=NOW - 0.09), tcp_stamp=NOW - 0.09)
    assert not fresh.hold


def test_a_command_stamped_in_the_future_holds():
    """Its age cannot be known, and the arbiter re-stamps what it forwards: the driver would not catch it."""
    res = run(cmd((0.01, 0, 0), stamp=NOW + 0.15))
    assert res.hold and res.violations == ("future_command",)
    assert not run(cmd((0.01, 0, 0), stamp=NOW + 0.09)).hold   # within the age limit: clock jitter
    res = run(cmd((0.01, 0, 0), stamp=float("nan")))
    assert res.hold and res.violations == ("stale_command",)


def test_hold_keeps_the_last_gripper_command():
    f = SafetyFilter(CFG)
    f.filter(cmd(g=0.9), TCP, NOW, NOW)
    res = f.filter(cmd((np.nan, 0, 0), g=-1.0), TCP, NOW, NOW)
    assert res.hold and res.command.gripper == pytest.approx(0.9)


def test_gripper_out_of_range_is_clipped():
    res = run(cmd(g=3.0))
    assert res.violations == ("gripper_range",) and res.command.gripper == 1.0


def test_random_commands_never_leave_the_limits():
    rng = np.random.default_rng(0)
    f = SafetyFilter(CFG)
    for _ in range(2000):
        tcp = rng.uniform([0.2, -0.5, 0.0], [0.8, 0.5, 0.6])
        c = cmd(rng.normal(0, 0.2, 3), rng.normal(0, 1.0, 3), rng.normal(0, 2.0))
        res = f.filter(c, tcp, NOW, NOW)
        assert f.within_limits(res.command, tcp)
        target = tcp + res.command.translation
        assert np.all(target >= np.array(CFG.workspace_min) - 1e-12)
        assert np.all(target <= np.array(CFG.workspace_max) + 1e-12)


def test_within_limits_detects_violations():
    f = SafetyFilter(CFG)
    assert not f.within_limits(cmd((0.05, 0, 0)), TCP)
    assert not f.within_limits(cmd(r=(0.3, 0, 0)), TCP)
    assert not f.within_limits(cmd((0.0, 0, -0.02)), np.array([0.5, 0.0, 0.01]))
    assert not f.within_limits(cmd((np.nan, 0, 0)), TCP)
    assert f.within_limits(cmd((0.02, 0, 0)), TCP)


@pytest.mark.parametrize("kwargs", [
    {"workspace_min": (0.8, 0, 0), "workspace_max": (0.2, 1, 1)},
    {"workspace_min": (0, 0), "workspace_max": (1, 1, 1)},
    {"max_translation_m": 0.0},
    {"max_rotation_rad": float("nan")},
    {"max_input_age_s": -1.0},
])
def test_bad_config_is_rejected_with_a_clear_error(kwargs):
    with pytest.raises(ValueError, match=r"workspace|max_"):
        SafetyConfig(**kwargs)
