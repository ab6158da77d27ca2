"""The simulated operator against the oracle: take-over timing, speed and recovery success, per task.

For each task, ``--episodes`` corrupted scenes (seeds 0..N-1) are run by human-gated control of a
naive robot (it trusts the corrupted poses) with each human model (``imgen_ros.sim.human``):

- ``oracle``: takes over when the generator's mistake detector fires, recovers along the scripted
  expert's path (up to 4 cm per step);
- ``operator``: takes over on what it sees after a sampled reaction delay, teleoperates at <= 7.5 mm
  per step.

Two robots: ``fast``, the naive scripted expert (moves up to 4 cm per step, 0.8 m/s, so it does
a lot in a human's reaction time), and ``teleop-speed``, the same naive plan moved with the
operator's kinematics (what BC trained on the operator's demonstrations imitates; the robot of the
experiments). Printed per (task, robot, human): recovery success among episodes with a take-over,
mean take-over step, the mean delay between the first visible cue and the take-over, the largest
human step, and the mean episode length.

    scripts/with-env python bench/bench_human.py [--episodes 20] [--tasks block_grasp coffee]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from imgen_ros.sim import TASK_NAMES, make_env
from imgen_ros.sim.expert import ScriptedExpert
from imgen_ros.sim.human import HUMAN_MODELS, make_human
from imgen_ros.sim.operator import OperatorConfig, Teleoperator

ROBOTS = {"fast": lambda env: ScriptedExpert(env, use_true_poses=False),
          "teleop-speed": lambda env: Teleoperator(env, OperatorConfig(seed=99), believed=True)}


def run(task: str, robot: str, human_name: str, episodes: int) -> dict[str, float]:
    env = make_env(task, noise="on")
    human = make_human(human_name, env, ROBOTS[robot](env))
    taken = wins = 0
    takeovers, delays, lengths, biggest = [], [], [], 0.0
    for seed in range(episodes):
        obs = env.reset(seed)
        human.reset()
        done, info, step, takeover = False, {"success": False}, 0, None
        while not done:
            action = human.act(obs)
            if human.is_intervening:
                takeover = step if takeover is None else takeover
                biggest = max(biggest, float(np.linalg.norm(action[:3])) * env.scale.translation_m)
            obs, _, done, info = env.step(action)
            step += 1
        lengths.append(step)
        if takeover is not None:
            taken += 1
            wins += bool(info["success"])
            takeovers.append(takeover)
            cue = getattr(human, "cue", None)
            if cue is not None:
                delays.append(takeover - cue.step)
    env.close()
    return {"recovered": wins, "taken_over": taken, "rate": wins / taken if taken else float("nan"),
            "takeover_step": float(np.mean(takeovers)) if takeovers else float("nan"),
            "delay_steps": float(np.mean(delays)) if delays else 0.0, "max_step_mm": round(biggest * 1e3, 1),
            "length": float(np.mean(lengths))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--tasks", nargs="*", default=list(TASK_NAMES))
    args = parser.parse_args()
    figures = {}
    for task in args.tasks:
        for robot in ROBOTS:
            for human in HUMAN_MODELS[::-1]:  # oracle first
                t0 = time.perf_counter()
                r = run(task, robot, human, args.episodes)
                figures[f"{task}/{robot}/{human}"] = r
                print(f"{task:19s} robot {robot:12s} {human:8s} recovered {r['recovered']:2d}/{r['taken_over']:2d} "
                      f"({r['rate']:4.0%})  take-over at step {r['takeover_step']:5.1f}  cue->take-over "
                      f"{r['delay_steps']:4.1f} steps  max human step {r['max_step_mm']:5.1f} mm  episode "
                      f"{r['length']:5.1f} steps  ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
