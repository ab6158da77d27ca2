"""The ROS graph's timing: policy loop period error, observation-to-command latency, and how fast
the arbiter holds when the policy stalls.

    scripts/with-env python bench/bench_ros.py [--episodes 5] [--checkpoint expert] [--stalls 5]

Starts sim_node (block grasp, noise off, no simulated human: the bench stands in for an idle
supervisor's teleop heartbeat), policy_node, intervention_arbiter (SCHED_FIFO, as the real launch
file runs it) as separate processes in a private network namespace (re-executes itself
under scripts/netns-run), runs closed-loop episodes and prints:

- the policy loop's period error |period - 50 ms| (LoopTiming.period_s): mean, p50, p99, max;
- observation -> command inside policy_node: inputs' age when the tick starts + compute (observation
  build, policy act, publish), p50/p99;
- arbiter forwarding: policy command stamp -> the safety-filtered command's arrival at a subscriber
  standing in for the driver, p50/p99; and the sum, sensor -> robot command;
- HOLD latency when the policy process is frozen (SIGSTOP), from its last command's stamp to the
  arbiter's HOLD decision (ControlState stamp), over ``--stalls`` stalls.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def ensure_netns() -> None:
    """Re-execute under scripts/netns-run unless this process's namespace has only loopback."""
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]   # per namespace (sysfs is not)
    if sorted(line.split(":", 1)[0].strip() for line in lines) == ["lo"]:
        return
    if os.environ.get("IMGEN_IN_NETNS") == "1":
        raise SystemExit("bench_ros: not in a private network namespace although netns-run was used")
    netns_run = str(REPO / "scripts" / "netns-run")
    os.execvp(netns_run, [netns_run, sys.executable, *sys.argv])


def pct(values, q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, float), q)) if len(values) else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--checkpoint", default="expert")
    parser.add_argument("--stalls", type=int, default=5)
    args = parser.parse_args()
    ensure_netns()
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

    import numpy as np
    import rclpy
    from imgen_ros.core import topics
    from imgen_ros.nodes._ros import qos
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from std_msgs.msg import Bool

    from imgen_msgs.msg import ControlState, DeltaPoseCommand, EpisodeEvent, LoopTiming
    from imgen_msgs.srv import StartEpisode, StopEpisode

    cfg = REPO / "config"

    def node(module: str, params: str, *extra: str) -> list[str]:
        return [sys.executable, "-m", f"imgen_ros.nodes.{module}", "--ros-args", "--params-file", str(cfg / params),
                *extra]

    logs = Path(os.environ.get("TMPDIR", "/tmp")) / "bench_ros"
    logs.mkdir(exist_ok=True)
    procs = {
        "sim": node("sim_node", "sim.yaml", "-p", "noise:='off'", "-p", "simulated_human:=false"),
        "policy": node("policy_node", "policy.yaml", "-p", f"checkpoint:='{args.checkpoint}'"),
        "arbiter": ["chrt", "-f", "40", *node("intervention_arbiter", "arbiter_sim.yaml")],
    }
    running = {name: subprocess.Popen(cmd, stdout=(logs / f"{name}.log").open("w"), stderr=subprocess.STDOUT,
                                      start_new_session=True) for name, cmd in procs.items()}
    rclpy.init()
    probe = Node("bench_probe")
    lock = threading.Lock()
    log: dict[str, list] = {"timing": [], "robot_cmd": [], "state": [], "events": [], "policy_cmd": []}

    def store(key):
        return lambda msg: log[key].append((time.time(), msg))

    probe.create_subscription(LoopTiming, topics.POLICY_TIMING, store("timing"), qos(topics.POLICY_TIMING))
    probe.create_subscription(DeltaPoseCommand, topics.ROBOT_COMMAND, store("robot_cmd"), qos(topics.ROBOT_COMMAND))
    probe.create_subscription(DeltaPoseCommand, topics.POLICY_COMMAND, store("policy_cmd"), qos(topics.POLICY_COMMAND))
    probe.create_subscription(ControlState, topics.CONTROL_STATE, store("state"), qos(topics.CONTROL_STATE))
    probe.create_subscription(EpisodeEvent, topics.EPISODE_EVENTS, store("events"), qos(topics.EPISODE_EVENTS))
    # an idle supervisor: the teleop heartbeat (engaged = false) at 50 Hz, so the policy keeps control
    engaged = probe.create_publisher(Bool, topics.TELEOP_ENGAGED, qos(topics.TELEOP_ENGAGED))
    probe.create_timer(0.02, lambda: engaged.publish(Bool(data=False)))
    reset = probe.create_client(StartEpisode, topics.SIM_RESET)
    start = probe.create_client(StartEpisode, topics.START_EPISODE)
    stop = probe.create_client(StopEpisode, topics.STOP_EPISODE)
    executor = SingleThreadedExecutor()
    executor.add_node(probe)
    spin_thread = threading.Thread(target=executor.spin, daemon=True)
    spin_thread.start()

    def call(client, request, timeout=30.0):
        assert client.wait_for_service(timeout_sec=timeout), f"{client.srv_name} not available"
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.005)
        return future.result()

    def stamp(msg) -> float:
        return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9

    try:
        time.sleep(2.0)
        outcomes = []
        for seed in range(args.episodes):
            call(reset, StartEpisode.Request(seed=seed))
            episode = call(start, StartEpisode.Request()).episode_id
            print(f"episode {episode} (seed {seed})", flush=True)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with lock:
                    ends = [m for _, m in log["events"] if m.episode_id == episode and m.event in (1, 2, 3)]
                if ends:
                    outcomes.append(ends[0].event == EpisodeEvent.EVENT_SUCCESS)
                    if os.environ.get("BENCH_DEBUG"):
                        with lock:
                            modes = sorted({(m.mode, m.reason) for _, m in log["state"] if m.episode_id == episode})
                        print("DEBUG", episode, ends[0].reason, modes, flush=True)
                    break
                time.sleep(0.05)
            time.sleep(0.3)

        timing = [m for _, m in log["timing"]]
        err = [abs(m.period_s - 0.05) for m in timing if np.isfinite(m.period_s)]
        compute = [m.compute_s for m in timing]
        age = [m.observation_age_s for m in timing]
        in_policy = [m.compute_s + m.observation_age_s for m in timing]
        forward = [t - stamp(m) for t, m in log["robot_cmd"] if m.source == DeltaPoseCommand.SOURCE_POLICY]

        # stalls: freeze the policy, time the HOLD decision against its last command
        holds = []
        for k in range(args.stalls):
            call(reset, StartEpisode.Request(seed=100 + k))
            episode = call(start, StartEpisode.Request()).episode_id
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with lock:
                    state = log["state"][-1][1] if log["state"] else None
                if state is not None and state.episode_id == episode and state.mode == ControlState.MODE_POLICY:
                    break
                time.sleep(0.01)
            time.sleep(0.25)
            frozen_at = time.time()
            os.killpg(running["policy"].pid, signal.SIGSTOP)
            time.sleep(0.4)
            with lock:
                last = max(stamp(m) for _, m in log["policy_cmd"] if stamp(m) <= frozen_at)
                hold = min((stamp(m) for _, m in log["state"] if stamp(m) > last and m.reason == "stale_policy"),
                           default=float("nan"))
            holds.append(hold - last)
            os.killpg(running["policy"].pid, signal.SIGCONT)
            call(stop, StopEpisode.Request(outcome=EpisodeEvent.EVENT_ABORT, reason="bench"))
            time.sleep(0.3)

        ms = 1e3
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; policy {args.checkpoint!r}")
        print(f"episodes: {sum(outcomes)}/{len(outcomes)} succeeded (block grasp, noise off)")
        print(f"policy loop: {len(err)} periods, |period - 50 ms| mean {np.mean(err) * ms:.2f} ms, "
              f"p50 {pct(err, 50) * ms:.2f} ms, p99 {pct(err, 99) * ms:.2f} ms, max {np.max(err) * ms:.2f} ms")
        print(f"observation -> command in policy_node: input age p50 {pct(age, 50) * ms:.1f} ms / p99 "
              f"{pct(age, 99) * ms:.1f} ms, compute p50 {pct(compute, 50) * ms:.2f} ms / p99 "
              f"{pct(compute, 99) * ms:.2f} ms, sum p50 {pct(in_policy, 50) * ms:.1f} ms / p99 "
              f"{pct(in_policy, 99) * ms:.1f} ms")
        print(f"arbiter forwarding (policy stamp -> safe command at the driver): p50 {pct(forward, 50) * ms:.2f} ms,"
              f" p99 {pct(forward, 99) * ms:.2f} ms ({len(forward)} commands); sensor -> robot command p50 "
              f"{(pct(in_policy, 50) + pct(forward, 50)) * ms:.1f} ms")
        if holds:
            print(f"HOLD after a policy stall (last command stamp -> HOLD decision): "
                  f"{', '.join(f'{h * ms:.1f}' for h in holds)} ms (max {np.nanmax(holds) * ms:.1f} ms)")
        return 0
    finally:
        for proc in running.values():
            try:
                os.killpg(proc.pid, signal.SIGCONT)
                os.killpg(proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
        for proc in running.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        executor.shutdown(timeout_sec=2.0)
        spin_thread.join(timeout=5.0)
        probe.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
