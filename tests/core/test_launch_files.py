"""Static checks of launch/*.launch.py that need no ROS install: every parameter file a launch file
names exists in config/ (a missing one made launch_ros start the node on its code defaults with
only a warning), and every imgen executable it starts is a node module of the package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))
NODES = {p.stem for p in (REPO / "src" / "imgen_ros" / "imgen_ros" / "nodes").glob("*.py")
         if not p.stem.startswith("_")}


def _calls(path: Path) -> list[ast.Call]:
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)]


def _config_names(path: Path) -> list[str]:
    return [c.args[0].value for c in _calls(path)
            if isinstance(c.func, ast.Name) and c.func.id == "config" and c.args
            and isinstance(c.args[0], ast.Constant)]


def _imgen_executables(path: Path) -> list[str]:
    out = []
    for call in _calls(path):
        kw = {k.arg: k.value for k in call.keywords}
        package, executable = kw.get("package"), kw.get("executable")
        ours = (isinstance(package, ast.Name) and package.id == "PACKAGE") or \
            (isinstance(package, ast.Constant) and package.value == "imgen_ros")
        if ours and isinstance(executable, ast.Constant):
            out.append(executable.value)
    return out


def test_the_checks_see_the_launch_files():
    assert len(LAUNCH_FILES) >= 3
    assert sum(len(_config_names(p)) for p in LAUNCH_FILES) >= 10
    assert all(_imgen_executables(p) for p in LAUNCH_FILES)


@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=lambda p: p.name)
def test_named_config_files_exist(launch_file):
    missing = [n for n in _config_names(launch_file) if not (REPO / "config" / n).is_file()]
    assert not missing, f"{launch_file.name} names config files that do not exist: {missing}"


@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=lambda p: p.name)
def test_imgen_executables_are_node_modules(launch_file):
    unknown = set(_imgen_executables(launch_file)) - NODES
    assert not unknown, f"{launch_file.name} starts unknown imgen_ros executables: {unknown}"


def _franka_include_arguments(path: Path) -> dict[str, object]:
    """The ``launch_arguments`` dict literal of the IncludeLaunchDescription of franka.launch.py."""
    for call in _calls(path):
        if isinstance(call.func, ast.Name) and call.func.id == "IncludeLaunchDescription":
            for kw in call.keywords:
                if kw.arg == "launch_arguments":
                    literal = kw.value.func.value   # {...}.items()
                    return {k.value: (v.value if isinstance(v, ast.Constant) else ast.unparse(v))
                            for k, v in zip(literal.keys, literal.values, strict=True)}
    raise AssertionError(f"{path.name} includes no launch description")


def test_franka_bringup_arguments_that_would_starve_the_driver_are_pinned():
    """franka.launch.py (v3.4.0) arguments left open pass through from our command line:
    load_franka_robot_state_broadcaster:=false or use_fake_hardware:=true would leave robot_driver
    without its state topics, and an arm_prefix would rename them."""
    args = _franka_include_arguments(REPO / "launch" / "block_grasp_real.launch.py")
    assert args["robot_type"] == "fr3" and args["load_gripper"] == "true"
    assert args["load_franka_robot_state_broadcaster"] == "true"
    assert args["use_fake_hardware"] == "false" and args["fake_sensor_commands"] == "false"
    assert args["arm_prefix"] == ""
