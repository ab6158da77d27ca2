"""Start the sim graph as separate node processes (as deployed) and drive episodes from a probe."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from imgen_ros.core import topics
from imgen_ros.core.arbiter import ArbiterConfig
from imgen_ros.core.params import load_config
from imgen_ros.core.safety import SafetyFilter
from imgen_ros.nodes._ros import command_from_msg, pose_msg_arrays
from probe import Probe, Received

from imgen_msgs.msg import ControlState, EpisodeEvent
from imgen_msgs.srv import StartEpisode

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"
TERMINAL = (EpisodeEvent.EVENT_SUCCESS, EpisodeEvent.EVENT_FAILURE, EpisodeEvent.EVENT_ABORT)


RT_PRIORITY = 40


def node_cmd(module: str, params_file: str | None, **params: object) -> list[str]:
    cmd = [sys.executable, "-m", f"imgen_ros.nodes.{module}", "--ros-args"]
    if params_file:
        cmd += ["--params-file", str(CONFIG / params_file)]
    for key, value in params.items():
        # values are YAML: quote strings so that e.g. "off" stays a string, not a boolean
        text = str(value).lower() if isinstance(value, bool) else f"'{value}'" if isinstance(value, str | Path) \
            else str(value)
        cmd += ["-p", f"{key}:={text}"]
    return cmd


def sim_safety() -> SafetyFilter:
    cfg = load_config(ArbiterConfig, CONFIG / "arbiter_sim.yaml", "intervention_arbiter",
                      extra=("watchdog_rate_hz", "state_rate_hz"))
    return SafetyFilter(cfg.safety)


def start_graph(node_process, wait_until, probe: Probe, *, sim: dict | None = None, policy: dict | None = None,
                recorder_dir: Path | None = None, recorder: dict | None = None, extra: dict | None = None,
                arbiter: dict | None = None):
    """sim_node, intervention_arbiter, policy_node (+ recorder, + extra {name: cmd}); waits for them.

    The arbiter process runs SCHED_FIFO (``chrt -f``, as the real launch file does), so other load on
    a shared test machine cannot delay its watchdog or the DDS threads that feed it; its inputs
    still can be delayed (then they are stale, as they would be on the robot).
    """
    arbiter = arbiter or {}

    def start(cmd: list[str], name: str):
        return node_process(cmd, name=name)

    procs = {
        "sim": start(node_cmd("sim_node", "sim.yaml", **(sim or {})), "sim"),
        "arbiter": start(["chrt", "-f", str(RT_PRIORITY), *node_cmd("intervention_arbiter", "arbiter_sim.yaml",
                                                                    **arbiter)], "arbiter"),
        "policy": start(node_cmd("policy_node", "policy.yaml", **(policy or {})), "policy"),
    }
    if recorder_dir is not None:
        procs["recorder"] = start(node_cmd("recorder", "recorder.yaml", record_dir=recorder_dir, **(recorder or {})),
                                  "recorder")
    for name, cmd in (extra or {}).items():
        procs[name] = start(cmd, name)

    def up() -> bool:
        dead = [n for n, p in procs.items() if not p.alive()]
        assert not dead, {n: procs[n].errors()[-3000:] for n in dead}
        return (probe.last(topics.CONTROL_STATE) is not None and probe.last(topics.ROBOT_STATE) is not None
                and probe.service_clients[topics.SIM_RESET].service_is_ready()
                and probe.service_clients[topics.START_EPISODE].service_is_ready())

    wait_until(up, 60, "graph processes up")
    if recorder_dir is not None:
        wait_until(lambda: probe.count_subscribers(topics.EPISODE_EVENTS) >= 3, 30, "recorder subscribed")
    time.sleep(1.0)   # discovery settles (the policy and teleop streams match)
    return procs


def run_episode(probe: Probe, seed: int, timeout: float = 30.0) -> tuple[int, list[EpisodeEvent]]:
    """Reset the scene, start an episode, wait for its end; returns (episode id, its events)."""
    res = probe.call(topics.SIM_RESET, StartEpisode.Request(seed=seed))
    assert res.success, res.message
    episode = probe.start_episode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = [r.msg for r in probe.messages(topics.EPISODE_EVENTS) if r.msg.episode_id == episode]
        if any(e.event in TERMINAL for e in events):
            return episode, events
        time.sleep(0.05)
    states = probe.messages(topics.CONTROL_STATE)
    modes = sorted({(r.msg.mode, r.msg.reason) for r in states if r.msg.episode_id == episode})
    events = [(e.msg.episode_id, e.msg.event, e.msg.reason) for e in probe.messages(topics.EPISODE_EVENTS)]
    raise AssertionError(f"episode {episode} (seed {seed}) did not end within {timeout} s; control states seen "
                         f"{modes}; {len(probe.messages(topics.ROBOT_COMMAND))} robot commands, "
                         f"{len(probe.messages(topics.POLICY_COMMAND))} policy commands; events "
                         f"{events}")


def assert_commands_within_limits(probe: Probe, safety: SafetyFilter, since: float = 0.0) -> int:
    """Every command sent to the robot respects the safety limits at the TCP measured just before it."""
    states = probe.messages(topics.ROBOT_STATE)
    times = [s.t for s in states]
    checked = 0
    for r in probe.messages(topics.ROBOT_COMMAND, since):
        i = np.searchsorted(times, r.t) - 1
        if i < 0:
            continue
        tcp, _ = pose_msg_arrays(states[i].msg.tcp_pose)
        command = command_from_msg(r.msg)
        assert safety.within_limits(command, tcp), f"command outside the safety limits: {command} at {tcp}"
        checked += 1
    return checked


def mode_at(probe: Probe, t: float) -> int | None:
    states = [r for r in probe.messages(topics.CONTROL_STATE) if r.t <= t]
    return states[-1].msg.mode if states else None


def stamp_s(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def hold_latency(probe: Probe, fault: Received) -> float:
    """Seconds from the fault to the arbiter's HOLD decision, on the nodes' shared clock.

    ``fault`` is the last good input message (or the first bad one): its header stamp (when it was
    sent; arrival time for header-less messages) is compared with the header stamp of the first
    HOLD control state after it (when the arbiter decided; the hold command goes out at once),
    so the probe's own scheduling does not enter the figure. Asserts that HOLD is kept.
    """
    fault_s = stamp_s(fault.msg) if hasattr(fault.msg, "header") else fault.wall
    states = probe.messages(topics.CONTROL_STATE)
    decided = [(stamp_s(r.msg), r.msg.mode) for r in states]
    before = [m for t, m in decided if t <= fault_s]
    after = [(t, m) for t, m in decided if t > fault_s]
    if before and before[-1] == ControlState.MODE_HOLD:
        hold_s = fault_s
    else:
        hold_s = next(t for t, m in after if m == ControlState.MODE_HOLD)
    assert all(m == ControlState.MODE_HOLD for t, m in after if t >= hold_s), "left HOLD while faulty"
    return hold_s - fault_s
