"""The intervention_arbiter node over DDS: takeover/handback, HOLD on each stale input within 100 ms,
every outgoing command inside the safety limits, events and services."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
from imgen_ros.core import topics
from imgen_ros.core.safety import SafetyConfig, SafetyFilter
from imgen_ros.nodes._ros import command_from_msg

from imgen_msgs.msg import ControlState, DeltaPoseCommand, EpisodeEvent
from imgen_msgs.srv import SetControlMode

sys.path.insert(0, str(Path(__file__).parent))
from fake_inputs import FakeInputs
from graph import hold_latency
from probe import Probe

# Real-time assertions on a shared 2-core machine: a run disturbed by other load is retried (up to
# twice); a genuine regression fails every attempt.
pytestmark = pytest.mark.flaky(reruns=2, reruns_delay=3)

HOLD_DEADLINE_S = 0.1


SAFETY = SafetyConfig(max_translation_m=0.02, max_rotation_rad=0.1)


@pytest.fixture
def graph(ros_context, ros_spin, node_process, wait_until):
    """The arbiter in its own process (as deployed); fake inputs and the probe in the test process."""
    arbiter = node_process(["chrt", "-f", "40",   # SCHED_FIFO as in the real launch file
                            sys.executable, "-m", "imgen_ros.nodes.intervention_arbiter", "--ros-args",
                            # the whole safety block: the arbiter refuses to run on code defaults
                            "-p", f"safety.workspace_min:={list(SAFETY.workspace_min)}",
                            "-p", f"safety.workspace_max:={list(SAFETY.workspace_max)}",
                            "-p", f"safety.max_translation_m:={SAFETY.max_translation_m}",
                            "-p", f"safety.max_rotation_rad:={SAFETY.max_rotation_rad}",
                            "-p", f"safety.max_input_age_s:={SAFETY.max_input_age_s}",
                            "-p", "latch_faults:=false"], name="arbiter")
    inputs = FakeInputs(ros_context)
    probe = Probe(ros_context)
    ros_spin(inputs, probe)
    wait_until(lambda: probe.last(topics.CONTROL_STATE) is not None or not arbiter.alive(), 30, "arbiter up")
    assert arbiter.alive(), arbiter.errors()
    time.sleep(1.0)     # let discovery settle: the first messages after matching come in bursts
    probe.start_episode("block_grasp")
    wait_until(lambda: probe.last(topics.CONTROL_STATE) is not None
               and probe.last(topics.CONTROL_STATE).mode == ControlState.MODE_POLICY, 15, "POLICY mode")
    return arbiter, inputs, probe


def assert_commands_within_limits(probe: Probe, tcp: np.ndarray) -> int:
    limits = SafetyFilter(SAFETY)
    cmds = [command_from_msg(r.msg) for r in probe.messages(topics.ROBOT_COMMAND)]
    assert cmds
    for c in cmds:
        assert limits.within_limits(c, tcp), c
    return len(cmds)


def test_policy_commands_are_clamped_and_takeover_hands_control_to_the_human(graph, wait_until):
    _arbiter, inputs, probe = graph
    wait_until(lambda: any(r.msg.source == DeltaPoseCommand.SOURCE_POLICY
                           for r in probe.messages(topics.ROBOT_COMMAND)), 5, "a policy command")
    inputs.engaged = True
    wait_until(lambda: probe.last(topics.CONTROL_STATE).mode == ControlState.MODE_HUMAN, 5, "HUMAN mode")
    t0 = time.monotonic()
    wait_until(lambda: any(r.msg.source == DeltaPoseCommand.SOURCE_HUMAN
                           for r in probe.messages(topics.ROBOT_COMMAND, t0)), 5, "a human command")
    inputs.engaged = False
    wait_until(lambda: probe.last(topics.CONTROL_STATE).mode == ControlState.MODE_POLICY, 5, "handback")
    events = [r.msg.event for r in probe.messages(topics.EPISODE_EVENTS)]
    assert events[:1] == [EpisodeEvent.EVENT_START]
    assert EpisodeEvent.EVENT_TAKEOVER in events and EpisodeEvent.EVENT_HANDBACK in events
    assert assert_commands_within_limits(probe, inputs.tcp) >= 2
    policy_cmds = [r.msg for r in probe.messages(topics.ROBOT_COMMAND)
                   if r.msg.source == DeltaPoseCommand.SOURCE_POLICY]
    assert max(np.linalg.norm(m.translation) for m in policy_cmds) == pytest.approx(0.02)


@pytest.mark.parametrize("fault,reason", [
    ("policy", "stale_policy"), ("robot_state", "stale_robot_state"), ("pose", "stale_pose"),
    ("teleop", "stale_teleop"), ("nan_pose", "nan_pose")])
def test_fault_holds_within_100_ms(graph, wait_until, fault, reason):
    _arbiter, inputs, probe = graph
    time.sleep(0.3)
    if fault == "nan_pose":
        inputs.nan_pose = True
        wait_until(lambda: any(r.msg.pose.position.x != r.msg.pose.position.x
                               for r in probe.messages(topics.OBJECT_POSE)), 5, "a NaN pose on the wire")
        marker = next(r for r in probe.messages(topics.OBJECT_POSE) if r.msg.pose.position.x != r.msg.pose.position.x)
    else:
        topic = {"policy": topics.POLICY_COMMAND, "robot_state": topics.ROBOT_STATE,
                 "pose": topics.OBJECT_POSE, "teleop": topics.TELEOP_ENGAGED}[fault]
        inputs.alive[fault] = False
        time.sleep(0.3)
        marker = probe.messages(topic)[-1]      # the last message that made it: staleness starts here
    wait_until(lambda: probe.last(topics.CONTROL_STATE).reason == reason, 5, f"HOLD ({reason})")
    latency = hold_latency(probe, marker)
    assert latency < HOLD_DEADLINE_S, f"HOLD {1e3 * latency:.0f} ms after the fault"
    hold_t = marker.t + latency
    time.sleep(0.3)
    after = [r.msg for r in probe.messages(topics.ROBOT_COMMAND, hold_t + 0.02)]
    assert after and all(m.source == DeltaPoseCommand.SOURCE_SAFETY and not np.any(m.translation) for m in after)
    assert_commands_within_limits(probe, inputs.tcp)
    events = [r.msg for r in probe.messages(topics.EPISODE_EVENTS)]
    assert any(e.event == EpisodeEvent.EVENT_HOLD and e.reason == reason for e in events)


def test_services_set_mode_and_stop_episode(graph, wait_until):
    _arbiter, _inputs, probe = graph
    res = probe.call(topics.SET_CONTROL_MODE, SetControlMode.Request(mode=ControlState.MODE_HOLD, reason="pause"))
    assert res.success and res.mode == ControlState.MODE_HOLD
    res = probe.call(topics.SET_CONTROL_MODE, SetControlMode.Request(mode=7))
    assert not res.success and "unknown mode" in res.message
    res = probe.call(topics.SET_CONTROL_MODE, SetControlMode.Request(mode=ControlState.MODE_POLICY))
    assert res.success and res.mode == ControlState.MODE_POLICY
    res = probe.stop_episode(EpisodeEvent.EVENT_SUCCESS, "lifted")
    assert res.success and res.episode_id == 1
    res = probe.stop_episode(EpisodeEvent.EVENT_SUCCESS, "again")
    assert not res.success and "no episode" in res.message
    wait_until(lambda: probe.last(topics.CONTROL_STATE).reason == "no_episode", 5, "no_episode")
