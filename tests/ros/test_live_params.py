"""Parameters that tell the truth, set over DDS through rclpy's parameter client: a live one takes
effect (observable behaviour), a read-only one is rejected with a reason, a live one outside its
range is rejected with the range in the reason (the arbiter's time-outs, the policy's noise mode,
the estimator's thresholds)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
from imgen_ros.core import topics
from imgen_ros.core.pose import pos_quat_from_pose
from imgen_ros.nodes._ros import qos
from imgen_ros.nodes.cube_pose_estimator import CubePoseEstimatorNode
from imgen_ros.perception.intrinsics import PinholeIntrinsics
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.parameter_client import AsyncParameterClient

from imgen_msgs.msg import ControlState, EpisodeEvent

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "perception"))
from d415_scene import build_scene
from fake_inputs import FakeInputs
from graph import node_cmd
from probe import Probe
from test_cube_pose_estimator_node import FakeCamera, Listener, extrinsics_overrides

SAFETY = {"safety.workspace_min": [0.2, -0.5, 0.0], "safety.workspace_max": [0.8, 0.5, 0.6],
          "safety.max_translation_m": 0.02, "safety.max_rotation_rad": 0.1, "safety.max_input_age_s": 0.1}


class Params:
    """Blocking calls of an AsyncParameterClient (the node it lives on is spun by ros_spin)."""

    def __init__(self, node: Node, remote: str, wait_until) -> None:
        self.client = AsyncParameterClient(node, remote)
        self.wait_until = wait_until
        wait_until(lambda: self.client.services_are_ready(), 60, f"parameter services of {remote}")

    def _result(self, future, what: str):
        self.wait_until(future.done, 10, what)
        return future.result()

    def set(self, name: str, value: object) -> SetParametersResult:
        response = self._result(self.client.set_parameters([Parameter(name, value=value)]), f"set {name}")
        return response.results[0]

    def get(self, name: str) -> object:
        value = parameter_value_to_python(self._result(self.client.get_parameters([name]), f"get {name}").values[0])
        return list(value) if not isinstance(value, bool | int | float | str) else value

    def describe(self, *names: str) -> list[ParameterDescriptor]:
        return list(self._result(self.client.describe_parameters(list(names)), "describe").descriptors)


def assert_read_only(params: Params, name: str, value: object) -> None:
    before = params.get(name)
    result = params.set(name, value)
    assert not result.successful and "read-only" in result.reason and name in result.reason, result.reason
    assert params.get(name) == before
    (descriptor,) = params.describe(name)
    assert descriptor.read_only and "restart the node" in descriptor.description


# ---------------------------------------------------------------- arbiter: time-outs
@pytest.fixture
def arbiter_graph(ros_context, ros_spin, node_process, wait_until):
    cmd = [sys.executable, "-m", "imgen_ros.nodes.intervention_arbiter", "--ros-args", "-p", "latch_faults:=false"]
    for name, value in SAFETY.items():
        cmd += ["-p", f"{name}:={value}"]
    arbiter = node_process(cmd, name="arbiter")
    inputs, probe = FakeInputs(ros_context), Probe(ros_context)
    ros_spin(inputs, probe)
    wait_until(lambda: probe.last(topics.CONTROL_STATE) is not None or not arbiter.alive(), 30, "arbiter up")
    assert arbiter.alive(), arbiter.errors()
    params = Params(probe, "/intervention_arbiter", wait_until)
    probe.start_episode("block_grasp")
    wait_until(lambda: probe.last(topics.CONTROL_STATE).mode == ControlState.MODE_POLICY, 15, "POLICY mode")
    return arbiter, probe, params


def test_arbiter_time_outs_are_live_the_safety_block_is_read_only(arbiter_graph, wait_until):
    arbiter, probe, params = arbiter_graph
    live, limit = params.describe("pose_timeout_s", "safety.max_translation_m")
    assert not live.read_only and "restart" not in live.description
    assert limit.read_only

    # live: a pose time-out below the pose stream's period (20 ms) makes the stream stale between messages
    t0 = time.monotonic()
    result = params.set("pose_timeout_s", 0.005)
    assert result.successful, result.reason
    assert params.get("pose_timeout_s") == 0.005

    def stale_pose_holds() -> int:
        return sum(r.msg.reason == "stale_pose" for r in probe.messages(topics.CONTROL_STATE, t0))

    wait_until(lambda: stale_pose_holds() >= 5, 10, "repeated stale_pose HOLDs under the 5 ms time-out")
    result = params.set("pose_timeout_s", 0.075)
    assert result.successful, result.reason
    t1 = time.monotonic()
    time.sleep(0.5)
    wait_until(lambda: probe.last(topics.CONTROL_STATE).mode == ControlState.MODE_POLICY, 5, "POLICY again")

    # read-only: rejected with a reason naming the parameter; the limit in force is unchanged
    assert_read_only(params, "safety.max_translation_m", 0.01)
    assert_read_only(params, "watchdog_rate_hz", 100.0)
    commands = [r.msg for r in probe.messages(topics.ROBOT_COMMAND, t1) if r.msg.translation.any()]
    assert commands and max(np.linalg.norm(m.translation) for m in commands) == pytest.approx(0.02)

    # out of range: rclpy's closed range [0, 1] and the open bound (0, 1) of the spec both say the range
    result = params.set("pose_timeout_s", 1.5)
    assert not result.successful and "Min: 0.0, Max: 1.0" in result.reason, result.reason
    result = params.set("pose_timeout_s", 0.0)
    assert not result.successful and "outside its range (0, 1)" in result.reason, result.reason
    result = params.set("valid_pose_timeout_s", 2.5)
    assert not result.successful and "Max: 2.0" in result.reason, result.reason
    assert params.get("pose_timeout_s") == 0.075
    assert arbiter.alive(), arbiter.errors()


# ---------------------------------------------------------------- policy: noise mode at the next START
def test_policy_noise_mode_takes_effect_at_the_next_episode(ros_context, ros_spin, node_process, wait_until):
    policy = node_process(node_cmd("policy_node", "policy.yaml"), name="policy")
    probe = Probe(ros_context)
    events = probe.create_publisher(EpisodeEvent, topics.EPISODE_EVENTS, qos(topics.EPISODE_EVENTS))
    ros_spin(probe)
    params = Params(probe, "/policy_node", wait_until)
    assert policy.alive(), policy.errors()

    def start(episode: int):
        msg = EpisodeEvent(episode_id=episode, task="block_grasp", event=EpisodeEvent.EVENT_START, reason="test")
        msg.header.stamp = probe.get_clock().now().to_msg()
        events.publish(msg)
        wait_until(lambda: any(r.msg.episode_id == episode for r in probe.messages(topics.POSE_ERROR)), 15,
                   f"policy/pose_error of episode {episode}")
        return next(r.msg for r in probe.messages(topics.POSE_ERROR) if r.msg.episode_id == episode)

    first = start(1)
    assert first.mode == "off" and not any(o.y for o in first.offsets)
    (descriptor,) = params.describe("observation.noise.mode")
    assert not descriptor.read_only and "next episode START" in descriptor.description
    result = params.set("observation.noise.mode", "episode_offset")
    assert result.successful, result.reason
    second = start(2)
    assert second.mode == "episode_offset" and abs(second.offsets[0].y) >= 0.025   # block grasp: |dy| >= 2.5 cm
    assert second.seed == 2                                                        # seed + episode id

    result = params.set("observation.noise.mode", "sometimes")
    assert not result.successful and "one of off, episode_offset, gaussian, task" in result.reason, result.reason
    assert params.get("observation.noise.mode") == "episode_offset"
    assert_read_only(params, "observation.noise.seed", 5)
    assert_read_only(params, "rate_hz", 50.0)
    assert policy.alive(), policy.errors()


# ---------------------------------------------------------------- estimator: fit thresholds from the next frame
@pytest.fixture
def scene():
    scene = build_scene(noise=True)
    yield scene
    scene.camera.close()


def test_estimator_thresholds_are_live(ros_context, ros_spin, wait_until, scene):
    scene.place_cube(0.52, 0.08, 0.3)
    frame = scene.capture()
    info = PinholeIntrinsics.from_any(frame.info)
    node = CubePoseEstimatorNode(context=ros_context, parameter_overrides=extrinsics_overrides(frame.base_from_optical))
    camera, listener = FakeCamera(ros_context), Listener(ros_context)
    client = Node("param_client", context=ros_context)
    ros_spin(node, camera, listener, client)
    params = Params(client, "/cube_pose_estimator", wait_until)
    wait_until(lambda: camera.image_pub.get_subscription_count() > 0 and node.pub.get_subscription_count() > 0, 15,
               "discovery")
    camera.publish_info(info)
    wait_until(lambda: node._info is not None, 10, "camera_info at the node")

    def estimate():
        count = len(listener.received)
        camera.publish_image(frame.depth_m)
        wait_until(lambda: len(listener.received) > count, 10, "an estimate")
        return listener.received[-1]

    assert estimate().valid
    result = params.set("estimator.max_rmse_m", 1e-5)
    assert result.successful, result.reason
    rejected = estimate()
    assert not rejected.valid and rejected.status.startswith("high_rmse"), rejected.status
    assert params.set("estimator.max_rmse_m", 0.003).successful
    assert estimate().valid

    result = params.set("estimator.min_fitness", 1.5)
    assert not result.successful and "Max: 1.0" in result.reason, result.reason
    result = params.set("estimator.max_rmse_m", 0.0)
    assert not result.successful and "outside its range (0, 0.02]" in result.reason, result.reason
    assert params.get("estimator.max_rmse_m") == 0.003
    assert_read_only(params, "estimator.cube_size_m", 0.04)
    assert_read_only(params, "source.kind", "recording")
    # the node kept its calibration through the live changes (with_values starts from the running config)
    position, _ = pos_quat_from_pose(frame.base_from_optical)
    assert np.allclose(node.estimator.config.camera_position, position)
    node.close()
