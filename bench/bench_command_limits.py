"""Per-step commands of trained policies in evaluation: how large they get, and how many a set of
safety step limits would clip (the real arbiter's limits must leave normal behaviour unclipped).

    scripts/with-env python bench/bench_command_limits.py CHECKPOINT... [--trials 20] \\
        [--limits 0.03:0.3 0.07:0.6]

Rolls each checkpoint out closed-loop in simulated Block Grasp with the pose noise on (the
evaluation setting, ``imgen eval`` seeds) and records every command as the robot would receive it:
translation norm [m] and rotation angle [rad] per 20 Hz step, after the learning code's per-axis
clip to the action scale (5 cm / 0.5 rad). Prints p50/p99/p99.9/max per checkpoint and over all,
and the share of steps each ``translation:rotation`` limit pair would clip. No assertions.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="robomimic .pth checkpoints (or 'expert')")
    parser.add_argument("--task", default="block_grasp")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--limits", nargs="+", default=["0.03:0.3", "0.05:0.5", "0.07:0.6"],
                        help="translation_m:rotation_rad pairs to count clips for")
    args = parser.parse_args(argv)

    from imgen_ros.core.action import action_to_delta
    from imgen_ros.policy.evaluate import EVAL_SEED_BASE, load_policy, run_episode
    from imgen_ros.sim import make_env

    limits = [tuple(float(v) for v in pair.split(":")) for pair in args.limits]
    env = make_env(args.task, noise="on")
    everything: list[tuple[float, float]] = []
    try:
        for spec in args.checkpoints:
            policy = load_policy(spec, env)
            steps: list[tuple[float, float]] = []
            act = policy.act

            def recording_act(obs, act=act, steps=steps):
                action = act(obs)
                translation, rotation, _ = action_to_delta(action)
                steps.append((float(np.linalg.norm(translation)), float(np.linalg.norm(rotation))))
                return action

            policy.act = recording_act
            successes = sum(run_episode(env, policy, EVAL_SEED_BASE + i).success for i in range(args.trials))
            everything += steps
            report(f"{spec} ({successes}/{args.trials} successes)", steps, limits)
    finally:
        env.close()
    if len(args.checkpoints) > 1:
        report("all checkpoints", everything, limits)
    return 0


def report(name: str, steps: list[tuple[float, float]], limits: list[tuple[float, float]]) -> None:
    t = np.array([s[0] for s in steps]) * 1e3
    r = np.array([s[1] for s in steps])
    q = (50, 99, 99.9)
    print(f"{name}: {len(steps)} steps")
    print("  translation [mm]: " + ", ".join(f"p{p} {np.percentile(t, p):.1f}" for p in q) + f", max {t.max():.1f}")
    print("  rotation [rad]:   " + ", ".join(f"p{p} {np.percentile(r, p):.3f}" for p in q) + f", max {r.max():.3f}")
    for lt, lr in limits:
        clipped = np.mean((t > lt * 1e3) | (r > lr))
        print(f"  limits {lt * 100:.0f} cm / {lr} rad: {clipped:.2%} of steps clipped")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
