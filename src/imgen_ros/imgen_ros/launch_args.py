"""Checks of the launch files' numeric arguments, run in their preflight before any process starts
(ROS-free but for :func:`check_sim_arguments`). A bad value otherwise reached one node only:
``pose_error_seed:=-5`` stopped policy_node (its parameter range) and the graph ran on without a
policy; ``arbiter_rt_priority:=abc`` stopped the arbiter's real-time wrapper after eight other
processes had started; ``auto_episodes:=abc`` failed in launch_ros's conversion with "invalid literal
for int()", naming no argument."""

from __future__ import annotations

from typing import Any

from imgen_ros.core.params import param_table
from imgen_ros.core.realtime import PRIORITY_RANGE


def int_argument(argument: str, text: str) -> int:
    """``text`` as an integer, or a ValueError naming ``argument:=text``."""
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{argument}:={text}: not an integer") from None


def check_int_parameter_argument(argument: str, text: str, config: type, key: str, node: str) -> int:
    """The integer launch argument ``argument`` that becomes ``node``'s parameter ``key`` (a field of
    the config dataclass ``config``), inside that parameter's declared range."""
    value = int_argument(argument, text)
    spec = param_table(config)[key].spec
    problem = spec.problem(value) if spec is not None else None
    if problem is not None:
        raise ValueError(f"{argument}:={text} {problem} ({node}'s {key})")
    return value


def check_pose_error_seed(text: str) -> int:
    """pose_error_seed: policy_node's ``observation.noise.seed``."""
    from imgen_ros.core.observation import NoiseConfig

    return check_int_parameter_argument("pose_error_seed", text, NoiseConfig, "seed", "policy_node")


def check_sim_arguments(arguments: dict[str, Any]) -> None:
    """seed and auto_episodes of the sim launch: sim_node's parameters of those names (its config
    lives in the node module: this needs rclpy, as the launch file's context has)."""
    from imgen_ros.nodes.sim_node import SimNodeConfig

    for name in ("seed", "auto_episodes"):
        check_int_parameter_argument(name, arguments[name], SimNodeConfig, name, "sim_node")


def check_rt_priority(text: str) -> int:
    """arbiter_rt_priority: a SCHED_FIFO priority for ``imgen_ros.core.realtime`` (0 = normal scheduling)."""
    value = int_argument("arbiter_rt_priority", text)
    low, high = PRIORITY_RANGE
    if not low <= value <= high:
        raise ValueError(f"arbiter_rt_priority:={text} is outside {low}..{high} (SCHED_FIFO priority; 0 = off)")
    return value
