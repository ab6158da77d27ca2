"""A simulated world kept in step with measurements, so the scripted expert can act as a policy node.

``ScriptedExpert`` reads the TCP, object poses and subtask signals from its environment. On the
ROS graph those are measurements, so :class:`MeasuredWorld` is a ``TaskEnv`` stand-in: its TCP and
object poses are the latest measured/believed ones, and a private ``TaskEnv`` is synchronized to
them (arm joints, fingers, free objects; then ``mj_forward``) so contact-based subtask signals work.
The expert acting on it is therefore the naive expert of the paper: it trusts the pose estimate.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.pose import Pose, pos_quat_from_pose, quat_xyzw_to_wxyz
from imgen_ros.sim import make_env
from imgen_ros.sim.tasks.common import set_free_pose


class MeasuredWorld:
    """Duck-typed ``TaskEnv`` view of measurements (see the module docstring)."""

    def __init__(self, task: str) -> None:
        self._env = make_env(task, noise="off")
        self._env.reset(0)
        self._tcp: Pose = self._env.eef_pose()
        self._objects: dict[str, Pose] = self._env.object_poses()
        self._arm = self._env.controller.qpos_ids
        self._fingers = self._env._finger_qpos

    def sync(self, tcp: Pose, objects: dict[str, Pose], joint_positions: NDArray | None = None,
             gripper_qpos: NDArray | None = None, gripper_command: float | None = None) -> None:
        """Take the newest measurements; joints (if known) and objects also move the private model."""
        self._tcp = np.asarray(tcp, float).copy()
        self._objects.update({k: np.asarray(v, float).copy() for k, v in objects.items()})
        d = self._env.data
        if joint_positions is not None and np.any(joint_positions):
            d.qpos[self._arm] = joint_positions
        if gripper_qpos is not None:
            d.qpos[self._fingers] = gripper_qpos
        for name, pose in objects.items():
            pos, quat = pos_quat_from_pose(pose)
            set_free_pose(self._env, name, pos, quat_xyzw_to_wxyz(quat))
        if gripper_command is not None:
            self._env.gripper_command = float(gripper_command)
        mujoco.mj_forward(self._env.model, d)

    # ---- the TaskEnv surface the scripted expert uses --------------------------------------------
    def eef_pose(self) -> Pose:
        return self._tcp.copy()

    def object_poses(self, observed: bool = False) -> dict[str, Pose]:
        """The believed poses (there is no other truth on a real robot)."""
        return {k: v.copy() for k, v in self._objects.items()}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)

