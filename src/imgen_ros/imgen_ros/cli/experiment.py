"""``imgen experiment NAME --scale smoke|demo|paper --out DIR``: reproduce one of the paper's tables.

The output directory records which experiment it holds (``imgen_experiment.json``: name, scale,
seed). Rerunning with the same arguments resumes it (finished steps are reused); a non-empty
directory holding anything else (another experiment, other arguments, unrelated files) is refused
unless ``--overwrite``. With ``--overwrite`` the old contents are moved aside to
``DIR.replaced-<time>`` first, the new experiment runs in ``DIR`` (a directory moved as a whole
stays resumable: its step records name the directory they were written in), and the old contents are
deleted only after it succeeded; if it fails, they stay in ``DIR.replaced-<time>`` (named on
stderr), or move back when the new run produced nothing. One ``imgen experiment`` at a time may run
in a directory: a second one is refused while the first holds its lock.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from imgen_ros.cli._args import WORKERS, bounded_int, path_arg
from imgen_ros.cli.main import CliError
from imgen_ros.datagen.collect import DEFAULT_HUMAN, HUMAN_MODELS
from imgen_ros.policy.experiment_spec import SCALES
from imgen_ros.policy.precision import PRECISIONS

EXPERIMENT_SEED = bounded_int(0, 1_000_000)  # data seeds are 1000 * seed + k
NAMES = ("block_grasp", "table1", "table2", "table3", "scaling", "budget", "seeds", "action_noise")
IDENTITY = "imgen_experiment.json"
LEGACY_HUMAN = "oracle"  # the human model of experiments recorded before --human existed


def found_identity(out: Path) -> dict[str, Any] | None:
    """What experiment ``out`` holds: its ``imgen_experiment.json``; for directories written before that
    file existed, from ``results.json`` (or, with only ``steps/``, unknown: ``{}``); None if none."""
    try:
        if (out / IDENTITY).is_file():
            found = json.loads((out / IDENTITY).read_text())
            return found if isinstance(found, dict) else None
        if (out / "results.json").is_file():
            r = json.loads((out / "results.json").read_text())
            found = {"experiment": r.get("experiment"), "scale": (r.get("scale") or {}).get("name"),
                     "seed": r.get("seed")}
            return {**found, "human": r["human"]} if "human" in r else found
    except (OSError, ValueError, AttributeError):
        return None
    return {} if (out / "steps").is_dir() else None


def _same(found: dict[str, Any], identity: dict[str, Any]) -> bool:
    """Same experiment; a record without ``human`` predates ``--human`` and was made by the oracle."""
    def full(d: dict[str, Any]) -> dict[str, Any]:
        return {**d, "human": d.get("human", LEGACY_HUMAN)}

    return isinstance(found, dict) and full(found) == full(identity)


def prepare_out(out: Path, identity: dict[str, Any], overwrite: bool) -> Path | None:
    """Check and claim ``out`` for the experiment ``identity``; returns where old contents were moved
    (``--overwrite`` of a non-empty directory), else None. OutputError if refused or unwritable."""
    from imgen_ros.data.outputs import OutputError, make_parents, os_error, remove_created

    if os.path.lexists(out) and not out.is_dir():
        raise OutputError(f"{out} exists and is not a directory")
    aside = None
    if out.is_dir() and any(out.iterdir()):
        found = found_identity(out)
        resumable = found is not None and (found == {} or _same(found, identity))
        if not overwrite and not resumable:
            what = (f"another experiment ({', '.join(f'{k} {v}' for k, v in found.items())})" if found
                    else "files that are not an imgen experiment")
            raise OutputError(f"{out} holds {what}; rerun with its arguments to resume it, choose another --out, or "
                              "pass --overwrite to replace it")
        if overwrite:
            aside = out.with_name(f"{out.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
            try:
                os.rename(out, aside)
            except OSError as exc:
                raise os_error(out, exc) from exc
    created = make_parents(out)
    try:
        out.mkdir(exist_ok=True)
        (out / IDENTITY).write_text(json.dumps(identity) + "\n")
    except OSError as exc:
        if aside is not None:
            shutil.rmtree(out, ignore_errors=True)
            os.rename(aside, out)
        remove_created(created)
        raise os_error(out, exc) from exc
    return aside


def _after_failure(out: Path, aside: Path | None) -> None:
    """A failed --overwrite run: put the old contents back if the new run produced nothing, else name them."""
    if aside is None:
        return
    if not (out / "steps").is_dir():
        shutil.rmtree(out, ignore_errors=True)
        os.rename(aside, out)
        return
    print(f"imgen experiment: the previous contents of {out} are kept in {aside}", file=sys.stderr)


@contextlib.contextmanager
def exclusive_run(out: Path):
    """Hold the lock of experiment directory ``out`` (a file in the system's temporary folder, named by
    the directory's resolved path, so ``--overwrite`` can move ``out`` aside); CliError while another
    process holds it."""
    name = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"imgen-experiment-{name}.lock"
    with open(path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise CliError(f"--out {out}: another imgen experiment is running there ({holder}); wait for it or "
                           "choose another --out") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        yield


def run(args: argparse.Namespace) -> int:
    with exclusive_run(Path(args.out)):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from imgen_ros.policy.experiment import build_plan, run_experiment

    def progress(message: str) -> None:
        print(message, flush=True)

    t0 = time.monotonic()
    out = Path(args.out)
    for earlier in args.reuse:
        if not (Path(earlier) / "steps").is_dir():
            raise CliError(f"--reuse {earlier}: not an imgen experiment directory (no steps/ folder)")
    try:
        plan = build_plan(args.name, args.scale, out, args.seed, human=args.human,
                          precision=args.precision)  # refuse bad arguments before --out
        identity = {"experiment": args.name, "scale": args.scale, "seed": args.seed, "human": args.human}
        if plan.precision != "fp32":  # fp32 runs keep the identity they had before --precision
            identity["precision"] = plan.precision
        aside = prepare_out(out, identity, args.overwrite)
    except ValueError as exc:  # OutputError included
        raise CliError(str(exc)) from exc
    try:
        summary = run_experiment(args.name, args.scale, args.out, seed=args.seed, workers=args.workers,
                                 progress=progress, human=args.human, reuse=tuple(args.reuse),
                                 precision=args.precision)
    except ValueError as exc:
        _after_failure(out, aside)
        raise CliError(str(exc)) from exc
    except RuntimeError as exc:
        _after_failure(out, aside)
        print(f"imgen experiment: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the disk filled, a folder turned read-only under the run
        _after_failure(out, aside)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"imgen experiment: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except BaseException:
        _after_failure(out, aside)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    print()
    print(summary["table"])
    print(f"\nwall time {(time.monotonic() - t0) / 60:.1f} min; results: {args.out}/results.md, results.json, "
          "results.png")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "experiment", help="reproduce a paper table: build every dataset variant, train, evaluate, report",
        description="block_grasp (Table 4 sim), table1 (Nut Insertion, 2-Pc Assembly, Coffee), table2 (Nut-and-Peg "
                    "geometry), table3 (partial observability), scaling (I-MG size), budget (human vs I-MG), "
                    "seeds (Nut Insertion I-MG, 3 training seeds), action_noise (Nut Insertion I-MG - Policy and "
                    "I-MG at action noise 0.05 and 0.005). "
                    "A finished step is reused when rerun with the same arguments, task definitions and inputs.")
    parser.add_argument("name", choices=NAMES)
    parser.add_argument("--scale", default="demo", choices=tuple(SCALES),
                        help="smoke: proves the pipeline in minutes; demo (default): the committed tables' "
                             "scale, 22.5k float32 gradient steps per training; fast (make demo's): demo's data "
                             "sizes and evaluation, 12k gradient steps in bf16 (float32 where the CPU has no bf16 "
                             "LSTM), sources replayed without the person's holds (block_grasp 12-15 min on 2 "
                             "AVX512-BF16 cores, ~30 min on 2 AVX2 cores; I-MG lower and more variable, "
                             "docs/results.md); paper: the paper's protocol")
    parser.add_argument("--out", required=True, type=path_arg,
                        help="output directory (data, checkpoints, logs, results.*)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a --out holding anything but this experiment (old contents deleted only after "
                             "the new run succeeded)")
    parser.add_argument("--seed", type=EXPERIMENT_SEED, default=0,
                        help=EXPERIMENT_SEED.doc("experiment seed (data 1000*seed+k, training seed+1; "
                                                 "seeds: seed+1..3)"))
    parser.add_argument("--workers", type=WORKERS, default=None,
                        help=WORKERS.doc("concurrent single-core steps (default: 2)"))
    parser.add_argument("--human", default=DEFAULT_HUMAN, choices=HUMAN_MODELS,
                        help="simulated human of the source demos and interventions: operator (default; takes over "
                             "on what it sees, late, moves like a teleoperator) or oracle (the scripted expert, "
                             "taking over on the generator's own mistake detector)")
    parser.add_argument("--precision", default=None, choices=PRECISIONS,
                        help="training precision: fp32 (as the paper; every scale's default but fast's) or bf16 (the "
                             "LSTM's gradient steps in bfloat16; ~1.5x faster training on CPUs with AVX512-BF16/AMX, "
                             "slower elsewhere; a deviation, named in the results); default: the scale's")
    parser.add_argument("--reuse", action="append", default=[], metavar="DIR", type=path_arg,
                        help="take over the finished steps of the experiment in DIR that this one would run with the "
                             "same arguments (data, base policy, trainings: e.g. seeds or action_noise on top of "
                             "table1, budget or scaling on top of table1's 2-Pc Assembly); outputs are copied "
                             "into --out, DIR is left as it is; repeatable")
    parser.set_defaults(func=run)
