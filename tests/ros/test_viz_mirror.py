"""viz_mirror node over DDS: robot state, pose estimates, control state, command, events and pose
error in -> joint_states, the PoseStamped mirrors and viz/markers out, in fr3_link0 with the right
values; the installed node under a namespace with its parameter file and the parameters the real
launch adds; a bad box refused."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from geometry_msgs.msg import PoseStamped, Vector3
from imgen_ros.core import topics
from imgen_ros.core.params import ConfigError
from imgen_ros.core.pose import make_pose, yaw_matrix
from imgen_ros.core.viz import arbiter_workspace
from imgen_ros.nodes._ros import pose_msg_arrays, pose_to_msg, qos
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from visualization_msgs.msg import Marker, MarkerArray

from imgen_msgs.msg import ControlState, DeltaPoseCommand, EpisodeEvent, ObjectPoseEstimate, PoseError, RobotState

CONFIG = Path(__file__).resolve().parents[2] / "config" / "viz_mirror.yaml"
BOX_MIN, BOX_MAX = [0.25, -0.4, 0.01], [0.75, 0.4, 0.45]
TCP = make_pose([0.45, 0.05, 0.2])
ESTIMATE = make_pose([0.55, 0.0, 0.025], yaw_matrix(math.radians(30.0)))
TRUE = make_pose([0.56, 0.04, 0.025], yaw_matrix(math.radians(25.0)))
OFFSET = np.array([0.0, -0.03, 0.0])   # the policy's pose error of episode 3
JOINTS = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]
MIRRORS = (topics.TCP_POSE, topics.BELIEVED_POSE, topics.TRUE_POSE)


class Rig(Node):
    """Publishes what the graph publishes; keeps the newest message of every mirror."""

    def __init__(self, context, namespace: str = "") -> None:
        super().__init__("viz_rig", context=context, namespace=namespace)

        def pub(kind: type, topic: str):
            return self.create_publisher(kind, topic, qos(topic))

        self.state_pub = pub(RobotState, topics.ROBOT_STATE)
        self.pose_pub = pub(ObjectPoseEstimate, topics.OBJECT_POSE)
        self.true_pub = pub(ObjectPoseEstimate, topics.OBJECT_POSE_TRUE)
        self.revealed_pub = pub(ObjectPoseEstimate, topics.OBJECT_REVEALED)
        self.control_pub = pub(ControlState, topics.CONTROL_STATE)
        self.command_pub = pub(DeltaPoseCommand, topics.ROBOT_COMMAND)
        self.event_pub = pub(EpisodeEvent, topics.EPISODE_EVENTS)
        self.error_pub = pub(PoseError, topics.POSE_ERROR)
        self.lock = threading.Lock()
        self.last: dict[str, object] = {}
        for kind, topic in ((JointState, topics.JOINT_STATES), (MarkerArray, topics.MARKERS),
                            *((PoseStamped, t) for t in MIRRORS)):
            self.create_subscription(kind, topic, lambda msg, t=topic: self._store(t, msg), qos(topic))

    def _store(self, topic: str, msg) -> None:
        with self.lock:
            self.last[topic] = msg

    def get(self, topic: str):
        with self.lock:
            return self.last.get(topic)

    def stamp(self, msg, seconds: float) -> None:
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(seconds), round((seconds % 1) * 1e9)
        msg.header.frame_id = topics.BASE_FRAME

    def inputs(self, mode: int = ControlState.MODE_HUMAN, revealed: bool = True) -> None:
        """One sample of every input (the state topics are best effort: the test repeats them)."""
        state = RobotState(joint_positions=JOINTS, joint_velocities=[0.1] * 7, gripper_width=0.06)
        state.tcp_pose = pose_to_msg(TCP)
        self.stamp(state, 100.25)
        self.state_pub.publish(state)
        for pub, pose, valid, t in ((self.pose_pub, ESTIMATE, True, 100.5), (self.true_pub, TRUE, True, 100.75),
                                    (self.revealed_pub, TRUE, revealed, 100.75)):
            msg = ObjectPoseEstimate(object_id="cube", valid=valid, fitness=1.0, pose=pose_to_msg(pose))
            self.stamp(msg, t)
            pub.publish(msg)
        control = ControlState(mode=mode, episode_id=3, step=12, reason="takeover_button")
        self.stamp(control, 100.0)
        self.control_pub.publish(control)
        command = DeltaPoseCommand(translation=[0.01, 0.0, -0.02], rotation=[0.0] * 3, gripper=-1.0,
                                   source=DeltaPoseCommand.SOURCE_HUMAN, step=12)
        self.stamp(command, 100.0)
        self.command_pub.publish(command)

    def episode(self) -> None:
        self.event_pub.publish(EpisodeEvent(episode_id=3, task="block_grasp", event=EpisodeEvent.EVENT_START))
        error = PoseError(episode_id=3, task="block_grasp", mode="task", seed=9, object_ids=["cube"],
                          offsets=[Vector3(x=OFFSET[0], y=OFFSET[1], z=OFFSET[2])])
        self.stamp(error, 100.0)
        self.error_pub.publish(error)


def _markers(msg: MarkerArray) -> dict[tuple[str, int], Marker]:
    return {(m.ns, m.id): m for m in msg.markers}


def _pos(msg) -> np.ndarray:
    return pose_msg_arrays(msg)[0]


def test_mirrors_and_markers_in_the_base_frame(ros_context, ros_spin, wait_until):
    from imgen_ros.nodes.viz_mirror import VizMirrorNode

    node = VizMirrorNode(context=ros_context, parameter_overrides=[
        Parameter("workspace_min", value=BOX_MIN), Parameter("workspace_max", value=BOX_MAX),
        Parameter("marker_rate_hz", value=20.0)])
    rig = Rig(ros_context)
    ros_spin(node, rig)
    wait_until(lambda: rig.event_pub.get_subscription_count() > 0 and rig.error_pub.get_subscription_count() > 0
               and rig.get(topics.MARKERS) is not None, 10, "the node's subscriptions and first markers")
    rig.episode()

    def complete() -> bool:
        rig.inputs()
        markers = rig.get(topics.MARKERS)
        if markers is None or any(rig.get(t) is None for t in (*MIRRORS, topics.JOINT_STATES)):
            return False
        # the pose error arrives once, the estimates keep coming: wait for an estimate mirrored after it
        return all(m.action == Marker.ADD for m in markers.markers) and \
            "pose error" in _markers(markers)[("status", 0)].text and \
            bool(np.allclose(_pos(rig.get(topics.BELIEVED_POSE).pose), ESTIMATE[:3, 3] + OFFSET))

    wait_until(complete, 10, "every mirror and every marker drawn", interval=0.05)

    joints = rig.get(topics.JOINT_STATES)
    assert joints.header.frame_id == topics.BASE_FRAME
    assert (joints.header.stamp.sec, joints.header.stamp.nanosec) == (100, 250_000_000)   # the RobotState's stamp
    assert list(joints.name) == [f"fr3_joint{i}" for i in range(1, 8)] + ["fr3_finger_joint1", "fr3_finger_joint2"]
    assert list(joints.position) == pytest.approx([*JOINTS, 0.03, 0.03])

    tcp, believed, true = (rig.get(t) for t in MIRRORS)
    assert {m.header.frame_id for m in (tcp, believed, true)} == {topics.BASE_FRAME}
    assert _pos(tcp.pose) == pytest.approx(TCP[:3, 3]) and tcp.header.stamp.nanosec == 250_000_000
    assert _pos(believed.pose) == pytest.approx(ESTIMATE[:3, 3] + OFFSET)     # estimate + the episode's offset
    assert pose_msg_arrays(believed.pose)[1] == pytest.approx(pose_msg_arrays(pose_to_msg(ESTIMATE))[1])
    assert (believed.header.stamp.sec, believed.header.stamp.nanosec) == (100, 500_000_000)
    assert _pos(true.pose) == pytest.approx(TRUE[:3, 3]) and true.header.stamp.nanosec == 750_000_000

    markers = _markers(rig.get(topics.MARKERS))
    assert all(m.header.frame_id == topics.BASE_FRAME for m in markers.values())
    assert len(markers) == 9
    box = np.array([[p.x, p.y, p.z] for p in markers[("workspace", 0)].points])
    assert box.min(axis=0) == pytest.approx(BOX_MIN) and box.max(axis=0) == pytest.approx(BOX_MAX)
    cube_true, cube_believed = markers[("cube/true", 0)], markers[("cube/believed", 0)]
    assert cube_true.type == Marker.CUBE and _pos(cube_true.pose) == pytest.approx(TRUE[:3, 3])
    assert _pos(cube_believed.pose) == pytest.approx(ESTIMATE[:3, 3] + OFFSET)
    assert cube_true.color.a > 0.8 > 0.5 > cube_believed.color.a and cube_true.scale.x == pytest.approx(0.05)
    assert markers[("cube/believed", 1)].type == Marker.LINE_LIST and len(markers[("cube/believed", 1)].points) == 24
    assert _pos(markers[("cube/revealed", 1)].pose) == pytest.approx(TRUE[:3, 3])
    arrow = markers[("command", 0)]
    start, tip = (np.array([p.x, p.y, p.z]) for p in arrow.points)
    assert arrow.type == Marker.ARROW and start == pytest.approx(TCP[:3, 3])
    assert tip == pytest.approx(TCP[:3, 3] + 5.0 * np.array([0.01, 0.0, -0.02]))   # arrow_gain of the default
    orange = (1.0, 127 / 255, 14 / 255)
    for key in (("tcp", 0), ("status", 0), ("command", 0)):
        c = markers[key].color
        assert (c.r, c.g, c.b) == pytest.approx(orange), key                       # HUMAN
    status = markers[("status", 0)]
    assert status.type == Marker.TEXT_VIEW_FACING
    assert status.text.splitlines()[:3] == ["HUMAN  episode 3  step 12", "takeover_button", "episode 3: START"]
    assert "pose error task (seed 9): (+0, -30, +0) mm" in status.text
    assert markers[("tcp", 0)].lifetime.sec + markers[("tcp", 0)].lifetime.nanosec > 0
    assert (markers[("workspace", 0)].lifetime.sec, markers[("workspace", 0)].lifetime.nanosec) == (0, 0)

    # POLICY turns the mode colour blue; an invalid reveal deletes the revealed pose
    def policy_drawn() -> bool:
        rig.inputs(mode=ControlState.MODE_POLICY, revealed=False)
        m = _markers(rig.get(topics.MARKERS))
        return m[("status", 0)].text.startswith("POLICY") and m[("cube/revealed", 0)].action == Marker.DELETE

    wait_until(policy_drawn, 10, "POLICY and the closed channel drawn", interval=0.05)
    c = _markers(rig.get(topics.MARKERS))[("tcp", 0)].color
    assert (c.r, c.g, c.b) == pytest.approx((31 / 255, 119 / 255, 180 / 255))


def test_an_implausible_box_is_refused(ros_context):
    from imgen_ros.nodes.viz_mirror import VizMirrorNode

    with pytest.raises(ConfigError, match="workspace_min"):
        VizMirrorNode(context=ros_context, parameter_overrides=[Parameter("workspace_min", value=[0.9, 0.0, 0.0])])


def test_installed_node_as_the_real_launch_starts_it(ros_context, ros_spin, node_process, wait_until, tmp_path):
    """Under /fr3 with its file and the parameters the real launch adds (the arbiter file's box, joint_states
    off as with franka_bringup), written as launch_ros writes a launch file's dict (yaml.dump: lists as
    tagged tuples, which rcl reads as arrays): the box drawn is the arbiter's; nothing publishes joint_states."""
    launch_params = tmp_path / "launch_params.yaml"
    box = arbiter_workspace(CONFIG.parent / "arbiter.yaml")
    launch_params.write_text(yaml.dump({"/**": {"ros__parameters": {
        **{k: tuple(v) for k, v in box.items()}, "publish_joint_states": False}}}, default_flow_style=False))
    assert "!!python/tuple" in launch_params.read_text()
    proc = node_process(["viz_mirror", "--ros-args", "-r", "__ns:=/fr3", "--params-file", str(CONFIG),
                         "--params-file", str(launch_params)], name="viz_mirror")
    rig = Rig(ros_context, namespace="/fr3")
    ros_spin(rig)

    def mirrored() -> bool:
        assert proc.alive(), proc.errors()
        rig.inputs()
        return rig.get(topics.TCP_POSE) is not None and rig.get(topics.MARKERS) is not None

    wait_until(mirrored, 30, "tcp_pose and viz/markers from the namespaced process", interval=0.05)
    assert rig.count_publishers("/fr3/joint_states") == 0 and rig.count_publishers("/fr3/viz/markers") == 1
    assert _pos(rig.get(topics.TCP_POSE).pose) == pytest.approx(TCP[:3, 3])
    drawn = np.array([[p.x, p.y, p.z] for p in _markers(rig.get(topics.MARKERS))[("workspace", 0)].points])
    assert drawn.min(axis=0) == pytest.approx(box["workspace_min"]) and drawn.max(axis=0) == pytest.approx(
        box["workspace_max"])
    assert "joint_states off" in proc.errors() + proc.output()
