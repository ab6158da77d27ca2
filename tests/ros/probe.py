"""A test-side node that records what the graph publishes (arrival times) and calls its services."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import rclpy
from imgen_ros.core import topics
from imgen_ros.nodes._ros import qos
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile
from std_msgs.msg import Bool

from imgen_msgs.msg import (
    ControlState,
    DeltaPoseCommand,
    EpisodeEvent,
    LoopTiming,
    ObjectPoseEstimate,
    PoseError,
    RobotState,
)
from imgen_msgs.srv import SetControlMode, StartEpisode, StopEpisode


def call_idempotent(node: Node, srv_type, name: str, request, timeout: float = 30.0, resend_s: float = 3.0):
    """Call a service whose request is safe to repeat (parameter get/set/describe), sending it again
    every ``resend_s`` until one answer arrives. Fast DDS can drop the first request that follows
    ``service_is_ready`` when the server has not yet matched the client's reply reader; a loaded
    2-core CI machine hit that (no answer in 10 s)."""
    client = node.create_client(srv_type, name)
    deadline = time.monotonic() + timeout
    while not client.service_is_ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"service {name} not available after {timeout:.0f} s")
        time.sleep(0.01)
    futures = []
    while time.monotonic() < deadline:
        futures.append(client.call_async(request))
        resend_at = time.monotonic() + resend_s
        while time.monotonic() < min(resend_at, deadline):
            for future in futures:
                if future.done():
                    return future.result()
            time.sleep(0.005)
    raise TimeoutError(f"service {name} did not answer {len(futures)} requests in {timeout:.0f} s")


RECORDED = {
    topics.ROBOT_COMMAND: DeltaPoseCommand,
    topics.POLICY_COMMAND: DeltaPoseCommand,
    topics.TELEOP_COMMAND: DeltaPoseCommand,
    topics.TELEOP_ENGAGED: Bool,
    topics.CONTROL_STATE: ControlState,
    topics.EPISODE_EVENTS: EpisodeEvent,
    topics.ROBOT_STATE: RobotState,
    topics.OBJECT_POSE: ObjectPoseEstimate,
    topics.POLICY_TIMING: LoopTiming,
    topics.POSE_ERROR: PoseError,
}


@dataclass
class Received:
    t: float          # time.monotonic() at arrival
    msg: object
    wall: float = 0.0  # time.time() at arrival (the ROS clock of every node here)


def deep(profile: QoSProfile) -> QoSProfile:
    """``profile`` with a long reader history: a busy test process must not lose the last messages
    before a fault (they are the fault markers), which a depth-5 best-effort reader would."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=profile.reliability,
                      durability=profile.durability)


class Probe(Node):
    def __init__(self, context, name: str = "test_probe") -> None:
        super().__init__(name, context=context)
        self.lock = threading.Lock()
        self.log: dict[str, list[Received]] = {t: [] for t in RECORDED}
        for topic, cls in RECORDED.items():
            self.create_subscription(cls, topic, lambda m, t=topic: self._store(t, m), deep(qos(topic)))
        self.service_clients = {
            topics.START_EPISODE: self.create_client(StartEpisode, topics.START_EPISODE),
            topics.STOP_EPISODE: self.create_client(StopEpisode, topics.STOP_EPISODE),
            topics.SET_CONTROL_MODE: self.create_client(SetControlMode, topics.SET_CONTROL_MODE),
            topics.SIM_RESET: self.create_client(StartEpisode, topics.SIM_RESET),
        }

    def _store(self, topic: str, msg: object) -> None:
        with self.lock:
            self.log[topic].append(Received(time.monotonic(), msg, time.time()))

    def messages(self, topic: str, since: float = 0.0) -> list[Received]:
        with self.lock:
            return [r for r in self.log[topic] if r.t >= since]

    def last(self, topic: str):
        with self.lock:
            return self.log[topic][-1].msg if self.log[topic] else None

    def call(self, service: str, request, timeout: float = 10.0):
        client = self.service_clients[service]
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {service} not available")
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"service {service} did not answer")
            time.sleep(0.005)
        return future.result()

    def start_episode(self, task: str = "", seed: int = 0) -> int:
        res = self.call(topics.START_EPISODE, StartEpisode.Request(task=task, seed=seed))
        assert res.success, res.message
        return res.episode_id

    def stop_episode(self, outcome: int, reason: str = "test"):
        return self.call(topics.STOP_EPISODE, StopEpisode.Request(outcome=outcome, reason=reason))


def wait_for_subscribers(node: Node, publisher, count: int = 1, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while publisher.get_subscription_count() < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no subscriber on {publisher.topic_name}")
        time.sleep(0.01)


__all__ = ["Probe", "Received", "rclpy", "wait_for_subscribers"]
