"""``imgen eval``: success rate of a policy in a sim task under corruption, with a Wilson 95 % interval."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imgen_ros.cli._args import EPISODES, SEED, THREADS, bounded_int, device_arg, device_unavailable, path_arg
from imgen_ros.cli.main import CliError
from imgen_ros.policy.batch_rollout import DEFAULT_EVAL_BATCH, MAX_EVAL_BATCH

VIDEOS = bounded_int(0, 1000, "max set by disk")
BATCH = bounded_int(1, MAX_EVAL_BATCH, "each env holds ~50 MB")


def run(args: argparse.Namespace) -> int:
    import torch

    from imgen_ros.policy.evaluate import EVAL_SEED_BASE, evaluate

    torch.set_num_threads(args.threads)

    if args.trials <= 0:
        raise CliError(f"--trials must be > 0, got {args.trials}")
    if args.videos < 0:
        raise CliError(f"--videos must be >= 0, got {args.videos}")
    unavailable = device_unavailable(args.device)  # refused for the scripted expert too
    if unavailable:
        raise CliError(unavailable)
    video_dir = Path(args.video_dir) if args.video_dir else Path(args.policy).parent / "videos"

    tty = sys.stdout.isatty()

    def progress(done: int, total: int, successes: int) -> None:
        if args.json:
            return
        if tty:
            print(f"\rtrial {done}/{total}: {successes} successes", end="" if done < total else "\n", flush=True)
        elif done % 10 == 0 or done == total:
            print(f"trial {done}/{total}: {successes} successes", flush=True)

    try:
        result = evaluate(args.task, args.policy, trials=args.trials, noise=args.noise,
                          observability=args.observability,
                          seed_base=EVAL_SEED_BASE if args.seed_base is None else args.seed_base,
                          videos=args.videos, video_dir=video_dir, device=args.device, progress=progress,
                          batch=args.batch, overwrite=args.overwrite)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        out = result.to_dict()
        out["per_trial"] = [t.__dict__ for t in result.per_trial]
        print(json.dumps(out))
        if result.task_changed():
            print(result.task_changed(), file=sys.stderr)
    else:
        print(result.summary())
        for path in result.videos:
            print(f"video: {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a policy (checkpoint or scripted expert) in a sim task")
    parser.add_argument("--task", required=True)
    parser.add_argument("--policy", required=True, type=path_arg,
                        help="robomimic checkpoint (.pth), 'expert' (naive: observed poses) or 'expert:true'")
    parser.add_argument("--trials", type=EPISODES, default=50, help=EPISODES.doc("rollouts (default 50)"))
    parser.add_argument("--noise", default="on", help="pose corruption: on, off (or mixture for nut_peg_assembly)")
    parser.add_argument("--observability", default="full", choices=("full", "partial", "none"))
    parser.add_argument("--seed-base", type=SEED, default=None,
                        help=SEED.doc("trial i uses seed base+i (default 1000000)"))
    parser.add_argument("--videos", type=VIDEOS, default=0, help=VIDEOS.doc("record the first K trials as mp4"))
    parser.add_argument("--video-dir", default=None, type=path_arg,
                        help="where videos go (default: <policy dir>/videos)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing trial_<seed>.mp4 videos (refused before any trial otherwise)")
    parser.add_argument("--device", default="cpu", type=device_arg,
                        help="torch device of a checkpoint: cpu (default) or cuda[:N]")
    parser.add_argument("--batch", type=BATCH, default=DEFAULT_EVAL_BATCH,
                        help=BATCH.doc(f"envs rolled out side by side for a BC-RNN checkpoint, one batched "
                                       f"forward pass per step (default {DEFAULT_EVAL_BATCH}; 1: one at a time)"))
    parser.add_argument("--threads", type=THREADS, default=1,
                        help=THREADS.doc("torch CPU threads (default 1: batch-1 LSTM inference is fastest "
                                         "single-threaded)"))
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)
