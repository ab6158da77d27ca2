"""Run a generation job to exactly N kept episodes: parallel, deterministic, resumable.

Attempt ``k`` always uses seed ``attempt_seed(S, k)``. Results may finish in any order on any
worker; the runner journals each one as it arrives (``<out>.journal``), and commits them to the
hdf5 strictly in attempt order, stopping at the N-th kept episode. The output is therefore the
same for any worker count or executor. Killed at any point (SIGKILL included) and rerun with the
same arguments, it reloads the journal, rebuilds the hdf5 from it and reruns only the attempts
that were in flight.

Outputs (``imgen_ros.data.outputs``): the episodes grow in ``<out>.partial``, marked incomplete
(``imgen_complete`` False, ``imgen_progress``), and the finished file is moved to ``<out>``
atomically, so ``<out>`` only ever holds a complete dataset and an existing ``<out>`` (replaced
only with ``overwrite``) stays intact until the new one is finished. The journal header records
the content fingerprints (sha256) of the source dataset and of the policy checkpoint, and the
digest of the task's definition (``sim.task_digest``); a resume against changed inputs or a changed
task is refused, naming the file or task and both fingerprints. A run that fails
before it journaled any attempt (a refused run) removes its journal and partial file.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgen_ros.data.outputs import (
    OutputError,
    check_not_input,
    check_not_special,
    make_parents,
    os_error,
    partial_path,
    publish,
    remove_created,
    remove_stale_temps,
    temp_path,
)
from imgen_ros.data.reader import DatasetReader
from imgen_ros.data.writer import DatasetWriter
from imgen_ros.datagen.episodes import AttemptResult
from imgen_ros.datagen.executors import make_executor
from imgen_ros.datagen.job import GenerationJob, context_for
from imgen_ros.datagen.journal import JournalError, JournalWriter, journal_path, read_journal

FORMAT_VERSION = 1


@dataclass
class RunOptions:
    n: int
    workers: int = 1
    executor: str = "local"
    address: str | None = None
    progress: bool = True
    overwrite: bool = False
    valid_every: int = 10  # every k-th kept episode goes to mask/valid (0: no train/valid split)
    max_attempts: int | None = None  # give up after this many attempts (default 50 * n + 100)
    in_flight_per_worker: int = 2


@dataclass
class RunReport:
    out: Path
    kept: int
    attempts: int
    outcomes: dict[str, int]
    wall_s: float
    resumed_attempts: int
    timing: dict[str, float] = field(default_factory=dict)
    already_complete: bool = False

    @property
    def success_rate(self) -> float:
        return self.kept / self.attempts if self.attempts else 0.0


def masks_for(job: GenerationJob) -> list[str]:
    return ["generated", "recovery"] if job.kind == "imgen" else ["generated"]


def journal_header(job: GenerationJob, n: int) -> dict[str, Any]:
    """The journal's first record: format, job, N and the fingerprints of the job's inputs: its files and
    the task's definition (``sim.task_digest``: episodes of a nut with another fit are not mixed in)."""
    from imgen_ros.sim.task_digest import task_digest

    task = {"path": f"task {job.task} (scene and settings)", "sha256": task_digest(job.task)}
    return {"format": FORMAT_VERSION, "job": job.to_dict(), "n": n,
            "inputs": {**job.input_fingerprints(), "task definition": task}}


def _check_options(options: RunOptions) -> None:
    if options.n < 1:
        raise ValueError(f"n must be >= 1, got {options.n}")
    if options.workers < 1:
        raise ValueError(f"workers must be >= 1, got {options.workers}")
    if options.max_attempts is not None and options.max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {options.max_attempts}")
    if options.address is not None and options.executor != "ray":
        raise ValueError(f"--address {options.address} applies to --executor ray only (executor: {options.executor})")


def run_generation(job: GenerationJob, out: str | Path, options: RunOptions) -> RunReport:
    out = Path(out)
    _check_options(options)
    partial, jpath = partial_path(out), journal_path(out)
    inputs = list(job.input_files().values())
    for target in (out, partial, jpath):
        check_not_input(target, inputs)
    if out.is_dir():
        raise OutputError(f"{out} is a directory; the output must be a file path")
    for target in (out, partial, jpath):
        check_not_special(target)
    header = journal_header(job, options.n)
    try:
        records, valid_bytes = read_journal(jpath)
    except OSError as exc:
        raise OutputError(f"cannot read {jpath}: {exc.strerror or exc}") from exc
    except JournalError as exc:  # an old (pickle) or foreign journal: never loaded, discarded with --overwrite
        if not options.overwrite:
            raise OutputError(f"{exc}; move it away, or pass --overwrite to discard it") from None
        records, valid_bytes = [], 0
    if not records and not options.overwrite and jpath.exists() and jpath.stat().st_size > 0:
        raise OutputError(f"{jpath} exists and is not a readable generation journal (another file, or a journal "
                          "cut off before its header was written); move it away, or pass --overwrite to discard it")
    if records and options.overwrite and records[0] != header:
        records, valid_bytes = [], 0  # --overwrite: a journal of other settings/inputs is discarded; a match resumes
    if records:
        _check_header(records[0], header, jpath)
        results: dict[int, AttemptResult] = {r.attempt: r for r in records[1:]}
        if out.exists():
            done, _ = _completed_report(out, header)
            if done is not None:  # killed after publishing the file, before deleting the journal
                jpath.unlink()
                partial.unlink(missing_ok=True)
                return done
            if not options.overwrite:
                raise OutputError(f"{out} exists and the interrupted run in {jpath} would replace it; pass --overwrite "
                                  "to let it")
    else:
        if not options.overwrite:
            done, reason = _completed_report(out, header)
            if done is not None:
                return done
            if out.exists():
                raise OutputError(f"{out} exists{reason} and has no journal to resume from; pass --overwrite to "
                                  "replace it")
            if partial.exists():
                raise OutputError(f"{partial} exists without its journal {jpath.name} (a leftover partial output); "
                                  "delete it or pass --overwrite")
        results = {}
    resumed = len(results)
    ctx = context_for(job)  # validates task, sources and policy here, before any file is written
    created = make_parents(out)
    remove_stale_temps(partial)
    new_journal = not records
    journaled = 0
    journal = committer = executor = bar = None
    try:
        try:
            journal = JournalWriter(jpath, valid_bytes)
        except OSError as exc:
            raise os_error(jpath, exc) from exc
        if new_journal:
            journal.append(header)
        committer = _Committer(partial, ctx.env.env_args(), job, options, header["inputs"])
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        bar = _progress_bar(options, job)
        committer.commit_ready(results)
        _update_bar(bar, committer, t0)
        next_attempt = committer.next_attempt
        if committer.kept < options.n:
            executor = make_executor(job, options.workers, options.executor, options.address)
            window = max(1, options.workers * options.in_flight_per_worker)
            max_attempts = options.max_attempts or 50 * options.n + 100
            while committer.kept < options.n:
                while executor.in_flight() < window:
                    while next_attempt in results:
                        next_attempt += 1
                    if next_attempt >= max_attempts:
                        break
                    executor.submit(next_attempt)
                    next_attempt += 1
                if executor.in_flight() == 0:
                    raise RuntimeError(
                        f"gave up after {max_attempts} attempts with {committer.kept}/{options.n} kept "
                        f"(outcomes {dict(committer.outcomes)}); {partial} holds the kept ones (marked incomplete; "
                        "rerun with a larger --max-attempts to continue). Check the sources (imgen dataset info) "
                        "and the policy")
                result = executor.next_result()
                journal.append(result)
                journaled += 1
                results[result.attempt] = result
                committer.commit_ready(results)
                _update_bar(bar, committer, t0)
        wall = time.perf_counter() - t0
        committer.timing["main_cpu_s"] += time.process_time() - cpu0
        report = committer.finalize(wall, resumed)
    except BaseException:
        _close(executor, bar, committer, journal)
        if new_journal and journaled == 0:  # nothing was produced: leave nothing behind
            for leftover in (jpath, partial, temp_path(partial)):
                with contextlib.suppress(OSError):
                    leftover.unlink()
            remove_created(created)
        raise
    _close(executor, bar, committer, journal)
    publish(partial, out, overwrite=options.overwrite)
    journal.remove()
    return report


def _close(*things: Any) -> None:
    for thing in things:
        if thing is not None:
            thing.close()


class _Committer:
    """Writes results to the hdf5 in attempt order up to the N-th kept episode."""

    def __init__(self, out: Path, env_args: dict[str, Any], job: GenerationJob, options: RunOptions,
                 inputs: dict[str, Any]) -> None:
        tmp = temp_path(out)
        self.out, self.tmp, self.job, self.options, self.inputs = out, tmp, job, options, inputs
        try:
            self.writer = DatasetWriter(tmp, env_args)  # rebuilt from the journal on every (re)start
        except OSError as exc:
            raise os_error(out, exc) from exc
        self.writer.set_json_attr("imgen_config", self._config())
        self.writer.set_progress(False, kept=0, target=options.n, attempts=0)
        os.replace(tmp, out)  # the partial file holds a valid (incomplete) dataset from now on
        self.next_attempt = 0
        self.kept = 0
        self.outcomes: Counter[str] = Counter()
        self.kept_attempts: list[int] = []
        self.timing = Counter()

    def _config(self) -> dict[str, Any]:
        o = self.options
        return {"format": FORMAT_VERSION, "command": f"generate {self.job.kind}", "n": o.n, "job": self.job.to_dict(),
                "workers": o.workers, "executor": o.executor, "valid_every": o.valid_every, "inputs": self.inputs}

    def commit_ready(self, results: dict[int, AttemptResult]) -> None:
        while self.kept < self.options.n and self.next_attempt in results:
            r = results[self.next_attempt]
            self.outcomes[r.outcome] += 1
            self.timing["env_steps"] += r.env_steps
            self.timing["physics_s"] += r.physics_s
            self.timing["policy_s"] += r.policy_s
            self.timing["attempt_s"] += r.total_s
            if r.kept:
                masks = list(masks_for(self.job))
                every = self.options.valid_every
                masks.append("valid" if every and self.kept % every == every - 1 else "train")
                self.writer.append(r.episode, masks=masks)
                self.kept += 1
                self.kept_attempts.append(r.attempt)
            self.next_attempt += 1
        self.writer.set_json_attr("imgen_bookkeeping", self.bookkeeping(complete=False))
        self.writer.set_progress(False, kept=self.kept, target=self.options.n, attempts=self.next_attempt)

    def bookkeeping(self, complete: bool) -> dict[str, Any]:
        return {"seed": self.job.seed, "seed_rule": "attempt k uses attempt_seed(seed, k)",
                "attempts_committed": self.next_attempt, "kept_attempts": self.kept_attempts, "complete": complete}

    def finalize(self, wall_s: float, resumed: int) -> RunReport:
        attempts = self.next_attempt
        timing = {k: round(float(v), 4) for k, v in self.timing.items()}
        stats = {"attempts": attempts, "kept": self.kept, "success_rate": self.kept / max(attempts, 1),
                 "outcomes": dict(self.outcomes), "timing": timing, "wall_s": round(wall_s, 3),
                 "resumed_attempts": resumed}
        if self.job.kind == "imgen":
            stats["mistakes"] = attempts - self.outcomes["no_mistake_success"] - self.outcomes["no_mistake_timeout"]
        self.writer.set_json_attr("imgen_stats", stats)
        self.writer.set_json_attr("imgen_bookkeeping", self.bookkeeping(complete=True))
        self.writer.set_progress(True, kept=self.kept, target=self.options.n, attempts=attempts)
        return RunReport(self.out, self.kept, attempts, dict(self.outcomes), wall_s, resumed, timing)

    def close(self) -> None:
        self.writer.close()


def _check_header(found: Any, expected: dict[str, Any], path: Path) -> None:
    if not isinstance(found, dict) or found.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: not an imgen generation journal (format {FORMAT_VERSION})")
    settings = [k for k in expected if k != "inputs"]
    diff = {k: (found.get(k), expected[k]) for k in settings if found.get(k) != expected[k]}
    if diff:
        raise ValueError(f"{path}: an interrupted run with different settings exists ({_short(diff)}); rerun it "
                         f"with the same arguments to resume, or delete {path} to start over")
    if "inputs" not in found:
        raise ValueError(f"{path}: the interrupted run predates input fingerprints, so its source/checkpoint cannot "
                         f"be verified; pass --overwrite (or delete {path}) to start over")
    changed = input_changes(found["inputs"], expected["inputs"])
    if changed:
        raise ValueError(f"{path}: the inputs changed since the interrupted run ({changed}); resuming would mix "
                         f"episodes from both. Restore the original file to resume, or pass --overwrite (or delete "
                         f"{path}) to start over")


def input_changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """``source /a.hdf5 sha256 1a2b3c4d -> 5e6f7a8b`` for every input whose content differs ('' if none)."""
    parts = []
    for role in sorted(set(old) | set(new)):
        a, b = old.get(role), new.get(role)
        if a is not None and b is not None and a.get("sha256") == b.get("sha256"):
            continue
        path = (b or a or {}).get("path", "?")
        before = a["sha256"][:12] if a else "none"
        after = b["sha256"][:12] if b else "missing"
        parts.append(f"{role} {path} changed: sha256 {before} -> {after}")
    return "; ".join(parts)


def _short(diff: dict[str, Any]) -> str:
    text = json.dumps(diff, default=str)
    return text if len(text) < 400 else text[:400] + "..."


def _completed_report(out: Path, header: dict[str, Any]) -> tuple[RunReport | None, str]:
    """If ``out`` is a finished run of the same job on the same inputs, its report (a rerun is a no-op);
    else None and why not (an empty string, or e.g. ``" (made from other inputs: ...)"``)."""
    if not out.exists():
        return None, ""
    try:
        with DatasetReader(out) as reader:
            config = reader.json_attr("imgen_config") or {}
            book = reader.json_attr("imgen_bookkeeping") or {}
            stats = reader.json_attr("imgen_stats") or {}
            same = config.get("job") == header["job"] and config.get("n") == header["n"]
            if same and book.get("complete") and len(reader.demos()) == header["n"]:
                if "inputs" not in config:
                    return None, " (written before input fingerprints were recorded: its inputs cannot be verified)"
                changed = input_changes(config["inputs"], header["inputs"])
                if changed:
                    return None, f" (made from other inputs: {changed})"
                return RunReport(out, header["n"], int(stats.get("attempts", 0)), stats.get("outcomes", {}),
                                 0.0, 0, stats.get("timing", {}), already_complete=True), ""
    except (OSError, ValueError, KeyError, AttributeError, TypeError):  # not a finished run of ours
        return None, ""
    return None, ""


def _progress_bar(options: RunOptions, job: GenerationJob):
    if not options.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=options.n, desc=f"{job.kind} {job.task}", unit="ep", dynamic_ncols=True)


def _update_bar(bar, committer: _Committer, t0: float) -> None:
    if bar is None:
        return
    bar.update(committer.kept - bar.n)
    minutes = max(time.perf_counter() - t0, 1e-9) / 60.0
    attempts = committer.next_attempt
    bar.set_postfix(attempts=attempts, rate=f"{committer.kept / max(attempts, 1):.0%}",
                    eps_min=f"{bar.n / minutes:.0f}" if bar.n else "-", refresh=False)
