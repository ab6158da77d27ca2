"""The rehearsal's processes and its network isolation (ROS-free).

Every ROS process of a rehearsal runs in a private network namespace with only loopback up, so DDS
discovery never leaves the machine (``scripts/netns-run`` does the same for tests). ``imgen
rehearse`` re-executes itself in one (:func:`reexec_in_private_netns`) and refuses to run its graph
anywhere else (:func:`require_private_netns`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from imgen_ros.share import config_file

NETNS_MARK = "IMGEN_IN_NETNS"   # set by scripts/netns-run and by the re-execution below
_UNSHARE_SCRIPT = 'ip link set lo up && exec "$@"'


def network_interfaces() -> list[str]:
    """Interfaces of this process's network namespace (/proc/net/dev is per namespace; sysfs is not)."""
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    return sorted(line.split(":", 1)[0].strip() for line in lines)


def in_private_netns() -> bool:
    return network_interfaces() == ["lo"]


class IsolationError(RuntimeError):
    """No private network namespace could be had: the graph must not start."""


def require_private_netns(what: str = "imgen rehearse") -> None:
    if not in_private_netns():
        raise IsolationError(f"{what} runs ROS 2 nodes and must run in a private network namespace with only "
                             f"loopback (this one has {', '.join(network_interfaces())}); DDS discovery must not reach "
                             "the machine's network. Run it through scripts/netns-run or as a user who may unshare "
                             "a network namespace (root, or user namespaces enabled)")


def reexec_in_private_netns(argv: Sequence[str]) -> None:
    """Replace this process by ``argv`` in a new network namespace with loopback up (``unshare --net``,
    as scripts/netns-run). Returns only when that is impossible: raises IsolationError with the reason."""
    if os.environ.get(NETNS_MARK) == "1":
        require_private_netns()   # marked as isolated but is not: refuse
        return
    probe = subprocess.run(["unshare", "--net", "--", "bash", "-c", "ip link set lo up"], capture_output=True,
                           text=True, check=False)
    if probe.returncode != 0:
        reason = (probe.stderr or probe.stdout).strip().splitlines()
        raise IsolationError("cannot create a private network namespace for the ROS 2 graph (unshare --net: "
                             f"{reason[-1] if reason else f'exit {probe.returncode}'}); run as root, enable user "
                             "namespaces, or run under scripts/netns-run")
    os.environ[NETNS_MARK] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp("unshare", ["unshare", "--net", "--", "bash", "-c", _UNSHARE_SCRIPT, "imgen-netns", *argv])


# The graph's Fast DDS profile (config/fastdds_shm.xml, shared with the real launch): the built-in
# transports with a 16 MB shared-memory segment, so a 614 KB depth frame does not fall back to
# fragmented UDP (the file says what was measured).
DDS_PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"


def dds_profile_source() -> Path:
    """config/fastdds_shm.xml: the installed copy, else the source tree's."""
    return Path(config_file("fastdds_shm.xml", allow_source_tree=True))


def write_dds_profile(path: Path) -> Path:
    """A copy of the graph's Fast DDS profile at ``path`` (kept with the run's outputs)."""
    path.write_text(dds_profile_source().read_text())
    return path


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the rehearsal dies, even by SIGKILL (Linux PR_SET_PDEATHSIG),
    so no node outlives it (each runs in a session of its own, out of reach of the terminal's signals)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


class NodeProcess:
    """One node process in its own process group, output to a log file; stopped SIGINT -> SIGTERM -> SIGKILL
    (only its own group: never anything it did not start)."""

    def __init__(self, name: str, cmd: Sequence[str], log_path: Path, env: Mapping[str, str]) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT, env=dict(env),
                                      start_new_session=True, preexec_fn=_die_with_parent)

    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def tail(self, chars: int = 2000) -> str:
        self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def signal(self, sig: int) -> None:
        if self.alive():
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float) -> bool:
        """True when the process has exited within ``timeout``."""
        try:
            self.popen.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, timeout: float = 5.0) -> int | None:
        stop_all([self], timeout)
        return self.popen.returncode

    def close_log(self) -> None:
        if not self._log.closed:
            self._log.close()


def stop_all(procs: Sequence[NodeProcess], timeout: float = 5.0) -> None:
    """SIGINT to every process group (nodes shut down cleanly), then SIGTERM, then SIGKILL to those
    still running after ``timeout`` each."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        running = [p for p in procs if p.alive()]
        if not running:
            break
        for proc in running:
            proc.signal(sig)
        deadline = time.monotonic() + timeout
        for proc in running:
            proc.wait(deadline - time.monotonic())
    for proc in procs:
        proc.close_log()


def graph_environment(base: Mapping[str, str] | None = None, dds_profile: Path | None = None) -> dict[str, str]:
    """The node processes' environment: localhost discovery, unbuffered output, no static peers, and
    the Fast DDS profile (None: Fast DDS's stock transports)."""
    env = dict(os.environ if base is None else base)
    env.pop(DDS_PROFILE_ENV, None)
    env.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
    if dds_profile is not None:
        env[DDS_PROFILE_ENV] = str(dds_profile)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.pop("ROS_STATIC_PEERS", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("MUJOCO_GL", "egl")
    return env


class Graph:
    """The processes of one row, started in order; ``dead()`` names those that exited."""

    def __init__(self, commands: Mapping[str, Sequence[str]], log_dir: Path, env: Mapping[str, str]) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, NodeProcess] = {}
        try:
            for name, cmd in commands.items():
                self.procs[name] = NodeProcess(name, cmd, log_dir / f"{name}.log", env)
        except BaseException:
            self.stop()
            raise

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) each running process has used so far."""
        out = {}
        tick = os.sysconf("SC_CLK_TCK")
        for name, proc in self.procs.items():
            try:
                fields = Path(f"/proc/{proc.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[name] = (int(fields[11]) + int(fields[12])) / tick
        return out

    def dead(self) -> dict[str, int | None]:
        return {n: p.returncode for n, p in self.procs.items() if not p.alive()}

    def describe_dead(self) -> str:
        parts = []
        for name, code in self.dead().items():
            tail = " | ".join(line for line in self.procs[name].tail(1500).splitlines()[-6:] if line.strip())
            parts.append(f"{name} exited with {code} ({self.procs[name].log_path}): {tail}")
        return "; ".join(parts)

    def stop(self) -> None:
        stop_all(list(self.procs.values()))
