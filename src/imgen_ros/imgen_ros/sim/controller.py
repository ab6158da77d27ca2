"""Cartesian TCP pose controller for the simulated FR3: damped-least-squares IK onto position servos.

Each 20 Hz control step the target TCP pose is turned into joint position targets by a few
damped-least-squares iterations (``mj_jacSite`` on a scratch ``MjData``, starting at the measured
joint angles, with a null-space pull toward the home posture); the arm's position servos then track
those targets over the physics substeps. The arm is gravity compensated, so the servos only fight
inertia and contacts.
"""

from __future__ import annotations

from collections.abc import Callable

import mujoco
import numpy as np
from numpy.typing import NDArray

from imgen_ros.sim.model import ARM_JOINTS, HOME_Q


def rotation_error(target: NDArray, current: NDArray) -> NDArray:
    """Axis-angle vector (base frame) rotating ``current`` onto ``target`` (both 3x3)."""
    r = target @ current.T
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, r.reshape(-1))
    if quat[0] < 0:
        quat = -quat
    vec = quat[1:]
    s = np.linalg.norm(vec)
    if s < 1e-12:
        return np.zeros(3)
    angle = 2.0 * np.arctan2(s, quat[0])
    return vec / s * angle


class PoseController:
    """Maps a target TCP pose to arm servo set-points (``set_target``) and a gripper command."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, site: str = "tcp", iterations: int = 2,
                 damping: float = 0.02, nullspace_gain: float = 0.2) -> None:
        self.model = model
        self.data = data
        self._scratch = mujoco.MjData(model)
        self.site_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, site)
        if self.site_id < 0:
            raise ValueError(f"site {site!r} not in the model")
        self.qpos_ids = np.array([model.jnt_qposadr[model.joint(n).id] for n in ARM_JOINTS])
        self.dof_ids = np.array([model.jnt_dofadr[model.joint(n).id] for n in ARM_JOINTS])
        self.arm_actuators = np.array([model.actuator(n).id for n in ARM_JOINTS])
        self.gripper_actuator = model.actuator("hand").id
        ranges = model.jnt_range[[model.joint(n).id for n in ARM_JOINTS]]
        self.q_min = ranges[:, 0] + 0.02
        self.q_max = ranges[:, 1] - 0.02
        self.iterations = iterations
        self.damping2 = damping ** 2
        self.nullspace_gain = nullspace_gain
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))
        self._eye7 = np.eye(7)
        self._diag6 = np.diag_indices(6)

    def solve_ik(self, target: NDArray, q_start: NDArray) -> NDArray:
        """Joint angles (7,) placing the TCP at ``target`` (4x4), from ``q_start`` by DLS iterations.

        A further iteration is only taken while the previous correction was large (> 5 mm or
        0.05 rad), where the linearization error matters."""
        m, s = self.model, self._scratch
        q = q_start.copy()
        err = np.empty(6)
        eye7 = self._eye7
        for _ in range(self.iterations):
            s.qpos[self.qpos_ids] = q
            mujoco.mj_kinematics(m, s)
            mujoco.mj_comPos(m, s)
            err[:3] = target[:3, 3] - s.site_xpos[self.site_id]
            err[3:] = rotation_error(target[:3, :3], s.site_xmat[self.site_id].reshape(3, 3))
            mujoco.mj_jacSite(m, s, self._jacp, self._jacr, self.site_id)
            jac = np.vstack([self._jacp[:, self.dof_ids], self._jacr[:, self.dof_ids]])
            jjt = jac @ jac.T
            jjt[self._diag6] += self.damping2
            pinv = np.linalg.solve(jjt, jac).T
            dq = pinv @ err + (eye7 - pinv @ jac) @ (self.nullspace_gain * (HOME_Q - q))
            q = np.clip(q + dq, self.q_min, self.q_max)
            if err[:3] @ err[:3] < 0.005 ** 2 and err[3:] @ err[3:] < 0.05 ** 2:
                break
        return q

    def set_target(self, target: NDArray) -> NDArray:
        """Solve IK for the target TCP pose and write the arm servo set-points; returns them."""
        q_des = self.solve_ik(target, self.data.qpos[self.qpos_ids])
        self.data.ctrl[self.arm_actuators] = q_des
        return q_des

    def track(self, target: NDArray, n_substeps: int, chunks: int = 5, ramp_chunks: int = 3,
              on_chunk: Callable[[], None] | None = None) -> None:
        """Step the physics ``n_substeps`` times while the servo set-points ramp linearly from their
        previous values to the IK solution of ``target`` over the first ``ramp_chunks`` of ``chunks``
        intervals (like a robot's 1 kHz interpolator), then hold it; this avoids jerks that would
        shake held objects loose and leaves time to settle within the control period. ``on_chunk``
        runs after each interval (the robot-state samples within a control step, e.g. the wrench)."""
        q_start = self.data.ctrl[self.arm_actuators].copy()
        q_des = self.solve_ik(target, self.data.qpos[self.qpos_ids])
        per_chunk, rest = divmod(n_substeps, chunks)
        for i in range(1, chunks + 1):
            self.data.ctrl[self.arm_actuators] = q_start + (q_des - q_start) * min(1.0, i / ramp_chunks)
            mujoco.mj_step(self.model, self.data, per_chunk + (rest if i == chunks else 0))
            if on_chunk is not None:
                on_chunk()

    def set_gripper(self, command: float) -> None:
        """Gripper command in [-1, 1]: -1 open, +1 closed (squeezing)."""
        self.data.ctrl[self.gripper_actuator] = float(np.clip(command, -1.0, 1.0))
