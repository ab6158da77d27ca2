"""Quaternion <-> matrix conversions of core.pose: the direct path must equal scipy's, sign included."""

from __future__ import annotations

import math

import numpy as np
import pytest
from imgen_ros.core.pose import (
    make_pose,
    matrix_to_quat_xyzw,
    pos_quat_from_pose,
    pose_from_pos_quat,
    quat_xyzw_to_matrix,
)
from scipy.spatial.transform import Rotation

# 180 deg turns (w = 0: the sign is the branch's), the identity, tiny angles: where branches differ
EDGE_ROTATIONS = [np.eye(3), np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]), np.diag([-1.0, -1.0, 1.0]),
                  Rotation.from_rotvec([0.0, 0.0, math.pi]).as_matrix(),
                  Rotation.from_rotvec([math.pi / math.sqrt(2), math.pi / math.sqrt(2), 0.0]).as_matrix(),
                  Rotation.from_rotvec([1e-12, 0.0, 0.0]).as_matrix()]


def scipy_canonical(matrix: np.ndarray) -> np.ndarray:
    quat = Rotation.from_matrix(matrix).as_quat()
    return -quat if quat[3] < 0 else quat


def test_matrix_to_quat_equals_scipy_with_its_sign_on_random_and_edge_rotations() -> None:
    matrices = list(Rotation.random(3000, random_state=7).as_matrix()) + EDGE_ROTATIONS
    for matrix in matrices:
        quat = matrix_to_quat_xyzw(matrix)
        assert quat[3] >= 0.0
        np.testing.assert_allclose(quat, scipy_canonical(matrix), rtol=0, atol=1e-15)


def test_quat_to_matrix_normalizes_like_scipy() -> None:
    for quat in Rotation.random(500, random_state=8).as_quat():
        np.testing.assert_allclose(quat_xyzw_to_matrix(3.7 * quat), Rotation.from_quat(quat).as_matrix(),
                                   rtol=0, atol=1e-14)


def test_round_trip_through_a_pose() -> None:
    quat = Rotation.from_euler("xyz", [0.3, -1.2, 2.9]).as_quat()
    quat = -quat if quat[3] < 0 else quat
    position, back = pos_quat_from_pose(pose_from_pos_quat([0.1, -0.2, 0.3], quat))
    np.testing.assert_allclose(position, [0.1, -0.2, 0.3])
    np.testing.assert_allclose(back, quat, atol=1e-15)


@pytest.mark.parametrize("matrix, error", [
    (np.full((3, 3), np.nan), np.linalg.LinAlgError),   # NaN: scipy's refusal, not a made-up quaternion
    (np.diag([1.0, 1.0, -1.0]), ValueError),             # a reflection
    (np.zeros((3, 3)), ValueError),
])
def test_non_rotations_are_refused_as_scipy_refuses_them(matrix: np.ndarray, error: type[Exception]) -> None:
    with pytest.raises(error), np.errstate(invalid="ignore"):
        matrix_to_quat_xyzw(matrix)


def test_a_near_rotation_is_projected_as_scipy_projects_it() -> None:
    skewed = Rotation.from_rotvec([0.2, 0.1, -0.4]).as_matrix() + 1e-3 * np.array([[0, 1, 0], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_allclose(matrix_to_quat_xyzw(skewed), scipy_canonical(skewed), atol=1e-15)
    np.testing.assert_allclose(pos_quat_from_pose(make_pose([0, 0, 0], skewed))[1], scipy_canonical(skewed),
                               atol=1e-15)


@pytest.mark.parametrize("quat", [[0.0, 0.0, 0.0, 0.0], [math.nan, 0.0, 0.0, 1.0]])
def test_degenerate_quaternions_are_refused(quat: list[float]) -> None:
    with pytest.raises(ValueError):
        quat_xyzw_to_matrix(quat)


def test_the_simulators_mujoco_conversion_equals_the_real_graphs() -> None:
    """sim.env builds the observation's quaternions with MuJoCo, the real graph with core.pose: one
    convention (w >= 0, the same sign at half turns), so a checkpoint sees the same numbers in both."""
    from imgen_ros.sim.env import mat_to_quat_xyzw

    top_down = Rotation.from_euler("x", math.pi).as_matrix()
    yawed = [Rotation.from_euler("z", yaw).as_matrix() @ top_down for yaw in np.linspace(-math.pi, math.pi, 37)]
    for matrix in list(Rotation.random(3000, random_state=9).as_matrix()) + EDGE_ROTATIONS + yawed:
        np.testing.assert_allclose(mat_to_quat_xyzw(matrix), matrix_to_quat_xyzw(matrix), rtol=0, atol=1e-12)
