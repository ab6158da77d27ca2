"""Keyboard teleop: key states -> delta-pose command (ROS-free).

Default layout (base frame ``fr3_link0``, operator standing behind the robot facing +x):

    w / s      +x / -x  (forward / back)       up / down     +pitch / -pitch (ry)
    a / d      +y / -y  (left / right)         left / right  +yaw / -yaw (rz)
    q / e      +z / -z  (up / down)            z / x         +roll / -roll (rx)
    space      toggle gripper                  tab           takeover (toggle by default)
    + / -      speed up / down (x1.25 per press, bounded)

Keys are lower-case names (GLFW key codes convert with :func:`glfw_key_name`). Two input styles:
``key_down`` / ``key_up`` from sources that report releases, and ``key_tap`` for press-only
sources (MuJoCo's passive viewer ``key_callback``), which holds the key for ``tap_hold_s``
(default 0.15 s = 3 control steps per tap; a held key then moves in the OS key-repeat rhythm).
A held key without any key event for ``stale_timeout_s`` (a lost key-up, e.g. focus change)
makes the device stale: motion stops and held keys are released.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from imgen_ros.teleop.device import LatchedTeleopDevice, TeleopCommand

# key -> (action index 0..5, sign)
DEFAULT_MOTION_KEYS: dict[str, tuple[int, float]] = {
    "w": (0, 1.0), "s": (0, -1.0),
    "a": (1, 1.0), "d": (1, -1.0),
    "q": (2, 1.0), "e": (2, -1.0),
    "z": (3, 1.0), "x": (3, -1.0),
    "up": (4, 1.0), "down": (4, -1.0),
    "left": (5, 1.0), "right": (5, -1.0),
}

_GLFW_NAMES = {32: "space", 257: "enter", 258: "tab", 256: "escape", 262: "right", 263: "left", 264: "down",
               265: "up", 61: "+", 334: "+", 45: "-", 333: "-", 340: "left_shift", 344: "right_shift"}


def glfw_key_name(keycode: int) -> str | None:
    """Lower-case key name for a GLFW key code (letters, digits, arrows, a few specials)."""
    if 65 <= keycode <= 90 or 48 <= keycode <= 57:
        return chr(keycode).lower()
    return _GLFW_NAMES.get(keycode)


@dataclass
class KeyboardConfig:
    """Key map and speeds. Speeds are fractions of the full-scale action (1.0 = 5 cm / 0.5 rad per step)."""

    translation_speed: float = 0.3
    rotation_speed: float = 0.2
    motion_keys: dict[str, tuple[int, float]] = field(default_factory=lambda: dict(DEFAULT_MOTION_KEYS))
    gripper_key: str = "space"
    takeover_key: str = "tab"
    takeover_mode: str = "toggle"
    speed_up_key: str = "+"
    speed_down_key: str = "-"
    speed_step: float = 1.25
    tap_hold_s: float = 0.15
    stale_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        for name in ("translation_speed", "rotation_speed"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"KeyboardConfig.{name} must be in (0, 1], got {value}")
        for key, (index, sign) in self.motion_keys.items():
            if index not in range(6) or sign not in (-1.0, 1.0):
                raise ValueError(f"KeyboardConfig.motion_keys['{key}'] = {(index, sign)}: "
                                 "need an axis index 0..5 and a sign of +1/-1")
        specials = [self.gripper_key, self.takeover_key, self.speed_up_key, self.speed_down_key]
        clash = set(specials) & set(self.motion_keys)
        if clash or len(set(specials)) != len(specials):
            raise ValueError(f"KeyboardConfig: keys bound twice: {sorted(clash) or specials}")
        if self.speed_step <= 1.0 or self.tap_hold_s <= 0 or self.stale_timeout_s <= 0:
            raise ValueError("KeyboardConfig: speed_step must be > 1, tap_hold_s and stale_timeout_s > 0")


class KeyboardDevice(LatchedTeleopDevice):
    """Key-state teleop device; see the module docstring for the layout."""

    def __init__(self, config: KeyboardConfig | None = None) -> None:
        self.config = config or KeyboardConfig()
        self.translation_speed = self.config.translation_speed
        self.rotation_speed = self.config.rotation_speed
        self._held: dict[str, float | None] = {}  # key -> release time (None = until key_up)
        super().__init__(self.config.takeover_mode, self.config.stale_timeout_s)

    # -- input ------------------------------------------------------------------------------
    def key_down(self, key: str, now: float | None = None) -> None:
        """A key went down (repeats of a held key are harmless)."""
        t = self._now(now)
        key = key.lower()
        self._detector.heartbeat(t)
        first_press = key not in self._held
        self._held[key] = None
        self._on_press(key, first_press)

    def key_up(self, key: str, now: float | None = None) -> None:
        t = self._now(now)
        key = key.lower()
        self._detector.heartbeat(t)
        self._held.pop(key, None)
        if key == self.config.takeover_key:
            self._takeover.update(False)
        if key == self.config.gripper_key:
            self._gripper.update(False)

    def key_tap(self, key: str, now: float | None = None) -> None:
        """A press from a source that never reports releases: hold for ``tap_hold_s``."""
        t = self._now(now)
        key = key.lower()
        self._detector.heartbeat(t)
        first_press = key not in self._held
        self._held[key] = t + self.config.tap_hold_s
        self._on_press(key, first_press)
        if key in (self.config.gripper_key, self.config.takeover_key):
            # buttons act on the press; a tap is a complete press-release
            self._held.pop(key, None)
            self._gripper.update(False)
            if self._takeover.mode == "toggle":
                self._takeover.update(False)

    def _on_press(self, key: str, first_press: bool) -> None:
        cfg = self.config
        if key == cfg.gripper_key:
            self._gripper.update(True)
        elif key == cfg.takeover_key:
            self._takeover.update(True)
        elif key == cfg.speed_up_key and first_press:
            self.set_speed(self.translation_speed * cfg.speed_step, self.rotation_speed * cfg.speed_step)
        elif key == cfg.speed_down_key and first_press:
            self.set_speed(self.translation_speed / cfg.speed_step, self.rotation_speed / cfg.speed_step)

    def set_speed(self, translation: float, rotation: float) -> None:
        """Set speeds (fractions of full scale), clamped to [0.02, 1]."""
        self.translation_speed = float(np.clip(translation, 0.02, 1.0))
        self.rotation_speed = float(np.clip(rotation, 0.02, 1.0))

    # -- output -----------------------------------------------------------------------------
    def held_keys(self, now: float | None = None) -> set[str]:
        t = self._now(now)
        expired = [k for k, until in self._held.items() if until is not None and until <= t]
        for key in expired:
            del self._held[key]
        return set(self._held)

    def command(self, now: float | None = None) -> TeleopCommand:
        t = self._now(now)
        held = self.held_keys(t)
        motion = np.zeros(6)
        for key in held:
            binding = self.config.motion_keys.get(key)
            if binding is not None:
                index, sign = binding
                motion[index] += sign
        motion[:3] *= self.translation_speed
        motion[3:] *= self.rotation_speed
        stale = self._detector.is_stale(t, active=bool(held))
        if stale:
            self._held.clear()
        return self._emit(motion, stale, t)

    def reset(self, gripper_closed: bool = False) -> None:
        self._held.clear()
        self._reset_latches(gripper_closed)
