"""Point-to-plane ICP of observed points against a model with known normals (open3d)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d
from numpy.typing import NDArray

from imgen_ros.core.pose import Pose, pose_inv


@dataclass(frozen=True)
class IcpResult:
    """``pose``: model frame in the points' frame. ``fitness``: fraction of observed points with a model
    point within the final correspondence distance; ``rmse``: RMS distance of those inliers (m)."""

    pose: Pose
    fitness: float
    rmse: float


class ModelIcp:
    """Registers observed point sets to one fixed model (its KD-tree is built once).

    Observed points are the ICP source and the model the target: the model's analytic normals drive
    point-to-plane, and fitness counts observed points explained by the model (self-occluded faces
    of the model do not count against it).
    """

    def __init__(self, model_points: NDArray, model_normals: NDArray,
                 correspondence_schedule_m: tuple[float, ...] = (0.015, 0.005), max_iterations: int = 30) -> None:
        if not correspondence_schedule_m or any(d <= 0 for d in correspondence_schedule_m):
            raise ValueError(f"correspondence_schedule_m must be positive distances, got {correspondence_schedule_m}")
        self.target = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(model_points, dtype=float)))
        self.target.normals = o3d.utility.Vector3dVector(np.asarray(model_normals, dtype=float))
        self.schedule = tuple(float(d) for d in correspondence_schedule_m)
        self.criteria = o3d.pipelines.registration.ICPConvergenceCriteria(
            relative_fitness=1e-7, relative_rmse=1e-7, max_iteration=max_iterations)
        self.estimation = o3d.pipelines.registration.TransformationEstimationPointToPlane()

    def _run(self, source: o3d.geometry.PointCloud, model_from_points: Pose, distance: float
             ) -> o3d.pipelines.registration.RegistrationResult:
        return o3d.pipelines.registration.registration_icp(
            source, self.target, distance, model_from_points, self.estimation, self.criteria)

    def fit(self, points: NDArray, initial_model_poses: list[Pose]) -> IcpResult:
        """Refine the best of ``initial_model_poses`` (model in the points' frame) so the model explains
        ``points``: the first (coarsest) distance runs from every seed, the rest from the best one.
        ``rmse`` is the point-to-plane residual of the final inliers (independent of model spacing)."""
        if not initial_model_poses:
            raise ValueError("ICP needs at least one initial pose")
        source = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, dtype=float)))
        coarse = self.schedule[0]
        best = None
        for initial in initial_model_poses:
            result = self._run(source, pose_inv(initial), coarse)
            if best is None or _score(result) > _score(best):
                best = result
        assert best is not None
        result = best
        for distance in self.schedule[1:]:
            result = self._run(source, np.asarray(result.transformation), distance)
        model_from_points = np.asarray(result.transformation)
        pairs = np.asarray(result.correspondence_set)
        if len(pairs) == 0:
            return IcpResult(pose=pose_inv(model_from_points), fitness=0.0, rmse=float("inf"))
        moved = np.asarray(points, dtype=float)[pairs[:, 0]] @ model_from_points[:3, :3].T + model_from_points[:3, 3]
        target_points = np.asarray(self.target.points)[pairs[:, 1]]
        target_normals = np.asarray(self.target.normals)[pairs[:, 1]]
        residual = np.einsum("ij,ij->i", moved - target_points, target_normals)
        return IcpResult(pose=pose_inv(model_from_points), fitness=float(result.fitness),
                         rmse=float(np.sqrt(np.mean(residual**2))))


def _score(result: o3d.pipelines.registration.RegistrationResult) -> tuple[float, float]:
    return (round(float(result.fitness), 2), -float(result.inlier_rmse))
