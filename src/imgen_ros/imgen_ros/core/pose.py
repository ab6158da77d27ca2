"""SE(3) helpers on 4x4 homogeneous matrices (numpy only).

Conventions used across imgen: positions in metres, quaternions as (x, y, z, w) like ROS
geometry_msgs and robomimic's ``robot0_eef_quat``; MuJoCo's (w, x, y, z) is converted at the
simulator boundary only. Rotation vectors are axis-angle (rad).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation, Slerp

Pose = NDArray[np.float64]  # (4, 4) homogeneous transform


def make_pose(position: ArrayLike, rotation: ArrayLike | None = None) -> Pose:
    """Homogeneous transform from a position (3,) and a rotation matrix (3, 3) (identity if None)."""
    pose = np.eye(4)
    pose[:3, 3] = np.asarray(position, dtype=float)
    if rotation is not None:
        pose[:3, :3] = np.asarray(rotation, dtype=float)
    return pose


def quat_xyzw_to_matrix(quat_xyzw: ArrayLike) -> NDArray[np.float64]:
    """Rotation matrix of an (x, y, z, w) quaternion, normalized first, as scipy's ``Rotation.from_quat``
    (whose ~35 us per call is what this saves at the graph's message rates); scipy decides the
    degenerate cases (zero norm, non-finite) and raises or returns what it does."""
    q = np.asarray(quat_xyzw, dtype=float)
    if q.shape == (4,):
        norm = float(np.sqrt(q @ q))
        if 0.0 < norm < np.inf:
            x, y, z, w = (q / norm).tolist()
            return np.array([[1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - z * w), 2.0 * (x * z + y * w)],
                             [2.0 * (x * y + z * w), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - x * w)],
                             [2.0 * (x * z - y * w), 2.0 * (y * z + x * w), 1.0 - 2.0 * (x * x + y * y)]])
    return Rotation.from_quat(q).as_matrix()


def _is_proper_rotation(rows: list[list[float]], tol: float = 1e-6) -> bool:
    """Finite, orthonormal rows (to ``tol``) and determinant > 0, in plain floats (no numpy overhead)."""
    a, b, c = rows
    if not all(math.isfinite(v) for v in (*a, *b, *c)):
        return False
    for u, v, want in ((a, a, 1.0), (b, b, 1.0), (c, c, 1.0), (a, b, 0.0), (a, c, 0.0), (b, c, 0.0)):
        if abs(u[0] * v[0] + u[1] * v[1] + u[2] * v[2] - want) > tol:
            return False
    det = (a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0])
           + a[2] * (b[0] * c[1] - b[1] * c[0]))
    return det > 0


def matrix_to_quat_xyzw(rotation: ArrayLike) -> NDArray[np.float64]:
    """Canonical (w >= 0) unit (x, y, z, w) quaternion of a rotation matrix. A finite proper rotation
    (orthonormal to 1e-6, det > 0) is converted directly, by the branch scipy takes (~9 us against
    scipy's ~180 us); anything else goes to scipy's ``Rotation.from_matrix``, which projects a near-rotation
    onto SO(3) and raises on NaN or a reflection, as before."""
    r = np.asarray(rotation, dtype=float)
    if r.shape == (3, 3) and _is_proper_rotation(m := r.tolist()):
        trace = m[0][0] + m[1][1] + m[2][2]
        decision = [m[0][0], m[1][1], m[2][2], trace]
        i = decision.index(max(decision))   # the first maximum, as scipy chooses
        if i == 3:
            quat = [m[2][1] - m[1][2], m[0][2] - m[2][0], m[1][0] - m[0][1], 1.0 + trace]
        else:
            j, k = (i + 1) % 3, (i + 2) % 3
            quat = [0.0, 0.0, 0.0, 0.0]
            quat[i] = 1.0 - trace + 2.0 * m[i][i]
            quat[j] = m[j][i] + m[i][j]
            quat[k] = m[k][i] + m[i][k]
            quat[3] = m[k][j] - m[j][k]
        norm = math.sqrt(sum(v * v for v in quat))
        q = np.array([v / norm for v in quat])
    else:
        q = Rotation.from_matrix(r).as_quat()
    return -q if q[3] < 0 else q


def pose_from_pos_quat(position: ArrayLike, quat_xyzw: ArrayLike) -> Pose:
    """Homogeneous transform from a position and an (x, y, z, w) quaternion."""
    return make_pose(position, quat_xyzw_to_matrix(quat_xyzw))


def pos_quat_from_pose(pose: Pose) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Position (3,) and canonical (w >= 0) (x, y, z, w) quaternion of a transform."""
    return pose[:3, 3].copy(), matrix_to_quat_xyzw(pose[:3, :3])


def quat_wxyz_to_xyzw(quat: ArrayLike) -> NDArray[np.float64]:
    q = np.asarray(quat, dtype=float)
    return np.array([q[1], q[2], q[3], q[0]])


def quat_xyzw_to_wxyz(quat: ArrayLike) -> NDArray[np.float64]:
    q = np.asarray(quat, dtype=float)
    return np.array([q[3], q[0], q[1], q[2]])


def pose_inv(pose: Pose) -> Pose:
    """Inverse of a rigid transform."""
    inv = np.eye(4)
    inv[:3, :3] = pose[:3, :3].T
    inv[:3, 3] = -pose[:3, :3].T @ pose[:3, 3]
    return inv


def axisangle_to_matrix(rotvec: ArrayLike) -> NDArray[np.float64]:
    return Rotation.from_rotvec(np.asarray(rotvec, dtype=float)).as_matrix()


def matrix_to_axisangle(rotation: ArrayLike) -> NDArray[np.float64]:
    return Rotation.from_matrix(np.asarray(rotation, dtype=float)).as_rotvec()


def yaw_matrix(yaw: float) -> NDArray[np.float64]:
    """Rotation about the base z axis by ``yaw`` rad."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def transform_poses_to_new_frame(poses: NDArray[np.float64], src_frame: Pose, new_frame: Pose) -> NDArray[np.float64]:
    """MimicGen's object-centric transform: keep each pose's relation to the object frame.

    ``poses`` (N, 4, 4) were recorded while the object was at ``src_frame``; returns the poses
    with the same object-relative transforms when the object is at ``new_frame``:
    ``new_frame @ inv(src_frame) @ pose``.
    """
    return (new_frame @ pose_inv(src_frame))[None] @ np.asarray(poses, dtype=float)


def interpolate_poses(start: Pose, end: Pose, num_steps: int) -> NDArray[np.float64]:
    """``num_steps`` poses from ``start`` (exclusive) to ``end`` (inclusive): linear in position,
    spherical-linear in rotation. ``num_steps == 0`` gives an empty (0, 4, 4) array."""
    if num_steps <= 0:
        return np.zeros((0, 4, 4))
    fractions = np.arange(1, num_steps + 1) / num_steps
    slerp = Slerp([0.0, 1.0], Rotation.from_matrix(np.stack([start[:3, :3], end[:3, :3]])))
    rots = slerp(fractions).as_matrix()
    out = np.tile(np.eye(4), (num_steps, 1, 1))
    out[:, :3, :3] = rots
    out[:, :3, 3] = start[:3, 3][None] + fractions[:, None] * (end[:3, 3] - start[:3, 3])[None]
    return out


def pose_distance(a: Pose, b: Pose) -> tuple[float, float]:
    """Translation distance (m) and rotation angle (rad) between two poses."""
    dpos = float(np.linalg.norm(a[:3, 3] - b[:3, 3]))
    dang = float(np.linalg.norm(matrix_to_axisangle(a[:3, :3].T @ b[:3, :3])))
    return dpos, dang


# The FR3's working TCP orientation in every task: fingers pointing down = 180 deg about base x.
EEF_QUAT_REFERENCE_XYZW = np.array([1.0, 0.0, 0.0, 0.0])


def quat_on_hemisphere(quat_xyzw: ArrayLike,
                       reference_xyzw: ArrayLike = EEF_QUAT_REFERENCE_XYZW) -> NDArray[np.float64]:
    """``quat_xyzw`` or its negation (the same rotation), whichever has a non-negative dot product with
    ``reference_xyzw``. Policy observations use this for the TCP: the top-down orientation has w ~ 0,
    so a "w >= 0" rule flips the sign between steps and turns an input into a random +-1 bit."""
    q = np.asarray(quat_xyzw, dtype=float)
    return -q if float(q @ np.asarray(reference_xyzw, dtype=float)) < 0.0 else q.copy()
