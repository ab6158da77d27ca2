"""Input freshness at the policy's decisions with the libfranka driver: how old the robot state and
the pose estimate are when policy_node acts (LoopTiming.state_age_s / pose_age_s: decision time
minus the inputs' measurement stamps), for robot_driver publication rates, with policy_node acting
at its tick (``fresh_state_s`` 0) or on the next fresh robot state (``fresh_state_s`` 0.005).

    scripts/with-env python bench/bench_input_age.py [--rates 100 250] [--fresh-state-s 0 0.005] [--seconds 10]

Starts franky-sim (the libfranka protocol served from MuJoCo on 127.0.0.1), robot_driver
(``driver: libfranka``) at each ``state_rate_hz``, policy_node (the scripted expert) and a stand-in
estimator publishing the cube pose at 30 Hz (the D415's frame rate), as separate processes in a
private network namespace (re-executes itself under scripts/netns-run). Prints p50/p99/max of
both ages and the robot_driver's CPU share per rate. Nothing moves the arm: no arbiter runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from bench_ros import ensure_netns, pct  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node(module: str, *params: str) -> list[str]:
    cmd = [sys.executable, "-m", f"imgen_ros.nodes.{module}", "--ros-args"]
    for p in params:
        cmd += ["-p", p]
    return cmd


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 250.0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fresh-state-s", type=float, nargs="+", default=[0.0, 0.005],
                        help="policy_node fresh_state_s values to compare (0: act at the tick)")
    args = parser.parse_args()
    ensure_netns()
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

    import numpy as np
    import rclpy
    from imgen_ros.core import topics
    from imgen_ros.nodes._ros import pose_to_msg, qos
    from imgen_ros.sim.tasks.block_grasp import CUBE_HALF
    from rclpy.node import Node

    from imgen_msgs.msg import EpisodeEvent, LoopTiming, ObjectPoseEstimate

    rclpy.init()
    bench = Node("bench_input_age")
    timings: list[LoopTiming] = []
    bench.create_subscription(LoopTiming, topics.POLICY_TIMING, timings.append, qos(topics.POLICY_TIMING))
    pose_pub = bench.create_publisher(ObjectPoseEstimate, topics.OBJECT_POSE, qos(topics.OBJECT_POSE))
    event_pub = bench.create_publisher(EpisodeEvent, topics.EPISODE_EVENTS, qos(topics.EPISODE_EVENTS))
    cube = np.eye(4)
    cube[:3, 3] = (0.5, 0.0, CUBE_HALF)

    def publish_pose() -> None:
        msg = ObjectPoseEstimate(object_id="cube", valid=True, fitness=1.0, status="ok")
        msg.header.stamp = bench.get_clock().now().to_msg()
        msg.header.frame_id = topics.BASE_FRAME
        msg.pose = pose_to_msg(cube)
        pose_pub.publish(msg)

    bench.create_timer(1.0 / 30.0, publish_pose)
    log = open(os.devnull, "w")
    server = subprocess.Popen(["franky-sim", "-s", "mujoco", "--hostname", "127.0.0.1"], stdout=log, stderr=log,
                              start_new_session=True)
    print(f"{os.cpu_count()} CPUs; franky-sim on 127.0.0.1; policy_node (expert) at 20 Hz; pose at 30 Hz; "
          f"{args.seconds:.0f} s per rate")
    policy = None
    try:
        runs = [(rate, fresh) for fresh in args.fresh_state_s for rate in args.rates]
        for episode, (rate, fresh) in enumerate(runs, start=1):
            if policy is None or policy.args[-1] != f"fresh_state_s:={fresh}":
                if policy is not None:
                    policy.terminate()
                    policy.wait(timeout=20)
                policy = subprocess.Popen(node("policy_node", "checkpoint:=expert", "task:=block_grasp",
                                               f"fresh_state_s:={fresh}"), stdout=log, stderr=log)
            driver = subprocess.Popen(node("robot_driver", "driver:=libfranka", "libfranka.robot_ip:=127.0.0.1",
                                           "libfranka.enforce_realtime:=false", "libfranka.connect_timeout_s:=60.0",
                                           f"state_rate_hz:={rate}"), stdout=log, stderr=log)
            try:
                start = EpisodeEvent(episode_id=episode, event=EpisodeEvent.EVENT_START, task="block_grasp")
                start.header.stamp = bench.get_clock().now().to_msg()
                deadline = time.monotonic() + 90.0
                first = len(timings)
                while len(timings) - first < 20 and time.monotonic() < deadline:   # connected and acting
                    event_pub.publish(start)
                    rclpy.spin_once(bench, timeout_sec=0.5)
                if len(timings) - first < 20:
                    print(f"state_rate_hz {rate:.0f}, fresh_state_s {fresh}: the policy never acted")
                    continue
                cpu0, t0, first = cpu_seconds(driver.pid), time.monotonic(), len(timings)
                while time.monotonic() - t0 < args.seconds:
                    rclpy.spin_once(bench, timeout_sec=0.1)
                cpu = (cpu_seconds(driver.pid) - cpu0) / (time.monotonic() - t0)
                got = timings[first:]
                state = [m.state_age_s * 1e3 for m in got]
                pose = [m.pose_age_s * 1e3 for m in got]
                period = [abs(m.period_s - 0.05) * 1e3 for m in got if np.isfinite(m.period_s)]
                print(f"state_rate_hz {rate:.0f}, fresh_state_s {fresh}: {len(got)} decisions; robot state age "
                      f"p50 {pct(state, 50):.2f} ms, "
                      f"p99 {pct(state, 99):.2f} ms, max {max(state):.2f} ms; pose age p50 {pct(pose, 50):.1f} ms, "
                      f"p99 {pct(pose, 99):.1f} ms; tick period error p99 {pct(period, 99):.1f} ms; "
                      f"robot_driver CPU {cpu:.0%} of a core")
            finally:
                driver.terminate()
                driver.wait(timeout=20)
    finally:
        if policy is not None:
            policy.terminate()
            policy.wait(timeout=20)
        server.terminate()
        server.wait(timeout=20)
        bench.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
