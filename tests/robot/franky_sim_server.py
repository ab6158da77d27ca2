"""franky-sim (the libfranka protocol served from MuJoCo) on 127.0.0.1 for tests. Its per-client UDP
socket binds 0.0.0.0, so it may only run inside a private network namespace (scripts/netns-run)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def in_private_netns() -> bool:
    """Only loopback in *this process's* network namespace (if_nameindex asks the kernel about the
    current netns)."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


@contextmanager
def running_franky_sim(log: Path) -> Iterator[str]:
    """Start ``franky-sim -s mujoco --hostname 127.0.0.1`` (skips the test outside a private netns or
    without franky-sim); yields the robot address; stops it on exit."""
    if not in_private_netns():
        pytest.skip("franky-sim binds a UDP socket on 0.0.0.0: run inside scripts/netns-run (make test)")
    exe = shutil.which("franky-sim")
    if exe is None:
        pytest.skip("franky-sim is not installed")
    with log.open("wb") as out:
        proc = subprocess.Popen([exe, "-s", "mujoco", "--hostname", "127.0.0.1"], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield "127.0.0.1"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
