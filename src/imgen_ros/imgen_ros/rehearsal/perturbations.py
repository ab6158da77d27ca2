"""The rehearsal's perturbations, as mechanisms (ROS-free).

- ``extrinsics``: a calibration file whose camera pose is off from the true one by a rigid error
  expressed in the camera's optical frame (default 5 mm along the optical axis, the direction a
  hand-eye calibration pins down worst, and a 2 deg tilt about the optical x axis, image right).
  The estimator then reports the cube where that camera would see it: off by the translation plus
  ~2 deg x the camera distance (about 3 cm at the D415's 0.85 m), and so is the contact reveal,
  which passes the same ICP pose on.
- ``depth_noise``: sim_node's ``depth_noise_scale`` (sim.cameras.DepthNoiseConfig.scaled): the D415's
  axial noise sigma doubled (dropouts and edge bands unchanged).
- ``push``: sim_node's ``push_step`` / ``push_distance_m`` call :func:`push_body`: at that control
  step of every episode the cube is moved horizontally by the distance, in a direction drawn from
  the scene seed (:func:`push_offset`: the same push for every checkpoint on the same episode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from numpy.typing import NDArray

from imgen_ros.core.pose import Pose, axisangle_to_matrix, make_pose, pos_quat_from_pose
from imgen_ros.perception.extrinsics import CameraExtrinsics, load_extrinsics

PUSH_STREAM = 0x9057  # second entropy word: the push direction never reuses the scene's random stream


@dataclass(frozen=True)
class ExtrinsicsError:
    """A rigid calibration error in the optical frame: T_believed = T_true @ error_pose."""

    translation_m: float = 0.005
    rotation_deg: float = 2.0
    translation_axis: tuple[float, float, float] = (0.0, 0.0, 1.0)   # optical z: along the view
    rotation_axis: tuple[float, float, float] = (1.0, 0.0, 0.0)      # optical x: a tilt

    def __post_init__(self) -> None:
        if not (0.0 <= self.translation_m <= 0.1 and 0.0 <= self.rotation_deg <= 30.0):
            raise ValueError(f"extrinsics error must be within 0..0.1 m and 0..30 deg, got {self.translation_m} m, "
                             f"{self.rotation_deg} deg")
        for name in ("translation_axis", "rotation_axis"):
            if not np.linalg.norm(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be a non-zero vector")

    def pose(self) -> Pose:
        t = np.asarray(self.translation_axis, float)
        r = np.asarray(self.rotation_axis, float)
        rotvec = r / np.linalg.norm(r) * math.radians(self.rotation_deg)
        return make_pose(t / np.linalg.norm(t) * self.translation_m, axisangle_to_matrix(rotvec))


def perturbed_extrinsics(true: CameraExtrinsics, error: ExtrinsicsError) -> CameraExtrinsics:
    """The calibration a slightly wrong hand-eye calibration would give (same frames)."""
    position, quat = pos_quat_from_pose(true.pose @ error.pose())
    return CameraExtrinsics(true.parent_frame, true.child_frame, tuple(float(v) for v in position),
                            tuple(float(v) for v in quat), true.simulated, "")


def write_extrinsics(extrinsics: CameraExtrinsics, path: str | Path, method: str) -> Path:
    """A calibration file (perception.extrinsics layout) that ``load_extrinsics`` reads back."""
    path = Path(path)
    data = {"parent_frame": extrinsics.parent_frame, "child_frame": extrinsics.child_frame,
            "translation": [float(v) for v in extrinsics.translation],
            "rotation_xyzw": [float(v) for v in extrinsics.rotation_xyzw],
            "simulated": bool(extrinsics.simulated), "method": method}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load_extrinsics(path)   # what the estimator will read must parse
    return path


def write_perturbed_extrinsics(true_file: str | Path, out: str | Path, error: ExtrinsicsError) -> Path:
    """Write ``true_file``'s calibration with ``error`` applied to ``out``."""
    true = load_extrinsics(true_file)
    method = (f"imgen rehearse perturbation of {Path(true_file).name}: {error.translation_m * 1e3:g} mm along optical "
              f"{list(error.translation_axis)}, {error.rotation_deg:g} deg about optical {list(error.rotation_axis)}")
    return write_extrinsics(perturbed_extrinsics(true, error), out, method)


def push_offset(seed: int, distance_m: float) -> NDArray[np.float64]:
    """The horizontal push (dx, dy, 0) of the episode with scene seed ``seed``: ``distance_m`` long,
    direction uniform over the circle, drawn from (seed, PUSH_STREAM)."""
    angle = np.random.default_rng([int(seed), PUSH_STREAM]).uniform(0.0, 2.0 * math.pi)
    return np.array([math.cos(angle), math.sin(angle), 0.0]) * float(distance_m)


def push_body(env, body: str, offset: NDArray[np.float64]) -> NDArray[np.float64]:
    """Move the free body ``body`` of a sim TaskEnv by ``offset`` (at rest afterwards). Refused (the
    body stays; returns zeros) when it would land touching the fingers: a teleport into the hand
    is no push. Returns the applied offset."""
    import mujoco

    from imgen_ros.sim.tasks.common import set_free_pose

    model, data = env.model, env.data
    joint = model.body(body).jntadr[0]
    qadr = model.jnt_qposadr[joint]
    before = data.qpos[qadr:qadr + 7].copy()
    set_free_pose(env, body, before[:3] + np.asarray(offset, float), before[3:7])
    mujoco.mj_forward(model, data)
    if env.touching(body, "fingers"):
        set_free_pose(env, body, before[:3], before[3:7])
        mujoco.mj_forward(model, data)
        return np.zeros(3)
    return np.asarray(offset, float).copy()
