"""Typed configs <-> ROS parameter dictionaries and config/*.yaml files."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from imgen_ros.core.arbiter import ArbiterConfig
from imgen_ros.core.params import build_config, flat_defaults, load_config
from imgen_ros.core.safety import SafetyConfig


@dataclass(frozen=True)
class Inner:
    gain: float = 1.0
    axes: tuple[float, float] = (0.0, 1.0)


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    count: int = 3
    on: bool = False
    inner: Inner = field(default_factory=Inner)
    keymap: dict = field(default_factory=dict)


def test_flat_defaults_use_dotted_names_and_skip_unrepresentable_fields():
    assert flat_defaults(Outer) == {"name": "x", "count": 3, "on": False, "inner.gain": 1.0, "inner.axes": [0.0, 1.0]}


def test_build_config_coerces_and_nests():
    cfg = build_config(Outer, {"count": 5, "inner.gain": 2, "inner.axes": [1, 2]})
    assert cfg == Outer(count=5, inner=Inner(gain=2.0, axes=(1.0, 2.0)))


@pytest.mark.parametrize("values,match", [
    ({"count": 1.5}, "count"), ({"on": 1}, "on"), ({"inner.axes": [1.0]}, "inner.axes"),
    ({"nonsense": 1}, "unknown parameter"), ({"name": 3}, "name")])
def test_build_config_rejects_bad_values_by_name(values, match):
    with pytest.raises(ValueError, match=match):
        build_config(Outer, values, source="test.yaml")


def test_validation_errors_of_the_dataclass_name_the_source():
    with pytest.raises(ValueError, match=r"arbiter\.yaml.*workspace_min"):
        build_config(ArbiterConfig, {"safety.workspace_min": [1.0, 0.0, 0.0], "safety.workspace_max": [0.5, 1, 1]},
                     source="arbiter.yaml")


def test_load_config_reads_the_node_section_of_a_ros_parameter_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("intervention_arbiter:\n  ros__parameters:\n    latch_faults: false\n"
                    "    safety:\n      max_translation_m: 0.02\n")
    cfg = load_config(ArbiterConfig, path, "intervention_arbiter")
    assert cfg.latch_faults is False and cfg.safety == SafetyConfig(max_translation_m=0.02)
    path.write_text("intervention_arbiter:\n  parameters: {}\n")
    with pytest.raises(ValueError, match="ros__parameters"):
        load_config(ArbiterConfig, path, "intervention_arbiter")
