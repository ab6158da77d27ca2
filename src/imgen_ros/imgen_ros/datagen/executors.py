"""Where attempts run: in this process, in local worker processes, or on a Ray cluster.

All three run the same :func:`imgen_ros.datagen.job.run_attempt`; the runner submits attempt
indices and collects results in any completion order (it restores attempt order itself).
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import os
import socket
import tempfile
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Protocol

from imgen_ros.datagen.episodes import AttemptResult
from imgen_ros.datagen.job import GenerationJob, run_attempt, warm_up

EXECUTORS = ("local", "ray")


class AttemptExecutor(Protocol):
    workers: int

    def submit(self, attempt: int) -> None: ...

    def next_result(self) -> AttemptResult: ...

    def in_flight(self) -> int: ...

    def close(self) -> None: ...


class InlineExecutor:
    """One worker: attempts run in the calling process, in submission order."""

    def __init__(self, job: GenerationJob) -> None:
        self.job = job
        self.workers = 1
        self._queue: deque[int] = deque()

    def submit(self, attempt: int) -> None:
        self._queue.append(attempt)

    def next_result(self) -> AttemptResult:
        return run_attempt(self.job, self._queue.popleft())

    def in_flight(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        self._queue.clear()


class ProcessExecutor:
    """``workers`` local processes (forkserver start method: no inherited threads or file handles)."""

    def __init__(self, job: GenerationJob, workers: int) -> None:
        self.job = job
        self.workers = workers
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            ctx.set_forkserver_preload(["imgen_ros.datagen.job", "imgen_ros.sim"])
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
        self._futures: dict[Future, int] = {}
        # build every worker's context up front so setup errors surface once, before the run
        for f in [self._pool.submit(warm_up, job) for _ in range(workers)]:
            f.result()

    def submit(self, attempt: int) -> None:
        self._futures[self._pool.submit(run_attempt, self.job, attempt)] = attempt

    def next_result(self) -> AttemptResult:
        done, _ = wait(list(self._futures), return_when=FIRST_COMPLETED)
        future = min(done, key=lambda f: self._futures[f])
        attempt = self._futures.pop(future)
        try:
            return future.result()
        except Exception as exc:
            raise RuntimeError(f"attempt {attempt} failed in a worker: {type(exc).__name__}: {exc}") from exc

    def in_flight(self) -> int:
        return len(self._futures)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._futures.clear()


RAY_ALLOW_NETWORK_ENV = "IMGEN_RAY_ALLOW_NETWORK"


def non_loopback_interfaces() -> list[str]:
    """Network interfaces other than loopback in this process's network namespace.

    Read from /proc/self/net/dev (per namespace); /sys/class/net shows the host's interfaces
    inside an ``unshare --net`` namespace because sysfs is not remounted there.
    """
    try:
        lines = open("/proc/self/net/dev").read().splitlines()[2:]
    except OSError:
        return []
    return sorted(n for n in (line.split(":", 1)[0].strip() for line in lines) if n and n != "lo")


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """RuntimeError unless a TCP connection to Ray cluster ``address`` (``host:port`` or ``ray://host:port``;
    ``auto`` is Ray's own lookup) opens within ``timeout_s``: ``ray.init`` retries an unreachable one for
    minutes without a word."""
    if address == "auto":
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdecimal() or not 0 < int(port) < 65536:
        raise RuntimeError(f"--address {address!r}: expected host:port, ray://host:port or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise RuntimeError(f"--address {address}: no Ray cluster reachable there ({exc.strerror or exc})") from None


class RayExecutor:
    """Attempts as Ray tasks on a cluster (``address``) or a local instance (``address=None``).

    A local instance gets ``_node_ip_address=127.0.0.1``, no dashboard and usage stats off, but
    Ray's gRPC servers (GCS, raylet, workers) still listen on all interfaces; so a local instance is
    only started inside a private network namespace (``scripts/netns-run``) unless
    ``IMGEN_RAY_ALLOW_NETWORK=1`` says listening on the machine's interfaces is acceptable.
    """

    def __init__(self, job: GenerationJob, workers: int, address: str | None = None) -> None:
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
        import ray

        self._ray = ray
        self.job = job
        self.workers = workers
        self._owns = not ray.is_initialized()
        exposed = non_loopback_interfaces()
        if self._owns and address is None and exposed and os.environ.get(RAY_ALLOW_NETWORK_ENV) != "1":
            raise RuntimeError(
                f"a local Ray instance would listen on every interface ({', '.join(exposed)}): its gRPC servers "
                "ignore the 127.0.0.1 node address. Run inside a private network namespace (scripts/netns-run), "
                f"pass --address of an existing cluster, or set {RAY_ALLOW_NETWORK_ENV}=1 to accept it")
        if self._owns and address is not None:
            check_reachable(address)
        if self._owns:
            kwargs: dict[str, Any] = {"address": address, "include_dashboard": False, "log_to_driver": False,
                                      "_node_ip_address": "127.0.0.1"}
            if address is None:
                kwargs["num_cpus"] = workers
            ray.init(**kwargs)
        self._remote = ray.remote(num_cpus=1, max_retries=0)(run_shipped_attempt)
        self._refs: dict[Any, int] = {}
        self._job_ref = ray.put(job)
        self._files_ref = ray.put(job_files(job))

    def submit(self, attempt: int) -> None:
        self._refs[self._remote.remote(self._job_ref, self._files_ref, attempt)] = attempt

    def next_result(self) -> AttemptResult:
        ready, _ = self._ray.wait(list(self._refs), num_returns=1)
        attempt = self._refs.pop(ready[0])
        try:
            return self._ray.get(ready[0])
        except Exception as exc:
            raise RuntimeError(f"attempt {attempt} failed on Ray: {type(exc).__name__}: {exc}") from exc

    def in_flight(self) -> int:
        return len(self._refs)

    def close(self) -> None:
        for ref in self._refs:
            self._ray.cancel(ref, force=True)
        self._refs.clear()
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()


def job_files(job: GenerationJob) -> dict[str, bytes]:
    """The files a job reads (source dataset, policy checkpoint), to ship to cluster nodes."""
    paths = [job.source] + ([job.policy] if job.policy and os.path.isfile(job.policy) else [])
    return {p: Path(p).read_bytes() for p in paths}


def run_shipped_attempt(job: GenerationJob, files: dict[str, bytes], attempt: int) -> AttemptResult:
    """``run_attempt`` on a node that may not share the driver's filesystem: missing input files are
    written once per node from the shipped bytes (content-addressed under the temp dir)."""
    local: dict[str, str] = {}
    for path, blob in files.items():
        if os.path.isfile(path):
            local[path] = path
            continue
        digest = hashlib.sha256(blob).hexdigest()[:16]
        target = os.path.join(tempfile.gettempdir(), "imgen_ray_inputs", digest + "_" + os.path.basename(path))
        if not os.path.isfile(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            tmp = f"{target}.{os.getpid()}.part"
            with open(tmp, "wb") as f:
                f.write(blob)
            os.replace(tmp, target)
        local[path] = target
    policy = local.get(job.policy, job.policy) if job.policy else job.policy
    if local[job.source] != job.source or policy != job.policy:
        job = dataclasses.replace(job, source=local[job.source], policy=policy)
    return run_attempt(job, attempt)


def make_executor(job: GenerationJob, workers: int, executor: str = "local",
                  address: str | None = None) -> AttemptExecutor:
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if executor == "local":
        return InlineExecutor(job) if workers == 1 else ProcessExecutor(job, workers)
    if executor == "ray":
        return RayExecutor(job, workers, address)
    raise ValueError(f"unknown executor {executor!r} (choose from {list(EXECUTORS)})")
