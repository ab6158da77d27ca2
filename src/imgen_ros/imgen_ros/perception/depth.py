"""Depth images: decoding ROS / RealSense encodings to metres, back-projection to points (ROS-free).

Depth is z along the optical axis in metres as float32; 0 or non-finite marks an invalid pixel.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.pose import Pose
from imgen_ros.perception.intrinsics import PinholeIntrinsics

# sensor_msgs/Image encodings a depth stream uses: name -> (numpy dtype, metres per unit or None = use depth_scale)
DEPTH_ENCODINGS: dict[str, tuple[str, float | None]] = {
    "16UC1": ("u2", None),   # realsense-ros depth/image_rect_raw: millimetres (depth_scale 0.001)
    "mono16": ("u2", None),
    "32FC1": ("f4", 1.0),    # metres
}


class DepthImageError(ValueError):
    """A depth image message cannot be decoded."""


def decode_depth_image(encoding: str, height: int, width: int, step: int, data: bytes | bytearray | memoryview,
                       is_bigendian: bool = False, depth_scale: float = 0.001) -> NDArray[np.float32]:
    """sensor_msgs/Image fields -> (H, W) float32 metres. ``depth_scale``: metres per unit of 16-bit images."""
    if encoding not in DEPTH_ENCODINGS:
        raise DepthImageError(f"unsupported depth encoding '{encoding}'; expected one of {sorted(DEPTH_ENCODINGS)}")
    kind, unit = DEPTH_ENCODINGS[encoding]
    dtype = np.dtype(kind).newbyteorder(">" if is_bigendian else "<")
    if height <= 0 or width <= 0 or step < width * dtype.itemsize:
        raise DepthImageError(f"depth image {width}x{height} with step {step} is inconsistent "
                              f"({encoding} needs step >= {width * dtype.itemsize})")
    buffer = np.frombuffer(bytes(data) if isinstance(data, memoryview) else data, dtype=np.uint8)
    if buffer.size < step * height:
        raise DepthImageError(f"depth image data has {buffer.size} bytes, expected step*height = {step * height}")
    rows = buffer[: step * height].reshape(height, step)[:, : width * dtype.itemsize]
    values = np.ascontiguousarray(rows).view(dtype).reshape(height, width)
    scale = unit if unit is not None else depth_scale
    return (values.astype(np.float32) * np.float32(scale)).astype(np.float32)


def decode_image_msg(msg: object, depth_scale: float = 0.001) -> NDArray[np.float32]:
    """Decode anything shaped like sensor_msgs/Image (rclpy or rosbags message)."""
    return decode_depth_image(str(msg.encoding), int(msg.height), int(msg.width), int(msg.step), msg.data,
                              bool(msg.is_bigendian), depth_scale)


def valid_depth_mask(depth_m: NDArray, min_depth_m: float, max_depth_m: float) -> NDArray[np.bool_]:
    d = np.asarray(depth_m)
    with np.errstate(invalid="ignore"):
        return np.isfinite(d) & (d >= min_depth_m) & (d <= max_depth_m)


def depth_to_points(depth_m: NDArray, intrinsics: PinholeIntrinsics, mask: NDArray[np.bool_] | None = None,
                    stride: int = 1) -> NDArray[np.float64]:
    """Back-project the pixels selected by ``mask`` (default: finite, > 0) to (N, 3) optical-frame points.

    ``stride`` > 1 keeps every stride-th row and column (cheap decimation before cropping)."""
    depth = np.asarray(depth_m)
    intrinsics.check_image(depth.shape)
    if mask is None:
        with np.errstate(invalid="ignore"):
            mask = np.isfinite(depth) & (depth > 0)
    step = max(1, int(stride))
    v, u = np.nonzero(mask[::step, ::step])
    z = depth[::step, ::step][v, u].astype(np.float64)
    u = u * step
    v = v * step
    return np.stack([(u - intrinsics.cx) * z / intrinsics.fx, (v - intrinsics.cy) * z / intrinsics.fy, z], axis=1)


def transform_points(points: NDArray, pose: Pose) -> NDArray[np.float64]:
    """Apply a 4x4 transform to (N, 3) points (element-wise: no BLAS call, whose thread pool is slow
    to wake on a loaded machine)."""
    p = np.asarray(points, dtype=float)
    r, t = pose[:3, :3], pose[:3, 3]
    return p[:, 0:1] * r[:, 0] + p[:, 1:2] * r[:, 1] + p[:, 2:3] * r[:, 2] + t
