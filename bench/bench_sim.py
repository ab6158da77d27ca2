"""Simulation speed: control steps per second on one core, per task, and the ratio to raw ``mj_step``.

For each task: privileged-expert episodes (free motion + contacts, as in data generation) are timed
through ``TaskEnv.step`` (IK, set-point interpolation, physics, observation, contact checks). The
same episodes are then replayed as physics only — the recorded servo/gripper commands written to
``ctrl`` and ``mj_step`` called ``n_substeps`` times per control step — giving the raw rate of the
same scene. ``ratio`` = control steps/s divided by (raw mj_step/s / n_substeps): the share of the
physics-only bound the full environment reaches. Times are CPU time of this process
(``time.process_time``), i.e. per core, so other load on the machine does not distort them much.

    scripts/with-env python bench/bench_sim.py [--episodes N] [--tasks a,b]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import mujoco
from imgen_ros.sim import TASK_NAMES, make_env
from imgen_ros.sim.expert import ScriptedExpert


def bench_task(task: str, episodes: int) -> dict[str, float]:
    env = make_env(task, noise="off")
    expert = ScriptedExpert(env, use_true_poses=True)
    m, d = env.model, env.data
    starts, ctrls = [], []
    steps, step_time, reset_time = 0, 0.0, 0.0
    for seed in range(episodes):
        t0 = time.process_time()
        obs = env.reset(seed)
        reset_time += time.process_time() - t0
        expert.reset()
        starts.append(env.get_state())
        episode_ctrl = []
        done = False
        while not done:
            action = expert.act(obs)
            t0 = time.process_time()
            obs, _, done, _ = env.step(action)
            step_time += time.process_time() - t0
            episode_ctrl.append(d.ctrl.copy())
            steps += 1
        ctrls.append(episode_ctrl)
    # physics-only replay of the same episodes
    raw_time, raw_substeps = 0.0, 0
    for state, episode_ctrl in zip(starts, ctrls, strict=True):
        env.set_state(state)
        for ctrl in episode_ctrl:
            d.ctrl[:] = ctrl
            t0 = time.process_time()
            mujoco.mj_step(m, d, env.n_substeps)
            raw_time += time.process_time() - t0
            raw_substeps += env.n_substeps
    env.close()
    control_rate = steps / step_time
    raw_rate = raw_substeps / raw_time
    return {
        "task": task, "episodes": episodes, "control_steps": steps,
        "control_steps_per_s": round(control_rate, 1),
        "control_steps_per_s_incl_reset": round(steps / (step_time + reset_time), 1),
        "raw_mj_step_per_s": round(raw_rate, 1),
        "raw_bound_control_steps_per_s": round(raw_rate / env.n_substeps, 1),
        "ratio_to_raw": round(control_rate / (raw_rate / env.n_substeps), 3),
        "substeps_per_control_step": env.n_substeps,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--tasks", default=",".join(TASK_NAMES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print(f"one process (one core); machine has {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}")
    for task in args.tasks.split(","):
        try:
            row = bench_task(task, args.episodes)
        except ImportError as exc:
            print(f"{task}: not available ({exc})")
            continue
        if args.json:
            print(json.dumps(row))
        else:
            print(f"{task:20s} {row['control_steps_per_s']:8.0f} control steps/s "
                  f"({row['control_steps_per_s_incl_reset']:.0f} incl. resets) | raw mj_step "
                  f"{row['raw_mj_step_per_s']:.0f}/s = {row['raw_bound_control_steps_per_s']:.0f} control steps/s "
                  f"| ratio {row['ratio_to_raw']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
