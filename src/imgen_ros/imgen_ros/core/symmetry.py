"""The cube's orientation up to its 24 rotational symmetries, and the one canonical member (numpy only).

A cube looks the same after any rotation that permutes its faces, so its orientation is only defined
up to that group. Everything that reports a cube's orientation to a policy reports the *canonical*
member: the symmetric rotation closest to the base frame's axes. For a cube resting on the table
that is "z up, yaw in [-45, 45] deg"; a knocked-over cube gets whichever face is up. The pose
estimator (``perception.estimator``) and the simulator's observed poses (``sim.env``) both call
:func:`canonical_cube_rotation`, so a checkpoint sees the same numbers from either.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation


@lru_cache(maxsize=1)
def cube_symmetries() -> NDArray[np.float64]:
    """The 24 proper rotations (24, 3, 3) mapping a cube onto itself (signed permutation matrices, det +1)."""
    mats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((-1.0, 1.0), repeat=3):
            m = np.zeros((3, 3))
            for row, (col, s) in enumerate(zip(perm, signs, strict=True)):
                m[row, col] = s
            if np.linalg.det(m) > 0:
                mats.append(m)
    out = np.stack(mats)
    out.setflags(write=False)
    return out


def rotation_angles(rotations: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rotation angle (rad) of each matrix in ``rotations`` (..., 3, 3)."""
    traces = np.trace(rotations, axis1=-2, axis2=-1)
    return np.arccos(np.clip((traces - 1.0) / 2.0, -1.0, 1.0))


def closest_cube_rotation(rotation: ArrayLike, reference: ArrayLike) -> NDArray[np.float64]:
    """The member ``rotation @ S`` of the cube's symmetry class closest to ``reference`` (both 3x3).

    The angle between ``R S`` and ``Q`` falls as ``trace(Q^T R S)`` grows, so the member is the
    ``S`` maximizing that trace (one contraction over the 24 symmetries; ties go to the first)."""
    rot = np.asarray(rotation, dtype=float)
    relative = np.asarray(reference, dtype=float).T @ rot
    traces = np.einsum("ij,kji->k", relative, cube_symmetries())
    return rot @ cube_symmetries()[int(np.argmax(traces))]


def canonical_cube_rotation(rotation: ArrayLike) -> NDArray[np.float64]:
    """The canonical orientation of a cube with rotation matrix ``rotation``: the symmetric member
    closest to the identity (a resting cube: z up, yaw in [-45, 45] deg)."""
    return closest_cube_rotation(rotation, np.eye(3))


def canonical_cube_quat_xyzw(quat_xyzw: ArrayLike) -> NDArray[np.float64]:
    """:func:`canonical_cube_rotation` on an (x, y, z, w) quaternion; the result has w >= 0."""
    rot = canonical_cube_rotation(Rotation.from_quat(np.asarray(quat_xyzw, dtype=float)).as_matrix())
    quat = Rotation.from_matrix(rot).as_quat()
    return -quat if quat[3] < 0 else quat


def cube_yaw(rotation: ArrayLike) -> float:
    """Yaw (rad, in [-pi/4, pi/4]) of the canonical orientation about the base z axis."""
    rot = canonical_cube_rotation(rotation)
    return float(np.arctan2(rot[1, 0], rot[0, 0]))
