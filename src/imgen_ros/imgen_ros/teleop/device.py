"""What every teleop device emits, the device interface, and the dead-device detector (ROS-free).

A device turns raw input (key states, SpaceMouse axes) into one :class:`TeleopCommand` per
control tick: the normalized action of ``imgen_ros.core.action`` (``a[:6]`` velocity-like deltas
in the base frame ``fr3_link0``, ``a[6]`` the latched gripper state, -1 open / +1 closed) plus the
buttons a human-gated intervention needs (``takeover`` = the human holds control / deadman).

Usage from a control loop (a ROS node or a viewer)::

    device = KeyboardDevice()            # or SpaceMouseDevice()
    ...feed input: device.key_down("w") / device.update_joy(axes, buttons, now) ...
    cmd = device.command(now)            # once per 20 Hz tick
    if cmd.takeover and not cmd.stale:
        env.step(cmd.action)
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.action import ACTION_DIM, GRIPPER_CLOSED, GRIPPER_OPEN


@dataclass(frozen=True)
class TeleopCommand:
    """One tick of teleop output.

    - ``action``: normalized (7,) action; motion is zero whenever the device is stale.
    - ``takeover``: the human wants control (toggle or held deadman, per device config).
    - ``gripper_toggled``: the gripper state flipped since the previous command (an edge).
    - ``stale``: the device stopped reporting (see :class:`DeadDeviceDetector`).
    - ``stamp_s``: the time the command was made (the ``now`` passed to ``command``).
    """

    action: NDArray[np.float64]
    takeover: bool
    gripper_toggled: bool
    stale: bool
    stamp_s: float

    @property
    def gripper_closed(self) -> bool:
        return bool(self.action[6] > 0)

    @property
    def is_moving(self) -> bool:
        return bool(np.any(self.action[:6] != 0.0))


@dataclass
class DeadDeviceDetector:
    """Reports a device stale when it has been silent for ``timeout_s``.

    Event-stream devices (evdev SpaceMouse, keyboard) are silent when nobody touches them, so
    silence only counts while the device's last state is *active* (non-zero axes or a held key):
    an active state that stops updating means the device died mid-motion, and the command must
    stop. Sources that publish continuously (``sensor_msgs/Joy`` from ``spacenav``) set
    ``continuous=True``: there any silence longer than ``timeout_s`` is stale. ``disconnect()``
    (e.g. on a read error) makes the device stale until the next event.
    """

    timeout_s: float = 0.5
    continuous: bool = False
    last_event_s: float | None = None
    disconnected: bool = False

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError(f"DeadDeviceDetector.timeout_s must be > 0, got {self.timeout_s}")

    def heartbeat(self, now: float) -> None:
        self.last_event_s = now
        self.disconnected = False

    def disconnect(self) -> None:
        self.disconnected = True

    def silence_s(self, now: float) -> float:
        return float("inf") if self.last_event_s is None else max(0.0, now - self.last_event_s)

    def is_stale(self, now: float, active: bool) -> bool:
        if self.disconnected:
            return True
        if self.continuous:
            return self.silence_s(now) > self.timeout_s
        return active and self.silence_s(now) > self.timeout_s


@dataclass
class GripperLatch:
    """Gripper state toggled by a button's rising edge; starts open."""

    closed: bool = False
    _button_was_down: bool = field(default=False, repr=False)
    _toggled: bool = field(default=False, repr=False)

    def update(self, button_down: bool) -> None:
        if button_down and not self._button_was_down:
            self.closed = not self.closed
            self._toggled = True
        self._button_was_down = button_down

    def toggle(self) -> None:
        self.closed = not self.closed
        self._toggled = True

    def take_toggled(self) -> bool:
        """Whether the state flipped since the last call (clears the flag)."""
        toggled, self._toggled = self._toggled, False
        return toggled

    @property
    def value(self) -> float:
        return GRIPPER_CLOSED if self.closed else GRIPPER_OPEN

    def set(self, closed: bool) -> None:
        self.closed = closed

    def reset(self, closed: bool = False) -> None:
        self.closed = closed
        self._button_was_down = False
        self._toggled = False


@dataclass
class TakeoverSwitch:
    """Takeover from a button: ``mode="hold"`` is a deadman (control only while held),
    ``mode="toggle"`` flips on each press."""

    mode: str = "hold"
    engaged: bool = False
    _button_was_down: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in ("hold", "toggle"):
            raise ValueError(f"takeover mode must be 'hold' or 'toggle', got '{self.mode}'")

    def update(self, button_down: bool) -> None:
        if self.mode == "hold":
            self.engaged = button_down
        elif button_down and not self._button_was_down:
            self.engaged = not self.engaged
        self._button_was_down = button_down

    def reset(self) -> None:
        self.engaged = False
        self._button_was_down = False


class TeleopDevice(ABC):
    """A human input device producing :class:`TeleopCommand` ticks."""

    @abstractmethod
    def command(self, now: float | None = None) -> TeleopCommand:
        """The command for this tick (``now`` defaults to ``time.monotonic()``)."""

    @abstractmethod
    def reset(self, gripper_closed: bool = False) -> None:
        """Forget held input and takeover; set the latched gripper state (match the robot's)."""

    @abstractmethod
    def set_gripper(self, closed: bool) -> None:
        """Set the latched gripper state without an edge (e.g. to match the robot at takeover)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most devices hold no OS resources
        """Release OS resources (file descriptors); default: nothing to release."""

    @staticmethod
    def _now(now: float | None) -> float:
        return time.monotonic() if now is None else float(now)


class LatchedTeleopDevice(TeleopDevice):
    """A device with a toggled gripper latch, a takeover switch and a dead-device detector: the
    command assembly, ``set_gripper`` and the latch reset are shared here."""

    def __init__(self, takeover_mode: str, stale_timeout_s: float) -> None:
        self._gripper = GripperLatch()
        self._takeover = TakeoverSwitch(takeover_mode)
        self._detector = DeadDeviceDetector(stale_timeout_s)

    def _emit(self, motion: NDArray, stale: bool, t: float) -> TeleopCommand:
        """The tick's command; a stale device sends no motion and releases a held deadman."""
        if stale:
            motion = np.zeros(6)
            if self._takeover.mode == "hold":
                self._takeover.update(False)
        return TeleopCommand(action=make_action(motion, self._gripper.value), takeover=self._takeover.engaged,
                             gripper_toggled=self._gripper.take_toggled(), stale=stale, stamp_s=t)

    def set_gripper(self, closed: bool) -> None:
        self._gripper.set(closed)

    def _reset_latches(self, gripper_closed: bool) -> None:
        self._gripper.reset(gripper_closed)
        self._takeover.reset()


def make_action(motion: NDArray, gripper: float) -> NDArray[np.float64]:
    """(6,) motion clipped to [-1, 1] + gripper value -> (7,) action."""
    action = np.zeros(ACTION_DIM)
    action[:6] = np.clip(np.asarray(motion, dtype=float), -1.0, 1.0)
    action[6] = gripper
    return action
