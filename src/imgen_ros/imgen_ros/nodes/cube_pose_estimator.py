"""cube_pose_estimator: depth frames -> ICP pose of the cube in the base frame (logic: perception.estimator).

Frames come from realsense-ros (``source.kind: ros``: ``camera/camera/depth/image_rect_raw`` 16UC1
or 32FC1 + ``camera/camera/depth/camera_info``, sensor-data QoS) or straight from pyrealsense2
(``realsense``: a live camera; ``recording``: a .bag/.db3 paced by its timestamps). Publishes one
``imgen_msgs/ObjectPoseEstimate`` on ``object_pose`` per frame (camera rate), stamped with the
frame's time. A worker thread always processes the newest frame, so a slow fit drops frames rather
than building a backlog.

With ``robot_state`` (the FR3's TCP pose and gripper width) the hand's own points are dropped before
the cube is segmented (perception.gripper_filter): the state nearest the frame's stamp, none when it
is further than ``estimator.gripper_filter.max_state_offset_s``.

Invalid estimates (``valid: false``) carry the rejected fit's pose when there is one, else the origin
with identity orientation: never NaN (a NaN pose is a fault for the arbiter, an invalid one just goes
stale). The reason is in ``status`` and logged whenever it changes.
Depth images must carry ``camera_frame_id`` (the calibration's ``child_frame`` when
``extrinsics_file`` is set: perception.extrinsics); others are rejected with ``frame_mismatch``.
Parameters: ``config/cube_pose_estimator.yaml`` (``source.*``, ``estimator.*``, ``frame_id``,
``extrinsics_file``, ``camera_frame_id``); ``estimator.min_fitness`` and ``estimator.max_rmse_m`` are
live (from the next frame on). ``/diagnostics``: fit rate over the last 2 s, fitness, rejections
by reason, age of the last valid estimate.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from imgen_msgs.msg import ObjectPoseEstimate, RobotState
from imgen_ros.core import diagnostics as diag
from imgen_ros.core import topics
from imgen_ros.nodes._ros import (
    attach_diagnostics,
    declare_config,
    now_s,
    pose_from_msg,
    pose_to_msg,
    qos,
    run,
    to_sec,
    to_stamp,
)
from imgen_ros.perception.depth import DepthImageError, decode_image_msg
from imgen_ros.perception.estimator import CubePoseEstimator, PoseEstimate, Reason
from imgen_ros.perception.gripper_filter import GripperState, GripperStateBuffer
from imgen_ros.perception.intrinsics import CameraInfoError, PinholeIntrinsics
from imgen_ros.perception.sources import FrameSourceError
from imgen_ros.perception.stream import CubePoseNodeConfig, open_pyrealsense_source

FIT_HISTORY = 600   # published estimates kept for the fit rate (> 2 s at 90 fps)


class CubePoseEstimatorNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("cube_pose_estimator", **kwargs)
        self.config = declare_config(self, CubePoseNodeConfig, on_change=self._reconfigure).with_extrinsics()
        self.estimator = CubePoseEstimator(self.config.estimator)
        self.pub = self.create_publisher(ObjectPoseEstimate, topics.OBJECT_POSE, qos(topics.OBJECT_POSE))
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._latest: tuple[Image, CameraInfo | None] | None = None
        self._info: CameraInfo | None = None
        self.last_reason: str | None = None
        self.frames = 0
        self.fits: deque[diag.FitSample] = deque(maxlen=FIT_HISTORY)
        self.last_valid_t: float | None = None
        self.gripper = GripperStateBuffer(self.config.estimator.gripper_filter.max_state_offset_s)
        self.create_subscription(RobotState, topics.ROBOT_STATE, self._on_robot_state, qos(topics.ROBOT_STATE))
        source = self.config.source
        if source.kind == "ros":
            self.create_subscription(Image, topics.DEPTH_IMAGE, self._on_image, qos(topics.DEPTH_IMAGE))
            self.create_subscription(CameraInfo, topics.DEPTH_INFO, self._on_info, qos(topics.DEPTH_INFO))
            target = self._ros_worker
        else:
            target = self._pyrealsense_worker
        self._worker = threading.Thread(target=target, name="cube_pose_worker", daemon=True)
        self._worker.start()
        attach_diagnostics(self, self._diagnostics, "d415 recording" if source.kind == "recording" else "d415")
        self.get_logger().info(f"estimating '{self.config.estimator.object_id}' from source '{source.kind}'")

    # ---------------------------------------------------------------- live parameters, diagnostics
    def _reconfigure(self, config: CubePoseNodeConfig) -> None:
        """Live thresholds (estimator.min_fitness / max_rmse_m): the estimator reads them per frame.
        ``config`` was derived from the running one, so the extrinsics stay applied."""
        self.config = config
        self.estimator.config = config.estimator

    def _diagnostics(self) -> list[diag.Status]:
        with self._lock:
            samples = list(self.fits)
            last_valid = self.last_valid_t
        status = diag.estimator_status(samples, now_s(self), last_valid)
        cfg = self.estimator.config
        return [diag.Status(status.aspect, status.level, status.message,
                            {**status.values, "min_fitness": f"{cfg.min_fitness:g}",
                             "max_rmse_m": f"{cfg.max_rmse_m:g}", "frames_total": str(self.frames)})]

    def _on_robot_state(self, msg: RobotState) -> None:
        try:
            tcp = pose_from_msg(msg.tcp_pose)
        except ValueError:   # a zero quaternion; NaN poses the buffer drops itself
            return
        self.gripper.add(GripperState(tcp, float(msg.gripper_width), to_sec(msg.header.stamp)))

    # ---------------------------------------------------------------- ROS images
    def _on_info(self, msg: CameraInfo) -> None:
        with self._lock:
            self._info = msg

    def _on_image(self, msg: Image) -> None:
        with self._lock:
            self._latest = (msg, self._info)
        self._wake.set()

    def _ros_worker(self) -> None:
        while not self._stop.is_set():
            if not self._wake.wait(timeout=0.2):
                continue
            self._wake.clear()
            with self._lock:
                latest, self._latest = self._latest, None
            if latest is None:
                continue
            try:
                self._process_ros(*latest)
            except Exception as err:  # keep estimating: one bad frame must not kill the worker
                self.get_logger().error(f"frame processing failed: {type(err).__name__}: {err}")

    def _process_ros(self, image: Image, info: CameraInfo | None) -> None:
        stamp = to_sec(image.header.stamp)
        expected = self.config.camera_frame_id
        if image.header.frame_id != expected:
            self._publish(self._invalid(Reason.FRAME_MISMATCH, f"depth image in frame '{image.header.frame_id}', "
                                        f"the extrinsics are for '{expected}'", stamp))
            return
        if info is None:
            self._publish(self._invalid(Reason.CAMERA_INFO_INVALID, f"no camera_info on '{topics.DEPTH_INFO}' yet",
                                        stamp))
            return
        try:
            intrinsics = PinholeIntrinsics.from_camera_info(info)
        except CameraInfoError as err:
            self._publish(self._invalid(Reason.CAMERA_INFO_INVALID, str(err), stamp))
            return
        try:
            depth = decode_image_msg(image, self.config.source.depth_scale)
        except DepthImageError as err:
            self._publish(self._invalid(Reason.CAMERA_INFO_MISMATCH, f"depth image unreadable: {err}", stamp))
            return
        self._publish(self.estimator.estimate(depth, intrinsics, stamp, gripper=self.gripper.at(stamp)))

    # ---------------------------------------------------------------- pyrealsense2
    def _pyrealsense_worker(self) -> None:
        cfg = self.config.source
        try:
            while not self._stop.is_set():
                with open_pyrealsense_source(cfg) as source:
                    first: tuple[float, float] | None = None
                    for frame in source:
                        if self._stop.is_set():
                            return
                        if cfg.kind == "recording":  # pace playback by the recorded timestamps
                            now = time.monotonic()
                            first = first or (frame.stamp_s, now)
                            delay = (frame.stamp_s - first[0]) - (now - first[1])
                            if delay > 0:
                                time.sleep(delay)
                        # a recording's stamps are from when it was made: publish it as happening now
                        now_s = self.get_clock().now().nanoseconds * 1e-9
                        gripper = self.gripper.at(frame.stamp_s) if cfg.kind == "realsense" else None
                        self._publish(self.estimator.estimate(frame.depth_m, frame.intrinsics, frame.stamp_s,
                                                              gripper=gripper),
                                      stamp_s=now_s if cfg.kind == "recording" else None)
                if not (cfg.kind == "recording" and cfg.loop_recording):
                    self.get_logger().info("recording finished")
                    return
                self.estimator.reset()
        except FrameSourceError as err:
            self.get_logger().error(str(err))

    # ---------------------------------------------------------------- output
    def _invalid(self, reason: Reason, detail: str, stamp: float) -> PoseEstimate:
        return PoseEstimate(pose=np.full((4, 4), np.nan), valid=False, reason=reason, detail=detail, stamp_s=stamp)

    def _publish(self, est: PoseEstimate, stamp_s: float | None = None) -> None:
        msg = ObjectPoseEstimate()
        msg.header.stamp = to_stamp(est.stamp_s if stamp_s is None else stamp_s)
        msg.header.frame_id = self.config.frame_id
        msg.object_id = self.config.estimator.object_id
        pose = est.pose if np.all(np.isfinite(est.pose)) else np.eye(4)
        msg.pose = pose_to_msg(pose)
        msg.fit_rmse = float(est.rmse)  # inf when no fit was made
        msg.fitness = float(est.fitness)
        msg.valid = bool(est.valid)
        msg.status = est.reason_text
        self.pub.publish(msg)
        now = now_s(self)
        with self._lock:
            self.frames += 1
            self.fits.append(diag.FitSample(now, bool(est.valid), est.reason.value, float(est.fitness)))
            if est.valid:
                self.last_valid_t = now
        if est.reason.value != self.last_reason:
            self.last_reason = est.reason.value
            if est.valid:
                self.get_logger().info(f"estimate valid (fitness {est.fitness:.2f}, rmse {est.rmse * 1e3:.2f} mm)")
            else:
                self.get_logger().warning(f"estimate invalid: {est.reason_text}")

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._worker.join(timeout=2.0)


def main(args: list[str] | None = None) -> None:
    run(CubePoseEstimatorNode, args)


if __name__ == "__main__":
    main()
