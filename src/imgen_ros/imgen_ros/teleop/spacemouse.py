"""3Dconnexion SpaceMouse teleop: 6-axis cap + 2 buttons -> delta-pose command (ROS-free).

Three input paths, one device:

- ``sensor_msgs/Joy``-shaped arrays from the ROS ``spacenav`` driver (``axes[6]``, ``buttons[2]``):
  :meth:`SpaceMouseDevice.update_joy`. spacenav already reports in a REP-103 *device* frame
  (x = push away from the user, y = left, z = lift; rotations right-handed about those), about
  +-0.68 at full deflection (350 counts / full_scale 512).
- Linux evdev bytes (``/dev/input/eventN``, ``struct input_event``): :meth:`feed_evdev` /
  :meth:`read_fd`. Axes are REL_X..REL_RZ (or ABS_X..ABS_RZ) in the raw HID frame.
- hidraw reports (``/dev/hidrawN``): :meth:`feed_hid`. Report 1 = translation (or all six axes on
  newer models), 2 = rotation, 3 = button bits; int16 little endian, raw HID frame.

The raw HID frame is x = right, y = toward the user, z = down (pressing the cap), rotations
right-handed about those axes, about +-350 counts at full deflection. It maps to the device frame
by a proper rotation (x_dev = -y_raw, y_dev = -x_raw, z_dev = -z_raw), then to the robot base frame
by the operator's yaw (``operator_yaw_deg`` = 0: the user stands behind the robot facing its +x).
Per-axis ``axis_signs`` fix up models or habits that differ; check on hardware before use.

The mapping is pure functions (:func:`apply_deadzone`, :func:`raw_hid_to_device`,
:func:`device_to_base`, :func:`motion_from_device`), so it is testable without a device.
"""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from imgen_ros.teleop.device import LatchedTeleopDevice, TeleopCommand

# Linux input subsystem (linux/input-event-codes.h)
EV_SYN, EV_KEY, EV_REL, EV_ABS = 0, 1, 2, 3
SYN_REPORT = 0
AXIS_CODES = (0, 1, 2, 3, 4, 5)  # REL_X..REL_RZ and ABS_X..ABS_RZ share codes 0..5
BUTTON_CODES = {256: 0, 257: 1, 272: 0, 273: 1}  # BTN_0, BTN_1 (BTN_LEFT/RIGHT on some models)
INPUT_EVENT = struct.Struct("@qqHHi")  # struct input_event on 64-bit Linux: timeval, type, code, value

# raw HID frame -> device frame (a proper rotation, det = +1), applied to translation and rotation
_RAW_TO_DEVICE = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


@dataclass(frozen=True)
class InputEvent:
    type: int
    code: int
    value: int
    time_s: float


def parse_evdev_events(buffer: bytes) -> tuple[list[InputEvent], bytes]:
    """Split a byte stream into complete ``input_event`` records; returns (events, leftover bytes)."""
    size = INPUT_EVENT.size
    whole = len(buffer) - len(buffer) % size
    events = []
    for offset in range(0, whole, size):
        sec, usec, ev_type, code, value = INPUT_EVENT.unpack_from(buffer, offset)
        events.append(InputEvent(ev_type, code, value, sec + usec * 1e-6))
    return events, bytes(buffer[whole:])


def pack_evdev_event(ev_type: int, code: int, value: int, time_s: float = 0.0) -> bytes:
    """One ``input_event`` record (for tests and replaying recorded streams)."""
    sec = int(time_s)
    return INPUT_EVENT.pack(sec, round((time_s - sec) * 1e6), ev_type, code, value)


@dataclass(frozen=True)
class HidUpdate:
    """What one hidraw report changed: axis values by index 0..5, or the button bitmask."""

    axes: dict[int, int] = field(default_factory=dict)
    buttons: int | None = None


def parse_hid_report(report: bytes) -> HidUpdate:
    """Decode one 3Dconnexion hidraw report (report id in byte 0)."""
    if len(report) < 2:
        raise ValueError(f"HID report too short: {len(report)} bytes")
    report_id = report[0]
    if report_id in (1, 2):
        count = min(6, (len(report) - 1) // 2)
        if count < 3:
            raise ValueError(f"HID report {report_id} needs >= 7 bytes, got {len(report)}")
        values = struct.unpack_from(f"<{count}h", report, 1)
        first = 0 if report_id == 1 else 3
        return HidUpdate(axes={first + i: v for i, v in enumerate(values)})
    if report_id == 3:
        return HidUpdate(buttons=int.from_bytes(report[1:], "little"))
    return HidUpdate()  # other reports (battery, LEDs) carry no motion


# --------------------------------------------------------------------------------------------
# Pure mapping functions
# --------------------------------------------------------------------------------------------

def apply_deadzone(values: ArrayLike, deadzone: float) -> NDArray[np.float64]:
    """Zero |v| < deadzone and rescale the rest so the output is continuous: v -> sign(v)(|v|-dz)/(1-dz).

    Inputs are normalized (full deflection = 1) and clipped to [-1, 1] first.
    """
    if not 0.0 <= deadzone < 1.0:
        raise ValueError(f"deadzone must be in [0, 1), got {deadzone}")
    v = np.clip(np.asarray(values, dtype=float), -1.0, 1.0)
    return np.sign(v) * np.maximum(np.abs(v) - deadzone, 0.0) / (1.0 - deadzone)


def raw_hid_to_device(raw6: ArrayLike) -> NDArray[np.float64]:
    """Raw HID frame (x right, y toward user, z down) -> device frame (x away, y left, z up)."""
    raw = np.asarray(raw6, dtype=float)
    return np.concatenate([_RAW_TO_DEVICE @ raw[:3], _RAW_TO_DEVICE @ raw[3:]])


def device_to_base(motion6: ArrayLike, operator_yaw_rad: float) -> NDArray[np.float64]:
    """Rotate device-frame translation and rotation vectors into the base frame by the operator's yaw."""
    m = np.asarray(motion6, dtype=float)
    c, s = np.cos(operator_yaw_rad), np.sin(operator_yaw_rad)
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return np.concatenate([rz @ m[:3], rz @ m[3:]])


@dataclass(frozen=True)
class SpaceMouseConfig:
    """Scaling and conventions. Gains are action units at full deflection (1.0 = 5 cm / 0.5 rad per step)."""

    raw_full_scale: float = 350.0
    joy_full_scale: float = 0.68
    deadzone: float = 0.1
    response_exponent: float = 1.0
    translation_gain: float = 1.0
    rotation_gain: float = 0.6
    rotation_enabled: bool = True
    operator_yaw_deg: float = 0.0
    axis_signs: tuple[float, float, float, float, float, float] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    gripper_button: int = 0
    takeover_button: int = 1
    takeover_mode: str = "hold"
    stale_timeout_s: float = 0.5
    rel_idle_s: float = 0.1

    def __post_init__(self) -> None:
        if self.raw_full_scale <= 0 or self.joy_full_scale <= 0:
            raise ValueError(f"SpaceMouseConfig full scales must be > 0: {self.raw_full_scale}, {self.joy_full_scale}")
        if not 0.0 <= self.deadzone < 1.0:
            raise ValueError(f"SpaceMouseConfig.deadzone must be in [0, 1), got {self.deadzone}")
        if self.response_exponent < 1.0:
            raise ValueError(f"SpaceMouseConfig.response_exponent must be >= 1, got {self.response_exponent}")
        if not (0 < self.translation_gain <= 1 and 0 < self.rotation_gain <= 1):
            raise ValueError("SpaceMouseConfig gains must be in (0, 1]")
        if len(self.axis_signs) != 6 or any(s not in (-1.0, 1.0) for s in self.axis_signs):
            raise ValueError(f"SpaceMouseConfig.axis_signs must be six values of +-1, got {self.axis_signs}")
        if self.gripper_button == self.takeover_button or min(self.gripper_button, self.takeover_button) < 0:
            raise ValueError("SpaceMouseConfig: gripper_button and takeover_button must be distinct indices >= 0")
        if self.takeover_mode not in ("hold", "toggle"):
            raise ValueError(f"SpaceMouseConfig.takeover_mode must be 'hold' or 'toggle', got '{self.takeover_mode}'")
        if self.stale_timeout_s <= 0 or self.rel_idle_s <= 0:
            raise ValueError("SpaceMouseConfig: stale_timeout_s and rel_idle_s must be > 0")


def motion_from_device(device6: ArrayLike, config: SpaceMouseConfig) -> NDArray[np.float64]:
    """Normalized device-frame deflection (6,) -> base-frame action motion (6,) in [-1, 1]."""
    v = apply_deadzone(device6, config.deadzone)
    v = np.sign(v) * np.abs(v) ** config.response_exponent
    v = v * np.asarray(config.axis_signs, dtype=float)
    v[:3] *= config.translation_gain
    v[3:] = v[3:] * config.rotation_gain if config.rotation_enabled else 0.0
    return np.clip(device_to_base(v, np.deg2rad(config.operator_yaw_deg)), -1.0, 1.0)


def motion_from_joy(axes: ArrayLike, config: SpaceMouseConfig) -> NDArray[np.float64]:
    """spacenav ``Joy.axes`` (6,) -> base-frame action motion (6,)."""
    a = np.asarray(axes, dtype=float)
    if a.shape != (6,):
        raise ValueError(f"SpaceMouse Joy axes must have 6 values, got {a.shape}")
    return motion_from_device(a / config.joy_full_scale, config)


def motion_from_raw(raw6: ArrayLike, config: SpaceMouseConfig) -> NDArray[np.float64]:
    """Raw HID/evdev counts (6,) -> base-frame action motion (6,)."""
    raw = np.asarray(raw6, dtype=float)
    if raw.shape != (6,):
        raise ValueError(f"SpaceMouse raw axes must have 6 values, got {raw.shape}")
    return motion_from_device(raw_hid_to_device(raw / config.raw_full_scale), config)


# --------------------------------------------------------------------------------------------
# The device
# --------------------------------------------------------------------------------------------

class SpaceMouseDevice(LatchedTeleopDevice):
    """SpaceMouse state fed from Joy arrays, evdev bytes or hidraw reports; see the module docstring.

    Button ``gripper_button`` toggles the gripper on press; ``takeover_button`` is a deadman
    (``takeover_mode="hold"``) or a toggle. Evdev REL axes are only reported while non-zero, so
    axes absent from a ``SYN_REPORT`` frame are zero and all axes return to zero after
    ``rel_idle_s`` without frames. A deflected cap (or held button) that stops reporting for
    ``stale_timeout_s`` makes the device stale: motion is zeroed and a held deadman released.
    """

    def __init__(self, config: SpaceMouseConfig | None = None) -> None:
        self.config = config or SpaceMouseConfig()
        self._motion = np.zeros(6)  # base-frame action motion from the latest input
        self._raw = np.zeros(6)  # raw HID/evdev axis state
        self._buttons: list[bool] = [False, False]
        self._rel_frame: dict[int, int] = {}
        self._rel_mode = False
        self._last_frame_s: float | None = None
        self._pending = b""
        self._fd: int | None = None
        super().__init__(self.config.takeover_mode, self.config.stale_timeout_s)

    # -- input: ROS spacenav Joy --------------------------------------------------------------
    def update_joy(self, axes: ArrayLike, buttons: ArrayLike, now: float | None = None) -> None:
        """Apply one ``sensor_msgs/Joy`` from the ``spacenav`` driver."""
        t = self._now(now)
        self._motion = motion_from_joy(axes, self.config)
        self._set_buttons([bool(b) for b in np.asarray(buttons).ravel()])
        self._detector.heartbeat(t)

    # -- input: hidraw --------------------------------------------------------------------------
    def feed_hid(self, report: bytes, now: float | None = None) -> None:
        t = self._now(now)
        update = parse_hid_report(report)
        for index, value in update.axes.items():
            self._raw[index] = value
        if update.axes:
            self._motion = motion_from_raw(self._raw, self.config)
        if update.buttons is not None:
            self._set_buttons([bool(update.buttons >> i & 1) for i in range(max(2, update.buttons.bit_length()))])
        self._detector.heartbeat(t)

    # -- input: evdev ---------------------------------------------------------------------------
    def feed_evdev(self, data: bytes, now: float | None = None) -> int:
        """Consume evdev bytes (partial records are kept for the next call); returns events applied."""
        t = self._now(now)
        events, self._pending = parse_evdev_events(self._pending + data)
        for event in events:
            self._apply_evdev(event, t)
        if events:
            self._detector.heartbeat(t)
        return len(events)

    def _apply_evdev(self, event: InputEvent, now: float) -> None:
        if event.type == EV_REL and event.code in AXIS_CODES:
            self._rel_mode = True
            self._rel_frame[event.code] = event.value
        elif event.type == EV_ABS and event.code in AXIS_CODES:
            self._raw[event.code] = event.value
        elif event.type == EV_KEY and event.code in BUTTON_CODES:
            buttons = list(self._buttons)
            buttons[BUTTON_CODES[event.code]] = event.value != 0
            self._set_buttons(buttons)
        elif event.type == EV_SYN and event.code == SYN_REPORT:
            if self._rel_mode:
                self._raw = np.array([self._rel_frame.get(c, 0) for c in AXIS_CODES], dtype=float)
                self._rel_frame = {}
            self._motion = motion_from_raw(self._raw, self.config)
            self._last_frame_s = now

    def open(self, path: str) -> None:
        """Open an evdev node (``/dev/input/by-id/usb-3Dconnexion_*-event-mouse``) non-blocking."""
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot open SpaceMouse event device '{path}': {exc.strerror}") from exc

    def read_fd(self, fd: int | None = None, now: float | None = None) -> int:
        """Drain available evdev bytes from ``fd`` (default: the opened device); returns events applied.
        A vanished device (ENODEV/EIO) marks the device disconnected (stale) instead of raising."""
        source = self._fd if fd is None else fd
        if source is None:
            raise RuntimeError("SpaceMouseDevice.read_fd: no file descriptor (call open(path) first)")
        applied = 0
        while True:
            try:
                chunk = os.read(source, INPUT_EVENT.size * 64)
            except BlockingIOError:
                return applied
            except OSError as exc:
                if exc.errno in (errno.ENODEV, errno.EIO, errno.EBADF):
                    self._detector.disconnect()
                    self._motion = np.zeros(6)
                    return applied
                raise
            if not chunk:
                return applied
            applied += self.feed_evdev(chunk, now)

    # -- output ---------------------------------------------------------------------------------
    def _set_buttons(self, buttons: list[bool]) -> None:
        cfg = self.config
        size = max(len(buttons), cfg.gripper_button + 1, cfg.takeover_button + 1)
        self._buttons = buttons + [False] * (size - len(buttons))
        self._gripper.update(self._buttons[cfg.gripper_button])
        self._takeover.update(self._buttons[cfg.takeover_button])

    def command(self, now: float | None = None) -> TeleopCommand:
        t = self._now(now)
        if self._rel_mode and self._last_frame_s is not None and t - self._last_frame_s > self.config.rel_idle_s:
            self._raw[:] = 0.0  # REL devices go silent at rest
            self._motion = np.zeros(6)
        active = bool(np.any(self._motion != 0.0)) or any(self._buttons)
        stale = self._detector.is_stale(t, active=active)
        return self._emit(self._motion, stale, t)

    def reset(self, gripper_closed: bool = False) -> None:
        self._motion = np.zeros(6)
        self._raw = np.zeros(6)
        self._rel_frame = {}
        self._buttons = [False, False]
        self._reset_latches(gripper_closed)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
