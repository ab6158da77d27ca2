"""Episode bags: offered QoS stored as rosbag2 stores it, ``imgen bag info`` and ``imgen bag plot`` on
real bags written by the project's writer, and their one-line refusals of bad bags."""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
import yaml
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Vector3
from imgen_ros.cli.main import main
from imgen_ros.core import topics
from imgen_ros.core.pose import make_pose
from imgen_ros.core.qos import PROFILES, QosProfile, from_rosbag2, playback_profile, profile_of, to_rosbag2
from imgen_ros.data.bag import RECORDED_TOPICS, EpisodeBagWriter, bag_topics, offered_qos
from imgen_ros.data.bag_info import load_timeline
from imgen_ros.data.bag_plot import MODE_COLORS, draw_episode
from imgen_ros.nodes._ros import _PROFILES, pose_to_msg, rclpy_qos
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.serialization import serialize_message
from rosbags.rosbag2.storage_mcap import McapReader

from imgen_msgs.msg import ControlState, DeltaPoseCommand, EpisodeEvent, ObjectPoseEstimate, PoseError, RobotState

T0 = 1_800_000_000_000_000_000
MS = 1_000_000
TRUE = np.array([0.55, 0.02, 0.025])
OFFSET = np.array([0.0, -0.045, 0.0])
OLD_SCENE = np.array([0.40, 0.15, 0.025])   # the previous scene's cube, latched before START
N_STATES = 100                               # robot states, 20 ms apart
HUMAN = range(60, 90)                        # robot-state indices under HUMAN control


def _stamp(ms: int) -> Time:
    sec, nanosec = divmod(T0 + ms * MS, 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


def _pose_msg(stamp_ms: int, position, valid: bool = True) -> ObjectPoseEstimate:
    msg = ObjectPoseEstimate(object_id="cube", valid=valid, pose=pose_to_msg(make_pose(position)))
    msg.header.stamp = _stamp(stamp_ms)
    return msg


def write_episode(path: Path, takeover: bool = True, episode: int = 7) -> Path:
    """A recorded block_grasp episode: policy reaches the believed cube (45 mm off), the contact
    reveals the true one, a human takes over (``takeover``) and lifts it: SUCCESS.

    Header stamps carry the times; receive times lag them by 5 ms, and the last messages of the
    previous scene (stamped before START) are in the bag too, one of them received after START."""
    bag = EpisodeBagWriter(path, {"/" + t: ty for t, ty in RECORDED_TOPICS.items()},
                           {"imgen_task": "block_grasp", "imgen_episode_id": str(episode), "imgen_noise": "on"},
                           topic_qos={"/" + t: profile_of(t) for t in RECORDED_TOPICS})

    def put(topic: str, ms: int, msg: object, stamped: bool = True, received_ms: int | None = None) -> None:
        if stamped and hasattr(msg, "header"):
            msg.header.stamp = _stamp(ms)
        bag.write("/" + topic, T0 + (ms + 5 if received_ms is None else received_ms) * MS, serialize_message(msg))

    believed = TRUE + OFFSET
    put(topics.ROBOT_STATE, -200, RobotState(tcp_pose=pose_to_msg(make_pose([0.3, 0.2, 0.3]))))
    put(topics.OBJECT_POSE_TRUE, -200, _pose_msg(-200, OLD_SCENE), stamped=False)
    put(topics.CONTROL_STATE, -200, ControlState(mode=2, episode_id=episode - 1))
    put(topics.ROBOT_STATE, -20, RobotState(tcp_pose=pose_to_msg(make_pose([0.3, 0.2, 0.3]))), received_ms=30)
    put(topics.EPISODE_EVENTS, 0, EpisodeEvent(episode_id=episode, task="block_grasp", event=0, reason="start"))
    put(topics.POSE_ERROR, 2, PoseError(episode_id=episode, task="block_grasp", mode="task", seed=1234,
                                        object_ids=["cube"], offsets=[Vector3(x=0.0, y=-0.045, z=0.0)]))
    for k in range(N_STATES):
        ms = 10 + 20 * k
        s = k / (N_STATES - 1)
        if k < 50:      # home -> above the believed cube -> down
            tcp = np.array([0.45, 0.0, 0.3]) + (believed + np.array([0, 0, 0.02]) - [0.45, 0.0, 0.3]) * (k / 49)
        else:           # over to the true cube, then lift
            a = min(1.0, (k - 50) / 20)
            tcp = believed + [0, 0, 0.02] + (TRUE - believed) * a + [0, 0, 0.1 * max(0.0, s - 0.8)]
        mode = ControlState.MODE_HUMAN if takeover and k in HUMAN else ControlState.MODE_POLICY
        put(topics.CONTROL_STATE, ms, ControlState(mode=mode, episode_id=episode, step=k))
        put(topics.ROBOT_STATE, ms + 1, RobotState(tcp_pose=pose_to_msg(make_pose(tcp)), gripper_qpos=[0.04, 0.04]))
        put(topics.OBJECT_POSE, ms + 2, _pose_msg(ms + 2, believed), stamped=False)
        put(topics.OBJECT_POSE_TRUE, ms + 2, _pose_msg(ms + 2, TRUE), stamped=False)
        put(topics.OBJECT_REVEALED, ms + 2, _pose_msg(ms + 2, TRUE, valid=k >= 50), stamped=False)
        put(topics.ROBOT_COMMAND, ms + 3, DeltaPoseCommand(source=mode, step=k))
        if takeover and k == HUMAN.start:
            put(topics.EPISODE_EVENTS, ms, EpisodeEvent(episode_id=episode, event=4, reason="takeover"))
    put(topics.EPISODE_EVENTS, 10 + 20 * N_STATES, EpisodeEvent(episode_id=episode, event=1, reason="lifted"))
    bag.close({"imgen_complete": "true", "imgen_outcome": "SUCCESS"})
    return path


@pytest.fixture(scope="module")
def bags(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bags")
    write_episode(root / "ep_07", takeover=True, episode=7)
    write_episode(root / "ep_08", takeover=False, episode=8)
    return root


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# ---------------------------------------------------------------- QoS in the bag
def test_the_graph_profiles_are_unchanged_by_the_shared_description():
    assert _PROFILES["SENSOR"] == qos_profile_sensor_data
    explicit = {
        "STATE": (5, ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE),
        "COMMAND": (10, ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE),
        "LATCHED": (1, ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL),
        "EVENTS": (100, ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL),
    }
    for name, (depth, reliability, durability) in explicit.items():
        assert _PROFILES[name] == QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability,
                                             durability=durability), name
    assert set(PROFILES) == set(_PROFILES)


ROSBAG2_LATCHED = {   # what rosbag2 (metadata version 9) writes for a keep-last-1 transient-local publisher
    "history": "keep_last", "depth": 1, "reliability": "reliable", "durability": "transient_local",
    "deadline": {"sec": 9223372036, "nsec": 854775807}, "lifespan": {"sec": 9223372036, "nsec": 854775807},
    "liveliness": "automatic", "liveliness_lease_duration": {"sec": 9223372036, "nsec": 854775807},
    "avoid_ros_namespace_conventions": False,
}


def test_offered_qos_is_in_metadata_yaml_and_in_the_mcap_channels(bags):
    bag = bags / "ep_07"
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    entries = {e["topic_metadata"]["name"]: e["topic_metadata"] for e in info["topics_with_message_count"]}
    assert entries["/control_state"]["offered_qos_profiles"] == [ROSBAG2_LATCHED]
    assert entries["/episode_events"]["offered_qos_profiles"] == [{**ROSBAG2_LATCHED, "depth": 100}]
    assert entries["/robot_state"]["offered_qos_profiles"][0]["reliability"] == "best_effort"
    (mcap,) = bag.glob("*.mcap")
    reader = McapReader(mcap)
    reader.open()
    try:
        channels = {c.topic: c for c in reader.channels.values()}
        connections = {c.topic: c for c in reader.connections}
    finally:
        reader.close()
    raw = channels["/control_state"].metadata   # MCAP string map: offered_qos_profiles -> serialized YAML
    assert b"offered_qos_profiles" in raw
    assert yaml.safe_load(raw[raw.index(b"- "):].decode()) == [ROSBAG2_LATCHED]
    for topic in RECORDED_TOPICS:
        (got,) = offered_qos(connections["/" + topic])
        assert got.compatible_key() == profile_of(topic).compatible_key() and got.depth == profile_of(topic).depth
    listed = {t.name: t for t in bag_topics(bag)}
    assert listed["/control_state"].offered_qos[0].latched and listed["/control_state"].message_count == N_STATES + 1


def test_rosbag2_profiles_of_every_version_read_back_and_play_back_as_ros2_bag_play_would():
    for name, profile in PROFILES.items():
        back = from_rosbag2(to_rosbag2(profile))
        assert back.compatible_key() == profile.compatible_key() and back.depth == profile.depth, name
    # `ros2 bag record` (v9): history unknown, depth 0 (discovery does not carry them)
    recorded = {**ROSBAG2_LATCHED, "history": "unknown", "depth": 0}
    played = playback_profile([from_rosbag2(recorded)])
    assert (played.reliability, played.durability, played.history, played.depth) == \
        ("reliable", "transient_local", "keep_last", 10)
    # metadata version <= 8: rmw enum values; Foxy-era "infinite" durations
    v8 = {"history": 3, "depth": 0, "reliability": 1, "durability": 1,
          "deadline": {"sec": 2147483647, "nsec": 4294967295}, "lifespan": {"sec": 0, "nsec": 0}, "liveliness": 1,
          "liveliness_lease_duration": {"sec": 2147483647, "nsec": 2147483647},
          "avoid_ros_namespace_conventions": False}
    assert from_rosbag2(v8) == QosProfile(history="unknown", depth=0, reliability="reliable",
                                          durability="transient_local", liveliness="automatic")
    assert from_rosbag2({**v8, "deadline": {"sec": 2, "nsec": 5}}).deadline_ns == 2_000_000_005
    # publishers that disagreed, or nothing recorded: rosbag2's default offer (reliable, volatile)
    mixed = [profile_of(topics.CONTROL_STATE), profile_of(topics.ROBOT_COMMAND)]
    assert playback_profile(mixed) == playback_profile([]) == QosProfile(depth=10)
    assert rclpy_qos(playback_profile([profile_of(topics.EPISODE_EVENTS)])).durability == \
        DurabilityPolicy.TRANSIENT_LOCAL
    with pytest.raises(ValueError, match="durability 'sticky'"):
        from_rosbag2({**ROSBAG2_LATCHED, "durability": "sticky"})
    with pytest.raises(ValueError, match="malformed QoS profile"):
        from_rosbag2({"history": "keep_last"})


# ---------------------------------------------------------------- imgen bag info
def test_bag_info_summarizes_the_episode(bags, capsys):
    code, out, err = run_cli(capsys, "bag", "info", str(bags / "ep_07"), "--json")
    assert code == 0, err
    s = json.loads(out)
    assert (s["episode_id"], s["task"], s["outcome"], s["reason"], s["complete"]) == \
        (7, "block_grasp", "SUCCESS", "lifted", True)
    assert s["duration_s"] == pytest.approx(2.01, abs=1e-6)
    assert s["steps"] == {"total": N_STATES, "policy": N_STATES - len(HUMAN), "human": len(HUMAN)}
    assert s["takeovers"] == 1
    ((a, b),) = s["human_segments_s"]
    assert a == pytest.approx(0.010 + 0.020 * HUMAN.start) and b == pytest.approx(0.010 + 0.020 * HUMAN.stop)
    assert [e[1] for e in s["events"]] == ["START", "TAKEOVER", "SUCCESS"]
    corruption = s["corruption"]
    assert corruption["noise"] == "on"
    assert corruption["pose_error"] == {"mode": "task", "seed": 1234, "offsets_m": {"cube": [0.0, -0.045, 0.0]}}
    assert corruption["measured_offset_m"]["cube"] == pytest.approx(OFFSET.tolist())
    assert s["reveal"]["t_s"] == pytest.approx(0.012 + 0.020 * 50)
    assert s["reveal"]["tcp_m"] == pytest.approx((TRUE + OFFSET + [0, 0, 0.02]).tolist(), abs=1e-4)
    qos = {t["name"]: t["qos"] for t in s["topics"]}
    assert qos["/control_state"] == [{"reliability": "reliable", "durability": "transient_local",
                                      "history": "keep_last", "depth": 1}]
    assert len(s["topics"]) == len(RECORDED_TOPICS)

    code, text, _ = run_cli(capsys, "bag", "info", str(bags / "ep_07"))
    assert code == 0
    assert "outcome SUCCESS (lifted)" in text and "takeovers   1: human 1.2-1.8 s (0.6 s)" in text
    assert "seed 1234" in text and "believed - true cube (+0.0, -45.0, +0.0) mm" in text
    assert "/control_state" in text and "reliable transient_local keep_last 1" in text

    code, out, _ = run_cli(capsys, "bag", "info", str(bags), "--json")   # a folder of bags
    assert code == 0
    assert [(x["episode_id"], x["takeovers"]) for x in json.loads(out)] == [(7, 1), (8, 0)]


def test_the_timeline_uses_header_stamps_and_the_new_scene(bags):
    tl = load_timeline(bags / "ep_07")
    # the previous scene's cube and TCP (stamped before START, one received after it) are not the episode's
    assert tl.first(tl.true, "cube").position == pytest.approx(TRUE)
    assert tl.tcp_xyz[0] == pytest.approx([0.45, 0.0, 0.3])
    assert len(tl.tcp_t) == N_STATES
    assert tl.mode_at(tl.t_start + (10 + 20 * HUMAN.start) * MS) == ControlState.MODE_HUMAN


# ---------------------------------------------------------------- imgen bag plot
def test_the_path_is_coloured_by_control_mode(bags):
    tl = load_timeline(bags / "ep_07")
    fig, ax = plt.subplots()
    try:
        draw_episode(ax, tl)
        (lines,) = ax.collections
        colors = [tuple(np.round(c[:3], 3)) for c in lines.get_colors()]
    finally:
        plt.close(fig)
    human = tuple(np.round(plt.matplotlib.colors.to_rgb(MODE_COLORS[1]), 3))
    policy = tuple(np.round(plt.matplotlib.colors.to_rgb(MODE_COLORS[0]), 3))
    assert len(colors) == N_STATES - 1
    assert colors.count(human) == len(HUMAN) and colors.count(policy) == N_STATES - 1 - len(HUMAN)
    assert "SUCCESS" in ax.get_title() and "1 takeover" in ax.get_title()


def _orange_pixels(png: Path) -> int:
    img = mpimg.imread(png)[..., :3]
    target = np.array(plt.matplotlib.colors.to_rgb(MODE_COLORS[1]))
    return int(np.sum(np.all(np.abs(img - target) < 0.05, axis=-1)))


def test_bag_plot_writes_a_png_per_call_and_keeps_outputs(bags, tmp_path, capsys):
    one, two = tmp_path / "takeover.png", tmp_path / "policy_only.png"
    assert run_cli(capsys, "bag", "plot", str(bags / "ep_07"), "--out", str(one))[0] == 0
    assert run_cli(capsys, "bag", "plot", str(bags / "ep_08"), "--out", str(two))[0] == 0
    assert one.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _orange_pixels(one) > _orange_pixels(two) + 100   # the human segment is drawn (legend: both)
    both = tmp_path / "both.png"
    code, out, _ = run_cli(capsys, "bag", "plot", str(bags), "--out", str(both), "--columns", "2")
    assert code == 0 and "2 episodes (7 SUCCESS, 8 SUCCESS)" in out
    assert mpimg.imread(both).shape[1] > mpimg.imread(one).shape[1]   # two panels side by side
    before = one.read_bytes()
    code, _, err = run_cli(capsys, "bag", "plot", str(bags / "ep_08"), "--out", str(one))
    assert code == 2 and err.count("\n") == 1 and "exists" in err and one.read_bytes() == before
    assert run_cli(capsys, "bag", "plot", str(bags / "ep_08"), "--out", str(one), "--overwrite")[0] == 0
    assert one.read_bytes() != before


# ---------------------------------------------------------------- bad input: one line, exit 2
def _truncated(root: Path) -> Path:
    bag = write_episode(root / "truncated")
    (mcap,) = bag.glob("*.mcap")
    os.truncate(mcap, mcap.stat().st_size // 2)
    return bag


def _no_start(root: Path) -> Path:
    bag = EpisodeBagWriter(root / "no_start", {"/robot_state": RECORDED_TOPICS[topics.ROBOT_STATE]})
    bag.write("/robot_state", T0, serialize_message(RobotState()))
    bag.close()
    return root / "no_start"


def _bad_qos(root: Path) -> Path:
    bag = write_episode(root / "bad_qos")
    meta = bag / "metadata.yaml"
    meta.write_text(meta.read_text().replace("durability: transient_local", "durability: sticky", 1))
    return bag


BAD = {
    "missing": (lambda root: root / "nope", "no such directory"),
    "empty": (lambda root: (root / "empty").mkdir() or root / "empty", "no metadata.yaml"),
    "truncated": (_truncated, "is truncated"),
    "no_start": (_no_start, "no START episode event"),
    "bad_qos": (_bad_qos, "malformed topic entry"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("command", ["info", "plot"])
def test_bad_bags_are_refused_in_one_line(kind, command, tmp_path, capsys):
    make, reason = BAD[kind]
    bag = make(tmp_path)
    extra = ["--out", str(tmp_path / "x.png")] if command == "plot" else []
    code, out, err = run_cli(capsys, "bag", command, str(bag), *extra)
    assert code == 2 and out == ""
    assert err.startswith("imgen: error: bag ") and err.count("\n") == 1 and reason in err, err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("argv, reason", [
    (["--columns", "0"], "--columns: expected an integer in [1, 8]"),
    (["--dpi", "nan"], "--dpi: expected an integer in [50, 400]"),
    (["--cube-size", "inf"], "--cube-size: expected a finite number"),
])
def test_bad_plot_arguments_are_refused_in_one_line(bags, tmp_path, capsys, argv, reason):
    with pytest.raises(SystemExit) as exc:
        main(["bag", "plot", str(bags / "ep_07"), "--out", str(tmp_path / "x.png"), *argv])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and reason in err, err


def test_plot_output_must_be_a_png(bags, tmp_path, capsys):
    code, _, err = run_cli(capsys, "bag", "plot", str(bags / "ep_07"), "--out", str(tmp_path / "x.jpg"))
    assert code == 2 and "name it *.png" in err and err.count("\n") == 1
