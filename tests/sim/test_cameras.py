"""Offscreen cameras and the simulated D415: intrinsics, extrinsics, depth geometry and noise."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from imgen_ros.core.pose import make_pose, pose_inv, yaw_matrix
from imgen_ros.sim.cameras import (
    CameraInfo,
    CameraMount,
    D415_DEPTH_640x480,
    D415Config,
    D415DepthCamera,
    DepthFrame,
    DepthNoiseConfig,
    OffscreenRenderer,
    add_d415_to_spec,
    apply_depth_noise,
    camera_info_from_model,
    camera_optical_pose,
    depth_to_points,
    look_at_rotation,
    project_points,
)

# base frame deliberately offset and yawed from the world so frame mix-ups show
_BASE_POS = (0.1, -0.2, 0.05)
_BASE_YAW = 0.3
_SCENE = f"""
<mujoco>
  <compiler angle="radian"/>
  <worldbody>
    <light pos="0 0 3" dir="0 0 -1"/>
    <geom name="floor" type="plane" size="3 3 0.1" pos="0 0 {_BASE_POS[2]}"/>
    <body name="fr3_link0" pos="{_BASE_POS[0]} {_BASE_POS[1]} {_BASE_POS[2]}" euler="0 0 {_BASE_YAW}">
      <body name="cube" pos="0.5 0.0 0.025"><geom type="box" size="0.025 0.025 0.025"/></body>
    </body>
  </worldbody>
</mujoco>
"""


def _scene(config: D415Config | None = None) -> tuple[mujoco.MjModel, mujoco.MjData, D415Config]:
    cfg = config or D415Config()
    spec = mujoco.MjSpec.from_string(_SCENE)
    add_d415_to_spec(spec, cfg)
    model = spec.compile()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    return model, data, cfg


def test_d415_intrinsics_and_camera_info() -> None:
    info = D415_DEPTH_640x480
    assert (info.width, info.height, info.fx, info.fy) == (640, 480, 615.0, 615.0)
    assert (info.cx, info.cy) == (319.5, 239.5)
    assert info.fovy_deg == pytest.approx(42.64, abs=0.01)
    assert info.fovx_deg == pytest.approx(54.98, abs=0.01)
    msg = info.to_dict()
    assert msg["header"]["frame_id"] == "camera_depth_optical_frame"
    assert msg["k"] == [615.0, 0.0, 319.5, 0.0, 615.0, 239.5, 0.0, 0.0, 1.0]
    assert len(msg["p"]) == 12 and msg["d"] == [0.0] * 5
    again = CameraInfo.from_fovy(640, 480, info.fovy_deg, frame_id=info.frame_id)
    assert again.fx == pytest.approx(615.0)
    with pytest.raises(ValueError, match="fx/fy"):
        CameraInfo(640, 480, 0.0, 1.0, 1.0, 1.0)


def test_look_at_gives_an_optical_frame() -> None:
    rot = look_at_rotation((1.0, 0.0, 1.0), (0.0, 0.0, 0.0))
    np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    np.testing.assert_allclose(rot[:, 2], np.array([-1.0, 0.0, -1.0]) / np.sqrt(2))  # z toward the target
    assert rot[2, 1] < 0  # image y (down) has a downward world component
    with pytest.raises(ValueError, match="parallel"):
        look_at_rotation((0, 0, 1), (0, 0, 0))
    mount = CameraMount()
    np.testing.assert_allclose(CameraMount.from_optical_pose(mount.optical_pose()).optical_pose(),
                               mount.optical_pose(), atol=1e-12)


def test_camera_pose_in_base_frame_matches_the_mount() -> None:
    model, data, cfg = _scene()
    np.testing.assert_allclose(camera_optical_pose(model, data, "d415"), cfg.mount.optical_pose(), atol=1e-9)
    world = camera_optical_pose(model, data, "d415", base_body=None)
    world_from_base = make_pose(_BASE_POS, yaw_matrix(_BASE_YAW))
    np.testing.assert_allclose(world, world_from_base @ cfg.mount.optical_pose(), atol=1e-9)
    assert camera_info_from_model(model, "d415", 640, 480).fx == pytest.approx(615.0)
    with pytest.raises(ValueError, match="cameras: \\['d415'\\]"):
        camera_optical_pose(model, data, "wrist")


def test_depth_geometry_matches_intrinsics_and_extrinsics() -> None:
    cfg = D415Config(noise=DepthNoiseConfig(enabled=False))
    model, data, _ = _scene(cfg)
    with D415DepthCamera(model, cfg) as camera:
        frame = camera.capture(data, with_rgb=True)
    assert frame.depth_m.shape == (480, 640) and frame.depth_m.dtype == np.float32
    assert frame.rgb is not None and frame.rgb.shape == (480, 640, 3)
    base_from_optical = frame.base_from_optical
    # the cube's top-face centre projects where the depth image sees it, at the right depth
    top = pose_inv(base_from_optical) @ np.array([0.5, 0.0, 0.05, 1.0])
    u, v = project_points(top[:3], frame.info)[0]
    assert frame.depth_m[round(v), round(u)] == pytest.approx(top[2], abs=0.003)
    # every back-projected pixel lies on the floor (z = 0) or on the cube (z <= 5 cm) in the base frame
    points = depth_to_points(frame.depth_m, frame.info)
    base_points = (base_from_optical[:3, :3] @ points.T).T + base_from_optical[:3, 3]
    assert base_points[:, 2].min() > -0.002 and base_points[:, 2].max() < 0.052
    on_cube = base_points[base_points[:, 2] > 0.045]
    assert len(on_cube) > 50
    np.testing.assert_allclose(on_cube[:, :2].mean(axis=0), [0.5, 0.0], atol=0.006)


def test_noise_model_sigma_quantization_dropouts_and_range() -> None:
    info = D415_DEPTH_640x480
    cfg = DepthNoiseConfig(dropout_prob=0.01, edge_jump_m=0.0)
    ideal = np.full((480, 640), 0.5, dtype=np.float32)
    ideal[:10] = 0.2  # closer than min range
    noisy = apply_depth_noise(ideal, info, cfg, np.random.default_rng(0))
    assert np.all(noisy[:10] == 0.0)
    valid = noisy[10:][noisy[10:] > 0]
    assert len(valid) / ideal[10:].size == pytest.approx(0.99, abs=0.002)  # 1 % dropouts
    np.testing.assert_allclose(valid / 0.001, np.round(valid / 0.001), atol=1e-3)  # 1 mm units
    expected_sigma = cfg.sigma_at(0.5, info.fx)
    assert expected_sigma == pytest.approx(0.00096, rel=0.01)  # ~1 mm RMS at 0.5 m
    assert np.std(valid - 0.5) == pytest.approx(np.sqrt(expected_sigma**2 + 0.001**2 / 12), rel=0.05)
    # a depth jump invalidates the pixels on both sides of it
    step = np.full((480, 640), 0.8, dtype=np.float32)
    step[:, 320:] = 0.6
    edged = apply_depth_noise(step, info, DepthNoiseConfig(dropout_prob=0.0), np.random.default_rng(0))
    assert np.all(edged[:, 319:321] == 0.0) and np.all(edged[:, :318] > 0)
    with pytest.raises(ValueError, match="does not match"):
        apply_depth_noise(np.zeros((10, 10)), info, cfg, np.random.default_rng(0))


def test_noisy_frames_are_seeded_and_z16_encodes() -> None:
    model, data, cfg = _scene()
    renderer = OffscreenRenderer(model)
    try:
        a = D415DepthCamera(model, cfg, seed=3, renderer=renderer).capture(data)
        b = D415DepthCamera(model, cfg, seed=3, renderer=renderer).capture(data)
        c = D415DepthCamera(model, cfg, seed=4, renderer=renderer).capture(data)
    finally:
        renderer.close()
    np.testing.assert_array_equal(a.depth_m, b.depth_m)
    assert not np.array_equal(a.depth_m, c.depth_m)
    z16 = DepthFrame(a.depth_m, a.info, a.base_from_optical, 0.0).to_z16()
    assert z16.dtype == np.uint16
    valid = a.depth_m > 0
    np.testing.assert_array_equal(z16[valid], np.round(a.depth_m[valid] * 1000).astype(np.uint16))
    assert np.all(z16[~valid] == 0)


def test_renderer_reuse_sizes_and_errors() -> None:
    model, data, _ = _scene()
    with OffscreenRenderer(model) as renderer:
        rgb = renderer.rgb(data, "d415", 320, 240)
        assert rgb.shape == (240, 320, 3) and rgb.dtype == np.uint8 and rgb.std() > 1.0
        first = renderer._renderer(320, 240)
        renderer.rgb(data, None, 320, 240)  # free camera
        assert renderer._renderer(320, 240) is first
        with pytest.raises(ValueError, match="offscreen buffer"):
            renderer.rgb(data, "d415", 4096, 4096)
        with pytest.raises(ValueError, match="not in the model"):
            renderer.depth(data, "nope", 64, 48)
    assert renderer._renderers == {}


def test_spec_rejects_duplicate_and_non_centered_cameras() -> None:
    spec = mujoco.MjSpec.from_string(_SCENE)
    add_d415_to_spec(spec)
    with pytest.raises(ValueError, match="already exists"):
        add_d415_to_spec(spec)
    off_centre = D415Config(info=CameraInfo(640, 480, 615.0, 615.0, 330.0, 240.0), camera_name="other")
    with pytest.raises(ValueError, match="image centre"):
        add_d415_to_spec(spec, off_centre)
