"""The libfranka driver (franky) against franky-sim: delta-command accuracy and execute() latency.

    scripts/with-env scripts/netns-run python bench/bench_robot_driver.py [--commands 20]

franky-sim's per-client UDP socket binds 0.0.0.0, so this only runs inside a private network
namespace (scripts/netns-run); elsewhere it prints why and exits 0.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "robot"))
from franky_sim_server import in_private_netns
from imgen_ros.core.command import DeltaCommand
from imgen_ros.core.pose import pose_distance


def stats(values: list[float], unit: str) -> str:
    v = np.asarray(values)
    return f"mean {v.mean():.2f} {unit}, p95 {np.percentile(v, 95):.2f}, max {v.max():.2f} (n={len(v)})"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=20)
    parser.add_argument("--dynamics", type=float, default=0.2, help="relative_dynamics_factor")
    args = parser.parse_args(argv)
    if not in_private_netns():
        print("skipped: run inside scripts/netns-run (franky-sim binds 0.0.0.0)")
        return 0
    import subprocess

    from imgen_ros.robot.libfranka import LibfrankaConfig, LibfrankaDriver

    print(f"platform: {platform.machine()}, {os.cpu_count()} CPUs; franky-sim (MuJoCo) on 127.0.0.1; "
          f"relative_dynamics_factor {args.dynamics}")
    server = subprocess.Popen(["franky-sim", "-s", "mujoco", "--hostname", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        config = LibfrankaConfig(robot_ip="127.0.0.1", enforce_realtime=False, relative_dynamics_factor=args.dynamics,
                                 connect_timeout_s=60.0)
        with LibfrankaDriver(config) as driver:
            rng = np.random.default_rng(0)
            pos_err, rot_err, latency = [], [], []
            # Work around a table-top pose: 25 cm below franky-sim's start pose (whose upper
            # neighbourhood is at the edge of the reachable space: targets there stop short).
            for _ in range(5):
                driver.execute(DeltaCommand(np.array([0.0, 0.0, -0.05]), np.zeros(3), -1.0))
                driver.wait_until_settled(60.0)
            home = driver.read_state().tcp_pose
            print(f"work pose: TCP at {np.round(home[:3, 3], 3).tolist()} m; random deltas keep within 8 cm of it")
            for _ in range(args.commands):
                offset = driver.read_state().tcp_pose[:3, 3] - home[:3, 3]
                delta = np.clip(rng.uniform(-0.03, 0.03, 3), -0.08 - offset, 0.08 - offset)  # stay near home
                cmd = DeltaCommand(delta, rng.uniform(-0.15, 0.15, 3), -1.0)
                t0 = time.perf_counter()
                target = driver.execute(cmd)
                latency.append((time.perf_counter() - t0) * 1000.0)
                driver.wait_until_settled(60.0)
                dpos, dang = pose_distance(driver.read_state().tcp_pose, target)
                pos_err.append(dpos * 1000.0)
                rot_err.append(math.degrees(dang))
                if os.environ.get("BENCH_VERBOSE"):
                    print(f"    delta {np.round(delta * 1000, 1)} mm: error {dpos * 1000:.2f} mm, "
                          f"motion error '{driver.last_motion_error}'")
            print(f"single deltas (<= 3 cm, <= 0.15 rad/axis), settled: position error {stats(pos_err, 'mm')}; "
                  f"{sum(e < 5.0 for e in pos_err)}/{len(pos_err)} within 5 mm")
            print(f"  rotation error {stats(rot_err, 'deg')}")
            print(f"  execute() latency {stats(latency, 'ms')}")
            start = driver.read_state().tcp_pose
            step = DeltaCommand(np.array([0.004, 0.0, -0.002]), np.zeros(3), -1.0)
            t_next = time.perf_counter()
            for _ in range(40):
                target = driver.execute(step)
                t_next += 0.05
                time.sleep(max(0.0, t_next - time.perf_counter()))
            lag = pose_distance(driver.read_state().tcp_pose, target)[0] * 1000.0
            driver.wait_until_settled(60.0)
            end = driver.read_state().tcp_pose
            moved = np.linalg.norm(end[:3, 3] - start[:3, 3]) * 1000.0
            print(f"20 Hz stream of 40 x 4.5 mm: moved {moved:.1f} mm of {40 * 4.47:.1f} commanded; lag behind the "
                  f"last target at the last command {lag:.1f} mm; "
                  f"final error {pose_distance(end, target)[0] * 1e3:.2f} mm"
                  f"; motion errors: '{driver.last_motion_error}'")
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
