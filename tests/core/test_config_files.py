"""Every node section of config/*.yaml owned by the ROS graph builds its typed config."""

from __future__ import annotations

from pathlib import Path

import pytest
from imgen_ros.core.arbiter import ArbiterConfig
from imgen_ros.core.params import load_config, read_ros_params

CONFIG = Path(__file__).resolve().parents[2] / "config"


def _cases():
    from imgen_ros.nodes.policy_node import PolicyNodeConfig
    from imgen_ros.nodes.recorder import RecorderConfig
    from imgen_ros.nodes.sim_node import SimNodeConfig
    from imgen_ros.teleop.keyboard import KeyboardConfig
    from imgen_ros.teleop.spacemouse import SpaceMouseConfig

    rates = ("watchdog_rate_hz", "state_rate_hz")
    faults = tuple(f"fault.{f}" for f in ("nan_pose", "freeze_pose", "freeze_camera", "freeze_robot_state"))
    return [
        ("arbiter.yaml", "intervention_arbiter", ArbiterConfig, rates),
        ("arbiter_sim.yaml", "intervention_arbiter", ArbiterConfig, rates),
        ("policy.yaml", "policy_node", PolicyNodeConfig, ()),
        ("sim.yaml", "sim_node", SimNodeConfig, faults),
        ("recorder.yaml", "recorder", RecorderConfig, ()),
        ("teleop.yaml", "keyboard_teleop", KeyboardConfig, ()),
        ("teleop.yaml", "spacemouse_teleop", SpaceMouseConfig, ("device_path",)),
        ("teleop.yaml", "joy_teleop", SpaceMouseConfig, ("joy_topic", "joy_continuous")),
    ]


@pytest.mark.parametrize("case", range(8))
def test_config_file_section_builds(case):
    name, node, cls, extra = _cases()[case]
    assert read_ros_params(CONFIG / name, node), f"{name} has no parameters for {node}"
    load_config(cls, CONFIG / name, node, extra=extra)


def test_real_arbiter_limits_are_tighter_than_the_simulator():
    real = load_config(ArbiterConfig, CONFIG / "arbiter.yaml", "intervention_arbiter",
                       ("watchdog_rate_hz", "state_rate_hz"))
    assert real.latch_faults and real.require_teleop_heartbeat
    assert real.safety.max_translation_m <= 0.03 and real.safety.max_rotation_rad <= 0.3
    assert max(real.policy_timeout_s, real.robot_state_timeout_s, real.pose_timeout_s, real.teleop_timeout_s) < 0.1
