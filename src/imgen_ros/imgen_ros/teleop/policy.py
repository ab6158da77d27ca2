"""A teleop device as a policy (``reset()`` / ``act(obs)``), for driving the simulator by hand.

Each ``act`` call polls the device once. While the human has not taken over (or the device is
stale) the wrapped ``fallback`` policy acts, or the robot holds still with the gripper unchanged
when there is none; ``is_intervening`` labels each step robot (False) or human (True), the same
flag :class:`imgen_ros.sim.human.SimulatedHuman` exposes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.action import ACTION_DIM
from imgen_ros.teleop.device import TeleopCommand, TeleopDevice


class _Policy(Protocol):
    def reset(self) -> None: ...

    def act(self, obs: dict) -> NDArray: ...


class TeleopPolicy:
    """Human-gated control: the device's command while ``takeover`` is engaged, else ``fallback``."""

    def __init__(self, device: TeleopDevice, fallback: _Policy | None = None,
                 clock: Callable[[], float] | None = None, always_human: bool = False) -> None:
        self.device = device
        self.fallback = fallback
        self.clock = clock
        self.always_human = always_human
        self.is_intervening = False
        self.last_command: TeleopCommand | None = None
        self._last_gripper = -1.0

    def reset(self) -> None:
        self.device.reset()
        if self.fallback is not None:
            self.fallback.reset()
        self.is_intervening = False
        self.last_command = None
        self._last_gripper = -1.0

    def act(self, obs: dict) -> NDArray[np.float64]:
        cmd = self.device.command(None if self.clock is None else self.clock())
        self.last_command = cmd
        human = (cmd.takeover or self.always_human) and not cmd.stale
        if human and not self.is_intervening:
            # take over with the gripper as it is, so a held object is not dropped
            self.device.set_gripper(self._last_gripper > 0)
            cmd = TeleopCommand(action=np.r_[cmd.action[:6], self._last_gripper], takeover=cmd.takeover,
                                gripper_toggled=False, stale=cmd.stale, stamp_s=cmd.stamp_s)
            self.last_command = cmd
        self.is_intervening = human
        if human:
            action = cmd.action
        elif self.fallback is not None:
            action = np.asarray(self.fallback.act(obs), dtype=float)
        else:
            action = np.zeros(ACTION_DIM)
            action[6] = self._last_gripper
        self._last_gripper = float(action[6])
        return action
