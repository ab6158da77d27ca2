"""The arbiter's real-time prefix: SCHED_FIFO where granted, a warning and normal scheduling where the
host grants no rtprio (instead of chrt's exit, which ended the launch)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

PRINT_POLICY = [sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"]
PREFIX = [sys.executable, "-m", "imgen_ros.core.realtime"]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CAP_SYS_NICE) for the granted case")
def test_granted_priority_is_inherited_by_the_command():
    res = _run([*PREFIX, "--priority", "10", "--", *PRINT_POLICY])
    assert res.returncode == 0, res.stderr
    assert int(res.stdout) == os.SCHED_FIFO and "WARNING" not in res.stderr


@pytest.mark.skipif(not (shutil.which("setpriv") and shutil.which("prlimit")), reason="needs util-linux")
def test_without_rtprio_the_command_still_runs_with_a_warning():
    # no CAP_SYS_NICE and an rtprio limit of 0: what an ordinary user or container gets
    res = _run(["prlimit", "--rtprio=0:0", "setpriv", "--bounding-set=-sys_nice",
                *PREFIX, "--priority", "80", "--", *PRINT_POLICY])
    assert res.returncode == 0, res.stderr
    assert int(res.stdout) == os.SCHED_OTHER
    assert "real-time priority 80 (SCHED_FIFO) not granted" in res.stderr


def test_bad_invocations_are_usage_errors():
    assert _run([*PREFIX, "--priority", "10", "--"]).returncode == 2
    assert _run([*PREFIX, "--priority", "120", "--", "true"]).returncode == 2
    missing = _run([*PREFIX, "--priority", "0", "--", "/nonexistent/imgen-node"])
    assert missing.returncode == 127 and "cannot run /nonexistent/imgen-node" in missing.stderr
