"""Fault injection into the running sim graph (separate processes over DDS): a NaN pose, a stale
camera, a robot state that stops, a dead teleop and a dead policy each put the arbiter in HOLD
within 100 ms of the fault, the robot stops moving, and no command outside the safety limits is
ever sent."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from imgen_ros.core import topics
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import Joy

from imgen_msgs.msg import ControlState, DeltaPoseCommand
from imgen_msgs.srv import StartEpisode

sys.path.insert(0, str(Path(__file__).parent))
from graph import assert_commands_within_limits, hold_latency, node_cmd, sim_safety, start_graph
from probe import Probe, call_idempotent

# Real-time assertions on a shared 2-core machine: a run disturbed by other load is retried (up to
# twice); a genuine regression fails every attempt.
pytestmark = pytest.mark.flaky(reruns=2, reruns_delay=3)

HOLD_DEADLINE_S = 0.1

# fault -> (how it is injected, the topic whose last good message marks the fault, expected reason)
FAULTS = {
    "nan_pose": ("fault.nan_pose", topics.OBJECT_POSE, "nan_pose"),
    "stale_camera": ("fault.freeze_camera", topics.OBJECT_POSE, "stale_pose"),
    "robot_state_stops": ("fault.freeze_robot_state", topics.ROBOT_STATE, "stale_robot_state"),
    "dead_teleop": ("kill:joy", topics.TELEOP_ENGAGED, "stale_teleop"),
    "dead_policy": ("kill:policy", topics.POLICY_COMMAND, "stale_policy"),
}


def set_sim_parameter(probe: Probe, name: str, value: bool) -> None:
    request = SetParameters.Request(parameters=[Parameter(
        name=name, value=ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value))])
    result = call_idempotent(probe, SetParameters, "/sim_node/set_parameters", request, timeout=10)
    assert result.results[0].successful


def is_nan_pose(msg) -> bool:
    return hasattr(msg, "pose") and not np.isfinite(msg.pose.position.x)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_in_the_running_graph_holds_within_100_ms(fault, ros_context, ros_spin, node_process, wait_until):
    probe = Probe(ros_context)
    joy_pub = probe.create_publisher(Joy, "spacenav/joy", 10)
    probe.create_timer(0.02, lambda: joy_pub.publish(Joy(axes=[0.0] * 6, buttons=[0, 0])))  # spacenav: 50 Hz
    ros_spin(probe)
    procs = start_graph(node_process, wait_until, probe, sim={"noise": "off", "simulated_human": False},
                        policy={"checkpoint": "expert"}, extra={"joy": node_cmd("joy_teleop", "joy_teleop.yaml")})
    res = probe.call(topics.SIM_RESET, StartEpisode.Request(seed=3))
    assert res.success
    probe.start_episode()
    wait_until(lambda: probe.last(topics.CONTROL_STATE).mode == ControlState.MODE_POLICY, 10, "POLICY mode")
    time.sleep(0.4)   # the policy drives
    wait_until(lambda: probe.last(topics.CONTROL_STATE).mode == ControlState.MODE_POLICY, 2, "POLICY mode")

    how, marker_topic, reason = FAULTS[fault]
    injected = time.monotonic()
    if how.startswith("kill:"):
        procs[how.removeprefix("kill:")].kill(signal.SIGKILL)
    else:
        set_sim_parameter(probe, how, True)
    wait_until(lambda: probe.last(topics.CONTROL_STATE).reason == reason, 5, f"HOLD ({reason})")
    time.sleep(0.5)
    if fault == "nan_pose":
        marker = next(r for r in probe.messages(marker_topic, injected - 0.1) if is_nan_pose(r.msg))
    else:
        marker = probe.messages(marker_topic)[-1]     # the last message: staleness starts here
    latency = hold_latency(probe, marker)
    fault_t = marker.t
    assert latency < HOLD_DEADLINE_S, f"{fault}: HOLD {1e3 * latency:.0f} ms after the fault"
    assert probe.last(topics.CONTROL_STATE).mode == ControlState.MODE_HOLD

    # after the HOLD only zero-motion SAFETY commands reach the robot, and the TCP stays put
    hold_t = fault_t + latency
    after = [r.msg for r in probe.messages(topics.ROBOT_COMMAND, hold_t + 0.03)]
    assert after and all(m.source == DeltaPoseCommand.SOURCE_SAFETY and not np.any(m.translation)
                         and not np.any(m.rotation) for m in after)
    if fault != "robot_state_stops":
        z = [r.msg.tcp_pose.position for r in probe.messages(topics.ROBOT_STATE, hold_t + 0.15)]
        xyz = np.array([[p.x, p.y, p.z] for p in z])
        assert len(xyz) > 5 and np.ptp(xyz, axis=0).max() < 0.005, "the robot kept moving in HOLD"
    assert assert_commands_within_limits(probe, sim_safety()) > 5
    print(f"{fault}: HOLD {1e3 * latency:.1f} ms after the fault ({reason})")
