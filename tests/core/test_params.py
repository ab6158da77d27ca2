"""Typed configs <-> ROS parameters and parameter files read the way rcl + rclpy read them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from imgen_ros.core.arbiter import ArbiterConfig
from imgen_ros.core.params import (
    ConfigError,
    Interval,
    build_config,
    check_fields,
    check_sections,
    flat_defaults,
    load_config,
    node_key_matches,
    overrides_for,
    param,
    param_rule,
    param_table,
    rcl_scalar,
    read_ros_params,
    read_sections,
    ros_param_sources,
)
from imgen_ros.core.safety import SafetyConfig


@dataclass(frozen=True)
class Inner:
    gain: float = param(1.0, "a gain", "(0, 2]")
    axes: tuple[float, float] = param((0.0, 1.0), "two axes", ("[0, 1]", "[0, 10]"))


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    count: int = param(3, "a count", "[0, 10]")
    on: bool = False
    mode: str = param("a", "a mode", choices=("a", "b"))
    inner: Inner = field(default_factory=Inner)
    keymap: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_fields(self)


FULL_SAFETY = {"safety.workspace_min": [0.2, -0.5, 0.0], "safety.workspace_max": [0.8, 0.5, 0.6],
               "safety.max_translation_m": 0.02, "safety.max_rotation_rad": 0.3, "safety.max_input_age_s": 0.1}


# ---------------------------------------------------------------- configs
def test_flat_defaults_use_dotted_names_and_skip_unrepresentable_fields():
    assert flat_defaults(Outer) == {"name": "x", "count": 3, "on": False, "mode": "a", "inner.gain": 1.0,
                                    "inner.axes": [0.0, 1.0]}
    assert param_table(Outer)["inner.gain"].spec.constraint() == "range (0, 2]"


def test_build_config_coerces_and_nests():
    cfg = build_config(Outer, {"count": 5, "inner.gain": 2, "inner.axes": [1, 2]})
    assert cfg == Outer(count=5, inner=Inner(gain=2.0, axes=(1.0, 2.0)))


@pytest.mark.parametrize("values,match", [
    ({"count": 1.5}, "count"), ({"on": 1}, "on"), ({"inner.axes": [1.0]}, "inner.axes"),
    ({"nonsense": 1}, "unknown parameter"), ({"name": 3}, "name"),
    ({"count": 11}, r"test.yaml: parameter 'count' = 11 is outside its range \[0, 10\] \(a count\)"),
    ({"inner.gain": 0.0}, r"'inner.gain' = 0.0 is outside its range \(0, 2\]"),
    ({"inner.axes": [0.5, 11.0]}, r"'inner.axes' .* outside its ranges \[0, 1\] x \[0, 10\]"),
    ({"mode": "c"}, "'mode' = 'c' is not one of a, b"),
    ({"inner.gain": math.nan}, "inner.gain")])
def test_build_config_rejects_bad_values_by_name(values, match):
    with pytest.raises(ConfigError, match=match):
        build_config(Outer, values, source="test.yaml")


def test_exact_types_refuse_an_integer_where_ros_expects_a_float():
    with pytest.raises(ConfigError, match=r"'inner.gain' = 2 is an integer .* write 2.0"):
        build_config(Outer, {"inner.gain": 2}, exact_types=True)


def test_errors_name_the_origin_of_the_key_and_suggest_the_close_name():
    with pytest.raises(ConfigError, match=r"^a.yaml: parameter 'count' = 12"):
        build_config(Outer, {"count": 12, "on": True}, source="node", origins={"count": "a.yaml", "on": "b.yaml"})
    unknown = r"b.yaml: unknown parameter\(s\) \['inner.gian'\].*did you mean 'inner.gain'"
    with pytest.raises(ConfigError, match=unknown):
        build_config(Outer, {"inner.gian": 1.0}, origins={"inner.gian": "b.yaml"})


def test_direct_construction_refuses_what_build_config_refuses():
    with pytest.raises(ValueError, match="count = -1 is outside its range"):
        Outer(count=-1)


def test_interval_syntax():
    half_open = Interval.parse("(0, 0.05]")
    assert 0.05 in half_open and 0.0 not in half_open and 0.051 not in half_open and math.nan not in half_open
    assert str(Interval.parse("[0, inf)")) == "[0, inf)" and 1e9 in Interval.parse("[0, inf)")
    for bad in ("0, 1", "[1, 0]", "(a, 1]"):
        with pytest.raises(ValueError):
            Interval.parse(bad)


# ---------------------------------------------------------------- safety plausibility
@pytest.mark.parametrize("kwargs,match", [
    ({"max_translation_m": 3.0}, r"max_translation_m = 3.0 is outside its range \(0, 0.05\]"),
    ({"max_translation_m": 0.051}, "max_translation_m"),
    ({"max_rotation_rad": 0.6}, r"max_rotation_rad = 0.6 is outside its range \(0, 0.5\]"),
    ({"max_input_age_s": 1.0}, r"max_input_age_s = 1.0 is outside its range \(0, 1\)"),
    ({"workspace_min": (0.2, -0.5, -0.05)}, r"workspace_min .* outside .* \[-0.02, 1.188\]"),
    ({"workspace_max": (2.0, 0.5, 0.6)}, "workspace_max"),
    ({"workspace_min": (0.8, -0.5, 0.0), "workspace_max": (0.8, 0.5, 0.6)}, "min must be < workspace_max"),
    ({"workspace_min": (0.8, 0.8, 0.0), "workspace_max": (0.85, 0.85, 0.1)}, "out of the FR3's reach")])
def test_implausible_safety_limits_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SafetyConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [{"policy_timeout_s": 1000.0}, {"teleop_timeout_s": -0.1},
                                    {"pose_timeout_s": 0.0}, {"robot_state_timeout_s": 1.0},
                                    {"valid_pose_timeout_s": 5.0}])
def test_implausible_arbiter_timeouts_are_refused(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ArbiterConfig(**kwargs)


def test_the_arbiter_safety_block_must_be_given_in_full():
    cfg = build_config(ArbiterConfig, {**FULL_SAFETY, "latch_faults": False}, source="a.yaml")
    assert cfg.safety.max_translation_m == 0.02 and not cfg.latch_faults
    partial = {k: v for k, v in FULL_SAFETY.items() if k != "safety.workspace_min"}
    missing = r"a.yaml: the 'safety' parameters must be given .*\['safety.workspace_min'\]"
    with pytest.raises(ConfigError, match=missing):
        build_config(ArbiterConfig, partial, source="a.yaml")
    with pytest.raises(ConfigError, match="'safety' parameters must be given"):
        build_config(ArbiterConfig, {}, source="a.yaml")


def test_validation_errors_of_the_dataclass_name_the_source():
    values = {**FULL_SAFETY, "safety.workspace_min": [0.7, 0.0, 0.0], "safety.workspace_max": [0.5, 0.5, 0.5]}
    with pytest.raises(ConfigError, match=r"arbiter\.yaml: workspace_min must be < workspace_max"):
        build_config(ArbiterConfig, values, source="arbiter.yaml")


# ---------------------------------------------------------------- parameter files like rcl
def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_plain_scalars_are_typed_like_rcl():
    # expected types as rclpy reported them for the same file (INTEGER, DOUBLE, BOOL, STRING)
    cases = {"1": 1, "1.0": 1.0, "1e3": 1000.0, "on": True, "y": True, "Off": False, "010": 8, "0x1F": 31,
             "-.inf": -math.inf, "inf": math.inf, "abc": "abc", "1.2.3": "1.2.3", "-5": -5}
    for text, expected in cases.items():
        got = rcl_scalar(text)
        assert got == expected and type(got) is type(expected), text
    assert math.isnan(rcl_scalar(".nan"))


def test_read_sections_keeps_quoted_strings_and_text_keys(tmp_path):
    path = write(tmp_path, "p.yaml", "a:\n  ros__parameters:\n    e: 'on'\n    on: 1\n    f: [1.0, 2.0]\n"
                                     "    g: !!str 5\nfr3:\n  b:\n    ros__parameters: {x: 1}\n")
    sections = read_sections(path)
    assert [(s.node, s.params) for s in sections] == [("a", {"e": "on", "on": 1, "f": [1.0, 2.0], "g": "5"}),
                                                      ("fr3/b", {"x": 1})]


@pytest.mark.parametrize("text,match", [
    ("a:\n  ros__parameters:\n    f: [1, 2.0]\n", "one scalar type"),
    ("a-b:\n  ros__parameters: {x: 1}\n", "not a valid name token"),
    ("a:\n  x: 1\n", "needs a 'ros__parameters' mapping"),
    ("a:\n  ros__parameters:\n    x:\n", "no value")])
def test_files_rcl_refuses_are_refused(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        read_sections(write(tmp_path, "bad.yaml", text))


@pytest.mark.parametrize("key,fqn,matches", [
    ("intervention_arbiter", "/intervention_arbiter", True),
    ("/intervention_arbiter", "/intervention_arbiter", True),
    ("intervention_arbiter", "/fr3/intervention_arbiter", False),     # the namespaced-launch bug
    ("/**/intervention_arbiter", "/fr3/intervention_arbiter", True),
    ("/**/intervention_arbiter", "/intervention_arbiter", True),
    ("/**/intervention_arbiter", "/a/b/intervention_arbiter", True),
    ("/**/intervention_arbitr", "/fr3/intervention_arbiter", False),
    ("/**", "/fr3/anything", True),
    ("/*", "/policy_node", True),
    ("/*", "/fr3/policy_node", False),
    ("/fr3/*", "/fr3/policy_node", True),
    ("/*/policy_node", "/fr3/policy_node", True),
    ("/fr3/intervention_arbiter", "/fr3/intervention_arbiter", True),
    ("fr3/intervention_arbiter", "/fr4/intervention_arbiter", False)])
def test_node_keys_match_like_rclpy(key, fqn, matches):
    assert node_key_matches(key, fqn) is matches


def test_read_ros_params_applies_wildcard_sections_under_a_namespace(tmp_path):
    path = write(tmp_path, "p.yaml", "/**:\n  ros__parameters: {w: 0, u: 0}\n"
                                     "/**/n1:\n  ros__parameters: {w: 1}\n"
                                     "n1:\n  ros__parameters: {o: 1}\n")
    assert read_ros_params(path, "n1") == {"w": 1, "u": 0, "o": 1}
    assert read_ros_params(path, "/fr3/n1") == {"w": 1, "u": 0}
    assert read_ros_params(path, "/fr3/other") == {"w": 0, "u": 0}


def test_sources_from_argv_merge_in_rcl_order(tmp_path):
    # rcl groups entries by key in first-appearance order: the -p rule updates the earlier '/**'
    # group, so the later '/**/n1' section still wins (rclpy gives w = 1 for this command line)
    path = write(tmp_path, "p.yaml", "/**:\n  ros__parameters: {w: 0}\n/**/n1:\n  ros__parameters: {w: 1}\n")
    argv = ["prog", "--ros-args", "-r", "__ns:=/fr3", "--params-file", path, "-p", "w:=5", "-p", "n1:v:=[1.5, 2.0]",
            "--", "--not-ros", "-p", "ignored:=1"]
    sources = ros_param_sources(argv)
    assert [s.node for s in sources] == ["/**", "/**/n1", "/**", "n1"]
    merged = overrides_for(sources, "/fr3/n1")
    assert merged["w"] == (1, path)
    assert "v" not in merged    # 'n1:' means /n1 only
    assert overrides_for(sources, "/n1")["v"] == ([1.5, 2.0], "-p n1:v:=[1.5, 2.0]")
    assert overrides_for(sources, "/fr3/other") == {"w": (5, "-p w:=5")}


def test_check_sections_names_the_file_section_and_key(tmp_path):
    path = write(tmp_path, "arb.yaml", "/**/intervention_arbitr:\n  ros__parameters: {latch_faults: true}\n"
                                       "/**/intervention_arbiter:\n  ros__parameters: {max_translaton_m: 0.1}\n")
    nodes = {"/fr3/intervention_arbiter": {"latch_faults", "safety.max_translation_m", "max_translation_m"}}
    problems = check_sections(read_sections(path), nodes)
    assert len(problems) == 2
    assert problems[0].startswith(f"{path}: section '/**/intervention_arbitr' matches no node of this process")
    assert problems[0].endswith("did you mean '/**/intervention_arbiter'?")
    assert problems[1].startswith(f"{path}: unknown parameter 'max_translaton_m' in section '/**/intervention_arbiter'")
    assert "did you mean 'max_translation_m'" in problems[1]


def test_a_process_hosting_several_nodes_accepts_what_any_matching_node_declares(tmp_path):
    path = write(tmp_path, "sim.yaml", "/**/sim_node:\n  ros__parameters: {seed: 1}\n"
                                       "/**/sim_human_teleop:\n  ros__parameters: {command_rate_hz: 20.0}\n")
    nodes = {"/sim_node": {"seed", "noise"}, "/sim_human_teleop": {"command_rate_hz"}}
    sources = [*read_sections(path), param_rule("noise:='on'")]        # a '/**' rule reaches both nodes
    assert check_sections(sources, nodes) == []
    assert check_sections([param_rule("typo:=1")], nodes)[0].startswith("-p typo:=1: unknown parameter 'typo'")


def test_load_config_reads_the_node_section_of_a_ros_parameter_file(tmp_path):
    body = "".join(f"      {k.split('.')[1]}: {v}\n" for k, v in FULL_SAFETY.items())
    path = tmp_path / "p.yaml"
    path.write_text(f"/**/intervention_arbiter:\n  ros__parameters:\n    latch_faults: false\n    safety:\n{body}")
    cfg = load_config(ArbiterConfig, path, "/fr3/intervention_arbiter")
    assert cfg.latch_faults is False and cfg.safety == SafetyConfig(max_translation_m=0.02, max_rotation_rad=0.3)
    path.write_text("intervention_arbiter:\n  parameters: {}\n")
    with pytest.raises(ValueError, match="ros__parameters"):
        load_config(ArbiterConfig, path, "intervention_arbiter")
    path.write_text(f"/**/intervention_arbiter:\n  ros__parameters:\n    safety:\n{body.replace('0.02', '3.0')}")
    with pytest.raises(ConfigError, match=rf"{path}: parameter 'safety.max_translation_m' = 3.0 is outside its "
                                          r"range \(0, 0.05\]"):
        load_config(ArbiterConfig, path, "intervention_arbiter")
