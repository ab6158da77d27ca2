"""The cube: a surface point model with normals, and its 24 rotational symmetries (ROS-free).

A cube's orientation is only defined up to its symmetry group, so estimates are reported in a
canonical member (closest to a reference rotation) and errors are measured modulo the group.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray


def cube_surface_points(size_m: float, spacing_m: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Points (N, 3) on a grid over all six faces of a cube centred at the origin, and their outward
    normals (N, 3). Edge points appear on each adjacent face with that face's normal."""
    if not (size_m > 0 and 0 < spacing_m <= size_m):
        raise ValueError(f"cube model needs size_m > 0 and 0 < spacing_m <= size_m, got {size_m}, {spacing_m}")
    half = size_m / 2.0
    n = max(2, round(size_m / spacing_m) + 1)
    grid = np.linspace(-half, half, n)
    a, b = (g.ravel() for g in np.meshgrid(grid, grid, indexing="ij"))
    points, normals = [], []
    for axis in range(3):
        others = [i for i in range(3) if i != axis]
        for sign in (-1.0, 1.0):
            face = np.zeros((a.size, 3))
            face[:, axis] = sign * half
            face[:, others[0]] = a
            face[:, others[1]] = b
            normal = np.zeros((a.size, 3))
            normal[:, axis] = sign
            points.append(face)
            normals.append(normal)
    return np.concatenate(points), np.concatenate(normals)


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
    return np.stack(mats)


def _angles(rotations: NDArray[np.float64]) -> NDArray[np.float64]:
    traces = np.trace(rotations, axis1=-2, axis2=-1)
    return np.arccos(np.clip((traces - 1.0) / 2.0, -1.0, 1.0))


def closest_symmetric_rotation(rotation: NDArray[np.float64], reference: NDArray[np.float64]) -> NDArray[np.float64]:
    """The member ``rotation @ S`` of the cube's symmetry class closest to ``reference``."""
    candidates = rotation[None] @ cube_symmetries()
    return candidates[int(np.argmin(_angles(np.swapaxes(candidates, -1, -2) @ reference[None])))]


def symmetric_rotation_error(estimate: NDArray[np.float64], truth: NDArray[np.float64]) -> float:
    """Rotation angle (rad) between two cube orientations, modulo the cube's symmetries."""
    return float(np.min(_angles(truth.T[None] @ estimate[None] @ cube_symmetries())))
