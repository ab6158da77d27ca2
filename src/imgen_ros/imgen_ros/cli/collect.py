"""``imgen collect``: source demonstrations and human-gated interventions into a robomimic hdf5.

Episodes are appended (flushed each) to ``<out>.partial``, marked incomplete, and the file moves to
``<out>`` when all were collected; an interrupted or failed collection keeps the partial file (if
it holds episodes) and names it. See imgen_ros.data.outputs for the overwrite rules.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imgen_ros.cli._args import EPISODES, SEED, path_arg
from imgen_ros.cli.main import CliError
from imgen_ros.datagen.collect import DEFAULT_HUMAN, HUMAN_MODELS, CollectConfig, collect


def _episodes_in(path: Path) -> int:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return sum(1 for k in f["data"] if k.startswith("demo_")) if "data" in f else 0
    except OSError:
        return 0


def run(args: argparse.Namespace) -> int:
    from imgen_ros.data.outputs import OutputError, prepare_partial, publish, remove_created
    from imgen_ros.sim import TASK_NAMES

    if args.task not in TASK_NAMES:
        raise CliError(f"unknown task {args.task!r}; valid tasks: {', '.join(TASK_NAMES)}")
    out = Path(args.out)
    inputs = [args.policy] if Path(args.policy).is_file() else []
    try:
        partial, created = prepare_partial(out, overwrite=args.overwrite, inputs=inputs,
                                           what="an interrupted collection's")
    except OutputError as exc:
        raise CliError(str(exc)) from exc
    config = CollectConfig(task=args.task, kind=args.kind, policy=args.policy, episodes=args.episodes, seed=args.seed,
                           observability=args.observability, human=args.human)

    def report(attempts: int, kept: int, success: bool) -> None:
        if not args.quiet:
            print(f"\rattempt {attempts}: {kept}/{config.episodes} kept", end="", file=sys.stderr, flush=True)

    try:
        stats = collect(config, partial, on_episode=report)
    except BaseException as exc:
        if not args.quiet:
            print(file=sys.stderr)
        kept = _episodes_in(partial)
        if kept:
            print(f"imgen: {kept} collected episodes kept in {partial} (marked incomplete)", file=sys.stderr)
        else:
            partial.unlink(missing_ok=True)
            remove_created(created)
        if isinstance(exc, (ValueError, FileNotFoundError, RuntimeError)):
            raise CliError(str(exc)) from exc
        raise
    if not args.quiet:
        print(file=sys.stderr)
    try:
        publish(partial, out, overwrite=args.overwrite)
    except OutputError as exc:
        raise CliError(str(exc)) from exc
    print(f"wrote {out}: {stats['kept']} {args.kind} from {stats['attempts']} attempts ({stats['outcomes']})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("collect", help="collect source demos or interventions (simulation)")
    sub = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    helps = {"demos": "full demonstrations: true poses, no corruption (action_modes -1)",
             "interventions": "policy under corruption, the human takes over (action_modes 0 robot / 1 human)"}
    policies = {"demos": "expert | keyboard | spacemouse",
                "interventions": "expert | CHECKPOINT | keyboard | spacemouse"}
    for kind in ("demos", "interventions"):
        p = sub.add_parser(kind, help=helps[kind])
        p.add_argument("--task", required=True)
        p.add_argument("--policy", default="expert", help=policies[kind] + " (default expert)")
        p.add_argument("--episodes", type=EPISODES, default=10, help=EPISODES.doc("episodes to keep (default 10)"))
        p.add_argument("--out", required=True, type=path_arg)
        p.add_argument("--seed", type=SEED, default=0, help=SEED.doc("default 0"))
        p.add_argument("--observability", default="full", choices=("full", "partial", "none"))
        p.add_argument("--human", default=DEFAULT_HUMAN, choices=HUMAN_MODELS,
                       help="simulated human (with --policy expert / CHECKPOINT): operator (default; sees failures, "
                            "reacts after ~0.5 s, moves like a teleoperator) or oracle (scripted expert taking over "
                            "on the generator's mistake detector)")
        p.add_argument("--overwrite", action="store_true",
                       help="replace an existing --out (kept until the new file is complete) and a leftover "
                            "--out.partial")
        p.add_argument("--quiet", action="store_true")
        p.set_defaults(func=run)
