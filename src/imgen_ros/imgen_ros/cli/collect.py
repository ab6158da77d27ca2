"""``imgen collect``: source demonstrations and human-gated interventions into a robomimic hdf5."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imgen_ros.cli.main import CliError
from imgen_ros.datagen.collect import CollectConfig, collect


def run(args: argparse.Namespace) -> int:
    from imgen_ros.sim import TASK_NAMES

    if args.task not in TASK_NAMES:
        raise CliError(f"unknown task {args.task!r}; valid tasks: {', '.join(TASK_NAMES)}")
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise CliError(f"{out} exists; pass --overwrite to replace it")
    config = CollectConfig(task=args.task, kind=args.kind, policy=args.policy, episodes=args.episodes, seed=args.seed,
                           observability=args.observability)

    def report(attempts: int, kept: int, success: bool) -> None:
        if not args.quiet:
            print(f"\rattempt {attempts}: {kept}/{config.episodes} kept", end="", file=sys.stderr, flush=True)

    try:
        stats = collect(config, out, on_episode=report)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise CliError(str(exc)) from exc
    finally:
        if not args.quiet:
            print(file=sys.stderr)
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
        p.add_argument("--episodes", type=int, default=10, help="episodes to keep (default 10)")
        p.add_argument("--out", required=True)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--observability", default="full", choices=("full", "partial", "none"))
        p.add_argument("--overwrite", action="store_true")
        p.add_argument("--quiet", action="store_true")
        p.set_defaults(func=run)
