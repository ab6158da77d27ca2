"""Simulated D415 and offscreen rendering cost in an FR3 task scene, per 640 x 480 frame.

    scripts/with-env python bench/bench_cameras.py [--task block_grasp] [--frames 40]

Figures (ms per frame, median over ``--frames`` after one warm-up): ideal depth render, the noise
model alone, a full noisy ``D415DepthCamera.capture``, capture with the aligned RGB image, RGB with
and without shadows, and MP4 encoding of one frame. CPU rendering (llvmpipe via EGL) on this
machine: other processes sharing the cores inflate the numbers (the load average is printed).
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from imgen_ros.sim import TASK_NAMES, TaskEnv
from imgen_ros.sim.cameras import (
    D415Config,
    D415DepthCamera,
    OffscreenRenderer,
    add_d415_to_spec,
    apply_depth_noise,
)
from imgen_ros.sim.video import VideoWriter


def env_with_d415(task: str, config: D415Config) -> TaskEnv:
    task_obj = importlib.import_module(f"imgen_ros.sim.tasks.{task}").TASK("off")
    build = task_obj.build

    def build_with_camera(spec) -> None:
        build(spec)
        add_d415_to_spec(spec, config)

    task_obj.build = build_with_camera
    return TaskEnv(task_obj)


def median_ms(fn: Callable[[], object], frames: int) -> float:
    fn()
    times = []
    for _ in range(frames):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="block_grasp", choices=TASK_NAMES)
    parser.add_argument("--frames", type=int, default=40)
    args = parser.parse_args(argv)

    config = D415Config()
    env = env_with_d415(args.task, config)
    env.reset(0)
    info = config.info
    renderer = OffscreenRenderer(env.model)
    shadow_renderer = OffscreenRenderer(env.model, shadows=True)
    camera = D415DepthCamera(env.model, config, seed=0, renderer=renderer)
    ideal = camera.ideal_depth(env.data)
    rng = np.random.default_rng(0)
    rows = [
        ("ideal depth render", median_ms(lambda: camera.ideal_depth(env.data), args.frames)),
        ("noise model only", median_ms(lambda: apply_depth_noise(ideal, info, config.noise, rng), args.frames)),
        ("D415 capture (noisy depth)", median_ms(lambda: camera.capture(env.data), args.frames)),
        ("D415 capture + aligned RGB", median_ms(lambda: camera.capture(env.data, with_rgb=True), args.frames)),
        ("RGB, shadows off", median_ms(lambda: renderer.rgb(env.data, "d415", 640, 480), args.frames)),
        ("RGB, shadows on", median_ms(lambda: shadow_renderer.rgb(env.data, "d415", 640, 480), args.frames)),
    ]
    frame = renderer.rgb(env.data, "d415", 640, 480)
    with tempfile.TemporaryDirectory() as tmp, VideoWriter(Path(tmp) / "bench.mp4") as writer:
        rows.append(("MP4 encode one frame", median_ms(lambda: writer.append(frame), args.frames)))
    renderer.close()
    shadow_renderer.close()
    env.close()

    print(f"platform: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"load average {os.getloadavg()[0]:.2f}; MUJOCO_GL={os.environ.get('MUJOCO_GL')}")
    print(f"scene: {args.task} + D415 {info.width}x{info.height} fx={info.fx}; {args.frames} frames each")
    for name, ms in rows:
        print(f"  {name:<30s} {ms:8.2f} ms/frame  ({1000.0 / ms:6.1f} fps)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
