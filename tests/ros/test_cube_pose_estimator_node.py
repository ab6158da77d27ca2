"""cube_pose_estimator over DDS: realsense-ros-shaped depth + camera_info from the simulated D415 in,
ObjectPoseEstimate out; bad inputs give invalid (never NaN) estimates; a RealSense recording source."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from imgen_ros.core import topics
from imgen_ros.core.pose import pos_quat_from_pose
from imgen_ros.nodes._ros import pose_from_msg, pose_to_msg, qos, to_sec
from imgen_ros.nodes.cube_pose_estimator import CubePoseEstimatorNode
from imgen_ros.perception.intrinsics import PinholeIntrinsics
from imgen_ros.perception.sources import write_realsense_recording
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image

from imgen_msgs.msg import ObjectPoseEstimate, RobotState

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "perception"))
from d415_scene import build_scene, grasp_frame


def extrinsics_overrides(camera_pose: np.ndarray, **extra: object) -> list[Parameter]:
    pos, quat = pos_quat_from_pose(camera_pose)
    params = [Parameter("estimator.camera_position", value=pos.tolist()),
              Parameter("estimator.camera_quat_xyzw", value=quat.tolist())]
    return params + [Parameter(k, value=v) for k, v in extra.items()]


class FakeCamera(Node):
    """Publishes depth (16UC1 mm or 32FC1 m) and camera_info like realsense-ros."""

    def __init__(self, context) -> None:
        super().__init__("fake_d415", context=context)
        self.image_pub = self.create_publisher(Image, topics.DEPTH_IMAGE, qos(topics.DEPTH_IMAGE))
        self.info_pub = self.create_publisher(CameraInfo, topics.DEPTH_INFO, qos(topics.DEPTH_INFO))

    def publish_info(self, info: PinholeIntrinsics) -> None:
        ci = CameraInfo()
        ci.header.stamp, ci.header.frame_id = self.get_clock().now().to_msg(), topics.DEPTH_FRAME
        ci.width, ci.height, ci.distortion_model = info.width, info.height, "plumb_bob"
        ci.d = [0.0] * 5
        ci.k = info.matrix.ravel().tolist()
        self.info_pub.publish(ci)

    def publish_image(self, depth_m: np.ndarray, encoding: str = "16UC1", frame_id: str = topics.DEPTH_FRAME) -> None:
        stamp = self.get_clock().now().to_msg()
        img = Image()
        img.header.stamp, img.header.frame_id = stamp, frame_id
        img.height, img.width, img.encoding, img.is_bigendian = depth_m.shape[0], depth_m.shape[1], encoding, 0
        if encoding == "16UC1":
            data = np.clip(np.round(np.nan_to_num(depth_m) * 1000.0), 0, 65535).astype("<u2")
        else:
            data = depth_m.astype("<f4")
        img.step = depth_m.shape[1] * data.itemsize
        img.data = data.tobytes()
        self.image_pub.publish(img)


class Listener(Node):
    def __init__(self, context) -> None:
        super().__init__("pose_listener", context=context)
        self.received: list[ObjectPoseEstimate] = []
        self.create_subscription(ObjectPoseEstimate, topics.OBJECT_POSE, self.received.append, qos(topics.OBJECT_POSE))


@pytest.fixture
def scene():
    scene = build_scene(noise=True)
    yield scene
    scene.camera.close()


def test_estimates_from_ros_depth_and_rejects_bad_frames(ros_context, ros_spin, wait_until, scene):
    truth = scene.place_cube(0.52, 0.08, 0.3)
    frame = scene.capture()
    info = PinholeIntrinsics.from_any(frame.info)
    node = CubePoseEstimatorNode(context=ros_context,
                                 parameter_overrides=extrinsics_overrides(frame.base_from_optical))
    camera, listener = FakeCamera(ros_context), Listener(ros_context)
    ros_spin(node, camera, listener)
    wait_until(lambda: camera.image_pub.get_subscription_count() > 0
               and node.pub.get_subscription_count() > 0, 15, "discovery")

    def send(depth: np.ndarray, intr: PinholeIntrinsics = info, encoding: str = "16UC1",
             frame_id: str = topics.DEPTH_FRAME) -> ObjectPoseEstimate:
        """camera_info first (realsense-ros sends it with every image; here we wait until it is in),
        then the image; returns the estimate it produced."""
        camera.publish_info(intr)
        wait_until(lambda: node._info is not None and node._info.width == intr.width, 10, "camera_info at the node")
        count = len(listener.received)
        camera.publish_image(depth, encoding, frame_id)
        wait_until(lambda: len(listener.received) > count, 10, "an estimate")
        return listener.received[-1]

    good = send(frame.depth_m)
    assert good.valid, "no valid estimate"
    assert good.header.frame_id == topics.BASE_FRAME and good.object_id == "cube"
    assert np.linalg.norm(pose_from_msg(good.pose)[:3, 3] - truth[:3, 3]) < 0.005
    assert good.fitness > 0.9 and 0 < good.fit_rmse < 0.003 and good.status == "ok"

    metres = send(frame.depth_m, encoding="32FC1")
    assert metres.valid

    # a good image from another camera frame: the extrinsics do not apply to it
    other = send(frame.depth_m, frame_id="camera_color_optical_frame")
    assert not other.valid and node.last_reason == "frame_mismatch"
    assert "'camera_color_optical_frame'" in other.status

    for bad_depth, bad_info, reason in (
            (np.full_like(frame.depth_m, np.nan), info, "nonfinite_depth"),
            (frame.depth_m, PinholeIntrinsics(320, 240, 300, 300, 160, 120), "camera_info_mismatch"),
            (np.zeros_like(frame.depth_m), info, "no_valid_depth")):
        est = send(bad_depth, bad_info, encoding="32FC1")
        assert not est.valid
        assert node.last_reason == reason and est.status.startswith(reason)
        p = est.pose
        assert np.all(np.isfinite([p.position.x, p.position.y, p.position.z, p.orientation.w]))
    node.close()


def test_the_hand_at_the_frame_time_is_filtered_out_of_the_depth(ros_context, ros_spin, wait_until):
    """robot_state -> the estimator's gripper filter: the cube between closed fingers is found once the
    node has the hand's state stamped near the frame, and not without it."""
    cube, frame, hand = grasp_frame()
    info = PinholeIntrinsics.from_any(frame.info)
    node = CubePoseEstimatorNode(context=ros_context,
                                 parameter_overrides=extrinsics_overrides(frame.base_from_optical))
    camera, listener = FakeCamera(ros_context), Listener(ros_context)
    robot = camera.create_publisher(RobotState, topics.ROBOT_STATE, qos(topics.ROBOT_STATE))
    ros_spin(node, camera, listener)
    wait_until(lambda: camera.image_pub.get_subscription_count() > 0 and robot.get_subscription_count() > 0
               and node.pub.get_subscription_count() > 0, 15, "discovery")
    camera.publish_info(info)
    wait_until(lambda: node._info is not None, 10, "camera_info at the node")

    def send() -> ObjectPoseEstimate:
        count = len(listener.received)
        camera.publish_image(frame.depth_m)
        wait_until(lambda: len(listener.received) > count, 10, "an estimate")
        return listener.received[-1]

    assert not send().valid and node.last_reason == "too_few_points"   # no robot state: the fingers stay
    state = RobotState()
    state.header.stamp, state.header.frame_id = camera.get_clock().now().to_msg(), topics.BASE_FRAME
    state.tcp_pose = pose_to_msg(hand.tcp_pose)
    state.gripper_width = hand.width_m
    robot.publish(state)
    stamp = to_sec(state.header.stamp)
    wait_until(lambda: node.gripper.at(stamp) is not None, 10, "the robot state at the node")
    found = send()
    assert found.valid, found.status
    assert np.linalg.norm(pose_from_msg(found.pose)[:3, 3] - cube[:3, 3]) < 0.006
    node.close()


def test_recording_source_publishes_estimates(ros_context, ros_spin, wait_until, scene, tmp_path):
    truth = scene.place_cube(0.6, -0.1, -0.4)
    frames = [scene.capture() for _ in range(10)]
    path = tmp_path / "d415.db3"
    write_realsense_recording(path, [f.depth_m for f in frames], PinholeIntrinsics.from_any(frames[0].info))
    listener = Listener(ros_context)
    ros_spin(listener)
    node = CubePoseEstimatorNode(context=ros_context, parameter_overrides=extrinsics_overrides(
        frames[0].base_from_optical, **{"source.kind": "recording", "source.recording_path": str(path)}))
    ros_spin(node)
    wait_until(lambda: node.frames == 10, 20, "all recorded frames processed")
    wait_until(lambda: len(listener.received) >= 5, 10, "estimates over DDS")
    valid = [m for m in listener.received if m.valid]
    assert valid
    for m in valid:
        assert np.linalg.norm(pose_from_msg(m.pose)[:3, 3] - truth[:3, 3]) < 0.005
    node.close()
