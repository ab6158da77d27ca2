"""Pinhole intrinsics of a depth stream and their validation against an image (ROS-free)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


class CameraInfoError(ValueError):
    """camera_info is unusable or does not describe the depth image it came with."""


@dataclass(frozen=True)
class PinholeIntrinsics:
    """Undistorted pinhole model; pixel (u, v) has its centre at integer coordinates (OpenCV/ROS)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self) -> None:
        problems = []
        if not (self.width > 0 and self.height > 0):
            problems.append(f"size {self.width}x{self.height} must be positive")
        for name in ("fx", "fy", "cx", "cy"):
            if not math.isfinite(getattr(self, name)):
                problems.append(f"{name}={getattr(self, name)} is not finite")
        if not (self.fx > 0 and self.fy > 0):
            problems.append(f"focal lengths fx={self.fx}, fy={self.fy} must be > 0")
        if problems:
            raise CameraInfoError("invalid camera intrinsics: " + "; ".join(problems))

    @classmethod
    def from_k(cls, width: int, height: int, k: Sequence[float]) -> PinholeIntrinsics:
        """From sensor_msgs/CameraInfo fields: ``k`` is the row-major 3x3 camera matrix (9 values)."""
        values = np.asarray(k, dtype=float).ravel()
        if values.shape != (9,):
            raise CameraInfoError(f"camera_info k must have 9 values, got {values.shape[0]}")
        if values[1] != 0.0 or values[3] != 0.0 or tuple(values[6:]) != (0.0, 0.0, 1.0):
            raise CameraInfoError(f"camera_info k is not a pinhole matrix [fx 0 cx; 0 fy cy; 0 0 1]: {values.tolist()}")
        return cls(int(width), int(height), float(values[0]), float(values[4]), float(values[2]), float(values[5]))

    @classmethod
    def from_camera_info(cls, msg: object) -> PinholeIntrinsics:
        """From anything shaped like sensor_msgs/CameraInfo (rclpy or rosbags message; ``k`` or ``K``).

        Distortion must be absent or zero (realsense-ros publishes rectified depth with zeros)."""
        k = getattr(msg, "k", None)
        if k is None:
            k = getattr(msg, "K", None)
        if k is None:
            raise CameraInfoError(f"camera_info {type(msg).__name__} has no k/K matrix")
        d = getattr(msg, "d", None)
        if d is None:
            d = getattr(msg, "D", None)
        d = np.asarray([] if d is None else d, dtype=float).ravel()
        if d.size and np.any(np.abs(d) > 1e-9):
            raise CameraInfoError(f"camera_info has non-zero distortion {d.tolist()}; rectified depth is required")
        return cls.from_k(int(msg.width), int(msg.height), k)

    @classmethod
    def from_any(cls, info: object) -> PinholeIntrinsics:
        """From an object with width/height/fx/fy/cx/cy (e.g. imgen_ros.sim.cameras.CameraInfo or
        pyrealsense2.intrinsics, whose ``ppx``/``ppy`` are the principal point)."""
        if isinstance(info, PinholeIntrinsics):
            return info
        cx = getattr(info, "cx", None)
        cy = getattr(info, "cy", None)
        if cx is None:
            cx, cy = info.ppx, info.ppy
        return cls(int(info.width), int(info.height), float(info.fx),
                   float(info.fy), float(cx), float(cy))

    @property
    def matrix(self) -> NDArray[np.float64]:
        """The 3x3 camera matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def check_image(self, shape: tuple[int, ...]) -> None:
        """Raise CameraInfoError unless a (H, W) image matches this camera_info."""
        if len(shape) != 2 or shape != (self.height, self.width):
            raise CameraInfoError(f"camera_info is {self.width}x{self.height} but the depth image is "
                                  f"{'x'.join(str(s) for s in shape[::-1])} (W x H)")
