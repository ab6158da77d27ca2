"""ROS 2 test harness: in-process nodes on a private context, and node processes.

Fixtures
- ``ros_context``: an initialized rclpy Context of its own (shut down after the test).
- ``ros_spin``: ``spin(node, ...)`` adds nodes to a single-threaded executor spinning in a
  background thread on that context; nodes are destroyed at teardown. (rclpy's multi-threaded
  executor starved a 20 Hz policy node plus a probe to 1-7 Hz here: its worker threads contend for
  the GIL; one thread keeps every in-process node on time.)
- ``node_process``: ``start(cmd, name=...)`` starts a process in the project's environment
  (localhost discovery) with output captured to files; stopped with SIGINT -> SIGTERM -> SIGKILL.
- ``wait_until``: ``wait_until(predicate, timeout, what, details=...)`` polls, failing with ``what``
  (and ``details()``, e.g. what was received and the processes' logs) on timeout.

All tests here carry the ``ros`` marker and only run inside a private network namespace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402

# Whole-graph tests with real-time deadlines (HOLD < 100 ms, 20 Hz), selectable with
# `-m graph_timing` (`make test-graph`). They used to fail in full runs on the 2-core machine: the
# multi-threaded executor that spun the test's own nodes busy-waited (ros2/rclpy#1452), and more so
# the more threads earlier tests had left in the process; ``ros_spin`` is single-threaded now.
GRAPH_TIMING_MODULES = {"test_graph_faults.py", "test_policy_node.py", "test_recorder.py", "test_sim_graph.py",
                        "test_sim_perception.py", "test_arbiter_node.py", "test_rehearsal.py",
                        "test_diagnostics_graph.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        path = Path(str(item.fspath))
        if path.is_relative_to(here):
            item.add_marker(pytest.mark.ros)
            if path.name in GRAPH_TIMING_MODULES:
                item.add_marker(pytest.mark.graph_timing)


_domain_counter = iter(range(10**9))


@pytest.fixture(autouse=True)
def ros_domain_id() -> Iterator[int]:
    """A DDS domain of its own for every test (1..100): node processes that a failed or slow test
    leaves behind cannot publish into the next test's graph. Children inherit ROS_DOMAIN_ID."""
    domain = 1 + next(_domain_counter) % 100
    previous = os.environ.get("ROS_DOMAIN_ID")
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    yield domain
    if previous is None:
        os.environ.pop("ROS_DOMAIN_ID", None)
    else:
        os.environ["ROS_DOMAIN_ID"] = previous


@pytest.fixture
def ros_context(ros_domain_id: int) -> Iterator[rclpy.context.Context]:
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain_id)
    try:
        yield context
    finally:
        context.try_shutdown()


@pytest.fixture
def ros_spin(ros_context: rclpy.context.Context) -> Iterator[Callable[..., None]]:
    executor = SingleThreadedExecutor(context=ros_context)
    nodes: list[Node] = []
    thread = threading.Thread(target=executor.spin, daemon=True, name="ros-spin")
    started = False

    def spin(*new_nodes: Node) -> None:
        nonlocal started
        for node in new_nodes:
            executor.add_node(node)
            nodes.append(node)
        if not started:
            thread.start()
            started = True

    yield spin
    executor.shutdown(timeout_sec=2.0)
    if started:
        thread.join(timeout=5.0)   # before destroying: a callback still running would publish on a dead node
    for node in nodes:
        node.destroy_node()


class NodeProcess:
    """A child process with captured output and a graceful-then-forceful stop."""

    def __init__(self, cmd: list[str], log_dir: Path, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.stdout_path = log_dir / f"{name}.stdout"
        self.stderr_path = log_dir / f"{name}.stderr"
        self._out = self.stdout_path.open("wb")
        self._err = self.stderr_path.open("wb")
        self.popen = subprocess.Popen(cmd, stdout=self._out, stderr=self._err, env=env, start_new_session=True)

    def output(self) -> str:
        self._out.flush()
        return self.stdout_path.read_text(errors="replace")

    def errors(self) -> str:
        self._err.flush()
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 5.0) -> int | None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if not self.alive():
                break
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                continue
        self._out.close()
        self._err.close()
        return self.popen.returncode


@pytest.fixture
def node_process(tmp_path: Path) -> Iterator[Callable[..., NodeProcess]]:
    started: list[NodeProcess] = []

    def start(cmd: list[str], name: str | None = None, env: dict[str, str] | None = None) -> NodeProcess:
        full_env = dict(os.environ)
        full_env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.update(env or {})
        if cmd and cmd[0] == "python":
            cmd = [sys.executable, *cmd[1:]]
        proc = NodeProcess(cmd, tmp_path, name or f"proc{len(started)}", full_env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def wait_until() -> Callable[..., None]:
    def wait(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition",
             interval: float = 0.01, details: Callable[[], str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(interval)
        pytest.fail(f"timed out after {timeout:.1f} s waiting for {what}"
                    + (f"\n{details()}" if details else ""))

    return wait
