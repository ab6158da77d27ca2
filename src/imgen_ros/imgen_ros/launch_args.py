"""Checks of the real launch's numeric arguments, run in its preflight before any process starts
(ROS-free). A bad value otherwise reached one node only: ``pose_error_seed:=-5`` stopped policy_node
(its parameter range) and the graph ran on without a policy; ``arbiter_rt_priority:=abc`` stopped
the arbiter's real-time wrapper after eight other processes had started."""

from __future__ import annotations

from imgen_ros.core.observation import NoiseConfig
from imgen_ros.core.params import param_table
from imgen_ros.core.realtime import PRIORITY_RANGE


def int_argument(argument: str, text: str) -> int:
    """``text`` as an integer, or a ValueError naming ``argument:=text``."""
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{argument}:={text}: not an integer") from None


def check_pose_error_seed(text: str) -> int:
    """pose_error_seed: policy_node's ``observation.noise.seed``, inside that parameter's range."""
    value = int_argument("pose_error_seed", text)
    spec = param_table(NoiseConfig)["seed"].spec
    problem = spec.problem(value) if spec is not None else None
    if problem is not None:
        raise ValueError(f"pose_error_seed:={text} {problem} (policy_node's observation.noise.seed)")
    return value


def check_rt_priority(text: str) -> int:
    """arbiter_rt_priority: a SCHED_FIFO priority for ``imgen_ros.core.realtime`` (0 = normal scheduling)."""
    value = int_argument("arbiter_rt_priority", text)
    low, high = PRIORITY_RANGE
    if not low <= value <= high:
        raise ValueError(f"arbiter_rt_priority:={text} is outside {low}..{high} (SCHED_FIFO priority; 0 = off)")
    return value
