"""The arbitration state machine: takeover/handback, stale inputs -> HOLD, latching, events."""

from __future__ import annotations

import numpy as np
import pytest
from imgen_ros.core.arbiter import Arbiter, ArbiterConfig, Event, Mode
from imgen_ros.core.command import DeltaCommand, Source

DT = 0.05
TCP = np.array([0.5, 0.0, 0.3])


def policy_cmd(t: float, dx: float = 0.01) -> DeltaCommand:
    return DeltaCommand(np.array([dx, 0, 0]), np.zeros(3), -1.0, Source.POLICY, t)


def human_cmd(t: float, dz: float = 0.01) -> DeltaCommand:
    return DeltaCommand(np.array([0, 0, dz]), np.zeros(3), 1.0, Source.HUMAN, t)


def feed_all(arb: Arbiter, t: float, engaged: bool = False, pose_valid: bool = True):
    """One 20 Hz round of healthy inputs; returns the commands that went out."""
    outs = [arb.on_robot_state(TCP, t), arb.on_pose(pose_valid, True, t), arb.on_engaged(engaged, t),
            arb.on_policy_command(policy_cmd(t), t), arb.on_teleop_command(human_cmd(t), t), arb.hold_tick(t)]
    return outs


def running(config: ArbiterConfig | None = None) -> tuple[Arbiter, float]:
    arb = Arbiter(config or ArbiterConfig())
    t = 1000.0
    arb.start_episode(t)
    for _ in range(3):
        t += DT
        feed_all(arb, t)
    assert arb.mode == Mode.POLICY, arb.reason
    return arb, t


def events(outs) -> list[Event]:
    return [e.event for o in outs for e in o.events]


def test_starts_in_hold_without_episode_and_waits_for_inputs():
    arb = Arbiter()
    assert arb.mode == Mode.HOLD and arb.reason == "no_episode"
    out = arb.start_episode(10.0)
    assert [e.event for e in out.events] == [Event.START]
    assert arb.mode == Mode.HOLD and arb.reason.startswith("waiting_for_")
    out = arb.hold_tick(10.01)
    assert out.command is not None and out.command.source == Source.SAFETY
    assert not np.any(out.command.translation) and out.command.gripper == -1.0


def test_nothing_is_commanded_outside_an_episode():
    arb, t = running()
    arb.stop_episode(Event.SUCCESS, "done", t)
    for _ in range(3):
        t += DT
        assert all(o.command is None for o in feed_all(arb, t))


def test_policy_drives_then_takeover_and_handback():
    arb, t = running()
    t += DT
    outs = feed_all(arb, t)
    sent = [o.command for o in outs if o.command is not None]
    assert [c.source for c in sent] == [Source.POLICY]
    t += DT
    outs = feed_all(arb, t, engaged=True)
    assert arb.mode == Mode.HUMAN and arb.reason == "takeover_button"
    assert Event.TAKEOVER in events(outs)
    assert [o.command.source for o in outs if o.command is not None] == [Source.HUMAN]
    t += DT
    outs = feed_all(arb, t, engaged=False)
    assert arb.mode == Mode.POLICY and Event.HANDBACK in events(outs)


@pytest.mark.parametrize("missing,reason", [
    ("policy", "stale_policy"), ("robot_state", "stale_robot_state"), ("pose", "stale_pose"),
    ("teleop", "stale_teleop")])
def test_a_stale_input_holds_within_its_timeout(missing, reason):
    arb, t = running()
    last = t
    # keep everything but `missing` alive at 100 Hz and tick the watchdog
    while arb.mode == Mode.POLICY:
        t += 0.01
        assert t - last < 0.2, "never went to HOLD"
        outs = [arb.update(t)]
        if missing != "robot_state":
            outs.append(arb.on_robot_state(TCP, t))
        if missing != "pose":
            outs.append(arb.on_pose(True, True, t))
        if missing != "teleop":
            outs.append(arb.on_engaged(False, t))
        if missing != "policy":
            outs.append(arb.on_policy_command(policy_cmd(t), t))
    assert arb.reason == reason
    assert t - last <= arb.config.policy_timeout_s + 0.01 + 1e-9
    assert events(outs) == [Event.HOLD]
    sent = [o.command for o in outs if o.command is not None]
    assert sent and all(c.source == Source.SAFETY for c in sent)


def test_a_policy_silent_because_its_pose_went_stale_holds_as_stale_pose():
    """The HOLD names the cause for as long as it lasts, not the policy's silence that follows it."""
    arb, t = running()
    start, reasons = t, []
    for _ in range(100):  # 1 s: the pose stops at once, the policy (which needs it) 0.3 s later
        t += 0.01
        arb.on_robot_state(TCP, t)
        arb.on_engaged(False, t)
        if t - start < 0.3:
            arb.on_policy_command(policy_cmd(t), t)
        arb.update(t)
        reasons.append(arb.reason)
    held = reasons[reasons.index("stale_pose"):]
    assert arb.mode == Mode.HOLD and set(held) == {"stale_pose"}
    # the policy alone silent, the pose fresh: the policy names it
    arb2, t2 = running()
    for _ in range(20):
        t2 += 0.01
        arb2.on_robot_state(TCP, t2)
        arb2.on_engaged(False, t2)
        arb2.on_pose(True, True, t2)
        arb2.update(t2)
    assert arb2.mode == Mode.HOLD and arb2.reason == "stale_policy"


def test_stale_teleop_command_while_human_holds():
    arb, t = running()
    t += DT
    feed_all(arb, t, engaged=True)
    assert arb.mode == Mode.HUMAN
    for _ in range(10):
        t += 0.01
        arb.on_robot_state(TCP, t)
        arb.on_engaged(True, t)
        arb.on_policy_command(policy_cmd(t), t)
        arb.update(t)
    assert arb.mode == Mode.HOLD and arb.reason == "stale_teleop_command"


def test_nan_pose_holds_immediately_and_invalid_pose_goes_stale():
    arb, t = running()
    t += 0.01
    arb.on_pose(True, False, t)
    assert arb.mode == Mode.HOLD and arb.reason == "nan_pose"
    arb2, t2 = running()
    start = t2
    while arb2.mode == Mode.POLICY:
        t2 += 0.01
        arb2.on_robot_state(TCP, t2)
        arb2.on_engaged(False, t2)
        arb2.on_policy_command(policy_cmd(t2), t2)
        arb2.on_pose(False, True, t2)   # invalid fits (occlusion): tolerated for valid_pose_timeout_s
    assert arb2.reason == "stale_valid_pose"
    assert t2 - start == pytest.approx(arb2.config.valid_pose_timeout_s, abs=0.02)
    arb3, t3 = running()
    arb3.on_pose(False, False, t3 + 0.01)  # an invalid estimate may carry anything: ignored
    assert arb3.mode == Mode.POLICY


def test_latched_fault_needs_a_takeover_and_then_hands_back():
    arb, t = running()
    t += 0.01
    arb.on_pose(True, False, t)
    t += DT
    feed_all(arb, t)                         # everything healthy again
    assert arb.mode == Mode.HOLD and arb.reason == "latched_nan_pose"
    t += DT
    outs = feed_all(arb, t, engaged=True)    # the human takes over
    assert arb.mode == Mode.HUMAN and Event.TAKEOVER in events(outs)
    t += DT
    feed_all(arb, t, engaged=False)
    assert arb.mode == Mode.POLICY


def test_without_latching_the_policy_resumes_when_inputs_recover():
    arb, t = running(ArbiterConfig(latch_faults=False))
    t += 0.01
    arb.on_pose(True, False, t)
    assert arb.mode == Mode.HOLD
    t += DT
    feed_all(arb, t)
    assert arb.mode == Mode.POLICY


def test_operator_modes_via_set_mode():
    arb, t = running()
    arb.set_mode(Mode.HOLD, "operator_pause", t)
    t += DT
    outs = feed_all(arb, t)
    assert arb.mode == Mode.HOLD and arb.reason == "operator_pause"
    assert all(o.command is None or o.command.source == Source.SAFETY for o in outs)
    arb.set_mode(Mode.HUMAN, "", t)
    assert arb.mode == Mode.HUMAN and arb.reason == "operator_human"
    arb.set_mode(Mode.POLICY, "", t)
    assert arb.mode == Mode.POLICY


def test_episode_events_and_step_counting():
    arb, t = running()
    for _ in range(4):
        t += DT
        feed_all(arb, t)
    step = arb.step
    assert step >= 4
    out = arb.stop_episode(Event.SUCCESS, "cube_lifted", t)
    assert [e.event for e in out.events] == [Event.SUCCESS]
    assert out.events[0].episode_id == 1 and out.events[0].step == step
    assert arb.mode == Mode.HOLD and arb.reason == "no_episode"
    out = arb.start_episode(t)
    assert arb.episode_id == 2 and arb.step == 0
    out = arb.start_episode(t)
    assert [e.event for e in out.events] == [Event.ABORT, Event.START]
    with pytest.raises(ValueError, match="outcome"):
        arb.stop_episode(Event.TAKEOVER, "", t)


def test_every_outgoing_command_is_filtered():
    arb, t = running()
    t += DT
    arb.on_robot_state(TCP, t)
    out = arb.on_policy_command(DeltaCommand(np.array([1.0, 0, 0]), np.array([0, 0, 3.0]), 5.0, Source.POLICY, t), t)
    assert arb.safety.within_limits(out.command, TCP)
    assert set(arb.last_violations) >= {"translation_step", "rotation_step", "gripper_range"}
    out = arb.on_policy_command(DeltaCommand(np.array([np.nan, 0, 0]), np.zeros(3), 0.0, Source.POLICY, t), t)
    assert out.command.source == Source.SAFETY and not np.any(out.command.translation)


def test_hold_keeps_gripper_closed_after_a_grasp():
    arb, t = running()
    t += DT
    feed_all(arb, t, engaged=True)            # human closes the gripper (human_cmd gripper=+1)
    t += 0.2
    out = arb.update(t)
    assert arb.mode == Mode.HOLD
    assert out.command.gripper == pytest.approx(1.0)


def test_changed_commands_are_counted_per_episode_refused_ones_are_not():
    arb, t = running()
    assert arb.clipped == 0      # the in-limit commands of running() passed unchanged
    t += DT
    arb.on_robot_state(TCP, t)
    arb.on_policy_command(DeltaCommand(np.array([0.2, 0, 0]), np.zeros(3), -1.0, Source.POLICY, t), t)
    arb.on_policy_command(DeltaCommand(np.zeros(3), np.array([0, 0, 2.0]), -1.0, Source.POLICY, t), t)
    assert (arb.clipped, arb.last_clip) == (2, ("rotation_step",))
    arb.on_policy_command(DeltaCommand(np.array([np.nan, 0, 0]), np.zeros(3), -1.0, Source.POLICY, t), t)
    arb.on_policy_command(policy_cmd(t), t)
    assert arb.clipped == 2      # a refused (held) command and an in-limit one are not clips
    arb.start_episode(t + DT)
    assert (arb.clipped, arb.clipped_total) == (0, 2)
