"""recorder: one rosbag2 (MCAP) per episode with commands, control state, robot state, pose
estimates, events and loop timing (writing: data.bag.EpisodeBagWriter).

A bag opens at an episode's START (``<record_dir>/<prefix>_<episode id>_<UTC time>``), starts with
the newest message of every state topic seen before (so step 0 has an observation) and closes at
its SUCCESS/FAILURE/ABORT plus ``end_grace_s`` (messages stamped before the end that arrive late
are kept). Messages are stored as received (CDR bytes, receive time), so nothing
is converted on the hot path. Loss bound when the recorder is killed (SIGKILL included): the open
chunk, at most ``chunk_s`` seconds (default 1 s); on start-up every bag in ``record_dir`` is
repaired (half-written chunk removed, the bag stays a valid rosbag2 marked incomplete).

Subscribes with each topic's QoS class (best-effort state streams match reliable publishers too)
with a reader history of at least ``RECORD_DEPTH`` (a busy moment, e.g. closing a chunk, must not
overwrite unread samples of a fast stream), and stores the class's profile as the topic's offered
QoS, so ``ros2 bag play`` re-offers transient local where the graph used it (core.qos). Topics of
``data.bag.RECORDED_TOPICS`` whose message package is not installed are skipped with one warning.
``/diagnostics``: the open bag, its bytes on disk and the chunk lag (time since the open chunk was
last closed: what a kill would lose).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from rclpy.node import Node
from rclpy.serialization import deserialize_message

from imgen_ros.core import diagnostics as diag
from imgen_ros.core import topics
from imgen_ros.core.observation import OBSERVABILITY_CHANNEL_DIMS
from imgen_ros.core.params import check_fields, param
from imgen_ros.core.qos import QosProfile, profile_of
from imgen_ros.data.bag import RECORDED_TOPICS, EpisodeBagWriter, repair_bag
from imgen_ros.nodes._ros import attach_diagnostics, declare_config, message_class, rclpy_qos, run

LATCH_ON_START = (topics.ROBOT_STATE, topics.OBJECT_POSE, topics.OBJECT_POSE_TRUE, topics.OBJECT_REVEALED,
                  topics.CONTROL_STATE, topics.TELEOP_ENGAGED, topics.POSE_ERROR, topics.JOINT_STATES,
                  topics.TCP_POSE, topics.BELIEVED_POSE, topics.TRUE_POSE)
OUTCOMES = {1: "SUCCESS", 2: "FAILURE", 3: "ABORT"}
RECORD_DEPTH = 200   # reader history per topic: > 2 s of the fastest stream (robot state, 50-100 Hz)


def bytes_on_disk(path: Path) -> int:
    """Total size of the files under ``path`` (chunks being renamed meanwhile are skipped)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def record_profile(topic: str) -> QosProfile:
    """The recorder's subscription profile: the topic's class with a deep reader history."""
    profile = profile_of(topic)
    return replace(profile, depth=max(profile.depth, RECORD_DEPTH))


@dataclass(frozen=True)
class RecorderConfig:
    record_dir: str = param("recordings", "one rosbag2 (MCAP) per episode in this directory")
    prefix: str = param("episode", "bag directory name prefix")
    chunk_s: float = param(1.0, "MCAP chunk length: what a kill can lose [s]", "(0, 60]")
    task: str = param("block_grasp", "task name stored with each episode")
    noise: str = param("on", "pose-corruption setting stored with each episode")
    observability: str = param("full", "observability stored with each episode", choices=OBSERVABILITY_CHANNEL_DIMS)
    robot: str = param("sim", "robot stored with each episode (sim, fr3)")
    end_grace_s: float = param(0.5, "after an episode's end event, go on recording this long before closing the "
                               "bag: messages stamped before the end that arrive late are kept [s]", "[0, 10]")

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.record_dir:
            raise ValueError("recorder: record_dir must not be empty")


class Recorder(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("recorder", **kwargs)
        self.config = cfg = declare_config(self, RecorderConfig)
        self.root = Path(cfg.record_dir).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        for bag in sorted(p for p in self.root.iterdir() if p.is_dir()):
            report = repair_bag(bag)
            if report.removed_chunks or not report.complete:
                self.get_logger().warning(f"repaired {bag.name}: removed {report.removed_chunks} half-written "
                                          f"chunk(s); valid={report.valid} complete={report.complete}")
        self.lock = threading.Lock()
        self.bag: EpisodeBagWriter | None = None
        self.episode_id: int | None = None
        self.pending_close: tuple[float, dict[str, str]] | None = None  # (monotonic deadline, metadata)
        self.last: dict[str, tuple[int, bytes]] = {}
        self.names: dict[str, str] = {}     # relative topic -> resolved name (stored in the bag)
        self.types: dict[str, str] = {}     # relative topic -> message type, of the topics recorded
        self.event_type = message_class(RECORDED_TOPICS[topics.EPISODE_EVENTS])
        self.last_chunk_t = time.monotonic()   # when the open chunk was last closed (or the bag opened)
        self.episodes = 0
        missing = []
        for topic, type_name in RECORDED_TOPICS.items():
            try:
                msg_class = message_class(type_name)
            except (ImportError, AttributeError):
                missing.append(f"{topic} ({type_name})")
                continue
            sub = self.create_subscription(msg_class, topic, lambda data, t=topic: self._on_message(t, data),
                                           rclpy_qos(record_profile(topic)), raw=True)
            self.names[topic], self.types[topic] = sub.topic_name, type_name
        if missing:
            self.get_logger().warning(f"not recording {', '.join(missing)}: message package not installed")
        self.create_timer(cfg.chunk_s, self._flush)
        self.create_timer(0.05, self._close_when_due)
        attach_diagnostics(self, self._diagnostics, "none")
        self.get_logger().info(f"recording episodes to {self.root} (chunks of {cfg.chunk_s} s)")

    def _on_message(self, topic: str, data: bytes) -> None:
        stamp = time.time_ns()
        with self.lock:
            if topic == topics.EPISODE_EVENTS:
                self._on_event(stamp, data)
                return
            if topic in LATCH_ON_START:
                self.last[topic] = (stamp, data)
            if self.bag is not None:
                self.bag.write(self.names[topic], stamp, data)

    def _on_event(self, stamp: int, data: bytes) -> None:
        event = deserialize_message(data, self.event_type)
        if event.event == 0:   # START
            if self.bag is not None:
                self._close(self.pending_close[1] if self.pending_close is not None else
                            {"imgen_complete": "false", "imgen_outcome": "SUPERSEDED"})
            self._open(event, stamp)
        if self.bag is not None and event.episode_id == self.episode_id and self.pending_close is None:
            self.bag.write(self.names[topics.EPISODE_EVENTS], stamp, data)
            if event.event in OUTCOMES:
                custom = {"imgen_complete": "true", "imgen_outcome": OUTCOMES[event.event],
                          "imgen_reason": event.reason}
                if self.config.end_grace_s > 0:
                    self.pending_close = (time.monotonic() + self.config.end_grace_s, custom)
                else:
                    self._close(custom)

    def _close_when_due(self) -> None:
        with self.lock:
            if self.pending_close is not None and time.monotonic() >= self.pending_close[0]:
                self._close(self.pending_close[1])

    def _open(self, event, stamp: int) -> None:
        cfg = self.config
        name = f"{cfg.prefix}_{event.episode_id:04d}_{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        custom = {"imgen_task": event.task or cfg.task, "imgen_episode_id": str(event.episode_id),
                  "imgen_noise": cfg.noise, "imgen_observability": cfg.observability, "imgen_robot": cfg.robot}
        types = {self.names[t]: ty for t, ty in self.types.items()}
        offered = {self.names[t]: profile_of(t) for t in self.types}
        self.bag = EpisodeBagWriter(self.root / name, types, custom, topic_qos=offered)
        self.episode_id = event.episode_id
        self.last_chunk_t = time.monotonic()
        for topic, (t, data) in self.last.items():
            self.bag.write(self.names[topic], min(t, stamp - 1), data)
        self.get_logger().info(f"episode {event.episode_id}: recording {self.bag.path}")

    def _close(self, custom: dict[str, str]) -> None:
        assert self.bag is not None
        self.bag.close(custom)
        self.get_logger().info(f"closed {self.bag.path} ({self.bag.messages_written} messages, "
                               f"{custom.get('imgen_outcome')})")
        self.bag, self.episode_id, self.pending_close = None, None, None
        self.episodes += 1

    def _flush(self) -> None:
        with self.lock:
            if self.bag is not None:
                self.bag.flush()
                self.last_chunk_t = time.monotonic()

    def _diagnostics(self) -> list[diag.Status]:
        with self.lock:
            path = None if self.bag is None else self.bag.path
            lag = time.monotonic() - self.last_chunk_t
        size = 0 if path is None else bytes_on_disk(path)
        return [diag.recorder_status(None if path is None else path.name, size, lag, self.config.chunk_s,
                                     self.episodes)]

    def close(self) -> None:
        with self.lock:
            if self.bag is not None:
                self._close(self.pending_close[1] if self.pending_close is not None else
                            {"imgen_complete": "false", "imgen_outcome": "RECORDER_STOPPED"})


def main(args: list[str] | None = None) -> None:
    run(Recorder, args)


if __name__ == "__main__":
    main()
