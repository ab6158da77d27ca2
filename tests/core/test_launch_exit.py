"""The real launch's on_exit for its required processes (robot_driver, intervention_arbiter)."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest
from imgen_ros.launch_exit import RequiredProcessError, end_launch_on_exit

LAUNCH = Path(__file__).resolve().parents[2] / "launch"
REQUIRED = {"block_grasp_real.launch.py": {"robot_driver", "intervention_arbiter"},
            "block_grasp_sim.launch.py": {"sim_node", "intervention_arbiter"},
            "generate.launch.py": {"generation_server"}}


def _shutdown(**kwargs: str) -> tuple[str, dict[str, str]]:
    return ("Shutdown", kwargs)


def test_a_clean_exit_ends_the_launch_without_an_error() -> None:
    handler = end_launch_on_exit("robot_driver", _shutdown)
    actions = handler(SimpleNamespace(returncode=0), SimpleNamespace(is_shutdown=False))
    assert actions == [("Shutdown", {"reason": "robot_driver exited"})]


@pytest.mark.parametrize("code", [1, 2, -9, -15])
def test_a_failure_while_running_raises_so_ros2_launch_exits_1(code: int) -> None:
    handler = end_launch_on_exit("robot_driver", _shutdown)
    with pytest.raises(RequiredProcessError, match=f"^robot_driver exited with code {code}; the launch stops$"):
        handler(SimpleNamespace(returncode=code), SimpleNamespace(is_shutdown=False))


@pytest.mark.parametrize("code", [0, 1, -2, -15])
def test_any_exit_during_a_shutdown_is_part_of_the_stop(code: int) -> None:
    handler = end_launch_on_exit("intervention_arbiter", _shutdown)
    actions = handler(SimpleNamespace(returncode=code), SimpleNamespace(is_shutdown=True))
    assert actions == [("Shutdown", {"reason": "intervention_arbiter exited"})]


@pytest.mark.parametrize("launch_file", sorted(REQUIRED))
def test_the_robot_graphs_end_through_this_handler(launch_file: str) -> None:
    required = set()
    for call in ast.walk(ast.parse((LAUNCH / launch_file).read_text())):
        if not isinstance(call, ast.Call):
            continue
        kw = {k.arg: k.value for k in call.keywords}
        on_exit = kw.get("on_exit")
        if on_exit is not None:
            assert isinstance(on_exit, ast.Call) and getattr(on_exit.func, "id", None) == "end_launch_on_exit", \
                f"{launch_file}: an on_exit that is not end_launch_on_exit(...)"
            executable = kw["executable"].value
            assert on_exit.args[0].value == executable
            required.add(executable)
    assert required == REQUIRED[launch_file]
