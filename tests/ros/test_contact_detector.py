"""contact_detector node: robot_state with a wrench step -> the pose estimate on object_pose/revealed
(as sim_node publishes it), a new force baseline and a closed channel at every START, no reveal from a
table touch or an unknown wrench; the installed node under a namespace with its parameter file."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from imgen_ros.core import topics
from imgen_ros.core.params import ConfigError
from imgen_ros.core.pose import make_pose, yaw_matrix
from imgen_ros.nodes._ros import pose_msg_arrays, pose_to_msg, qos
from rclpy.node import Node
from rclpy.parameter import Parameter

from imgen_msgs.msg import EpisodeEvent, ObjectPoseEstimate, RobotState

CONFIG = Path(__file__).resolve().parents[2] / "config" / "contact_detector.yaml"
BIAS = np.array([4.0, -4.0, 9.0])   # the estimate at rest: above the 10 N threshold unless zeroed
CUBE = make_pose([0.55, 0.03, 0.025], yaw_matrix(math.radians(20.0)))


class Rig(Node):
    """Plays robot_state (external wrench, TCP, gripper) and the cube estimate on demand, and records
    object_pose/revealed."""

    def __init__(self, context, namespace: str = "") -> None:
        super().__init__("contact_rig", context=context, namespace=namespace)
        self.state_pub = self.create_publisher(RobotState, topics.ROBOT_STATE, qos(topics.ROBOT_STATE))
        self.pose_pub = self.create_publisher(ObjectPoseEstimate, topics.OBJECT_POSE, qos(topics.OBJECT_POSE))
        self.event_pub = self.create_publisher(EpisodeEvent, topics.EPISODE_EVENTS, qos(topics.EPISODE_EVENTS))
        self.lock = threading.Lock()
        self.revealed: list[ObjectPoseEstimate] = []
        self.create_subscription(ObjectPoseEstimate, topics.OBJECT_REVEALED, self._store, qos(topics.OBJECT_REVEALED))

    def _store(self, msg: ObjectPoseEstimate) -> None:
        with self.lock:
            self.revealed.append(msg)

    def since(self, n: int) -> list[ObjectPoseEstimate]:
        with self.lock:
            return self.revealed[n:]

    def count(self) -> int:
        with self.lock:
            return len(self.revealed)

    def state(self, force=(0.0, 0.0, 0.0), tcp_z: float = 0.06, width: float = 0.08) -> None:
        msg = RobotState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = topics.BASE_FRAME
        msg.tcp_pose = pose_to_msg(make_pose([0.55, 0.07, tcp_z]))
        msg.gripper_width = width
        msg.external_wrench = [*(float(v) for v in BIAS + np.asarray(force, dtype=float)), 0.0, 0.0, 0.0]
        self.state_pub.publish(msg)

    def estimate(self, pose: np.ndarray, valid: bool = True) -> None:
        msg = ObjectPoseEstimate(object_id="cube", valid=valid, fitness=1.0, status="ok" if valid else "low_fitness")
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = topics.BASE_FRAME
        msg.pose = pose_to_msg(pose)
        self.pose_pub.publish(msg)

    def event(self, episode: int, event: int) -> None:
        self.event_pub.publish(EpisodeEvent(episode_id=episode, task="block_grasp", event=event))


def _valid(msgs: list[ObjectPoseEstimate]) -> list[ObjectPoseEstimate]:
    return [m for m in msgs if m.valid]


def test_a_wrench_step_reveals_the_estimate(ros_context, ros_spin, wait_until):
    from imgen_ros.nodes.contact_detector import ContactDetectorNode

    node = ContactDetectorNode(context=ros_context)
    rig = Rig(ros_context)
    ros_spin(node, rig)
    wait_until(lambda: rig.count() >= 3, 10, "object_pose/revealed before any episode")
    first = rig.since(0)[0]
    assert not first.valid and first.status == "not_revealed" and first.object_id == "cube"
    assert first.header.frame_id == topics.BASE_FRAME
    wait_until(lambda: rig.state_pub.get_subscription_count() > 0 and rig.pose_pub.get_subscription_count() > 0
               and rig.event_pub.get_subscription_count() > 0, 10, "the node's subscriptions")

    rig.event(1, EpisodeEvent.EVENT_START)
    wait_until(lambda: node.channel.active, 10, "START")
    detector = node.channel.detector

    def playing(done, **kwargs):
        """A predicate for wait_until that plays one robot-state sample (and estimate) per poll: the
        state topic is best effort, keep last 5, so a burst would be thinned."""
        def poll() -> bool:
            rig.state(**kwargs)
            rig.estimate(CUBE)
            return done()
        return poll

    # free space with a 10.6 N bias: zeroed by the baseline, no contact
    wait_until(playing(lambda: detector.baseline is not None and detector.force_n == pytest.approx(0.0, abs=1e-6)),
               10, "the free-space samples", interval=0.01)
    assert not detector.detected
    # the hand pressing on the table (TCP 1 cm up): a large force, but not an object contact
    seen = []
    wait_until(playing(lambda: (seen.append(detector.force_n == pytest.approx(40.0, abs=1e-6)), sum(seen) >= 10)[1],
                       force=(0.0, 0.0, -40.0), tcp_z=0.01), 10, "the table samples")
    assert not detector.detected
    # an unknown wrench never detects
    n_before = rig.count()

    def nan_state() -> None:
        msg = RobotState()
        msg.tcp_pose = pose_to_msg(make_pose([0.55, 0.07, 0.06]))
        msg.gripper_width = 0.08
        msg.external_wrench = [float("nan")] * 6
        rig.state_pub.publish(msg)

    nans = []
    wait_until(lambda: (nan_state(), nans.append(math.isnan(detector.force_n)), sum(nans) >= 10)[2], 10,
               "the NaN samples")
    assert not detector.detected and not _valid(rig.since(n_before))

    # a finger lands on the cube: the wrench steps by 30 N with the TCP at the cube's top
    n_before = rig.count()
    wait_until(playing(lambda: bool(_valid(rig.since(n_before))), force=(0.0, 0.0, -30.0)), 10, "the revealed pose")
    shown = _valid(rig.since(n_before))[0]
    position, quat = pose_msg_arrays(shown.pose)
    np.testing.assert_allclose(position, CUBE[:3, 3], atol=1e-9)
    np.testing.assert_allclose(quat, [0.0, 0.0, math.sin(math.radians(10.0)), math.cos(math.radians(10.0))],
                               atol=1e-9)
    assert shown.object_id == "cube" and shown.status == "ok" and detector.cue == "force"

    # later estimates do not move the revealed pose; the channel stays open after the force is gone
    n_before = rig.count()
    moved = make_pose([0.60, -0.05, 0.025])
    for _ in range(5):
        rig.state()
        rig.estimate(moved)
    wait_until(lambda: len(rig.since(n_before)) >= 5, 10, "more revealed messages")
    for msg in rig.since(n_before):
        assert msg.valid
        np.testing.assert_allclose(pose_msg_arrays(msg.pose)[0], CUBE[:3, 3], atol=1e-9)

    # the next episode starts closed, with a new baseline
    rig.event(1, EpisodeEvent.EVENT_SUCCESS)
    n_before = rig.count()
    rig.event(2, EpisodeEvent.EVENT_START)
    wait_until(lambda: any(not m.valid for m in rig.since(n_before)), 10, "the closed channel of episode 2")
    assert node.channel.revealed is None and not detector.detected and detector.baseline is None


def test_bad_thresholds_refuse_to_start(ros_context):
    from imgen_ros.nodes.contact_detector import ContactDetectorNode

    with pytest.raises(ConfigError, match="force_exit_n"):
        ContactDetectorNode(context=ros_context, parameter_overrides=[
            Parameter("detector.force_exit_n", value=20.0), Parameter("detector.force_enter_n", value=10.0)])


def test_installed_node_runs_under_a_namespace_with_its_file(ros_context, ros_spin, node_process, wait_until):
    proc = node_process(["contact_detector", "--ros-args", "-r", "__ns:=/fr3", "--params-file", str(CONFIG)],
                        name="contact_detector")
    rig = Rig(ros_context, namespace="/fr3")
    ros_spin(rig)
    wait_until(lambda: rig.count() >= 1 or not proc.alive(), 30, "object_pose/revealed from the process")
    assert proc.alive(), proc.errors()
    wait_until(lambda: rig.event_pub.get_subscription_count() > 0 and rig.state_pub.get_subscription_count() > 0,
               10, "the node's subscriptions")
    rig.event(7, EpisodeEvent.EVENT_START)
    n_before = rig.count()

    def pressed() -> bool:
        rig.state()   # baseline samples first, then the press: keep the stream going while waiting
        rig.estimate(CUBE)
        for _ in range(3):
            rig.state(force=(0.0, 0.0, -30.0) if rig.count() > n_before + 2 else (0.0, 0.0, 0.0))
        return bool(_valid(rig.since(n_before)))

    wait_until(pressed, 20, "the revealed pose from the namespaced process", interval=0.05)
    np.testing.assert_allclose(pose_msg_arrays(_valid(rig.since(n_before))[0].pose)[0], CUBE[:3, 3], atol=1e-9)
    assert "revealed 'cube'" in proc.errors() + proc.output()


def test_sim_node_wrench_reveals_the_cube_through_the_contact_node(ros_context, ros_spin, wait_until):
    """sim_node (publish_revealed: false) as the FR3: a finger pressed onto the cube shows in
    robot_state.external_wrench and the contact node reveals sim_node's cube estimate."""
    from imgen_ros.core.command import DeltaCommand, Source
    from imgen_ros.nodes._ros import command_to_msg, pose_from_msg
    from imgen_ros.nodes.contact_detector import ContactDetectorNode
    from imgen_ros.nodes.sim_node import SimNode

    from imgen_msgs.msg import DeltaPoseCommand

    sim = SimNode(context=ros_context, parameter_overrides=[
        Parameter("publish_revealed", value=False), Parameter("seed", value=3), Parameter("end_episodes", value=False),
        Parameter("simulated_human", value=False)])
    node = ContactDetectorNode(context=ros_context)
    rig = Rig(ros_context)
    states: list[RobotState] = []
    truth: list[ObjectPoseEstimate] = []
    rig.create_subscription(RobotState, topics.ROBOT_STATE, states.append, qos(topics.ROBOT_STATE))
    rig.create_subscription(ObjectPoseEstimate, topics.OBJECT_POSE_TRUE, truth.append, qos(topics.OBJECT_POSE_TRUE))
    commands = rig.create_publisher(DeltaPoseCommand, topics.ROBOT_COMMAND, qos(topics.ROBOT_COMMAND))
    ros_spin(sim, node, rig)
    wait_until(lambda: states and truth and commands.get_subscription_count() > 0
               and rig.event_pub.get_subscription_count() > 0, 20, "sim_node's robot state and cube")
    assert rig.count_publishers(topics.OBJECT_REVEALED) == 1   # the contact node only
    assert np.all(np.isfinite(states[-1].external_wrench))
    rig.event(1, EpisodeEvent.EVENT_START)
    wait_until(lambda: node.channel.active, 10, "START")
    cube = pose_from_msg(truth[-1].pose)
    target = cube[:3, 3] + cube[:3, :3] @ np.array([0.0, 0.045, 0.0])   # one finger right above the cube
    n_before = rig.count()
    descending = False
    for _ in range(120):
        tcp = pose_from_msg(states[-1].tcp_pose)[:3, 3]
        descending = descending or np.linalg.norm(tcp[:2] - target[:2]) < 0.004
        goal = np.array([target[0], target[1], 0.03 if descending else 0.12])
        step = goal - tcp
        step *= min(1.0, 0.02 / max(np.linalg.norm(step), 1e-9))
        commands.publish(command_to_msg(DeltaCommand(step, np.zeros(3), -1.0, Source.POLICY)))
        if _valid(rig.since(n_before)):
            break
        time.sleep(0.06)
    wait_until(lambda: _valid(rig.since(n_before)), 5, "the revealed cube")
    shown = pose_msg_arrays(_valid(rig.since(n_before))[0].pose)[0]
    np.testing.assert_allclose(shown, cube[:3, 3], atol=0.005)
    assert node.channel.detector.cue == "force"
    assert max(abs(s.external_wrench[2]) for s in states[-20:]) > node.config.detector.force_enter_n
