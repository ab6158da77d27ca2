"""Cube pose from one depth image: crop -> plane removal -> cluster -> point-to-plane ICP -> checks.

Pipeline (all in the robot base frame ``fr3_link0``):

1. validate camera_info against the image; reject images dominated by NaN/Inf;
2. back-project valid pixels, move them to the base frame with the configured extrinsics
   (``T_base_camera`` of ``camera_depth_optical_frame``), keep the workspace box;
3. voxel-downsample, remove the dominant near-horizontal plane (the table, RANSAC) and everything
   below it, keep the largest DBSCAN cluster;
4. point-to-plane ICP against the cube surface model from a few yaw seeds, keep the best fit;
   then the table supports the cube (``table_support``): a fit with a corner below the table plane
   is moved up along the plane's normal until it rests on it. The hand above a cube hides its top
   face from the camera, and the hand's self-filter (``gripper_filter``) cuts the top millimetres
   off once the palm nears it; the side faces left do not fix the height, and the fit sank 7-9 mm
   into the table (measured on the simulated D415 with the open hand lowered around the cube),
   which a policy reads as "go lower". A rigid cube cannot be inside the table, so this only
   removes impossible fits;
5. reject bad fits (low fitness, high RMSE, non-finite pose, centre outside the workspace) and
   single-frame jumps (``temporal``). Orientation is reported as the member of the cube's symmetry
   class closest to the base frame's axes (z up, yaw in [-45, 45] deg for a resting cube):
   ``core.symmetry.canonical_cube_rotation``, the rule the simulator's observed poses follow too.

Every rejection carries a specific ``Reason`` and a human-readable detail.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np
import open3d as o3d
from numpy.typing import NDArray

from imgen_ros.core.params import param
from imgen_ros.core.pose import Pose, make_pose, pos_quat_from_pose, pose_from_pos_quat, yaw_matrix
from imgen_ros.core.symmetry import canonical_cube_rotation
from imgen_ros.perception.cube_model import cube_surface_points
from imgen_ros.perception.depth import depth_to_points, transform_points, valid_depth_mask
from imgen_ros.perception.gripper_filter import GripperFilterConfig, GripperState, gripper_points
from imgen_ros.perception.icp import ModelIcp
from imgen_ros.perception.intrinsics import CameraInfoError, PinholeIntrinsics
from imgen_ros.perception.temporal import TemporalConfig, TemporalGate


class Reason(StrEnum):
    """Why an estimate is (in)valid."""

    OK = "ok"
    CAMERA_INFO_INVALID = "camera_info_invalid"     # unusable intrinsics (fx <= 0, NaN, wrong K)
    CAMERA_INFO_MISMATCH = "camera_info_mismatch"   # camera_info size differs from the image
    FRAME_MISMATCH = "frame_mismatch"               # depth image not in the calibrated camera frame
    NONFINITE_DEPTH = "nonfinite_depth"             # too many NaN/Inf pixels: the image is corrupt
    NO_VALID_DEPTH = "no_valid_depth"               # no pixel within the depth range
    EMPTY_CROP = "empty_crop"                       # nothing inside the workspace box
    TOO_FEW_POINTS = "too_few_points"               # no cube-sized cluster with enough points above the table
    LOW_FITNESS = "low_fitness"                     # the cube model explains too few points
    HIGH_RMSE = "high_rmse"                         # inliers too far from the model surface
    NONFINITE_POSE = "nonfinite_pose"               # ICP produced NaN/Inf
    OUTSIDE_WORKSPACE = "outside_workspace"         # fitted centre outside the workspace box
    TEMPORAL_JUMP = "temporal_jump"                 # inconsistent with the recent estimates


@dataclass(frozen=True)
class PoseEstimate:
    """One estimate. ``pose`` is the cube centre frame in the base frame (NaN-filled when no fit was
    made). ``fitness``: fraction of object points within the final ICP distance of the model;
    ``rmse``: their RMS distance (m)."""

    pose: Pose
    valid: bool
    reason: Reason
    detail: str = ""
    fitness: float = 0.0
    rmse: float = math.inf
    num_points: int = 0
    lift_m: float = 0.0      # how far ``table_support`` moved the fit up onto the table plane
    stamp_s: float = 0.0
    compute_s: float = 0.0

    @property
    def reason_text(self) -> str:
        return self.reason.value if not self.detail else f"{self.reason.value}: {self.detail}"


NAN_POSE = np.full((4, 4), np.nan)
# A resting cube's fit dips a millimetre or two into the noisy table plane; a larger lift is worth a
# word in the status (the fit had sunk: usually the hand hides the top face).
REPORTED_LIFT_M = 0.003


@dataclass(frozen=True)
class CubePoseEstimatorConfig:
    """Parameters of the estimator (``estimator.*`` in ``config/cube_pose_estimator.yaml``). Lengths in m."""

    object_id: str = "cube"
    cube_size_m: float = 0.05
    # Extrinsics: camera_depth_optical_frame in fr3_link0 (position, quaternion x, y, z, w). The default
    # is the simulated D415's tripod mount (imgen_ros.sim.cameras.CameraMount); calibrate on a real setup.
    camera_position: tuple[float, float, float] = (1.15, 0.35, 0.55)
    camera_quat_xyzw: tuple[float, float, float, float] = (-0.458283, -0.767265, 0.385168, 0.230058)
    # Workspace box in the base frame: points outside are ignored; a fitted centre outside is rejected.
    workspace_min: tuple[float, float, float] = (0.25, -0.35, -0.03)
    workspace_max: tuple[float, float, float] = (0.85, 0.35, 0.30)
    min_depth_m: float = 0.15
    max_depth_m: float = 2.0
    max_nonfinite_fraction: float = 0.5   # more NaN/Inf pixels than this: the image is corrupt
    voxel_size_m: float = 0.003
    plane_distance_m: float = 0.004       # RANSAC inlier distance for the table plane
    pixel_stride: int = 2                 # use every n-th row and column of the image
    plane_sample_size: int = 3000         # RANSAC runs on this many random points
    plane_ransac_iterations: int = 100
    plane_min_extent_m: float = 0.2       # a narrower plane is not the table (e.g. the cube's top face)
    plane_max_tilt_deg: float = 25.0      # the table plane's normal is within this of base z
    min_height_above_plane_m: float = 0.005
    cluster_eps_m: float = 0.01
    min_object_points: int = 30
    max_cluster_extent_factor: float = 1.25  # clusters wider than this x the cube diagonal are not the cube
    model_spacing_m: float = 0.0025
    icp_distances_m: tuple[float, ...] = (0.015, 0.005)
    icp_max_iterations: int = 30
    yaw_seeds_deg: tuple[float, ...] = (0.0, 30.0, 60.0)
    min_fitness: float = param(0.7, "a fit explaining a smaller fraction of the cluster's points is rejected "
                               "(low_fitness); live: applies from the next frame", "[0, 1]", live=True)
    max_rmse_m: float = param(0.003, "a fit whose inliers are further from the model surface (RMS) is rejected "
                              "(high_rmse) [m]; live: applies from the next frame", "(0, 0.02]", live=True)
    table_support: bool = param(True, "a fit with a corner below the table plane (the last one found) is moved "
                                "up onto it: the cube rests on or above the table")
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    gripper_filter: GripperFilterConfig = field(default_factory=GripperFilterConfig)

    def __post_init__(self) -> None:
        def check(ok: bool, what: str) -> None:
            if not ok:
                raise ValueError(f"cube_pose_estimator config: {what}")

        check(self.cube_size_m > 0, f"cube_size_m must be > 0, got {self.cube_size_m}")
        check(len(self.camera_position) == 3, f"camera_position needs 3 values, got {self.camera_position}")
        check(len(self.camera_quat_xyzw) == 4 and np.linalg.norm(self.camera_quat_xyzw) > 0.5,
              f"camera_quat_xyzw must be a unit quaternion (x, y, z, w), got {self.camera_quat_xyzw}")
        check(len(self.workspace_min) == 3 and len(self.workspace_max) == 3
              and all(a < b for a, b in zip(self.workspace_min, self.workspace_max, strict=True)),
              f"workspace_min {self.workspace_min} must be below workspace_max {self.workspace_max} on every axis")
        check(0 <= self.min_depth_m < self.max_depth_m, f"need 0 <= min_depth_m < max_depth_m, got "
              f"{self.min_depth_m}, {self.max_depth_m}")
        check(0 <= self.max_nonfinite_fraction <= 1, f"max_nonfinite_fraction must be in [0, 1], "
              f"got {self.max_nonfinite_fraction}")
        check(self.voxel_size_m >= 0, f"voxel_size_m must be >= 0, got {self.voxel_size_m}")
        check(self.plane_distance_m > 0 and self.cluster_eps_m > 0, "plane_distance_m and cluster_eps_m must be > 0")
        check(self.pixel_stride >= 1, f"pixel_stride must be >= 1, got {self.pixel_stride}")
        check(self.plane_sample_size >= 3, f"plane_sample_size must be >= 3, got {self.plane_sample_size}")
        check(self.min_object_points >= 4, f"min_object_points must be >= 4, got {self.min_object_points}")
        check(len(self.icp_distances_m) > 0 and all(d > 0 for d in self.icp_distances_m),
              f"icp_distances_m must be positive, got {self.icp_distances_m}")
        check(len(self.yaw_seeds_deg) > 0, "yaw_seeds_deg must not be empty")
        check(0 <= self.min_fitness <= 1, f"min_fitness must be in [0, 1], got {self.min_fitness}")
        check(self.max_rmse_m > 0, f"max_rmse_m must be > 0, got {self.max_rmse_m}")

    @property
    def camera_pose(self) -> Pose:
        """T_base_camera: the depth optical frame in the base frame."""
        q = np.asarray(self.camera_quat_xyzw, dtype=float)
        return pose_from_pos_quat(self.camera_position, q / np.linalg.norm(q))

    def with_camera_pose(self, pose: Pose) -> CubePoseEstimatorConfig:
        """The same configuration with extrinsics ``pose`` (T_base_camera)."""
        pos, quat = pos_quat_from_pose(pose)
        return replace(self, camera_position=tuple(pos.tolist()), camera_quat_xyzw=tuple(quat.tolist()))


class CubePoseEstimator:
    """Stateful (temporal check) estimator of the cube pose from depth images."""

    def __init__(self, config: CubePoseEstimatorConfig | None = None) -> None:
        self.config = config or CubePoseEstimatorConfig()
        cfg = self.config
        points, normals = cube_surface_points(cfg.cube_size_m, cfg.model_spacing_m)
        self.icp = ModelIcp(points, normals, cfg.icp_distances_m, cfg.icp_max_iterations)
        self.gate = TemporalGate(cfg.temporal)
        self._box_min = np.asarray(cfg.workspace_min, dtype=float)
        self._box_max = np.asarray(cfg.workspace_max, dtype=float)
        self._rng = np.random.default_rng(0)
        self._seeds = [yaw_matrix(math.radians(y)) for y in cfg.yaw_seeds_deg]
        # The table plane (unit normal up, offset: height = normal @ p + offset) last found; the table
        # does not move, so a frame where RANSAC misses it uses the previous one.
        self._table_plane: tuple[NDArray[np.float64], float] | None = None

    def reset(self) -> None:
        """Forget the temporal history (new episode / the object was moved by hand)."""
        self.gate.reset()

    def estimate(self, depth_m: NDArray, camera_info: object, stamp_s: float = 0.0,
                 camera_pose: Pose | None = None, gripper: GripperState | None = None) -> PoseEstimate:
        """Estimate the cube pose in one depth image (metres, 0/NaN invalid).

        ``camera_info``: PinholeIntrinsics or anything with width/height and fx/fy/cx/cy or a k matrix.
        ``camera_pose``: T_base_camera overriding the configured extrinsics (e.g. from tf).
        ``gripper``: the hand when the frame was taken; its points are dropped (``gripper_filter``)."""
        t0 = time.perf_counter()
        result = self._estimate(np.asarray(depth_m), camera_info, stamp_s, camera_pose, gripper)
        return PoseEstimate(**{**result.__dict__, "stamp_s": stamp_s, "compute_s": time.perf_counter() - t0})

    def _reject(self, reason: Reason, detail: str, **extra: Any) -> PoseEstimate:
        return PoseEstimate(pose=extra.pop("pose", NAN_POSE.copy()), valid=False, reason=reason, detail=detail,
                            **extra)

    def _estimate(self, depth: NDArray, camera_info: object, stamp_s: float,
                  camera_pose: Pose | None, gripper: GripperState | None) -> PoseEstimate:
        cfg = self.config
        try:
            intr = _as_intrinsics(camera_info)
        except (CameraInfoError, AttributeError, TypeError, ValueError) as err:
            return self._reject(Reason.CAMERA_INFO_INVALID, str(err))
        if depth.ndim != 2 or depth.shape != (intr.height, intr.width):
            return self._reject(Reason.CAMERA_INFO_MISMATCH, f"camera_info is {intr.width}x{intr.height} "
                                f"but the depth image has shape {depth.shape}")
        nonfinite = float(np.count_nonzero(~np.isfinite(depth))) / depth.size
        if nonfinite > cfg.max_nonfinite_fraction:
            return self._reject(Reason.NONFINITE_DEPTH, f"{nonfinite:.0%} of the pixels are NaN/Inf "
                                f"(limit {cfg.max_nonfinite_fraction:.0%})")
        mask = valid_depth_mask(depth, cfg.min_depth_m, cfg.max_depth_m)
        if not mask.any():
            return self._reject(Reason.NO_VALID_DEPTH, f"no pixel within [{cfg.min_depth_m}, {cfg.max_depth_m}] m")
        T_base_cam = cfg.camera_pose if camera_pose is None else np.asarray(camera_pose, dtype=float)
        points = transform_points(depth_to_points(depth, intr, mask, cfg.pixel_stride), T_base_cam)
        inside = np.all((points >= self._box_min) & (points <= self._box_max), axis=1)
        points = points[inside]
        if len(points) == 0:
            return self._reject(Reason.EMPTY_CROP, f"none of {int(mask.sum())} depth points lies in the workspace box "
                                f"{cfg.workspace_min}..{cfg.workspace_max} (check the extrinsics)")
        if gripper is not None and cfg.gripper_filter.enabled:
            points = points[~gripper_points(points, gripper, cfg.gripper_filter)]
        object_points, why = self._object_points(points)
        if len(object_points) < cfg.min_object_points:
            return self._reject(Reason.TOO_FEW_POINTS, why, num_points=len(object_points))
        return self._fit(object_points, T_base_cam[:3, 3], stamp_s)

    def _object_points(self, points: NDArray[np.float64]) -> tuple[NDArray[np.float64], str]:
        """Points above the table plane (voxel-downsampled) of the cube-sized cluster: nearest the last
        accepted estimate when there is one, else the largest. Clusters wider than
        ``max_cluster_extent`` (the arm, the hand, a cube merged with the fingers) are not the cube.
        Returns the points and, when there are none, why."""
        cfg = self.config
        points = self._remove_table(points)
        if len(points) < cfg.min_object_points:
            return points, f"{len(points)} points above the table"
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
        if cfg.voxel_size_m > 0:
            cloud = cloud.voxel_down_sample(cfg.voxel_size_m)
        points = np.asarray(cloud.points)
        labels = np.asarray(cloud.cluster_dbscan(cfg.cluster_eps_m, min_points=4))
        limit = cfg.max_cluster_extent_factor * cfg.cube_size_m * math.sqrt(3.0)
        candidates, too_wide = [], 0
        for label in range(int(labels.max()) + 1 if labels.size else 0):
            cluster = points[labels == label]
            if len(cluster) < cfg.min_object_points:
                continue
            if float(np.max(np.ptp(cluster, axis=0))) > limit:
                too_wide += 1
                continue
            candidates.append(cluster)
        if not candidates:
            return points[:0], (f"no cube-sized cluster of >= {cfg.min_object_points} points "
                                f"({too_wide} wider than {limit * 1000:.0f} mm)")
        previous = self.gate.last_accepted
        if previous is not None:
            best = min(candidates, key=lambda c: float(np.linalg.norm(c.mean(axis=0) - previous[:3, 3])))
        else:
            best = max(candidates, key=len)
        return best, ""

    def _remove_table(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        """Drop the dominant near-horizontal plane wider than ``plane_min_extent_m`` (the table; a cube
        face is smaller) and everything below it. RANSAC runs on a fixed-size random sample."""
        cfg = self.config
        if len(points) < 3:
            return points
        sample = points
        if len(points) > cfg.plane_sample_size:
            sample = points[self._rng.choice(len(points), cfg.plane_sample_size, replace=False)]
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(sample))
        plane, inliers = cloud.segment_plane(cfg.plane_distance_m, 3, cfg.plane_ransac_iterations)
        normal = np.asarray(plane[:3], dtype=float)
        norm = float(np.linalg.norm(normal))
        if norm == 0 or len(inliers) < 3:
            return points
        tilt = math.degrees(math.acos(min(1.0, abs(normal[2]) / norm)))
        flat = sample[np.asarray(inliers)]
        extent = float(np.max(np.ptp(flat[:, :2], axis=0)))
        if tilt > cfg.plane_max_tilt_deg or extent < cfg.plane_min_extent_m:
            return points
        sign = 1.0 if normal[2] > 0 else -1.0  # orient the normal up
        self._table_plane = (sign * normal / norm, float(sign * plane[3] / norm))
        height = points @ self._table_plane[0] + self._table_plane[1]
        return points[height > cfg.min_height_above_plane_m]

    def _fit(self, points: NDArray[np.float64], camera_position: NDArray, stamp_s: float) -> PoseEstimate:
        cfg = self.config
        centroid = points.mean(axis=0)
        view = centroid - camera_position
        view /= max(np.linalg.norm(view), 1e-9)
        # Visible points lie on the camera side of the cube: start the centre a bit behind them.
        start = centroid + view * cfg.cube_size_m / 4.0
        fit = self.icp.fit(points, [make_pose(start, seed) for seed in self._seeds])
        n = len(points)
        pose = fit.pose
        if not np.all(np.isfinite(pose)):
            return self._reject(Reason.NONFINITE_POSE, "ICP returned a non-finite transform", num_points=n)
        pose = make_pose(pose[:3, 3], canonical_cube_rotation(pose[:3, :3]))  # same rule as the sim observation
        quality = {"fitness": fit.fitness, "rmse": fit.rmse, "num_points": n}
        lift = 0.0
        if cfg.table_support and self._table_plane is not None:
            pose, lift = rest_on_plane(pose, cfg.cube_size_m / 2.0, *self._table_plane)
        if fit.fitness < cfg.min_fitness:
            return self._reject(Reason.LOW_FITNESS, f"fitness {fit.fitness:.2f} < {cfg.min_fitness}", pose=pose,
                                **quality)
        if fit.rmse > cfg.max_rmse_m:
            return self._reject(Reason.HIGH_RMSE, f"rmse {fit.rmse * 1000:.2f} mm > {cfg.max_rmse_m * 1000:.2f} mm",
                                pose=pose, **quality)
        centre = pose[:3, 3]
        if np.any(centre < self._box_min) or np.any(centre > self._box_max):
            return self._reject(Reason.OUTSIDE_WORKSPACE, f"centre {np.round(centre, 3).tolist()} outside the "
                                f"workspace box", pose=pose, **quality)
        consistent, why = self.gate.check(pose, stamp_s)
        if not consistent:
            return self._reject(Reason.TEMPORAL_JUMP, why, pose=pose, **quality)
        detail = f"lifted {lift * 1000:.1f} mm onto the table plane" if lift >= REPORTED_LIFT_M else ""
        return PoseEstimate(pose=pose, valid=True, reason=Reason.OK, detail=detail, lift_m=lift, **quality)


def rest_on_plane(pose: Pose, half_size: float, normal: NDArray[np.float64], offset: float) -> tuple[Pose, float]:
    """``pose`` of a cube (half edge ``half_size``) moved along the plane's unit ``normal`` until no corner
    lies below the plane ``normal @ p + offset = 0``; returns the pose and how far it moved (>= 0, m)."""
    rot = pose[:3, :3]
    # The lowest corner's height above the plane: the centre's, less the half extents projected on the normal.
    lowest = float(normal @ pose[:3, 3] + offset - half_size * np.abs(rot.T @ normal).sum())
    if lowest >= 0.0:
        return pose, 0.0
    moved = pose.copy()
    moved[:3, 3] = pose[:3, 3] - lowest * normal
    return moved, -lowest


def _as_intrinsics(camera_info: object) -> PinholeIntrinsics:
    if isinstance(camera_info, PinholeIntrinsics):
        return camera_info
    if hasattr(camera_info, "fx"):
        return PinholeIntrinsics.from_any(camera_info)
    return PinholeIntrinsics.from_camera_info(camera_info)
