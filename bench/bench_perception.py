"""ICP cube pose on simulated D415 depth in the FR3 block_grasp world: error and time per frame.

    scripts/with-env python bench/bench_perception.py [--placements 40] [--noise on|off]

1. Static placements: block_grasp scenes (seeded), cube yaw randomized, one noisy D415 frame each,
   a fresh estimator per frame (no temporal help).
2. A grasp episode: the privileged scripted expert reaches, grasps and lifts the cube while the
   estimator runs on every 20 Hz frame (the hand approaches and occludes the cube).
Errors are modulo the cube's symmetry; times are the estimator only (rendering excluded), on this
machine's CPU (see the printed platform line).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections import Counter

import numpy as np
from scipy.spatial.transform import Rotation

os.environ.setdefault("MUJOCO_GL", "egl")

from imgen_ros.perception.cube_model import symmetric_rotation_error
from imgen_ros.perception.estimator import CubePoseEstimator, CubePoseEstimatorConfig
from imgen_ros.sim import TaskEnv
from imgen_ros.sim.cameras import D415Config, D415DepthCamera, DepthNoiseConfig, add_d415_to_spec
from imgen_ros.sim.expert import ScriptedExpert
from imgen_ros.sim.tasks import block_grasp
from imgen_ros.sim.tasks.common import set_free_pose


def make_world(noise: bool) -> tuple[TaskEnv, D415DepthCamera]:
    task = block_grasp.TASK("off")
    config = D415Config(noise=DepthNoiseConfig(enabled=noise))
    build = task.build

    def build_with_camera(spec) -> None:
        build(spec)
        add_d415_to_spec(spec, config)

    task.build = build_with_camera
    env = TaskEnv(task)
    return env, D415DepthCamera(env.model, config, seed=0)


def errors(pose: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    return (float(np.linalg.norm(pose[:3, 3] - truth[:3, 3])) * 1000.0,
            math.degrees(symmetric_rotation_error(pose[:3, :3], truth[:3, :3])))


def summary(name: str, values: list[float], unit: str) -> str:
    if not values:
        return f"  {name}: (none)"
    v = np.asarray(values)
    return (f"  {name}: mean {v.mean():.2f} {unit}, median {np.median(v):.2f}, p95 {np.percentile(v, 95):.2f}, "
            f"max {v.max():.2f} (n={len(v)})")


def static_placements(env: TaskEnv, camera: D415DepthCamera, count: int) -> None:
    rng = np.random.default_rng(123)
    trans, rot, times, reasons = [], [], [], Counter()
    for seed in range(count):
        env.reset(seed)
        cube = env.object_poses()["cube"]
        yaw = rng.uniform(-math.pi, math.pi)
        set_free_pose(env, "cube", cube[:3, 3], Rotation.from_euler("z", yaw).as_quat(scalar_first=True))
        env.step(np.zeros(7) - np.eye(7)[6])  # one control step: settle, gripper open
        truth = env.object_poses()["cube"]
        frame = camera.capture(env.data)
        estimator = CubePoseEstimator(CubePoseEstimatorConfig().with_camera_pose(frame.base_from_optical))
        est = estimator.estimate(frame.depth_m, frame.info, frame.stamp_s)
        times.append(est.compute_s * 1000.0)
        reasons[est.reason.value] += 1
        if est.valid:
            mm, deg = errors(est.pose, truth)
            trans.append(mm)
            rot.append(deg)
    print(f"static placements: {count} scenes, valid {reasons['ok']}/{count}, reasons {dict(reasons)}")
    print(summary("translation error", trans, "mm"))
    print(summary("rotation error", rot, "deg"))
    print(summary("time per frame", times, "ms"))


def grasp_episode(env: TaskEnv, camera: D415DepthCamera) -> None:
    env.reset(0)
    expert = ScriptedExpert(env, use_true_poses=True)
    frame = camera.capture(env.data)
    estimator = CubePoseEstimator(CubePoseEstimatorConfig().with_camera_pose(frame.base_from_optical))
    trans, times, reasons = [], [], Counter()
    steps = 0
    for _ in range(env.horizon):
        _, _, done, info = env.step(expert.act(env.observation()))
        steps += 1
        frame = camera.capture(env.data)
        est = estimator.estimate(frame.depth_m, frame.info, frame.stamp_s)
        times.append(est.compute_s * 1000.0)
        reasons[est.reason.value] += 1
        if est.valid:
            trans.append(errors(est.pose, env.object_poses()["cube"])[0])
        if done:
            break
    print(f"grasp episode: {steps} steps, success {info['success']}, valid {reasons['ok']}/{steps}, "
          f"reasons {dict(reasons)}")
    print(summary("translation error (valid frames)", trans, "mm"))
    print(summary("time per frame", times, "ms"))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--placements", type=int, default=40)
    parser.add_argument("--noise", choices=("on", "off"), default="on")
    args = parser.parse_args(argv)
    print(f"platform: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python "
          f"{platform.python_version()}; D415 640x480, noise {args.noise}")
    env, camera = make_world(args.noise == "on")
    t0 = time.perf_counter()
    try:
        static_placements(env, camera, args.placements)
        grasp_episode(env, camera)
    finally:
        camera.close()
        env.close()
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
