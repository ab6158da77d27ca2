"""ICP cube pose on simulated D415 depth: accuracy, canonical orientation, rejection of bad inputs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from imgen_ros.core.pose import make_pose
from imgen_ros.perception.cube_model import symmetric_rotation_error
from imgen_ros.perception.estimator import CubePoseEstimator, Reason, rest_on_plane
from imgen_ros.perception.intrinsics import PinholeIntrinsics
from scipy.spatial.transform import Rotation


def _errors(estimate_pose: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    return (float(np.linalg.norm(estimate_pose[:3, 3] - truth[:3, 3])) * 1000.0,
            math.degrees(symmetric_rotation_error(estimate_pose[:3, :3], truth[:3, :3])))


@pytest.mark.parametrize(("scene_name", "max_mm", "max_deg"), [("ideal_scene", 1.5, 1.0), ("noisy_scene", 5.0, 3.0)])
def test_pose_accuracy_over_random_placements(request, scene_name, max_mm, max_deg):
    scene = request.getfixturevalue(scene_name)
    estimator = CubePoseEstimator(scene.estimator_config())
    rng = np.random.default_rng(7)
    for _ in range(8):
        truth = scene.place_cube(rng.uniform(0.35, 0.7), rng.uniform(-0.25, 0.25), rng.uniform(-math.pi, math.pi))
        estimator.reset()
        frame = scene.capture()
        est = estimator.estimate(frame.depth_m, frame.info, stamp_s=frame.stamp_s)
        assert est.valid, est.reason_text
        assert est.reason is Reason.OK
        mm, deg = _errors(est.pose, truth)
        assert mm < max_mm and deg < max_deg, (truth[:3, 3], mm, deg)
        assert est.fitness >= 0.9 and est.rmse < 0.003 and est.num_points >= 30


def test_orientation_is_reported_canonically(ideal_scene):
    """A cube turned 80 deg is the same cube turned -10 deg: the estimate is the member with z up and
    |yaw| <= 45 deg."""
    ideal_scene.place_cube(0.5, 0.05, math.radians(80.0))
    frame = ideal_scene.capture()
    est = CubePoseEstimator(ideal_scene.estimator_config()).estimate(frame.depth_m, frame.info)
    assert est.valid, est.reason_text
    rot = est.pose[:3, :3]
    assert rot[2, 2] > 0.999
    yaw = math.degrees(math.atan2(rot[1, 0], rot[0, 0]))
    assert yaw == pytest.approx(-10.0, abs=1.0)


def test_accepts_ros_camera_info_and_override_extrinsics(ideal_scene):
    """camera_info as a ROS-shaped message (k, d); extrinsics passed per call instead of configured."""
    truth = ideal_scene.place_cube(0.55, -0.1, 0.3)
    frame = ideal_scene.capture()
    info = SimpleNamespace(width=frame.info.width, height=frame.info.height, d=[0.0] * 5,
                           k=frame.info.k.ravel().tolist())
    config = ideal_scene.estimator_config(camera_position=(0.0, 0.0, 1.0), camera_quat_xyzw=(0.0, 0.0, 0.0, 1.0))
    estimator = CubePoseEstimator(config)
    wrong = estimator.estimate(frame.depth_m, info)
    assert not wrong.valid  # the configured extrinsics are wrong on purpose
    est = estimator.estimate(frame.depth_m, info, camera_pose=frame.base_from_optical)
    assert est.valid, est.reason_text
    assert _errors(est.pose, truth)[0] < 1.5


def _rejected(scene, depth=None, info=None, **config) -> object:
    frame = scene.capture()
    estimator = CubePoseEstimator(scene.estimator_config(**config))
    return estimator.estimate(frame.depth_m if depth is None else depth, frame.info if info is None else info)


def test_nan_depth_is_rejected(noisy_scene):
    depth = noisy_scene.capture().depth_m.copy()
    depth[:] = np.nan
    est = _rejected(noisy_scene, depth=depth)
    assert not est.valid and est.reason is Reason.NONFINITE_DEPTH
    assert np.all(np.isnan(est.pose)) and "NaN" in est.detail


def test_partial_nan_depth_is_tolerated(noisy_scene):
    """A few NaN pixels are invalid pixels, not a corrupt image."""
    truth = noisy_scene.place_cube(0.5, 0.0, 0.2)
    depth = noisy_scene.capture().depth_m.copy()
    depth[np.random.default_rng(0).random(depth.shape) < 0.05] = np.nan
    est = _rejected(noisy_scene, depth=depth)
    assert est.valid, est.reason_text
    assert _errors(est.pose, truth)[0] < 5.0


def test_all_zero_depth_is_rejected(noisy_scene):
    depth = np.zeros_like(noisy_scene.capture().depth_m)
    est = _rejected(noisy_scene, depth=depth)
    assert not est.valid and est.reason is Reason.NO_VALID_DEPTH


def test_empty_crop_is_rejected(noisy_scene):
    est = _rejected(noisy_scene, workspace_min=(2.0, 2.0, 2.0), workspace_max=(2.5, 2.5, 2.5))
    assert not est.valid and est.reason is Reason.EMPTY_CROP
    assert "workspace box" in est.detail


def test_no_cube_on_the_table_is_rejected(noisy_scene):
    noisy_scene.place_cube(3.0, 3.0, 0.0, z=-1.0)
    est = _rejected(noisy_scene)
    assert not est.valid and est.reason is Reason.TOO_FEW_POINTS


def test_wrong_camera_info_size_is_rejected(noisy_scene):
    frame = noisy_scene.capture()
    info = PinholeIntrinsics(320, 240, 307.5, 307.5, 159.5, 119.5)
    est = _rejected(noisy_scene, info=info)
    assert not est.valid and est.reason is Reason.CAMERA_INFO_MISMATCH
    assert "320x240" in est.detail and str(frame.depth_m.shape) in est.detail


@pytest.mark.parametrize("k", [[0.0, 0, 319.5, 0, 0.0, 239.5, 0, 0, 1],       # all-zero camera_info (uncalibrated)
                               [615.0, 0, 319.5, 0, 615.0, 239.5, 0, 0],      # 8 values
                               [float("nan"), 0, 319.5, 0, 615.0, 239.5, 0, 0, 1]])
def test_invalid_camera_info_is_rejected(noisy_scene, k):
    info = SimpleNamespace(width=640, height=480, k=k, d=[])
    est = _rejected(noisy_scene, info=info)
    assert not est.valid and est.reason is Reason.CAMERA_INFO_INVALID
    assert est.detail


def test_distorted_camera_info_is_rejected(noisy_scene):
    info = SimpleNamespace(width=640, height=480, k=[615.0, 0, 319.5, 0, 615.0, 239.5, 0, 0, 1], d=[0.1, 0, 0, 0, 0])
    est = _rejected(noisy_scene, info=info)
    assert not est.valid and est.reason is Reason.CAMERA_INFO_INVALID and "distortion" in est.detail


def test_a_larger_box_is_not_taken_for_the_cube(noisy_scene):
    """A 9 cm box where the cube should be: the 5 cm model cannot explain its points."""
    noisy_scene.place_cube(3.0, 3.0, 0.0, z=-1.0)
    noisy_scene.place("distractor", np.array([0.5, 0.0, 0.045]))
    est = _rejected(noisy_scene)
    assert not est.valid
    assert est.reason in (Reason.LOW_FITNESS, Reason.HIGH_RMSE)
    assert np.all(np.isfinite(est.pose))  # the rejected fit is still reported for diagnosis


def test_temporal_jump_needs_confirmation(ideal_scene):
    estimator = CubePoseEstimator(ideal_scene.estimator_config())
    ideal_scene.place_cube(0.45, 0.0, 0.0)
    frame = ideal_scene.capture()
    assert estimator.estimate(frame.depth_m, frame.info, stamp_s=0.0).valid
    ideal_scene.place_cube(0.6, 0.15, 0.0)  # 21 cm away in one frame
    frame = ideal_scene.capture()
    results = [estimator.estimate(frame.depth_m, frame.info, stamp_s=0.033 * (i + 1)) for i in range(3)]
    assert [r.reason for r in results] == [Reason.TEMPORAL_JUMP, Reason.TEMPORAL_JUMP, Reason.OK]
    assert "1/3" in results[0].detail
    assert results[2].pose[0, 3] == pytest.approx(0.6, abs=0.002)
    # a small move is accepted at once
    ideal_scene.place_cube(0.61, 0.15, 0.0)
    frame = ideal_scene.capture()
    assert estimator.estimate(frame.depth_m, frame.info, stamp_s=0.2).valid


def test_rest_on_plane_moves_only_cubes_that_cut_the_plane():

    up = np.array([0.0, 0.0, 1.0])
    sunk = make_pose(np.array([0.5, 0.0, 0.017]), np.eye(3))
    moved, lift = rest_on_plane(sunk, 0.025, up, 0.0)
    assert lift == pytest.approx(0.008) and moved[2, 3] == pytest.approx(0.025)
    assert np.array_equal(moved[:2, 3], sunk[:2, 3]) and np.array_equal(moved[:3, :3], sunk[:3, :3])
    resting = make_pose(np.array([0.5, 0.0, 0.026]), np.eye(3))
    assert rest_on_plane(resting, 0.025, up, 0.0) == (resting, 0.0)
    # Tilted 10 deg about x: its lowest edge is 0.025 (cos 10 + sin 10) below the centre.
    tilt = Rotation.from_euler("x", 10, degrees=True).as_matrix()
    moved, lift = rest_on_plane(make_pose(np.array([0.5, 0.0, 0.025]), tilt), 0.025, up, 0.0)
    depth = 0.025 * (np.cos(np.radians(10)) + np.sin(np.radians(10)))
    assert moved[2, 3] == pytest.approx(depth) and lift == pytest.approx(depth - 0.025)
    # A plane 1 cm up with its normal tilted: the cube moves along the normal.
    normal = Rotation.from_euler("y", 5, degrees=True).apply(up)
    moved, lift = rest_on_plane(make_pose(np.array([0.0, 0.0, 0.02]), np.eye(3)), 0.025, normal, -0.01)
    assert lift > 0 and np.allclose(np.cross(moved[:3, 3] - [0.0, 0.0, 0.02], normal), 0.0, atol=1e-12)
    corners = moved[:3, 3] + 0.025 * np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
    assert (corners @ normal - 0.01).min() == pytest.approx(0.0, abs=1e-12)
