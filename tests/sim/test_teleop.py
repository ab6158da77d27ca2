"""Teleop devices driven by synthetic input: key states, Joy arrays, evdev bytes, hidraw reports."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest
from imgen_ros.teleop import KeyboardConfig, KeyboardDevice, SpaceMouseConfig, SpaceMouseDevice, TeleopPolicy
from imgen_ros.teleop.device import DeadDeviceDetector
from imgen_ros.teleop.keyboard import glfw_key_name
from imgen_ros.teleop.spacemouse import (
    EV_ABS,
    EV_KEY,
    EV_REL,
    EV_SYN,
    apply_deadzone,
    device_to_base,
    motion_from_joy,
    motion_from_raw,
    pack_evdev_event,
    parse_evdev_events,
    parse_hid_report,
    raw_hid_to_device,
)

# ---------------------------------------------------------------------------------- keyboard

def test_keyboard_keys_map_to_base_frame_axes_with_speed() -> None:
    kb = KeyboardDevice(KeyboardConfig(translation_speed=0.4, rotation_speed=0.2))
    kb.key_down("w", now=0.0)
    kb.key_down("a", now=0.0)
    kb.key_down("left", now=0.0)
    cmd = kb.command(now=0.01)
    np.testing.assert_allclose(cmd.action, [0.4, 0.4, 0, 0, 0, 0.2, -1.0])
    kb.key_up("w", now=0.02)
    kb.key_down("d", now=0.02)  # a and d cancel
    np.testing.assert_allclose(kb.command(now=0.03).action[:6], [0, 0, 0, 0, 0, 0.2])
    kb.key_down("E", now=0.04)  # case-insensitive, -z
    assert kb.command(now=0.05).action[2] == pytest.approx(-0.4)


def test_keyboard_gripper_toggles_on_press_edge_only() -> None:
    kb = KeyboardDevice()
    kb.key_down("space", now=0.0)
    first = kb.command(now=0.0)
    assert first.gripper_closed and first.gripper_toggled
    kb.key_down("space", now=0.05)  # OS key repeat while held: no new toggle
    second = kb.command(now=0.06)
    assert second.gripper_closed and not second.gripper_toggled
    kb.key_up("space", now=0.1)
    kb.key_down("space", now=0.2)
    assert not kb.command(now=0.2).gripper_closed


def test_keyboard_takeover_toggle_and_hold_modes() -> None:
    toggle = KeyboardDevice()
    toggle.key_down("tab", now=0.0)
    toggle.key_up("tab", now=0.1)
    assert toggle.command(now=0.2).takeover
    toggle.key_down("tab", now=0.3)
    assert not toggle.command(now=0.3).takeover
    hold = KeyboardDevice(KeyboardConfig(takeover_mode="hold"))
    hold.key_down("tab", now=0.0)
    assert hold.command(now=0.1).takeover
    hold.key_up("tab", now=0.2)
    assert not hold.command(now=0.2).takeover


def test_keyboard_tap_holds_for_tap_time_then_releases() -> None:
    kb = KeyboardDevice(KeyboardConfig(tap_hold_s=0.15))
    kb.key_tap("q", now=1.0)
    assert kb.command(now=1.1).action[2] > 0
    assert kb.command(now=1.2).action[2] == 0.0
    kb.key_tap("space", now=2.0)
    kb.key_tap("space", now=2.05)  # two taps = two toggles
    assert not kb.command(now=2.1).gripper_closed


def test_keyboard_lost_key_up_goes_stale_and_stops() -> None:
    kb = KeyboardDevice(KeyboardConfig(stale_timeout_s=1.0))
    kb.key_down("w", now=0.0)
    assert not kb.command(now=0.9).stale
    cmd = kb.command(now=1.5)
    assert cmd.stale and not cmd.is_moving
    kb.key_down("s", now=2.0)  # new input revives it; w was released by the stale reset
    cmd = kb.command(now=2.1)
    assert not cmd.stale and cmd.action[0] < 0


def test_keyboard_idle_is_not_stale_and_speed_keys_change_speed() -> None:
    kb = KeyboardDevice(KeyboardConfig(translation_speed=0.4))
    assert not kb.command(now=100.0).stale
    kb.key_down("+", now=0.0)
    kb.key_down("+", now=0.05)  # repeat of a held key: one step only
    kb.key_up("+", now=0.1)
    assert kb.translation_speed == pytest.approx(0.5)
    kb.key_down("w", now=0.2)
    assert kb.command(now=0.2).action[0] == pytest.approx(0.5)


def test_keyboard_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="translation_speed"):
        KeyboardConfig(translation_speed=1.5)
    with pytest.raises(ValueError, match="bound twice"):
        KeyboardConfig(gripper_key="w")
    with pytest.raises(ValueError, match="axis index"):
        KeyboardConfig(motion_keys={"w": (7, 1.0)})


def test_glfw_key_names() -> None:
    assert glfw_key_name(87) == "w"
    assert glfw_key_name(265) == "up"
    assert glfw_key_name(32) == "space"
    assert glfw_key_name(999) is None


# ---------------------------------------------------------------------------------- mapping

def test_deadzone_is_continuous_and_clipped() -> None:
    out = apply_deadzone([0.05, -0.05, 0.1, 0.55, -1.0, 3.0], 0.1)
    np.testing.assert_allclose(out, [0, 0, 0, 0.5, -1.0, 1.0])
    with pytest.raises(ValueError):
        apply_deadzone([0.0], 1.0)


def test_raw_hid_frame_to_device_frame_is_a_proper_rotation() -> None:
    # push the cap away from the user = raw -y -> device +x; push right = raw +x -> device -y;
    # press down = raw +z -> device -z
    np.testing.assert_allclose(raw_hid_to_device([0, -1, 0, 0, 0, 0]), [1, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(raw_hid_to_device([1, 0, 0, 0, 0, 0]), [0, -1, 0, 0, 0, 0])
    np.testing.assert_allclose(raw_hid_to_device([0, 0, 1, 0, 0, 0]), [0, 0, -1, 0, 0, 0])
    # twisting the cap counter-clockwise seen from above = raw -rz -> device +rz (yaw left)
    np.testing.assert_allclose(raw_hid_to_device([0, 0, 0, 0, 0, -1]), [0, 0, 0, 0, 0, 1])


def test_operator_yaw_rotates_translation_and_rotation() -> None:
    # an operator facing the robot from its front (yaw 180 deg): pushing away from them = base -x
    out = device_to_base([1, 0, 0, 0, 1, 0], np.pi)
    np.testing.assert_allclose(out, [-1, 0, 0, 0, -1, 0], atol=1e-12)
    cfg = SpaceMouseConfig(operator_yaw_deg=90.0, deadzone=0.0, rotation_gain=1.0)
    np.testing.assert_allclose(motion_from_joy([0.68, 0, 0, 0, 0, 0], cfg), [0, 1, 0, 0, 0, 0], atol=1e-12)


def test_joy_and_raw_paths_agree_on_the_same_physical_push() -> None:
    cfg = SpaceMouseConfig(deadzone=0.0, rotation_gain=1.0)
    # full push away from the user: spacenav Joy axes[0] = +0.68, raw HID y = -350
    np.testing.assert_allclose(motion_from_joy([0.68, 0, 0, 0, 0, 0], cfg), [1, 0, 0, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(motion_from_raw([0, -350, 0, 0, 0, 0], cfg), [1, 0, 0, 0, 0, 0], atol=1e-12)


def test_gains_signs_exponent_and_rotation_disable() -> None:
    cfg = SpaceMouseConfig(deadzone=0.0, translation_gain=0.5, rotation_gain=0.25, response_exponent=2.0,
                           axis_signs=(1, -1, 1, 1, 1, 1))
    out = motion_from_joy(np.array([0.34, 0.34, 0, 0, 0, 0.68]), cfg)
    np.testing.assert_allclose(out, [0.125, -0.125, 0, 0, 0, 0.25])
    no_rot = SpaceMouseConfig(deadzone=0.0, rotation_enabled=False)
    assert np.all(motion_from_joy([0, 0, 0, 0.6, 0.6, 0.6], no_rot) == 0)
    with pytest.raises(ValueError, match="6 values"):
        motion_from_joy([0.1, 0.2], cfg)
    with pytest.raises(ValueError, match="axis_signs"):
        SpaceMouseConfig(axis_signs=(1, 1, 1, 1, 1, 2))


# ---------------------------------------------------------------------------------- spacemouse device

def test_spacemouse_joy_buttons_gripper_toggle_and_deadman() -> None:
    sm = SpaceMouseDevice(SpaceMouseConfig(deadzone=0.0))
    sm.update_joy([0, 0, 0.68, 0, 0, 0], [0, 1], now=0.0)
    cmd = sm.command(now=0.01)
    assert cmd.takeover and cmd.action[2] == pytest.approx(1.0) and not cmd.gripper_closed
    sm.update_joy([0, 0, 0, 0, 0, 0], [1, 1], now=0.02)
    cmd = sm.command(now=0.03)
    assert cmd.gripper_closed and cmd.gripper_toggled and not cmd.is_moving
    sm.update_joy([0, 0, 0, 0, 0, 0], [1, 0], now=0.04)  # gripper button still held: no toggle
    cmd = sm.command(now=0.05)
    assert cmd.gripper_closed and not cmd.gripper_toggled and not cmd.takeover


def test_spacemouse_goes_stale_when_a_deflection_stops_updating() -> None:
    sm = SpaceMouseDevice(SpaceMouseConfig(stale_timeout_s=0.5))
    sm.update_joy([0.5, 0, 0, 0, 0, 0], [0, 1], now=0.0)
    assert sm.command(now=0.4).is_moving
    cmd = sm.command(now=0.6)
    assert cmd.stale and not cmd.is_moving and not cmd.takeover
    sm.update_joy([0, 0, 0, 0, 0, 0], [0, 0], now=0.7)
    assert not sm.command(now=10.0).stale  # at rest, silence is normal


def _frame(*events: tuple[int, int, int], t: float = 0.0) -> bytes:
    return b"".join(pack_evdev_event(ev_type, code, value, t) for ev_type, code, value in events) + \
        pack_evdev_event(EV_SYN, 0, 0, t)


def test_evdev_parser_keeps_partial_records() -> None:
    data = _frame((EV_REL, 1, -200), (EV_KEY, 256, 1))
    events, rest = parse_evdev_events(data[:30])
    assert len(events) == 1 and events[0].value == -200 and len(rest) == 6
    events, rest = parse_evdev_events(rest + data[30:])
    assert [e.type for e in events] == [EV_KEY, EV_SYN] and rest == b""


def test_evdev_rel_frames_absent_axes_are_zero_and_idle_returns_to_rest() -> None:
    sm = SpaceMouseDevice(SpaceMouseConfig(deadzone=0.0, rel_idle_s=0.1))
    data = _frame((EV_REL, 1, -350), (EV_REL, 0, 175))
    sm.feed_evdev(data[:40], now=0.0)  # split mid-record
    sm.feed_evdev(data[40:], now=0.0)
    np.testing.assert_allclose(sm.command(now=0.01).action[:3], [1.0, -0.5, 0.0])
    sm.feed_evdev(_frame((EV_REL, 1, -350)), now=0.05)  # x axis absent from this frame -> 0
    np.testing.assert_allclose(sm.command(now=0.06).action[:3], [1.0, 0.0, 0.0])
    cmd = sm.command(now=0.3)  # no frames: the cap is at rest
    assert not cmd.is_moving and not cmd.stale


def test_evdev_abs_axes_persist_and_buttons_map() -> None:
    sm = SpaceMouseDevice(SpaceMouseConfig(deadzone=0.0, rotation_gain=1.0))
    sm.feed_evdev(_frame((EV_ABS, 5, -350), (EV_KEY, 257, 1)), now=0.0)
    sm.feed_evdev(_frame((EV_ABS, 2, 350)), now=0.05)
    cmd = sm.command(now=0.1)
    np.testing.assert_allclose(cmd.action[:6], [0, 0, -1, 0, 0, 1])
    assert cmd.takeover


def test_read_fd_from_a_pipe_and_disconnect_marks_stale() -> None:
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    sm = SpaceMouseDevice(SpaceMouseConfig(deadzone=0.0))
    try:
        os.write(write_end, _frame((EV_REL, 2, -350)))
        assert sm.read_fd(read_end, now=0.0) == 2
        assert sm.command(now=0.01).action[2] == pytest.approx(1.0)
        assert sm.read_fd(read_end, now=0.02) == 0  # nothing available: no block
    finally:
        os.close(write_end)
        os.close(read_end)
    sm.read_fd(read_end, now=0.03)  # closed descriptor (EBADF) = the device vanished
    cmd = sm.command(now=0.04)
    assert cmd.stale and not cmd.is_moving


def test_hid_reports_split_and_combined() -> None:
    trans = bytes([1]) + struct.pack("<3h", 0, -350, 0)
    rot = bytes([2]) + struct.pack("<3h", 0, 0, -350)
    assert parse_hid_report(trans).axes == {0: 0, 1: -350, 2: 0}
    assert parse_hid_report(rot).axes == {3: 0, 4: 0, 5: -350}
    assert parse_hid_report(bytes([1]) + struct.pack("<6h", 1, 2, 3, 4, 5, 6)).axes[5] == 6
    assert parse_hid_report(bytes([3, 0b10, 0])).buttons == 2
    with pytest.raises(ValueError, match="too short"):
        parse_hid_report(b"\x01")
    sm = SpaceMouseDevice(SpaceMouseConfig(deadzone=0.0, rotation_gain=1.0))
    sm.feed_hid(trans, now=0.0)
    sm.feed_hid(rot, now=0.0)
    sm.feed_hid(bytes([3, 0b01, 0]), now=0.0)
    cmd = sm.command(now=0.01)
    np.testing.assert_allclose(cmd.action, [1, 0, 0, 0, 0, 1, 1])


def test_dead_device_detector_modes() -> None:
    event_stream = DeadDeviceDetector(timeout_s=0.5)
    assert not event_stream.is_stale(10.0, active=False)
    event_stream.heartbeat(0.0)
    assert event_stream.is_stale(1.0, active=True) and not event_stream.is_stale(1.0, active=False)
    continuous = DeadDeviceDetector(timeout_s=0.5, continuous=True)
    assert continuous.is_stale(0.0, active=False)  # never heard from
    continuous.heartbeat(0.0)
    assert not continuous.is_stale(0.4, active=False) and continuous.is_stale(0.6, active=False)
    with pytest.raises(ValueError):
        DeadDeviceDetector(timeout_s=0.0)


# ---------------------------------------------------------------------------------- policy adapter

class _ConstantPolicy:
    def __init__(self, action: np.ndarray) -> None:
        self.action = action
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def act(self, obs: dict) -> np.ndarray:
        return self.action


def test_teleop_policy_gates_between_robot_and_human_and_keeps_gripper() -> None:
    clock = iter(np.arange(0.0, 10.0, 0.05))
    sm = SpaceMouseDevice(SpaceMouseConfig(deadzone=0.0))
    robot = _ConstantPolicy(np.array([0.1, 0, 0, 0, 0, 0, 1.0]))  # robot holds the gripper closed
    policy = TeleopPolicy(sm, fallback=robot, clock=lambda: float(next(clock)))
    policy.reset()
    assert robot.resets == 1
    np.testing.assert_allclose(policy.act({}), robot.action)
    assert not policy.is_intervening
    sm.update_joy([0, 0.68, 0, 0, 0, 0], [0, 1], now=0.06)  # deadman pressed, push left
    action = policy.act({})
    assert policy.is_intervening
    np.testing.assert_allclose(action, [0, 1, 0, 0, 0, 0, 1.0])  # gripper stays closed at takeover
    sm.update_joy([0, 0, 0, 0, 0, 0], [0, 0], now=0.11)  # deadman released
    np.testing.assert_allclose(policy.act({}), robot.action)
    assert not policy.is_intervening
