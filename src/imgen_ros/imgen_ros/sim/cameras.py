"""Offscreen cameras for the MuJoCo scenes, including a simulated RealSense D415 depth stream.

Frames and conventions
----------------------
- Base frame: ``fr3_link0`` (REP-103: x forward, y left, z up). Camera extrinsics are given in it.
- A MuJoCo camera looks along its -z axis with +y up. The ROS optical frame
  (``camera_depth_optical_frame``, REP-103 suffix ``_optical``) looks along +z with x right,
  y down: ``R_optical = R_mujoco @ diag(1, -1, -1)``.
- Depth images are metres along the optical axis (z-depth, like RealSense ``Z16`` x depth_scale);
  0.0 marks an invalid pixel (RealSense convention).
- Intrinsics follow OpenCV: pixel (u, v) has its centre at integer coordinates, so a MuJoCo
  render with its principal point at the image centre has ``cx = (W - 1) / 2``.

The simulated D415 mode is the 640 x 480 depth stream at 30 fps with fx = fy = 615 px (HFOV 55.0°,
VFOV 42.6°), depth unit 1 mm, and a stereo error model ``sigma_z = subpixel * z^2 / (f * baseline)``
with the D415's 55 mm baseline; ``subpixel = 0.13`` gives ~1 mm RMS at 0.5 m and ~4 mm at 1 m.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import mujoco
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation

from imgen_ros.core.pose import Pose, make_pose, pose_inv, quat_wxyz_to_xyzw, quat_xyzw_to_wxyz

BASE_FRAME = "fr3_link0"
D415_CAMERA_NAME = "d415"
D415_OPTICAL_FRAME = "camera_depth_optical_frame"
D415_BASELINE_M = 0.055

# MuJoCo camera axes -> ROS optical axes (flip y and z).
_MUJOCO_TO_OPTICAL = np.diag([1.0, -1.0, -1.0])


# --------------------------------------------------------------------------------------------
# Intrinsics and camera_info
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CameraInfo:
    """The fields of ``sensor_msgs/CameraInfo`` that a pinhole depth camera needs.

    Field names follow the ROS 2 message: ``k`` (3x3), ``d`` the plumb_bob distortion
    (k1, k2, t1, t2, k3; zero for the rectified depth stream), ``p`` (3x4).
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    frame_id: str = D415_OPTICAL_FRAME
    distortion_model: str = "plumb_bob"
    d: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"CameraInfo: width/height must be > 0, got {self.width}x{self.height}")
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(f"CameraInfo: fx/fy must be > 0, got fx={self.fx}, fy={self.fy}")

    @property
    def k(self) -> NDArray[np.float64]:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def p(self) -> NDArray[np.float64]:
        return np.hstack([self.k, np.zeros((3, 1))])

    @property
    def fovy_deg(self) -> float:
        """Vertical field of view (what a MuJoCo camera's ``fovy`` is)."""
        return math.degrees(2.0 * math.atan(self.height / (2.0 * self.fy)))

    @property
    def fovx_deg(self) -> float:
        return math.degrees(2.0 * math.atan(self.width / (2.0 * self.fx)))

    @classmethod
    def centered(cls, width: int, height: int, f_px: float, frame_id: str = D415_OPTICAL_FRAME) -> CameraInfo:
        """Square pixels, principal point at the image centre (what MuJoCo renders)."""
        return cls(width=width, height=height, fx=f_px, fy=f_px, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0,
                   frame_id=frame_id)

    @classmethod
    def from_fovy(cls, width: int, height: int, fovy_deg: float, frame_id: str = "camera_optical_frame"
                  ) -> CameraInfo:
        """Intrinsics of a plain MuJoCo camera with vertical field of view ``fovy_deg``."""
        f_px = height / (2.0 * math.tan(math.radians(fovy_deg) / 2.0))
        return cls.centered(width, height, f_px, frame_id)

    def to_dict(self) -> dict:
        """camera_info-shaped dict (``k``, ``d``, ``p`` flattened, as in the ROS 2 message)."""
        return {"header": {"frame_id": self.frame_id}, "width": self.width, "height": self.height,
                "distortion_model": self.distortion_model, "d": list(self.d),
                "k": self.k.ravel().tolist(), "r": np.eye(3).ravel().tolist(), "p": self.p.ravel().tolist()}


D415_DEPTH_640x480 = CameraInfo.centered(640, 480, 615.0)


# --------------------------------------------------------------------------------------------
# Depth noise
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DepthNoiseConfig:
    """Stereo depth imperfections of a D415 (all optional; ``enabled=False`` gives ideal depth).

    - axial noise ``sigma = subpixel * z^2 / (f_px * baseline_m)`` (Gaussian, per pixel);
    - quantization to ``depth_unit_m`` (RealSense Z16 default 1 mm);
    - invalid (0) outside ``[min_depth_m, max_depth_m]``;
    - random dropouts: each pixel invalid with probability ``dropout_prob``;
    - edge dropouts: pixels next to a depth jump larger than ``edge_jump_m`` are invalid
      (stereo occlusion band at object silhouettes).
    """

    enabled: bool = True
    subpixel: float = 0.13
    baseline_m: float = D415_BASELINE_M
    depth_unit_m: float = 0.001
    min_depth_m: float = 0.3
    max_depth_m: float = 3.0
    dropout_prob: float = 0.005
    edge_jump_m: float = 0.02

    def __post_init__(self) -> None:
        if self.subpixel < 0 or self.baseline_m <= 0 or self.depth_unit_m < 0:
            raise ValueError(f"DepthNoiseConfig: subpixel/depth_unit_m must be >= 0 and baseline_m > 0: {self}")
        if not 0.0 <= self.dropout_prob < 1.0:
            raise ValueError(f"DepthNoiseConfig.dropout_prob must be in [0, 1), got {self.dropout_prob}")
        if not 0.0 <= self.min_depth_m < self.max_depth_m:
            raise ValueError(f"DepthNoiseConfig: need 0 <= min_depth_m < max_depth_m, got {self}")

    def sigma_at(self, depth_m: ArrayLike, f_px: float) -> NDArray[np.float64]:
        """Axial RMS error (m) at ``depth_m`` for a camera with focal length ``f_px``."""
        z = np.asarray(depth_m, dtype=float)
        return self.subpixel * z * z / (f_px * self.baseline_m)

    def scaled(self, factor: float) -> DepthNoiseConfig:
        """This model with its axial noise sigma times ``factor`` (dropouts and edge bands unchanged);
        ``imgen rehearse --perturb depth_noise`` doubles it through sim_node's ``depth_noise_scale``."""
        if not (math.isfinite(factor) and factor >= 0):
            raise ValueError(f"DepthNoiseConfig.scaled: factor must be finite and >= 0, got {factor}")
        return replace(self, subpixel=self.subpixel * factor)


def apply_depth_noise(depth_m: NDArray, info: CameraInfo, config: DepthNoiseConfig,
                      rng: np.random.Generator) -> NDArray[np.float32]:
    """Return a noisy, quantized copy of an ideal depth image (metres, 0 = invalid).

    Computed in float32, in place where possible: about 9 ms per 640x480 frame here against 18 ms in
    float64 (sim_node renders it at the D415's 30 Hz, ``bench/bench_cameras.py``)."""
    depth = np.asarray(depth_m, dtype=np.float32)
    if depth.shape != (info.height, info.width):
        raise ValueError(f"depth image shape {depth.shape} does not match camera_info {info.height}x{info.width}")
    if not config.enabled:
        return depth.copy()
    out = rng.standard_normal(depth.shape, dtype=np.float32)   # * sigma(z) = subpixel z^2 / (f b), + z
    out *= depth
    out *= depth
    out *= np.float32(config.subpixel / (info.fx * config.baseline_m))
    out += depth
    if config.depth_unit_m > 0:
        unit = np.float32(config.depth_unit_m)
        out /= unit
        np.rint(out, out=out)
        out *= unit
    invalid = (depth < config.min_depth_m) | (depth > config.max_depth_m)
    if config.dropout_prob > 0:
        invalid |= rng.random(depth.shape, dtype=np.float32) < config.dropout_prob
    if config.edge_jump_m > 0:
        dx = np.abs(depth[:, 1:] - depth[:, :-1]) > config.edge_jump_m
        dy = np.abs(depth[1:, :] - depth[:-1, :]) > config.edge_jump_m
        invalid[:, :-1] |= dx
        invalid[:, 1:] |= dx
        invalid[:-1, :] |= dy
        invalid[1:, :] |= dy
    out[invalid] = 0.0
    return out


# --------------------------------------------------------------------------------------------
# Mounting (extrinsics) and adding the camera to a scene
# --------------------------------------------------------------------------------------------

def look_at_rotation(eye: ArrayLike, target: ArrayLike, up: ArrayLike = (0.0, 0.0, 1.0)) -> NDArray[np.float64]:
    """Rotation (columns = x, y, z axes) of an *optical* frame at ``eye`` looking at ``target``:
    z toward the target, x right in the image, y down."""
    eye_v, target_v, up_v = (np.asarray(v, dtype=float) for v in (eye, target, up))
    z = target_v - eye_v
    if np.linalg.norm(z) < 1e-9:
        raise ValueError(f"look_at: eye {eye_v} and target {target_v} coincide")
    z /= np.linalg.norm(z)
    x = np.cross(z, up_v)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError(f"look_at: viewing direction {z} is parallel to up {up_v}")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


@dataclass(frozen=True)
class CameraMount:
    """Where a camera sits, in the base frame ``fr3_link0``: an eye point looking at a target.

    The default is a tripod in front of the robot, to its left, 0.85 m from the workspace centre
    (x = 0.5 m, table level), looking down ~40°: inside the D415's best range (0.5-1 m).
    """

    eye: tuple[float, float, float] = (1.15, 0.35, 0.55)
    target: tuple[float, float, float] = (0.5, 0.0, 0.0)
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)

    def optical_pose(self) -> Pose:
        """T_base_optical: pose of the optical frame (z forward, x right, y down) in the base frame."""
        return make_pose(self.eye, look_at_rotation(self.eye, self.target, self.up))

    @classmethod
    def from_optical_pose(cls, pose: Pose) -> CameraMount:
        """A mount reproducing a given optical-frame pose (target 1 m along the optical axis)."""
        eye = np.asarray(pose[:3, 3], dtype=float)
        target = eye + pose[:3, 2]
        up = -pose[:3, 1]
        return cls(tuple(eye.tolist()), tuple(target.tolist()), tuple(up.tolist()))


@dataclass(frozen=True)
class D415Config:
    """A simulated D415 depth stream: intrinsics, mounting, noise."""

    info: CameraInfo = D415_DEPTH_640x480
    mount: CameraMount = field(default_factory=CameraMount)
    noise: DepthNoiseConfig = field(default_factory=DepthNoiseConfig)
    camera_name: str = D415_CAMERA_NAME
    base_body: str = BASE_FRAME


def optical_to_mujoco_quat_wxyz(rotation_optical: ArrayLike) -> NDArray[np.float64]:
    """MuJoCo camera quaternion (w, x, y, z) for an optical-frame rotation matrix."""
    r_mj = np.asarray(rotation_optical, dtype=float) @ _MUJOCO_TO_OPTICAL
    return quat_xyzw_to_wxyz(Rotation.from_matrix(r_mj).as_quat())


def add_camera_to_spec(spec: mujoco.MjSpec, name: str, optical_pose: Pose, info: CameraInfo,
                       parent_body: str | None = BASE_FRAME) -> mujoco.MjsCamera:
    """Add a fixed pinhole camera to ``spec``, its optical frame at ``optical_pose`` relative to
    ``parent_body`` (the world body if None or absent from the spec). The principal point must be
    at the image centre and pixels square (what MuJoCo's ``fovy`` camera renders)."""
    if abs(info.fx - info.fy) > 1e-6 * info.fx:
        raise ValueError(f"camera '{name}': MuJoCo fovy cameras need fx == fy, got {info.fx} vs {info.fy}")
    if abs(info.cx - (info.width - 1) / 2) > 0.5 or abs(info.cy - (info.height - 1) / 2) > 0.5:
        raise ValueError(f"camera '{name}': principal point ({info.cx}, {info.cy}) must be the image centre")
    if any(c.name == name for c in spec.cameras):
        raise ValueError(f"camera '{name}' already exists in the scene")
    body = spec.worldbody
    if parent_body is not None:
        found = spec.body(parent_body)
        if found is not None:
            body = found
    camera = body.add_camera()
    camera.name = name
    camera.pos = np.asarray(optical_pose[:3, 3], dtype=float)
    camera.quat = optical_to_mujoco_quat_wxyz(optical_pose[:3, :3])
    camera.fovy = info.fovy_deg
    camera.resolution = np.array([info.width, info.height], dtype=float)
    vis = spec.visual.global_
    vis.offwidth = max(int(vis.offwidth), info.width)
    vis.offheight = max(int(vis.offheight), info.height)
    return camera


def add_d415_to_spec(spec: mujoco.MjSpec, config: D415Config | None = None) -> mujoco.MjsCamera:
    """Add the simulated D415 (fixed mount, extrinsics in the base frame) to a scene spec.

    The camera is attached to ``config.base_body`` when the spec has it (so extrinsics are literally
    in ``fr3_link0``), otherwise to the world body (then base and world must coincide).
    """
    cfg = config or D415Config()
    return add_camera_to_spec(spec, cfg.camera_name, cfg.mount.optical_pose(), cfg.info, cfg.base_body)


def body_pose(model: mujoco.MjModel, data: mujoco.MjData, body: str) -> Pose:
    """World pose of a body (from the last forward pass)."""
    body_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body)
    if body_id < 0:
        raise ValueError(f"body '{body}' not in the model")
    return make_pose(data.xpos[body_id], data.xmat[body_id].reshape(3, 3))


def camera_id(model: mujoco.MjModel, camera: str) -> int:
    cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
    if cam_id < 0:
        names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
        raise ValueError(f"camera '{camera}' not in the model; cameras: {names}")
    return cam_id


def camera_optical_pose(model: mujoco.MjModel, data: mujoco.MjData, camera: str,
                        base_body: str | None = BASE_FRAME) -> Pose:
    """T_base_optical: the camera's optical frame (z forward, x right, y down) in ``base_body``'s
    frame (the world frame if ``base_body`` is None)."""
    cam = camera_id(model, camera)
    world_optical = make_pose(data.cam_xpos[cam], data.cam_xmat[cam].reshape(3, 3) @ _MUJOCO_TO_OPTICAL)
    if base_body is None:
        return world_optical
    return pose_inv(body_pose(model, data, base_body)) @ world_optical


def camera_info_from_model(model: mujoco.MjModel, camera: str, width: int, height: int,
                           frame_id: str | None = None) -> CameraInfo:
    """Intrinsics of a MuJoCo fovy camera rendered at ``width`` x ``height``."""
    cam = camera_id(model, camera)
    return CameraInfo.from_fovy(width, height, float(model.cam_fovy[cam]),
                                frame_id or f"{camera}_optical_frame")


def camera_quat_xyzw(model: mujoco.MjModel, data: mujoco.MjData, camera: str) -> NDArray[np.float64]:
    """World orientation of a MuJoCo camera (its own axes, -z forward) as an (x, y, z, w) quaternion."""
    cam = camera_id(model, camera)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, data.cam_xmat[cam])
    return quat_wxyz_to_xyzw(quat)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

class OffscreenRenderer:
    """Reusable offscreen RGB / depth renders of a model (one GL context per image size).

    ``camera`` is a camera name, id, or -1 / None for the free default camera. Shadows and
    reflections are off by default (llvmpipe: ~7 ms instead of ~50 ms per 640x480 RGB frame).
    Call :meth:`close` (or use as a context manager) to free the GL contexts.
    """

    def __init__(self, model: mujoco.MjModel, shadows: bool = False, reflections: bool = False) -> None:
        self.model = model
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self._shadows = shadows
        self._reflections = reflections

    def _renderer(self, width: int, height: int) -> mujoco.Renderer:
        if width <= 0 or height <= 0:
            raise ValueError(f"render size must be positive, got {width}x{height}")
        key = (int(width), int(height))
        renderer = self._renderers.get(key)
        if renderer is None:
            if width > self.model.vis.global_.offwidth or height > self.model.vis.global_.offheight:
                raise ValueError(
                    f"render size {width}x{height} exceeds the model's offscreen buffer "
                    f"{self.model.vis.global_.offwidth}x{self.model.vis.global_.offheight}; "
                    "set spec.visual.global_.offwidth/offheight when building the scene")
            renderer = mujoco.Renderer(self.model, height=key[1], width=key[0])
            self._renderers[key] = renderer
        return renderer

    def _update(self, renderer: mujoco.Renderer, data: mujoco.MjData, camera: str | int | None) -> None:
        cam: str | int = -1 if camera is None else camera
        if isinstance(cam, str):
            cam = camera_id(self.model, cam)
        renderer.update_scene(data, camera=cam)
        flags = renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = self._shadows
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = self._reflections

    def rgb(self, data: mujoco.MjData, camera: str | int | None, width: int, height: int) -> NDArray[np.uint8]:
        """(height, width, 3) uint8 RGB image."""
        renderer = self._renderer(width, height)
        renderer.disable_depth_rendering()
        renderer.disable_segmentation_rendering()
        self._update(renderer, data, camera)
        return renderer.render().copy()

    def depth(self, data: mujoco.MjData, camera: str | int | None, width: int, height: int) -> NDArray[np.float32]:
        """(height, width) float32 z-depth in metres along the optical axis (ideal, no noise)."""
        renderer = self._renderer(width, height)
        renderer.enable_depth_rendering()
        try:
            self._update(renderer, data, camera)
            depth = renderer.render().astype(np.float32, copy=True)
        finally:
            renderer.disable_depth_rendering()
        return depth

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()

    def __enter__(self) -> OffscreenRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class DepthFrame:
    """One depth image with what a consumer needs to use it: intrinsics and the camera pose."""

    depth_m: NDArray[np.float32]  # (H, W), 0 = invalid
    info: CameraInfo
    base_from_optical: Pose  # T_base_optical
    stamp_s: float
    rgb: NDArray[np.uint8] | None = None  # aligned colour image (same intrinsics) if requested

    def to_z16(self, depth_unit_m: float = 0.001) -> NDArray[np.uint16]:
        """RealSense Z16 encoding (uint16 in depth units, 0 invalid)."""
        return np.clip(np.round(self.depth_m / depth_unit_m), 0, 65535).astype(np.uint16)


class D415DepthCamera:
    """The simulated D415 depth stream of a scene that contains the camera (see :func:`add_d415_to_spec`).

    ``capture(data)`` renders ideal depth and applies the noise model with the camera's own
    seeded generator, so a seeded episode gives the same frames.
    """

    def __init__(self, model: mujoco.MjModel, config: D415Config | None = None, seed: int = 0,
                 renderer: OffscreenRenderer | None = None) -> None:
        self.config = config or D415Config()
        self.model = model
        camera_id(model, self.config.camera_name)  # validate early
        info = self.config.info
        fovy = float(model.cam_fovy[camera_id(model, self.config.camera_name)])
        if abs(fovy - info.fovy_deg) > 1e-3:
            raise ValueError(f"camera '{self.config.camera_name}' has fovy {fovy:.3f} deg but the "
                             f"D415 config expects {info.fovy_deg:.3f} deg")
        self._owns_renderer = renderer is None
        self.renderer = renderer or OffscreenRenderer(model)
        self.rng = np.random.default_rng(seed)

    @property
    def info(self) -> CameraInfo:
        return self.config.info

    def seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def pose_in_base(self, data: mujoco.MjData) -> Pose:
        """T_base_optical (``fr3_link0`` -> ``camera_depth_optical_frame``)."""
        base = self.config.base_body
        has_base = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, base) >= 0
        return camera_optical_pose(self.model, data, self.config.camera_name, base if has_base else None)

    def ideal_depth(self, data: mujoco.MjData) -> NDArray[np.float32]:
        info = self.config.info
        return self.renderer.depth(data, self.config.camera_name, info.width, info.height)

    def capture(self, data: mujoco.MjData, with_rgb: bool = False) -> DepthFrame:
        info = self.config.info
        depth = apply_depth_noise(self.ideal_depth(data), info, self.config.noise, self.rng)
        rgb = self.renderer.rgb(data, self.config.camera_name, info.width, info.height) if with_rgb else None
        return DepthFrame(depth_m=depth, info=info, base_from_optical=self.pose_in_base(data),
                          stamp_s=float(data.time), rgb=rgb)

    def close(self) -> None:
        if self._owns_renderer:
            self.renderer.close()

    def __enter__(self) -> D415DepthCamera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# Geometry helpers for consumers of depth frames
# --------------------------------------------------------------------------------------------

def project_points(points_optical: ArrayLike, info: CameraInfo) -> NDArray[np.float64]:
    """Pixel coordinates (N, 2) (u, v) of points (N, 3) in the optical frame."""
    p = np.atleast_2d(np.asarray(points_optical, dtype=float))
    return np.stack([info.fx * p[:, 0] / p[:, 2] + info.cx, info.fy * p[:, 1] / p[:, 2] + info.cy], axis=1)


def depth_to_points(depth_m: NDArray, info: CameraInfo) -> NDArray[np.float64]:
    """Back-project valid (> 0) depth pixels to (N, 3) points in the optical frame."""
    v, u = np.nonzero(np.asarray(depth_m) > 0)
    z = np.asarray(depth_m, dtype=float)[v, u]
    return np.stack([(u - info.cx) * z / info.fx, (v - info.cy) * z / info.fy, z], axis=1)
