"""The camera's hand-eye calibration: the one source of truth for where the depth camera is.

A calibration file (YAML) gives the pose of the depth camera's optical frame in the robot base
frame. The real launch file publishes it as a static transform (for RViz and anything using TF) and
hands the same file to cube_pose_estimator, which uses it for ICP and checks every depth image's
``frame_id`` against ``child_frame``. The file shipped in ``config/camera_extrinsics_sim.yaml`` is
the simulator's D415 mount and says so (``simulated: true``); the real launch refuses it unless the
user overrides explicitly. ROS-free.

File layout::

    parent_frame: fr3_link0                     # REP-103 robot base
    child_frame: camera_depth_optical_frame     # realsense-ros: <camera_name>_depth_optical_frame
    translation: [x, y, z]                      # m
    rotation_xyzw: [x, y, z, w]                 # unit quaternion
    simulated: false                            # true only for the simulator's mount
    calibrated_on: "2026-11-30"                 # optional, free text
    method: "easy_handeye2, 15 poses"           # optional, free text
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from imgen_ros.core.pose import Pose, pose_from_pos_quat

REQUIRED = ("parent_frame", "child_frame", "translation", "rotation_xyzw", "simulated")
OPTIONAL = ("calibrated_on", "method")
MAX_CAMERA_DISTANCE_M = 3.0   # a D415 looking at an FR3's table is within a few metres of the base


class ExtrinsicsError(ValueError):
    """A calibration file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class CameraExtrinsics:
    parent_frame: str
    child_frame: str
    translation: tuple[float, float, float]
    rotation_xyzw: tuple[float, float, float, float]
    simulated: bool
    source: str = ""

    @property
    def pose(self) -> Pose:
        """T_parent_child (4x4)."""
        return pose_from_pos_quat(self.translation, self.rotation_xyzw)

    def static_transform_arguments(self) -> list[str]:
        """Arguments of ``tf2_ros static_transform_publisher`` (the named-flag form of Humble and later)."""
        (x, y, z), (qx, qy, qz, qw) = self.translation, self.rotation_xyzw
        values = {"--x": x, "--y": y, "--z": z, "--qx": qx, "--qy": qy, "--qz": qz, "--qw": qw}
        args = [item for flag, value in values.items() for item in (flag, repr(float(value)))]
        return [*args, "--frame-id", self.parent_frame, "--child-frame-id", self.child_frame]


def _numbers(data: dict[str, Any], key: str, n: int, source: str) -> tuple[float, ...]:
    value = data[key]
    if (not isinstance(value, list) or len(value) != n
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
        raise ExtrinsicsError(f"{source}: '{key}' must be a list of {n} numbers, got {value!r}")
    out = tuple(float(v) for v in value)
    if not np.all(np.isfinite(out)):
        raise ExtrinsicsError(f"{source}: '{key}' must be finite, got {value!r}")
    return out


def parse_extrinsics(data: Any, source: str) -> CameraExtrinsics:
    """A CameraExtrinsics from a loaded YAML mapping; ExtrinsicsError names what is wrong."""
    if not isinstance(data, dict):
        raise ExtrinsicsError(f"{source}: expected a mapping with {', '.join(REQUIRED)}")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ExtrinsicsError(f"{source}: missing {', '.join(missing)}")
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise ExtrinsicsError(f"{source}: unknown key(s) {unknown}; allowed: {sorted(REQUIRED + OPTIONAL)}")
    for key in ("parent_frame", "child_frame"):
        if not isinstance(data[key], str) or not data[key] or data[key].startswith("/"):
            raise ExtrinsicsError(f"{source}: '{key}' must be a non-empty frame name without a leading '/', "
                                  f"got {data[key]!r}")
    if not isinstance(data["simulated"], bool):
        raise ExtrinsicsError(f"{source}: 'simulated' must be true or false, got {data['simulated']!r}")
    translation = _numbers(data, "translation", 3, source)
    quat = np.asarray(_numbers(data, "rotation_xyzw", 4, source))
    if abs(np.linalg.norm(quat) - 1.0) > 1e-3:
        raise ExtrinsicsError(f"{source}: 'rotation_xyzw' must be a unit quaternion (x, y, z, w), norm "
                              f"{np.linalg.norm(quat):.4f}")
    if np.linalg.norm(translation) > MAX_CAMERA_DISTANCE_M:
        raise ExtrinsicsError(f"{source}: camera {np.linalg.norm(translation):.2f} m from {data['parent_frame']}: "
                              f"more than {MAX_CAMERA_DISTANCE_M} m is not a plausible mount (units must be metres)")
    quat = quat / np.linalg.norm(quat)
    return CameraExtrinsics(data["parent_frame"], data["child_frame"], translation,
                            tuple(float(v) for v in quat), data["simulated"], source)


def load_extrinsics(path: str | Path) -> CameraExtrinsics:
    """Read a calibration file; ExtrinsicsError (one line, naming the file) on any problem."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ExtrinsicsError(f"cannot read camera calibration {path}: {err.strerror or err}") from err
    except yaml.YAMLError as err:
        raise ExtrinsicsError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from err
    return parse_extrinsics(data, str(path))


def require_calibrated(extrinsics: CameraExtrinsics, allow_simulated: bool) -> None:
    """Refuse the simulator's mount on a real robot unless the user explicitly allows it."""
    if extrinsics.simulated and not allow_simulated:
        raise ExtrinsicsError(
            f"{extrinsics.source}: these are the simulator's camera extrinsics (simulated: true), not a "
            "calibration of your camera; a wrong camera pose puts the cube centimetres off and the robot "
            "grasps beside it. Calibrate (hand-eye) and pass extrinsics:=/path/to/your_calibration.yaml, "
            "or pass allow_sim_extrinsics:=true to run anyway (e.g. against the simulator)")
