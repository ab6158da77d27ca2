"""The cube: a surface point model with normals, and its 24 rotational symmetries (ROS-free).

A cube's orientation is only defined up to its symmetry group, so estimates are reported in a
canonical member (closest to a reference rotation) and errors are measured modulo the group.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.symmetry import closest_cube_rotation, cube_symmetries, rotation_angles

__all__ = ["closest_symmetric_rotation", "cube_surface_points", "cube_symmetries", "symmetric_rotation_error"]


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


def closest_symmetric_rotation(rotation: NDArray[np.float64], reference: NDArray[np.float64]) -> NDArray[np.float64]:
    """The member ``rotation @ S`` of the cube's symmetry class closest to ``reference``."""
    return closest_cube_rotation(rotation, reference)


def symmetric_rotation_error(estimate: NDArray[np.float64], truth: NDArray[np.float64]) -> float:
    """Rotation angle (rad) between two cube orientations, modulo the cube's symmetries."""
    return float(np.min(rotation_angles(truth.T[None] @ estimate[None] @ cube_symmetries())))
