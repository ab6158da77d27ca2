"""Every imgen node parameter file in config/ applies to its node under any namespace, holds only
parameters the node declares and builds its typed config with the node's own checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from imgen_ros.core.arbiter import ArbiterConfig
from imgen_ros.core.params import (
    BUILTIN_PARAMETERS,
    check_sections,
    extra_table,
    load_config,
    param_table,
    read_ros_params,
    read_sections,
)

CONFIG = Path(__file__).resolve().parents[2] / "config"
# Not parameter files of an imgen node: ros2_control's controller manager, a hand-eye calibration.
OTHER_FILES = {"franka_controllers.yaml", "camera_extrinsics_sim.yaml"}
NAMESPACES = ("/", "/fr3", "/lab/fr3")


def _cases():
    """(file, node name, config class, the node's other parameters, other nodes of its process)."""
    from imgen_ros.core.viz import VizConfig
    from imgen_ros.nodes.contact_detector import ContactDetectorNodeConfig
    from imgen_ros.nodes.generation_server import GenerationServerConfig
    from imgen_ros.nodes.intervention_arbiter import ArbiterNodeConfig
    from imgen_ros.nodes.policy_node import PolicyNodeConfig
    from imgen_ros.nodes.recorder import RecorderConfig
    from imgen_ros.nodes.sim_human_teleop import SimHumanTeleopConfig
    from imgen_ros.nodes.sim_node import FAULTS, HOSTED_NODES, SimNodeConfig
    from imgen_ros.perception.stream import CubePoseNodeConfig
    from imgen_ros.robot.config import RobotDriverNodeConfig
    from imgen_ros.teleop.keyboard import KeyboardConfig
    from imgen_ros.teleop.spacemouse import SpaceMouseConfig

    assert HOSTED_NODES == {"sim_human_teleop": tuple(param_table(SimHumanTeleopConfig)),
                            "generation_server": tuple(param_table(GenerationServerConfig))}
    rates = ("command_rate_hz", "heartbeat_rate_hz")     # nodes._teleop.TeleopNode
    return [
        ("arbiter.yaml", "intervention_arbiter", ArbiterNodeConfig, (), {}),
        ("arbiter_sim.yaml", "intervention_arbiter", ArbiterNodeConfig, (), {}),
        ("policy.yaml", "policy_node", PolicyNodeConfig, (), {}),
        ("sim.yaml", "sim_node", SimNodeConfig, tuple(f"fault.{f}" for f in FAULTS), HOSTED_NODES),
        ("recorder.yaml", "recorder", RecorderConfig, (), {}),
        ("cube_pose_estimator.yaml", "cube_pose_estimator", CubePoseNodeConfig, (), {}),
        ("robot_driver.yaml", "robot_driver", RobotDriverNodeConfig, (), {}),
        ("keyboard_teleop.yaml", "keyboard_teleop", KeyboardConfig, rates, {}),
        ("spacemouse_teleop.yaml", "spacemouse_teleop", SpaceMouseConfig, ("device_path", *rates), {}),
        ("joy_teleop.yaml", "joy_teleop", SpaceMouseConfig, ("joy_topic", "joy_continuous", *rates), {}),
        ("contact_detector.yaml", "contact_detector", ContactDetectorNodeConfig, (), {}),
        ("viz_mirror.yaml", "viz_mirror", VizConfig, (), {}),
    ]


def test_every_node_file_of_config_is_checked():
    files = {p.name for p in CONFIG.glob("*.yaml")}
    assert files - OTHER_FILES == {case[0] for case in _cases()}


@pytest.mark.parametrize("case", range(12))
def test_config_file_applies_in_any_namespace_and_builds(case):
    name, node, cls, extra, hosted = _cases()[case]
    path = CONFIG / name
    values = [read_ros_params(path, f"{ns.rstrip('/')}/{node}") for ns in NAMESPACES]
    assert values[0], f"{name} has no parameters for {node}"
    assert all(v == values[0] for v in values), f"{name} reads differently under a namespace"
    for ns in NAMESPACES:
        load_config(cls, path, f"{ns.rstrip('/')}/{node}", extra=extra)
        process = {f"{ns.rstrip('/')}/{node}": set(param_table(cls)) | set(extra_table(extra)) | BUILTIN_PARAMETERS}
        process.update({f"{ns.rstrip('/')}/{n}": set(p) | BUILTIN_PARAMETERS for n, p in hosted.items()})
        assert check_sections(read_sections(path), process) == []


def test_a_file_of_one_node_is_refused_by_another_node():
    process = {"/fr3/policy_node": set(read_ros_params(CONFIG / "policy.yaml", "policy_node"))}
    problems = check_sections(read_sections(CONFIG / "arbiter.yaml"), process)
    assert len(problems) == 1 and "section '/**/intervention_arbiter' matches no node of this process" in problems[0]


def test_real_arbiter_limits_are_tighter_than_the_simulator():
    real = load_config(ArbiterConfig, CONFIG / "arbiter.yaml", "/fr3/intervention_arbiter",
                       ("watchdog_rate_hz", "state_rate_hz"))
    sim = load_config(ArbiterConfig, CONFIG / "arbiter_sim.yaml", "intervention_arbiter",
                      ("watchdog_rate_hz", "state_rate_hz"))
    assert real.latch_faults and real.require_teleop_heartbeat
    # never tighter than what trained policies command (bench_command_limits: max 38 mm, 0.26 rad)
    assert 0.038 < real.safety.max_translation_m <= sim.safety.max_translation_m
    assert 0.26 < real.safety.max_rotation_rad < sim.safety.max_rotation_rad
    assert max(real.policy_timeout_s, real.robot_state_timeout_s, real.pose_timeout_s, real.teleop_timeout_s) < 0.1
    assert real.safety.workspace_min[2] > 0.0 and sim.safety.workspace_min[2] >= -0.02
