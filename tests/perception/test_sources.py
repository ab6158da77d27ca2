"""RealSense recordings written without hardware play back through pyrealsense2; rosbag2 depth topics."""

from __future__ import annotations

import numpy as np
import pytest
from imgen_ros.perception.estimator import CubePoseEstimator
from imgen_ros.perception.intrinsics import PinholeIntrinsics
from imgen_ros.perception.sources import (
    FrameSourceError,
    RealSenseLiveSource,
    RealSenseRecordingSource,
    RosbagDepthSource,
    write_realsense_recording,
)


def test_recording_round_trip_preserves_depth_intrinsics_and_stamps(tmp_path):
    intr = PinholeIntrinsics(64, 48, 60.0, 61.0, 31.5, 23.5)
    rng = np.random.default_rng(0)
    depths = [rng.uniform(0.3, 1.5, (48, 64)).astype(np.float32) for _ in range(4)]
    path = tmp_path / "scene.db3"
    assert write_realsense_recording(path, depths, intr, stamps_s=[0.0, 0.1, 0.2, 0.3]) == 4
    with RealSenseRecordingSource(path) as source:
        assert source.depth_scale == pytest.approx(0.001)
        frames = list(source)
    assert [f.frame_number for f in frames] == [0, 1, 2, 3]
    assert [f.stamp_s for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert frames[0].intrinsics == intr
    for frame, depth in zip(frames, depths, strict=True):
        np.testing.assert_allclose(frame.depth_m, depth, atol=0.0006)  # 1 mm quantization


def test_estimator_on_a_recorded_d415_stream(tmp_path, noisy_scene):
    """Simulated D415 -> .db3 recording -> pyrealsense2 playback -> ICP."""
    truth = noisy_scene.place_cube(0.55, 0.1, 0.4)
    frames = [noisy_scene.capture() for _ in range(3)]
    intr = PinholeIntrinsics.from_any(frames[0].info)
    path = tmp_path / "d415.db3"
    write_realsense_recording(path, [f.depth_m for f in frames], intr)
    estimator = CubePoseEstimator(noisy_scene.estimator_config())
    with RealSenseRecordingSource(path) as source:
        results = [estimator.estimate(f.depth_m, f.intrinsics, f.stamp_s) for f in source]
    assert len(results) == 3 and all(r.valid for r in results), [r.reason_text for r in results]
    assert all(np.linalg.norm(r.pose[:3, 3] - truth[:3, 3]) < 0.005 for r in results)


def test_missing_recording_and_camera_are_clear_errors(tmp_path):
    with pytest.raises(FrameSourceError, match="recording not found"):
        RealSenseRecordingSource(tmp_path / "nope.db3")
    with pytest.raises(FrameSourceError, match="no RealSense device connected"):
        RealSenseLiveSource()


def test_rosbag_depth_source_pairs_images_with_camera_info(tmp_path):
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    Image = store.types["sensor_msgs/msg/Image"]
    CameraInfo = store.types["sensor_msgs/msg/CameraInfo"]
    Header = store.types["std_msgs/msg/Header"]
    Time = store.types["builtin_interfaces/msg/Time"]
    RoiT = store.types["sensor_msgs/msg/RegionOfInterest"]
    header = Header(stamp=Time(sec=5, nanosec=500_000_000), frame_id="camera_depth_optical_frame")
    k = np.array([60.0, 0, 31.5, 0, 61.0, 23.5, 0, 0, 1])
    info = CameraInfo(header=header, height=48, width=64, distortion_model="plumb_bob", d=np.zeros(5), k=k,
                      r=np.eye(3).ravel(), p=np.zeros(12), binning_x=0, binning_y=0,
                      roi=RoiT(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
    mm = np.full((48, 64), 750, dtype="<u2")
    image = Image(header=header, height=48, width=64, encoding="16UC1", is_bigendian=0, step=128,
                  data=mm.view(np.uint8).ravel())
    bag = tmp_path / "bag"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        c_img = writer.add_connection("/camera/depth", Image.__msgtype__, typestore=store)
        c_info = writer.add_connection("/camera/info", CameraInfo.__msgtype__, typestore=store)
        writer.write(c_img, 1, store.serialize_cdr(image, Image.__msgtype__))  # before any camera_info: skipped
        writer.write(c_info, 2, store.serialize_cdr(info, CameraInfo.__msgtype__))
        writer.write(c_img, 3, store.serialize_cdr(image, Image.__msgtype__))
    frames = list(RosbagDepthSource(bag, "/camera/depth", "/camera/info"))
    assert len(frames) == 1
    assert frames[0].stamp_s == pytest.approx(5.5)
    assert frames[0].intrinsics == PinholeIntrinsics(64, 48, 60.0, 61.0, 31.5, 23.5)
    np.testing.assert_allclose(frames[0].depth_m, 0.75, rtol=1e-6)
    with pytest.raises(FrameSourceError, match=r"topics \['/other'\] not in the bag"):
        list(RosbagDepthSource(bag, "/camera/depth", "/other"))


def test_closing_a_recording_mid_playback_returns_promptly(tmp_path):
    intr = PinholeIntrinsics(32, 24, 30.0, 30.0, 15.5, 11.5)
    path = tmp_path / "long.db3"
    write_realsense_recording(path, [np.full((24, 32), 0.5, np.float32)] * 40, intr)
    source = RealSenseRecordingSource(path)
    first = next(iter(source))
    assert first.frame_number == 0
    source.close()  # the player is blocked on a full queue: must not deadlock
    source.close()
