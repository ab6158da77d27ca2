"""``imgen generate``: MimicGen demos from source demos, I-MG interventions from source interventions."""

from __future__ import annotations

import argparse
from pathlib import Path

from imgen_ros.cli._args import EPISODES, SEED, WORKERS, bounded_float, bounded_int, path_arg
from imgen_ros.cli.main import CliError
from imgen_ros.datagen.episodes import (
    DEFAULT_REVEAL_GRACE_STEPS,
    DEFAULT_SELECTION,
    REVEAL_GRACE_RANGE,
    GenerationParams,
)
from imgen_ros.datagen.executors import EXECUTORS
from imgen_ros.datagen.job import GenerationJob
from imgen_ros.datagen.replay import ReplayConfig
from imgen_ros.datagen.runner import RunOptions, run_generation
from imgen_ros.datagen.sources import SELECTION_STRATEGIES

ACTION_NOISE = bounded_float(0.0, 1.0)
STEPS = bounded_int(0, 1000)
NN_K = bounded_int(1, 1000)
VIDEOS = bounded_int(0, 100, "max set by disk")
MAX_ATTEMPTS = bounded_int(1, 10_000_000)
MAX_INSTANCES = bounded_int(1, 100)
GRACE_STEPS = bounded_int(*REVEAL_GRACE_RANGE)


def _job(args: argparse.Namespace, kind: str) -> GenerationJob:
    from imgen_ros.sim import TASK_NAMES

    if args.task not in TASK_NAMES:
        raise CliError(f"unknown task {args.task!r}; valid tasks: {', '.join(TASK_NAMES)}")
    source = Path(args.source)
    if not source.is_file():
        what = ("is a directory, not an hdf5 file" if source.is_dir() else
                "not a regular file" if source.exists() else "no such file")
        raise CliError(f"--source {source}: {what}")
    params = GenerationParams(
        replay=ReplayConfig(action_noise=args.action_noise, num_interp_steps=args.interp_steps,
                            num_fixed_steps=args.fixed_steps, hold_steps=args.hold_steps,
                            drop_holds=args.drop_holds),
        selection=args.selection, nn_k=args.nn_k,  # None: the library's default for the kind
        policy_execution=not getattr(args, "no_policy_execution", False),
        max_instances=getattr(args, "max_instances", 4),
        reveal_grace_steps=getattr(args, "reveal_grace_steps", DEFAULT_REVEAL_GRACE_STEPS))
    policy = getattr(args, "policy", None)
    if policy not in (None, "expert"):
        policy = str(Path(policy).resolve())
        _check_checkpoint(policy, args.task, args.observability)
    try:
        return GenerationJob(kind=kind, task=args.task, source=str(source.resolve()), seed=args.seed, policy=policy,
                             noise=args.noise,
                             observability=args.observability, source_mask=args.source_mask, params=params)
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def _mask_name(text: str) -> str:
    """An argparse ``type`` for ``--source-mask``: refuses an empty or blank name (``mask/`` is the group)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a mask name, got an empty string")
    return text


def _check_checkpoint(path: str, task: str, observability: str) -> None:
    """Refuse a checkpoint of another task/observation layout here, before any worker starts."""
    from imgen_ros.policy.checkpoint import CheckpointError, load_checked, task_obs_shapes

    try:
        load_checked(path, task, task_obs_shapes(task, observability), observability=observability)
    except CheckpointError as exc:
        raise CliError(str(exc)) from exc


def run(args: argparse.Namespace) -> int:
    job = _job(args, args.kind)
    options = RunOptions(n=args.n, workers=args.workers, executor=args.executor, address=args.address,
                         progress=not args.quiet, overwrite=args.overwrite, max_attempts=args.max_attempts)
    try:
        report = run_generation(job, args.out, options)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as exc:
        raise CliError(str(exc)) from exc
    if report.already_complete:
        print(f"{args.out} is already complete ({report.kept} episodes); nothing to do")
        return 0
    rate = report.kept / report.wall_s * 60 if report.wall_s > 0 else float("nan")
    print(f"wrote {args.out}: {report.kept} episodes from {report.attempts} attempts "
          f"(success {report.success_rate:.1%}, {rate:.0f} eps/min, outcomes {report.outcomes}"
          + (f", resumed {report.resumed_attempts} journaled attempts" if report.resumed_attempts else "") + ")")
    if args.videos:
        from imgen_ros.datagen.videos import write_videos

        for path in write_videos(job, args.out, args.videos):
            print(f"video: {path}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True)
    p.add_argument("--source", required=True, type=path_arg, help="source hdf5 (imgen collect ...)")
    p.add_argument("--n", type=EPISODES, required=True,
                   help=EPISODES.doc("episodes to generate (kept, i.e. successful)"))
    p.add_argument("--out", required=True, type=path_arg)
    p.add_argument("--seed", type=SEED, default=0, help=SEED.doc("default 0"))
    p.add_argument("--workers", type=WORKERS, default=1, help=WORKERS.doc("default 1"))
    p.add_argument("--executor", choices=EXECUTORS, default="local")
    p.add_argument("--address", default=None, help="Ray cluster address (default: a private local instance)")
    p.add_argument("--action-noise", type=ACTION_NOISE, default=0.05,
                   help=ACTION_NOISE.doc("std of the noise on normalized replayed actions (default 0.05)"))
    p.add_argument("--interp-steps", type=STEPS, default=5, help=STEPS.doc("default 5"))
    p.add_argument("--fixed-steps", type=STEPS, default=0, help=STEPS.doc("default 0"))
    p.add_argument("--hold-steps", type=STEPS, default=10,
                   help=STEPS.doc("after the final segment, hold its last pose up to this many steps until success"))
    p.add_argument("--drop-holds", action="store_true",
                   help="replay the sources without the steps where the person held still (commanded motion under "
                        "1 mm and 0.01 rad, gripper settled); default: every source step, as MimicGen")
    p.add_argument("--selection", choices=SELECTION_STRATEGIES, default=None,
                   help="source segment choice (default: "
                        + ", ".join(f"{v} for {k}" for k, v in DEFAULT_SELECTION.items()) + ")")
    p.add_argument("--nn-k", type=NN_K, default=3, help=NN_K.doc("nearest sources to draw from (default 3)"))
    p.add_argument("--source-mask", default=None, type=_mask_name, help="use only the source demos in mask/<name>")
    p.add_argument("--observability", default="full", choices=("full", "partial", "none"))
    p.add_argument("--noise", default=None, choices=("on", "off"),
                   help="pose corruption of the generated scenes (default: off for mimicgen, on for imgen); "
                        "mimicgen with 'on' records demos in the test environment (the MG Demo baseline)")
    p.add_argument("--videos", type=VIDEOS, default=0, metavar="K",
                   help=VIDEOS.doc("render K successes and K failures (mp4)"))
    p.add_argument("--max-attempts", type=MAX_ATTEMPTS, default=None,
                   help=MAX_ATTEMPTS.doc("give up after this many (default 50 n + 100)"))
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out (kept until the new file is complete) and discard an interrupted "
                        "run of other settings or inputs; never allowed when --out is the --source or --policy file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("generate", help="generate data: mimicgen (demos) or imgen (interventions)")
    sub = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    mg = sub.add_parser("mimicgen", help="MimicGen: full demos from source demos")
    _common(mg)
    ig = sub.add_parser("imgen", help="Interventional MimicGen (Algorithm 1) from source interventions")
    _common(ig)
    ig.add_argument("--policy", default="expert", type=path_arg,
                    help="expert (naive expert on observed poses) or a checkpoint")
    ig.add_argument("--no-policy-execution", action="store_true",
                    help="ablation: replay the source mistake open-loop instead of running the policy")
    ig.add_argument("--max-instances", type=MAX_INSTANCES, default=4,
                    help=MAX_INSTANCES.doc("mistake/recovery instances per episode (default 4)"))
    ig.add_argument("--reveal-grace-steps", type=GRACE_STEPS, default=DEFAULT_REVEAL_GRACE_STEPS,
                    help=GRACE_STEPS.doc("after the mistake detector fires, run the policy up to this many steps "
                                         "more until the robot's contact detector opens the observation channel "
                                         "(tasks with one: block_grasp; default 2)"))
