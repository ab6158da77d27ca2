"""Shared pytest fixtures and the network-namespace guard.

Tests that start ROS 2 nodes (marker ``ros``) must run inside a private network namespace with
only loopback (``make test`` does this via scripts/netns-run). This guard refuses to run them
elsewhere, so no DDS discovery ever reaches a real interface.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _scheduling() -> tuple[int, int]:
    return os.sched_getscheduler(0), os.sched_getparam(0).sched_priority


SCHEDULING_AT_START = _scheduling()


def network_interfaces() -> list[str]:
    """Interfaces of *this process's* network namespace (/proc/net/dev is per-namespace; sysfs is not)."""
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    return sorted(line.split(":", 1)[0].strip() for line in lines)


def in_private_netns() -> bool:
    return network_interfaces() == ["lo"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("ros") is not None and not in_private_netns():
            item.add_marker(pytest.mark.skip(
                reason=f"ROS test outside a private network namespace (interfaces: {network_interfaces()}); "
                "run via `make test` or scripts/netns-run"))


@pytest.fixture(scope="session", autouse=True)
def _ros_environment() -> None:
    """Every ROS process started by tests discovers on localhost only."""
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"


@pytest.fixture(autouse=True)
def _scheduling_unchanged():
    """A test must leave the test process's scheduling as it found it: a thread left at SCHED_FIFO
    (libfranka's Robot() does that to its caller) is inherited by every process started afterwards,
    and real-time node processes starved each other on 2 cores (flaky DDS tests for sessions). The
    scheduling is restored and the test that changed it (or its module fixture) errors."""
    yield
    after = _scheduling()
    if after != SCHEDULING_AT_START:
        os.sched_setscheduler(0, SCHEDULING_AT_START[0], os.sched_param(SCHEDULING_AT_START[1]))
        pytest.fail(f"the test process's scheduling (policy, priority) is {after} after this test, "
                    f"was {SCHEDULING_AT_START} when the session started")


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture(autouse=True)
def _resource_trace(request: pytest.FixtureRequest):
    """With IMGEN_TEST_TRACE=FILE: one line per test with its CPU use, threads and child processes
    (to find tests that leave work running behind them)."""
    trace = os.environ.get("IMGEN_TEST_TRACE")
    if not trace:
        yield
        return
    import time

    import psutil

    me = psutil.Process()
    cpu0, wall0 = me.cpu_times(), time.monotonic()
    yield
    cpu1 = me.cpu_times()
    children = me.children(recursive=True)
    others = [p for p in psutil.process_iter(["pid", "ppid", "name", "cmdline"])
              if p.pid != me.pid and p not in children and "python" in (p.info["name"] or "")]
    with open(trace, "a") as out:
        out.write(f"{request.node.nodeid}\twall={time.monotonic() - wall0:.1f}"
                  f"\tcpu={cpu1.user + cpu1.system - cpu0.user - cpu0.system:.1f}"
                  f"\tthreads={me.num_threads()}\tload={os.getloadavg()[0]:.1f}"
                  f"\tchildren={[' '.join(c.cmdline()[:3]) for c in children]}"
                  f"\tothers={[' '.join((p.info['cmdline'] or [])[:3]) for p in others]}\n")
