"""What the cube_pose_estimator node runs, as plain data: where frames come from, the estimator,
and how results are published. ROS-free: the node file only wires this to topics.

Parameters (dotted ROS names, ``config/cube_pose_estimator.yaml``): ``source.*`` (FrameSourceConfig),
``estimator.*`` (CubePoseEstimatorConfig, incl. ``estimator.temporal.*``), ``frame_id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from imgen_ros.perception.estimator import CubePoseEstimatorConfig
from imgen_ros.perception.sources import RealSenseLiveSource, RealSenseRecordingSource

SOURCE_KINDS = ("ros", "realsense", "recording")


@dataclass(frozen=True)
class FrameSourceConfig:
    """``ros``: subscribe realsense-ros depth + camera_info (sensor-data QoS); ``realsense``: a live
    camera through pyrealsense2; ``recording``: a RealSense .bag/.db3 played through pyrealsense2."""

    kind: str = "ros"
    recording_path: str = ""
    loop_recording: bool = False
    serial: str = ""
    width: int = 640
    height: int = 480
    fps: int = 30
    depth_scale: float = 0.001   # metres per unit of 16UC1 ROS images (realsense-ros: mm)

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"source.kind {self.kind!r} is not one of {', '.join(SOURCE_KINDS)}")
        if self.kind == "recording" and not self.recording_path:
            raise ValueError("source.kind 'recording' needs source.recording_path (a .bag or .db3 file)")
        if self.depth_scale <= 0 or self.fps <= 0:
            raise ValueError(f"source.depth_scale and source.fps must be > 0, got {self.depth_scale}, {self.fps}")


@dataclass(frozen=True)
class CubePoseNodeConfig:
    source: FrameSourceConfig = field(default_factory=FrameSourceConfig)
    estimator: CubePoseEstimatorConfig = field(default_factory=CubePoseEstimatorConfig)
    frame_id: str = "fr3_link0"   # frame of the published pose (the estimator works in the base frame)
    # Hand-eye calibration file (perception.extrinsics): when set, it replaces estimator.camera_* and
    # its child_frame is the frame every depth image must carry.
    extrinsics_file: str = ""
    # Depth images in another frame are rejected (reason frame_mismatch): extrinsics for one frame
    # applied to another camera's data put the cube in the wrong place. realsense-ros names it
    # <camera_name>_depth_optical_frame. Overridden by the calibration's child_frame.
    camera_frame_id: str = "camera_depth_optical_frame"

    def with_extrinsics(self) -> CubePoseNodeConfig:
        """This config with ``extrinsics_file`` applied (camera pose and expected frame from the file)."""
        if not self.extrinsics_file:
            return self
        from imgen_ros.perception.extrinsics import load_extrinsics

        ext = load_extrinsics(self.extrinsics_file)
        if ext.parent_frame != self.frame_id:
            raise ValueError(f"{self.extrinsics_file}: calibration is relative to '{ext.parent_frame}' but poses "
                             f"are published in frame_id '{self.frame_id}'")
        return replace(self, estimator=self.estimator.with_camera_pose(ext.pose), camera_frame_id=ext.child_frame)


def open_pyrealsense_source(config: FrameSourceConfig) -> RealSenseLiveSource | RealSenseRecordingSource:
    """The pyrealsense2 source for ``realsense`` / ``recording`` (``ros`` has no pull source)."""
    if config.kind == "realsense":
        return RealSenseLiveSource(config.serial, config.width, config.height, config.fps)
    if config.kind == "recording":
        return RealSenseRecordingSource(config.recording_path)
    raise ValueError(f"source.kind {config.kind!r} is not a pyrealsense2 source")
