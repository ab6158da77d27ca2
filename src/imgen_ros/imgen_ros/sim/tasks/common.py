"""Helpers shared by task modules: top-down TCP poses, free-body / mocap placement, held objects."""

from __future__ import annotations

import mujoco
import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.pose import make_pose, yaw_matrix
from imgen_ros.sim.env import TaskEnv

# TCP orientation pointing down with the fingers opening along the world y axis.
TOP_DOWN = np.diag([1.0, -1.0, -1.0])


def top_down(position: NDArray | tuple[float, float, float], yaw: float = 0.0) -> NDArray[np.float64]:
    """Top-down TCP pose at ``position`` rotated by ``yaw`` about the world z axis."""
    return make_pose(position, yaw_matrix(yaw) @ TOP_DOWN)


def yaw_quat_wxyz(yaw: float) -> NDArray[np.float64]:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def set_free_pose(env: TaskEnv, body: str, pos: NDArray, quat_wxyz: NDArray) -> None:
    """Place a free-jointed body (zero velocity)."""
    jid = env.model.body(body).jntadr[0]
    qadr, vadr = env.model.jnt_qposadr[jid], env.model.jnt_dofadr[jid]
    env.data.qpos[qadr:qadr + 3] = pos
    env.data.qpos[qadr + 3:qadr + 7] = quat_wxyz
    env.data.qvel[vadr:vadr + 6] = 0.0


def set_mocap_pose(env: TaskEnv, body: str, pos: NDArray, quat_wxyz: NDArray) -> None:
    mid = env.model.body(body).mocapid[0]
    if mid < 0:
        raise ValueError(f"body {body!r} is not a mocap body")
    env.data.mocap_pos[mid] = pos
    env.data.mocap_quat[mid] = quat_wxyz


def place_in_hand(env: TaskEnv, body: str, tcp_from_body: NDArray, finger_gap: float) -> None:
    """Put free body ``body`` at ``tcp @ tcp_from_body`` with the fingers closed to ``finger_gap`` (m)
    and the gripper commanded closed, so the object starts held."""
    mujoco.mj_kinematics(env.model, env.data)
    pose = env.eef_pose() @ tcp_from_body
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, pose[:3, :3].reshape(-1))
    set_free_pose(env, body, pose[:3, 3], quat)
    env.data.qpos[env.finger_qpos_ids] = finger_gap / 2.0
    env.set_gripper(1.0)
    mujoco.mj_forward(env.model, env.data)


def add_mocap_body(spec: mujoco.MjSpec, name: str, pos: tuple[float, float, float]) -> mujoco.MjsBody:
    return spec.worldbody.add_body(name=name, pos=list(pos), mocap=True)


def raised(position: NDArray, dz: float) -> NDArray[np.float64]:
    """``position`` moved by ``dz`` along the world z axis."""
    return np.asarray(position, dtype=float) + np.array([0.0, 0.0, dz])
