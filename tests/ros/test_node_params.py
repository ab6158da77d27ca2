"""Strict node configuration on the real rclpy path: a namespaced arbiter applies its parameter file
(read back over the parameter services), and a bad file or override stops the node at construction
with one log line naming the file, the key and the allowed values."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from imgen_ros.core.params import ConfigError, read_ros_params
from rcl_interfaces.srv import DescribeParameters, GetParameters
from rclpy.node import Node
from rclpy.parameter import Parameter, parameter_value_to_python

sys.path.insert(0, str(Path(__file__).parent))
from graph import CONFIG, node_cmd
from probe import call_idempotent

ARBITER_YAML = (CONFIG / "arbiter.yaml").read_text()
FQN = "/fr3/intervention_arbiter"


@pytest.mark.flaky(reruns=2, reruns_delay=3)   # a node process over DDS, as for the other graph tests
def test_namespaced_arbiter_applies_the_safety_limits_of_its_file(ros_context, ros_spin, node_process, wait_until):
    arbiter = node_process([*node_cmd("intervention_arbiter", "arbiter.yaml"), "-r", "__ns:=/fr3"], name="arbiter")
    reader = Node("param_reader", context=ros_context)
    ros_spin(reader)
    expected = read_ros_params(CONFIG / "arbiter.yaml", FQN)
    names = [*sorted(n for n in expected if n.startswith("safety.")), "latch_faults", "pose_timeout_s"]
    assert expected["safety.max_rotation_rad"] == 0.4    # not the code default (0.5): the file applies
    response = call_idempotent(reader, GetParameters, f"{FQN}/get_parameters", GetParameters.Request(names=names))
    got = {n: parameter_value_to_python(v) for n, v in zip(names, response.values, strict=True)}
    got = {n: list(v) if not isinstance(v, bool | int | float | str) else v for n, v in got.items()}
    assert got == {n: expected[n] for n in names}
    described = call_idempotent(reader, DescribeParameters, f"{FQN}/describe_parameters",
                     DescribeParameters.Request(names=["safety.max_translation_m", "watchdog_rate_hz"]))
    step, rate = described.descriptors
    assert step.description and (step.floating_point_range[0].from_value, step.floating_point_range[0].to_value) \
        == (0.0, 0.05)
    assert rate.floating_point_range[0].to_value == 1000.0
    assert arbiter.alive(), arbiter.errors()


SAFETY_BLOCK = ARBITER_YAML[ARBITER_YAML.index("    safety:"):]
BAD_FILES = {
    "misspelled_key": (ARBITER_YAML.replace("max_rotation_rad:", "max_rotaton_rad:"),
                       r"{file}: unknown parameter 'safety.max_rotaton_rad' in section '/\*\*/intervention_arbiter' "
                       r".*did you mean 'safety.max_rotation_rad'\?"),
    "wrong_section": (ARBITER_YAML.replace("/**/intervention_arbiter:", "/**/intervention_arbitr:"),
                      r"{file}: section '/\*\*/intervention_arbitr' matches no node of this process "
                      r"\(/fr3/intervention_arbiter\); did you mean '/\*\*/intervention_arbiter'\?"),
    "out_of_range": (re.sub(r"max_translation_m: 0\.05", "max_translation_m: 3.0", ARBITER_YAML),
                     r"{file}: parameter 'safety.max_translation_m' = 3.0 is outside its range \(0, 0.05\]"),
    "no_safety_block": (ARBITER_YAML.replace(SAFETY_BLOCK, ""),
                        r"node '/fr3/intervention_arbiter': the 'safety' parameters must be given explicitly"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_arbiter_refuses_a_bad_parameter_file(case, tmp_path, node_process, wait_until):
    text, pattern = BAD_FILES[case]
    assert text != ARBITER_YAML
    bad = tmp_path / f"{case}.yaml"
    bad.write_text(text)
    proc = node_process([*node_cmd("intervention_arbiter", str(bad)), "-r", "__ns:=/fr3"], name=case)
    wait_until(lambda: not proc.alive(), 30, "the arbiter to refuse")
    log = proc.output() + proc.errors()
    assert proc.popen.returncode == 2, log
    line = next((ln for ln in log.splitlines() if "[FATAL]" in ln), "")
    assert re.search(r"\[fr3\.intervention_arbiter\]: refusing to start: " + pattern.format(file=re.escape(str(bad))),
                     line), log
    assert "Traceback" not in log


def test_in_process_overrides_count_as_given_and_unknown_ones_are_refused(ros_context):
    from imgen_ros.nodes.intervention_arbiter import InterventionArbiter

    sim = read_ros_params(CONFIG / "arbiter_sim.yaml", "intervention_arbiter")
    overrides = [Parameter(n, value=v) for n, v in sim.items() if n.startswith("safety.")]
    node = InterventionArbiter(context=ros_context, parameter_overrides=overrides)
    assert node.config.safety.workspace_min[2] == -0.02
    node.destroy_node()
    with pytest.raises(ConfigError, match=r"unknown parameter 'safety.max_jerk' in its parameter_overrides"):
        InterventionArbiter(context=ros_context,
                            parameter_overrides=[*overrides, Parameter("safety.max_jerk", value=1.0)])
    with pytest.raises(ConfigError, match=r"the 'safety' parameters must be given explicitly .*safety.workspace_max"):
        InterventionArbiter(context=ros_context, parameter_overrides=overrides[:1])


@pytest.mark.parametrize(("module", "params", "exit_code", "reason"), [
    ("cube_pose_estimator", {"extrinsics_file": "/nonexistent/hand_eye.yaml"}, 1,
     "cannot read camera calibration /nonexistent/hand_eye.yaml: No such file or directory"),
    ("spacemouse_teleop", {"device_path": "/nonexistent/event-mouse"}, 1,
     "cannot open SpaceMouse event device '/nonexistent/event-mouse'"),
    ("recorder", {"record_dir": "/proc/imgen-recordings"}, 1, "No such file or directory: '/proc/imgen-recordings'"),
    ("joy_teleop", {"command_rate_hz": "abc"}, 2, "parameter 'command_rate_hz' = 'abc' is STRING, expected DOUBLE"),
    ("policy_node", {"checkpoint": "expert", "observation.object_ids": ["nut"]}, 2,
     "observation.object_ids ['nut'] are not the objects of task 'block_grasp': ['cube'] (in that order)"),
])
def test_a_bad_file_device_or_value_is_one_fatal_line(module, params, exit_code, reason, node_process, wait_until):
    """What a user gives a node (a calibration file, a device, a directory, a typed value) that cannot
    be used: one FATAL line naming it and a non-zero exit, no traceback."""
    proc = node_process(node_cmd(module, None, **params), name=module)
    wait_until(lambda: not proc.alive(), 30, f"{module} to refuse")
    log = proc.output() + proc.errors()
    assert proc.popen.returncode == exit_code, log
    fatal = [ln for ln in log.splitlines() if "[FATAL]" in ln]
    assert len(fatal) == 1 and f"[{module}]: refusing to start: " in fatal[0] and reason in fatal[0], log
    assert "Traceback" not in log
