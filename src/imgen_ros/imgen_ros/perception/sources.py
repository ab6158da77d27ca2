"""Depth frame sources: a live RealSense (pyrealsense2), a RealSense recording (.bag/.db3), a rosbag2 of
realsense-ros topics; and a writer producing RealSense recordings without hardware (tests, sim logs).

Every source yields ``DepthImage`` (metres, float32, 0 = invalid) with its intrinsics and a stamp.
"""

from __future__ import annotations

import queue
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from imgen_ros.perception.depth import decode_image_msg
from imgen_ros.perception.intrinsics import PinholeIntrinsics


class FrameSourceError(RuntimeError):
    """A frame source cannot be opened or read."""


@dataclass(frozen=True)
class DepthImage:
    depth_m: NDArray[np.float32]
    intrinsics: PinholeIntrinsics
    stamp_s: float
    frame_number: int = 0


def _rs():
    try:
        import pyrealsense2 as rs
    except ImportError as err:  # pragma: no cover - pinned in requirements
        raise FrameSourceError("pyrealsense2 is not installed (pip install pyrealsense2)") from err
    return rs


def _intrinsics_from_rs(rs_intrinsics: object) -> PinholeIntrinsics:
    coeffs = np.asarray(rs_intrinsics.coeffs, dtype=float)
    if np.any(np.abs(coeffs) > 1e-9):
        raise FrameSourceError(f"depth stream has distortion {coeffs.tolist()}; expected rectified depth")
    return PinholeIntrinsics.from_any(rs_intrinsics)


class _PipelineSource:
    """Shared reading loop over a started pyrealsense2 pipeline."""

    def __init__(self, pipeline: object, profile: object, timeout_ms: int) -> None:
        rs = _rs()
        self._pipeline = pipeline
        self.depth_scale = float(profile.get_device().first_depth_sensor().get_depth_scale())
        stream = profile.get_stream(rs.stream.depth).as_video_stream_profile()
        self.intrinsics = _intrinsics_from_rs(stream.get_intrinsics())
        self._timeout_ms = timeout_ms

    def _read(self) -> DepthImage | None:
        ok, frames = self._pipeline.try_wait_for_frames(self._timeout_ms)
        if not ok:
            return None
        depth = frames.get_depth_frame()
        raw = np.asanyarray(depth.get_data())
        return DepthImage(depth_m=raw.astype(np.float32) * np.float32(self.depth_scale), intrinsics=self.intrinsics,
                          stamp_s=float(depth.get_timestamp()) / 1000.0, frame_number=int(depth.get_frame_number()))

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.stop()
            self._pipeline = None

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RealSenseRecordingSource:
    """Plays a RealSense recording (.bag or .db3) frame by frame, as fast as it is read.

    The playback device is driven directly (not through rs.pipeline, whose queue drops frames in
    non-real-time playback): a blocking frame callback holds the player back until the reader
    has taken the previous frames, so every recorded frame is delivered, in order."""

    def __init__(self, path: str | Path, timeout_s: float = 5.0) -> None:
        rs = _rs()
        self.path = Path(path)
        if not self.path.is_file():
            raise FrameSourceError(f"RealSense recording not found: {self.path}")
        try:
            device = rs.context().load_device(str(self.path))
        except RuntimeError as err:
            raise FrameSourceError(f"cannot open RealSense recording {self.path}: {err}") from err
        self._playback = device.as_playback()
        self._playback.set_real_time(False)
        try:
            sensor = device.first_depth_sensor()
        except RuntimeError as err:
            raise FrameSourceError(f"{self.path} has no depth stream: {err}") from err
        profiles = [p for p in sensor.get_stream_profiles() if p.stream_type() == rs.stream.depth]
        if not profiles:
            raise FrameSourceError(f"{self.path} has no depth stream")
        self.depth_scale = float(sensor.get_depth_scale())
        self.intrinsics = _intrinsics_from_rs(profiles[0].as_video_stream_profile().get_intrinsics())
        self._stopped_status = rs.playback_status.stopped
        self._queue: queue.Queue[DepthImage] = queue.Queue(maxsize=4)
        self._timeout_s = timeout_s
        self._sensor = sensor
        self._open = True
        sensor.open(profiles[0])
        sensor.start(self._on_frame)

    def _on_frame(self, frame: object) -> None:
        depth = frame.as_depth_frame()
        raw = np.asanyarray(depth.get_data())
        image = DepthImage(depth_m=raw.astype(np.float32) * np.float32(self.depth_scale), intrinsics=self.intrinsics,
                           stamp_s=float(depth.get_timestamp()) / 1000.0, frame_number=int(depth.get_frame_number()))
        while self._open:  # block the player (back-pressure) until the reader takes it, or drop once closed
            try:
                self._queue.put(image, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[DepthImage]:
        idle = 0.0
        while self._open:
            try:
                yield self._queue.get(timeout=0.05)
                idle = 0.0
            except queue.Empty:
                if self._playback.current_status() == self._stopped_status and self._queue.empty():
                    return  # end of the recording
                idle += 0.05
                if idle > self._timeout_s:
                    raise FrameSourceError(f"{self.path}: no frame for {self._timeout_s} s") from None

    def close(self) -> None:
        if self._open:
            self._open = False  # a callback waiting to put gives up within 0.1 s
            try:
                self._sensor.stop()
            except RuntimeError:
                pass  # already stopped at the end of the recording
            self._sensor.close()

    def __enter__(self) -> RealSenseRecordingSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RealSenseLiveSource(_PipelineSource):
    """A live RealSense depth stream (Z16); ``serial`` picks one camera when several are connected."""

    def __init__(self, serial: str = "", width: int = 640, height: int = 480, fps: int = 30,
                 timeout_ms: int = 1000) -> None:
        rs = _rs()
        if not rs.context().query_devices().size():
            raise FrameSourceError("no RealSense device connected (check the USB 3 cable and udev rules, "
                                   "or play a recording with RealSenseRecordingSource)")
        pipeline = rs.pipeline()
        config = rs.config()
        if serial:
            config.enable_device(serial)
        config.enable_stream(rs.stream.depth, width, height, rs.format.z16, fps)
        try:
            profile = pipeline.start(config)
        except RuntimeError as err:
            raise FrameSourceError(f"cannot start RealSense depth {width}x{height}@{fps} "
                                   f"(serial '{serial or 'any'}'): {err}") from err
        super().__init__(pipeline, profile, timeout_ms)

    def __iter__(self) -> Iterator[DepthImage]:
        while self._pipeline is not None:
            frame = self._read()
            if frame is None:
                raise FrameSourceError(f"no depth frame from the RealSense within {self._timeout_ms} ms")
            yield frame


def write_realsense_recording(path: str | Path, depths_m: Iterable[NDArray], intrinsics: PinholeIntrinsics,
                              fps: int = 30, depth_unit_m: float = 0.001, stamps_s: Iterable[float] | None = None,
                              device_name: str = "imgen simulated D415") -> int:
    """Write depth images (metres) as a RealSense recording playable by ``RealSenseRecordingSource`` and
    the RealSense tools (a pyrealsense2 software device wrapped in a recorder; no hardware). The
    format follows the suffix (.db3 with librealsense >= 2.57, .bag before). Returns the frame count."""
    rs = _rs()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    device = rs.software_device()
    device.register_info(rs.camera_info.name, device_name)
    device.register_info(rs.camera_info.serial_number, "0")
    sensor = device.add_sensor("Depth")
    rs_intr = rs.intrinsics()
    rs_intr.width, rs_intr.height = intrinsics.width, intrinsics.height
    rs_intr.fx, rs_intr.fy, rs_intr.ppx, rs_intr.ppy = intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy
    rs_intr.model = rs.distortion.none
    rs_intr.coeffs = [0.0] * 5
    stream = rs.video_stream()
    stream.type, stream.index, stream.uid = rs.stream.depth, 0, 0
    stream.width, stream.height, stream.fps, stream.bpp = intrinsics.width, intrinsics.height, fps, 2
    stream.fmt, stream.intrinsics = rs.format.z16, rs_intr
    profile = sensor.add_video_stream(stream)
    sensor.add_read_only_option(rs.option.depth_units, depth_unit_m)
    recorder = rs.recorder(str(path), device)
    queue = rs.frame_queue(4)
    sensor.open(profile)
    sensor.start(queue)
    count = 0
    stamps = iter(stamps_s) if stamps_s is not None else None
    try:
        for depth in depths_m:
            image = np.asarray(depth, dtype=np.float64)
            intrinsics.check_image(image.shape)
            z16 = np.clip(np.round(np.nan_to_num(image, nan=0.0, posinf=0.0) / depth_unit_m), 0, 65535)
            frame = rs.software_video_frame()
            frame.pixels = np.ascontiguousarray(z16.astype(np.uint16))
            frame.bpp, frame.stride = 2, intrinsics.width * 2
            stamp = next(stamps) if stamps is not None else count / fps
            frame.timestamp, frame.domain = stamp * 1000.0, rs.timestamp_domain.system_time
            frame.frame_number, frame.depth_units = count, depth_unit_m
            frame.profile = profile.as_video_stream_profile()
            sensor.on_video_frame(frame)
            queue.wait_for_frame(5000)  # the recorder has written it once it is delivered
            count += 1
    finally:
        sensor.stop()
        sensor.close()
        del recorder  # flushes and closes the file
    return count


class RosbagDepthSource:
    """realsense-ros depth images (16UC1 mm or 32FC1 m) from a rosbag2 (sqlite3 or MCAP, via rosbags),
    each paired with the latest camera_info received before it."""

    def __init__(self, path: str | Path, depth_topic: str, info_topic: str, depth_scale: float = 0.001) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FrameSourceError(f"rosbag2 not found: {self.path}")
        self.depth_topic, self.info_topic, self.depth_scale = depth_topic, info_topic, depth_scale

    def __iter__(self) -> Iterator[DepthImage]:
        from rosbags.highlevel import AnyReader

        with AnyReader([self.path]) as reader:
            topics = {c.topic for c in reader.connections}
            missing = {self.depth_topic, self.info_topic} - topics
            if missing:
                raise FrameSourceError(f"{self.path}: topics {sorted(missing)} not in the bag (has {sorted(topics)})")
            wanted = [c for c in reader.connections if c.topic in (self.depth_topic, self.info_topic)]
            intrinsics = None
            for number, (connection, _, raw) in enumerate(reader.messages(connections=wanted)):
                msg = reader.deserialize(raw, connection.msgtype)
                if connection.topic == self.info_topic:
                    intrinsics = PinholeIntrinsics.from_camera_info(msg)
                    continue
                if intrinsics is None:
                    continue  # no camera_info yet: the image cannot be interpreted
                stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
                yield DepthImage(depth_m=decode_image_msg(msg, self.depth_scale), intrinsics=intrinsics,
                                 stamp_s=stamp, frame_number=number)
