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


@pytest.fixture
def repo_root() -> Path:
    return REPO
