"""The ``sim`` driver: the MuJoCo FR3 world (imgen_ros.sim.TaskEnv) stepped by delta-pose commands.

Each ``execute`` is one 20 Hz control step of the environment (synchronous, like the datasets were
recorded), so the caller's timer is the simulation clock. Commands larger than one action's scale
(5 cm / 0.5 rad) are clipped exactly as in the learning code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from imgen_ros.core.command import DeltaCommand
from imgen_ros.core.pose import Pose
from imgen_ros.robot.interface import ArmState, DriverError, RobotDriver, checked, target_from


class SimDriver(RobotDriver):
    """Drives a TaskEnv. ``last_step`` keeps the newest ``(obs, reward, done, info)``."""

    name = "sim"

    def __init__(self, env: Any) -> None:
        self.env = env
        self.last_step: tuple[dict, float, bool, dict] | None = None
        self._gripper = -1.0
        self._started = False

    def start(self) -> None:
        self._started = True

    def close(self) -> None:
        self._started = False

    def _require(self) -> Any:
        if not self._started:
            raise DriverError("sim driver is not started (call start() or use it as a context manager)")
        return self.env

    def read_state(self) -> ArmState:
        env = self._require()
        controller = env.controller
        return ArmState(stamp_s=float(env.data.time), tcp_pose=env.eef_pose(),
                        joint_positions=env.data.qpos[controller.qpos_ids].copy(),
                        joint_velocities=env.data.qvel[controller.dof_ids].copy(),
                        gripper_width=float(env.finger_width()),
                        external_wrench=env.external_wrench())  # the simulated O_F_ext_hat_K (sim.wrench)

    def execute(self, command: DeltaCommand) -> Pose:
        checked(command)
        env = self._require()
        target = target_from(command, env.eef_pose())
        self._gripper = command.gripper
        self.last_step = env.step(command.to_action(env.scale))
        return target

    def hold(self) -> None:
        self.execute(DeltaCommand.hold(self._gripper))

    def reset(self, seed: int) -> dict[str, np.ndarray]:
        """New scene (TaskEnv.reset); the gripper starts open."""
        self._gripper = -1.0
        self.last_step = None
        return self._require().reset(seed)
