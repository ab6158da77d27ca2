"""Depth decoding, back-projection, intrinsics validation, the cube model and its symmetries, config."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from imgen_ros.core.params import build_config, load_config
from imgen_ros.perception.cube_model import (
    closest_symmetric_rotation,
    cube_surface_points,
    cube_symmetries,
    symmetric_rotation_error,
)
from imgen_ros.perception.depth import DepthImageError, decode_depth_image, depth_to_points
from imgen_ros.perception.estimator import CubePoseEstimatorConfig
from imgen_ros.perception.intrinsics import CameraInfoError, PinholeIntrinsics
from imgen_ros.perception.stream import CubePoseNodeConfig, FrameSourceConfig
from scipy.spatial.transform import Rotation

REPO = Path(__file__).resolve().parents[2]


def test_decode_16uc1_with_row_padding_and_32fc1():
    mm = np.array([[500, 0, 1234], [65535, 7, 1000]], dtype="<u2")
    padded = np.zeros((2, 8), dtype=np.uint8)  # step 8 > width * 2 = 6
    padded[:, :6] = mm.view(np.uint8).reshape(2, 6)
    out = decode_depth_image("16UC1", 2, 3, 8, padded.tobytes())
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, mm * 0.001, rtol=1e-6)
    metres = np.array([[0.5, np.nan], [1.0, 2.0]], dtype=">f4")
    out = decode_depth_image("32FC1", 2, 2, 8, metres.tobytes(), is_bigendian=True)
    np.testing.assert_array_equal(out, metres.astype(np.float32))


@pytest.mark.parametrize(("encoding", "step", "size", "match"), [
    ("rgb8", 6, 12, "unsupported depth encoding 'rgb8'"),
    ("16UC1", 4, 12, "step 4 is inconsistent"),
    ("16UC1", 6, 10, "10 bytes, expected"),
])
def test_decode_rejects_bad_images(encoding, step, size, match):
    with pytest.raises(DepthImageError, match=match):
        decode_depth_image(encoding, 2, 3, step, bytes(size))


def test_back_projection_inverts_projection():
    intr = PinholeIntrinsics(8, 6, 5.0, 6.0, 3.5, 2.5)
    depth = np.zeros((6, 8), np.float32)
    depth[1, 6] = 2.0
    depth[4, 0] = np.nan
    points = depth_to_points(depth, intr)
    assert points.shape == (1, 3)
    x, y, z = points[0]
    assert (intr.fx * x / z + intr.cx, intr.fy * y / z + intr.cy, z) == pytest.approx((6.0, 1.0, 2.0))
    strided = depth_to_points(np.ones((6, 8), np.float32), intr, stride=2)
    assert len(strided) == 12
    with pytest.raises(CameraInfoError, match="camera_info is 8x6 but the depth image is 6x8"):
        depth_to_points(np.ones((8, 6), np.float32), intr)


def test_intrinsics_validation_names_the_problem():
    with pytest.raises(CameraInfoError, match=r"fx=0.0, fy=600.0 must be > 0"):
        PinholeIntrinsics(640, 480, 0.0, 600.0, 320.0, 240.0)
    with pytest.raises(CameraInfoError, match="not a pinhole matrix"):
        PinholeIntrinsics.from_k(640, 480, [600, 1, 320, 0, 600, 240, 0, 0, 1])


def test_cube_model_points_lie_on_the_surface_with_outward_normals():
    points, normals = cube_surface_points(0.05, 0.005)
    assert points.shape == normals.shape and len(points) == 6 * 11 * 11
    assert np.allclose(np.max(np.abs(points), axis=1), 0.025)
    assert np.all(np.einsum("ij,ij->i", points, normals) == pytest.approx(0.025))


def test_cube_symmetries_form_the_rotation_group():
    group = cube_symmetries()
    assert group.shape == (24, 3, 3)
    assert np.allclose(np.linalg.det(group), 1.0)
    assert len({tuple(np.round(g.ravel()).astype(int)) for g in group}) == 24
    rot = Rotation.from_euler("xyz", [0.3, -0.2, 1.1]).as_matrix()
    for sym in group:
        assert symmetric_rotation_error(rot @ sym, rot) == pytest.approx(0.0, abs=1e-6)
    small = Rotation.from_rotvec([0, 0, math.radians(10)]).as_matrix()
    assert math.degrees(symmetric_rotation_error(rot @ small, rot)) == pytest.approx(10.0)
    yaw100 = Rotation.from_euler("z", 100, degrees=True).as_matrix()
    canonical = closest_symmetric_rotation(yaw100, np.eye(3))
    assert Rotation.from_matrix(canonical).as_euler("zyx", degrees=True) == pytest.approx([10, 0, 0], abs=1e-6)


def test_shipped_yaml_matches_the_defaults():
    config = load_config(CubePoseNodeConfig, REPO / "config" / "cube_pose_estimator.yaml", "cube_pose_estimator")
    assert config == CubePoseNodeConfig()


def test_config_rejects_unknown_and_bad_values(tmp_path):
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['estimator.cube_sise_m'\]"):
        build_config(CubePoseNodeConfig, {"estimator.cube_sise_m": 0.05})
    with pytest.raises(ValueError, match="workspace_min"):
        CubePoseEstimatorConfig(workspace_min=(1.0, 0.0, 0.0), workspace_max=(0.5, 1.0, 1.0))
    with pytest.raises(ValueError, match=r"source\.kind 'recording' needs source\.recording_path"):
        FrameSourceConfig(kind="recording")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cube_pose_estimator:\n  ros__parameters:\n    estimator:\n      min_fitness: 1.5\n")
    with pytest.raises(ValueError, match=r"'estimator.min_fitness' = 1.5 is outside its range \[0, 1\]"):
        load_config(CubePoseNodeConfig, bad, "cube_pose_estimator")
