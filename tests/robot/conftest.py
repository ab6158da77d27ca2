"""franky-sim (the libfranka protocol served from MuJoCo) on 127.0.0.1, only inside a private netns:
its per-client UDP socket binds 0.0.0.0."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _in_private_netns() -> bool:
    """Only loopback in *this process's* network namespace (if_nameindex asks the kernel for the
    current netns; /sys/class/net shows the namespace sysfs was mounted in)."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


@pytest.fixture(scope="module")
def franky_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start ``franky-sim -s mujoco --hostname 127.0.0.1``; yields the robot address."""
    if not _in_private_netns():
        pytest.skip("franky-sim binds a UDP socket on 0.0.0.0: run inside scripts/netns-run (make test)")
    exe = shutil.which("franky-sim")
    if exe is None:
        pytest.skip("franky-sim is not installed")
    log: Path = tmp_path_factory.mktemp("franky_sim") / "franky-sim.log"
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
