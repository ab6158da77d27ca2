"""recorder: one bag per episode, bounded loss when SIGKILLed (<= one chunk), repair on restart,
and the chunked bag writer itself."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from imgen_ros.core import topics
from imgen_ros.data.bag import RECORDED_TOPICS, EpisodeBagWriter, bag_custom_data, read_bag, repair_bag
from imgen_ros.nodes._ros import qos
from rclpy.serialization import serialize_message
from std_msgs.msg import Bool

from imgen_msgs.msg import EpisodeEvent

sys.path.insert(0, str(Path(__file__).parent))
from fake_inputs import FakeInputs
from graph import node_cmd

# Real-time assertions on a shared 2-core machine: a run disturbed by other load is retried (up to
# twice); a genuine regression fails every attempt.
pytestmark = pytest.mark.flaky(reruns=2, reruns_delay=3)

CHUNK_S = 0.5


def test_bag_writer_chunks_are_valid_bags_and_repair_drops_the_open_chunk(tmp_path):
    bag = EpisodeBagWriter(tmp_path / "ep", {"/teleop/engaged": RECORDED_TOPICS[topics.TELEOP_ENGAGED]},
                           {"imgen_task": "block_grasp"})
    t0 = time.time_ns()
    for i in range(10):
        bag.write("/teleop/engaged", t0 + i, serialize_message(Bool(data=i % 2 == 0)))
        if i == 5:
            bag.flush()
    # killed now: 6 messages are in a closed chunk, 4 in the open one
    msgs = read_bag(tmp_path / "ep")["/teleop/engaged"]
    assert [m.data for _, m in msgs] == [i % 2 == 0 for i in range(6)]
    report = repair_bag(tmp_path / "ep")
    assert report.valid and not report.complete and report.removed_chunks == 1
    assert not list((tmp_path / "ep").glob(".chunk_*"))
    assert bag_custom_data(tmp_path / "ep")["imgen_task"] == "block_grasp"


def _publish_event(pub, clock, episode: int, event: int, reason: str = "") -> None:
    msg = EpisodeEvent(episode_id=episode, task="block_grasp", event=event, reason=reason)
    msg.header.stamp = clock.now().to_msg()
    pub.publish(msg)


def test_recorder_survives_sigkill_with_bounded_loss(ros_context, ros_spin, node_process, wait_until, tmp_path):
    inputs = FakeInputs(ros_context)
    events = inputs.create_publisher(EpisodeEvent, topics.EPISODE_EVENTS, qos(topics.EPISODE_EVENTS))
    ros_spin(inputs)
    record_dir = tmp_path / "bags"
    cmd = node_cmd("recorder", "recorder.yaml", record_dir=record_dir, chunk_s=CHUNK_S)
    recorder = node_process(cmd, name="recorder")
    wait_until(lambda: (inputs.count_subscribers(topics.EPISODE_EVENTS) >= 1
                        and inputs.count_subscribers(topics.POLICY_COMMAND) >= 1) or not recorder.alive(), 30,
               "recorder subscribed")
    assert recorder.alive(), recorder.errors()
    time.sleep(1.0)
    _publish_event(events, inputs.get_clock(), 1, EpisodeEvent.EVENT_START, "episode_start")
    wait_until(lambda: len(list(record_dir.glob("episode_0001_*"))) == 1, 10, "bag opened")
    start = time.time()
    time.sleep(3.0)
    killed_at = time.time()
    recorder.kill(signal.SIGKILL)
    recorder.popen.wait(timeout=10)

    (bag,) = record_dir.glob("episode_0001_*")
    states = read_bag(bag)[f"/{topics.ROBOT_STATE}"]
    commands = read_bag(bag)[f"/{topics.POLICY_COMMAND}"]   # reliable QoS: none may be missing
    stamps = np.array([t for t, _ in commands]) * 1e-9
    # bounded loss: everything up to at most one chunk (+ scheduling slack) before the kill was kept
    assert killed_at - stamps[-1] < CHUNK_S + 0.3, f"lost {killed_at - stamps[-1]:.2f} s"
    sent = np.array(inputs.sent_policy)
    sent_in_span = np.sum((sent >= start) & (sent <= stamps[-1] - 0.05))
    assert np.sum(stamps >= start) >= sent_in_span, "messages missing inside closed chunks"

    # restart: the killed bag is repaired and stays readable, marked incomplete; recording goes on
    def gids(topic: str) -> set[bytes]:
        return {bytes(i.endpoint_gid) for i in inputs.get_subscriptions_info_by_topic(f"/{topic}")}

    ghosts = {t: gids(t) for t in (topics.POLICY_COMMAND, topics.EPISODE_EVENTS)}   # the killed one lingers
    recorder2 = node_process(cmd, name="recorder2")
    wait_until(lambda: "repaired" in recorder2.errors() or not recorder2.alive(), 30, "repair on start-up")
    assert not list(bag.glob(".chunk_*"))
    assert bag_custom_data(bag)["imgen_complete"] == "false"
    assert len(read_bag(bag)[f"/{topics.ROBOT_STATE}"]) == len(states)
    wait_until(lambda: all(gids(t) - old for t, old in ghosts.items()), 30, "restarted recorder subscribed")
    time.sleep(1.0)
    _publish_event(events, inputs.get_clock(), 2, EpisodeEvent.EVENT_START, "episode_start")
    wait_until(lambda: len(list(record_dir.glob("episode_0002_*"))) == 1, 10, "second bag opened")
    opened = time.time()
    time.sleep(1.5)
    _publish_event(events, inputs.get_clock(), 2, EpisodeEvent.EVENT_SUCCESS, "lifted")
    sent = sum(1 for t in inputs.sent_policy if t >= opened)
    wait_until(lambda: any(bag_custom_data(b).get("imgen_complete") == "true"
                           for b in record_dir.glob("episode_0002_*") if (b / "metadata.yaml").exists()),
               10, "second bag closed")
    (bag2,) = record_dir.glob("episode_0002_*")
    custom = bag_custom_data(bag2)
    assert custom["imgen_outcome"] == "SUCCESS" and custom["imgen_episode_id"] == "2"
    recorded = read_bag(bag2)
    assert [m.event for _, m in recorded[f"/{topics.EPISODE_EVENTS}"]] == [0, 1]
    assert len(recorded[f"/{topics.POLICY_COMMAND}"]) >= 10, f"{sent} policy commands sent while the bag was open"


def test_a_message_stamped_before_the_end_but_arriving_after_it_is_kept(ros_context, tmp_path):
    """The bag closes end_grace_s after the end event, not on it: a starved recorder's late burst is kept."""
    from imgen_ros.nodes.recorder import Recorder
    from rclpy.parameter import Parameter

    from imgen_msgs.msg import DeltaPoseCommand

    recorder = Recorder(context=ros_context, parameter_overrides=[
        Parameter("record_dir", value=str(tmp_path / "bags")), Parameter("end_grace_s", value=0.3)])
    try:
        recorder._on_message(topics.EPISODE_EVENTS, serialize_message(EpisodeEvent(episode_id=1, event=0)))
        recorder._on_message(topics.EPISODE_EVENTS, serialize_message(
            EpisodeEvent(episode_id=1, event=EpisodeEvent.EVENT_SUCCESS, reason="lifted")))
        recorder._close_when_due()
        assert recorder.bag is not None  # still open inside the grace
        recorder._on_message(topics.ROBOT_COMMAND, serialize_message(DeltaPoseCommand(step=7)))  # late arrival
        time.sleep(0.35)
        recorder._close_when_due()
        assert recorder.bag is None
        (bag,) = sorted((tmp_path / "bags").iterdir())
        assert bag_custom_data(bag)["imgen_outcome"] == "SUCCESS"
        assert len(read_bag(bag)[recorder.names[topics.ROBOT_COMMAND]]) == 1
    finally:
        recorder.destroy_node()
