"""``imgen sim video``: record episodes of the naive expert or the simulated human as one MP4.

    imgen sim video --task coffee --policy human --noise on --episodes 2 --seed 7 --out coffee.mp4

Steps where the simulated human intervenes get a red border; a successful episode ends on a
green-bordered frame held for half a second.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from imgen_ros.cli._args import MEMORY, bounded_int, path_arg
from imgen_ros.cli.main import CliError
from imgen_ros.cli.sim import _make_policy, add_episode_args, validate_episode_args

DEFAULT_CAMERA = "agentview"
SIZE = bounded_int(16, 4096, MEMORY)
FRAME_EVERY = bounded_int(1, 1000)


def run_video(args: argparse.Namespace) -> int:
    from imgen_ros.data.outputs import OutputError, atomic_file

    validate_episode_args(args)
    if args.frame_every < 1:
        raise CliError(f"--frame-every must be >= 1, got {args.frame_every}")
    if args.width <= 0 or args.height <= 0 or args.width % 16 or args.height % 16:
        raise CliError(f"--width/--height must be positive multiples of 16, got {args.width}x{args.height}")
    out = Path(args.out)
    if out.suffix.lower() != ".mp4":
        raise CliError(f"--out must be an .mp4 file, got '{out}'")
    try:  # refused up front if --out exists (without --overwrite) or cannot be written; replaced when complete
        with atomic_file(out, overwrite=args.overwrite, suffix=".mp4") as tmp:
            results, frames, wall_s = _record(args, tmp)
    except OutputError as exc:
        raise CliError(str(exc)) from exc
    successes = sum(r.success for r in results)
    summary = {"task": args.task, "policy": args.policy, "noise": args.noise, "seed": args.seed,
               "episodes": len(results), "successes": successes, "success_rate": successes / len(results),
               "frames": frames, "out": str(out), "wall_s": round(wall_s, 3)}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"wrote {out}: {frames} frames, success {successes}/{len(results)}")
    return 0


def _record(args: argparse.Namespace, path: Path) -> tuple[list, int, float]:
    """Record ``args.episodes`` episodes into the MP4 ``path``; (episode results, frames written, seconds)."""
    from imgen_ros.sim import make_env
    from imgen_ros.sim.cameras import OffscreenRenderer
    from imgen_ros.sim.video import VideoWriter, record_episode

    try:
        env = make_env(args.task, noise=args.noise, observability=args.observability)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    renderer: OffscreenRenderer | None = None
    try:
        offscreen = (env.model.vis.global_.offwidth, env.model.vis.global_.offheight)
        if args.width > offscreen[0] or args.height > offscreen[1]:
            raise CliError(f"--width/--height {args.width}x{args.height} exceed the scene's offscreen buffer "
                           f"{offscreen[0]}x{offscreen[1]}")
        try:
            env.render(args.camera, 16, 16)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        policy = _make_policy(env, args.policy, args.human)
        renderer = OffscreenRenderer(env.model, shadows=args.shadows)
        start = time.perf_counter()
        results = []
        with VideoWriter(path, fps=20.0 / args.frame_every) as writer:
            for i in range(args.episodes):
                result = record_episode(env, policy, args.seed + i, writer, args.camera, args.width, args.height,
                                        frame_every=args.frame_every, renderer=renderer)
                results.append(result)
                if not args.json:
                    print(f"episode {i} seed {result.seed}: {'success' if result.success else 'failure'} "
                          f"steps={result.steps} human_steps={result.intervention_steps}", flush=True)
            frames = writer.frames_written
        return results, frames, time.perf_counter() - start
    finally:
        if renderer is not None:
            renderer.close()
        env.close()


def register_sim(sim_subparsers: argparse._SubParsersAction) -> None:
    video = sim_subparsers.add_parser("video", help="record episodes (naive expert or simulated human) as an MP4")
    add_episode_args(video, episodes=1)
    video.add_argument("--out", required=True, type=path_arg,
                       help="output .mp4 path (written beside it, renamed into place)")
    video.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    video.add_argument("--camera", default=DEFAULT_CAMERA, help=f"scene camera (default {DEFAULT_CAMERA})")
    video.add_argument("--width", type=SIZE, default=640, help=SIZE.doc("pixels, a multiple of 16 (default 640)"))
    video.add_argument("--height", type=SIZE, default=480, help=SIZE.doc("pixels, a multiple of 16 (default 480)"))
    video.add_argument("--frame-every", type=FRAME_EVERY, default=1,
                       help=FRAME_EVERY.doc("render every Nth control step (fps = 20 / N)"))
    video.add_argument("--shadows", action="store_true", help="render shadows (~4x slower on a CPU renderer)")
    video.add_argument("--json", action="store_true", help="print one JSON summary line")
    video.set_defaults(func=run_video)
