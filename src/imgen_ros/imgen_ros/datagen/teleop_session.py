"""A person on a teleop device as the collection policy, in a MuJoCo viewer paced at 20 Hz.

``keyboard`` reads key presses from the passive viewer window (needs a display); ``spacemouse``
reads the evdev node named by ``IMGEN_SPACEMOUSE`` (default: the first
``/dev/input/by-id/*3Dconnexion*event*``). For demos the person is always in control; for
interventions the robot policy (``IMGEN_TELEOP_ROBOT_POLICY``, default the naive expert) acts until
the person engages takeover (tab / the SpaceMouse takeover button).
"""

from __future__ import annotations

import glob
import os
import time
from typing import Any

import numpy as np

from imgen_ros.core.action import CONTROL_DT


class PacedViewerPolicy:
    """Wraps a TeleopPolicy: each ``act`` refreshes the viewer, polls the device and keeps real time."""

    def __init__(self, inner: Any, viewer: Any, poll: Any = None) -> None:
        self.inner = inner
        self.viewer = viewer
        self.poll = poll
        self._next = time.monotonic()

    @property
    def is_intervening(self) -> bool:
        return bool(self.inner.is_intervening)

    def reset(self) -> None:
        self.inner.reset()
        self._next = time.monotonic()

    def act(self, obs: dict) -> np.ndarray:
        if not self.viewer.is_running():
            raise KeyboardInterrupt("viewer window closed")
        self.viewer.sync()
        self._next += CONTROL_DT
        delay = self._next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            self._next = time.monotonic()
        if self.poll is not None:
            self.poll()
        return self.inner.act(obs)


def teleop_policy(name: str, env: Any, kind: str) -> PacedViewerPolicy:
    """Build the device, the viewer and the human-gated policy; RuntimeError with the reason if impossible."""
    try:
        import mujoco.viewer

        from imgen_ros.teleop import KeyboardDevice, SpaceMouseDevice, TeleopPolicy, glfw_key_name
    except ImportError as exc:
        raise RuntimeError(f"--policy {name}: teleop support is unavailable ({exc})") from exc
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise RuntimeError(f"--policy {name}: teleop collection opens a MuJoCo viewer window and needs a display "
                           "(DISPLAY/WAYLAND_DISPLAY unset); use --policy expert on a headless machine")
    poll = None
    key_callback = None
    if name == "keyboard":
        device = KeyboardDevice()

        def key_callback(keycode: int) -> None:
            key = glfw_key_name(keycode)
            if key is not None:
                device.key_tap(key)
    elif name == "spacemouse":
        device = SpaceMouseDevice()
        path = os.environ.get("IMGEN_SPACEMOUSE") or next(iter(sorted(
            glob.glob("/dev/input/by-id/*3Dconnexion*event*"))), None)
        if path is None:
            raise RuntimeError("--policy spacemouse: no SpaceMouse event device found under /dev/input/by-id "
                               "(set IMGEN_SPACEMOUSE=/dev/input/eventN)")
        device.open(path)
        poll = device.read_fd
    else:
        raise ValueError(f"unknown teleop policy {name!r} (keyboard | spacemouse)")
    fallback = None
    if kind == "interventions":
        from imgen_ros.datagen.job import load_generation_policy

        fallback = load_generation_policy(os.environ.get("IMGEN_TELEOP_ROBOT_POLICY", "expert"), env)
    viewer = mujoco.viewer.launch_passive(env.model, env.data, key_callback=key_callback)
    inner = TeleopPolicy(device, fallback=fallback, always_human=kind == "demos")
    return PacedViewerPolicy(inner, viewer, poll)
