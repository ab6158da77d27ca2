"""``imgen experiment NAME --scale smoke|demo|paper --out DIR``: reproduce one of the paper's tables."""

from __future__ import annotations

import argparse
import sys
import time

from imgen_ros.cli.main import CliError

NAMES = ("block_grasp", "table1", "table2", "table3", "scaling", "budget")


def run(args: argparse.Namespace) -> int:
    from imgen_ros.policy.experiment import run_experiment

    def progress(message: str) -> None:
        print(message, flush=True)

    t0 = time.monotonic()
    try:
        summary = run_experiment(args.name, args.scale, args.out, seed=args.seed, workers=args.workers,
                                 progress=progress)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    except RuntimeError as exc:
        print(f"imgen experiment: {exc}", file=sys.stderr)
        return 1
    print()
    print(summary["table"])
    print(f"\nwall time {(time.monotonic() - t0) / 60:.1f} min; results: {args.out}/results.md, results.json, "
          "results.png")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "experiment", help="reproduce a paper table: build every dataset variant, train, evaluate, report",
        description="block_grasp (Table 4 sim), table1 (Nut Insertion, 2-Pc Assembly, Coffee), table2 (Nut-and-Peg "
                    "geometry), table3 (partial observability), scaling (I-MG size), budget (human vs I-MG). "
                    "Finished steps are reused when rerun with the same arguments.")
    parser.add_argument("name", choices=NAMES)
    parser.add_argument("--scale", default="demo", choices=("smoke", "demo", "paper"),
                        help="smoke: proves the pipeline in minutes; demo: the main job; paper: the paper's protocol")
    parser.add_argument("--out", required=True, help="output directory (data, checkpoints, logs, results.*)")
    parser.add_argument("--seed", type=int, default=0, help="experiment seed (data 1000*seed+k, training seed+1)")
    parser.add_argument("--workers", type=int, default=None, help="concurrent single-core steps (default: 2)")
    parser.set_defaults(func=run)
