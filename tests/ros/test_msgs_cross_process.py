"""Every imgen_msgs message type crosses between two processes over DDS with its fields intact."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from rclpy.node import Node
from rclpy.serialization import serialize_message

sys.path.insert(0, str(Path(__file__).parent))
from msg_echo import QOS
from msg_fill import fill_message, message_types


def test_every_message_type_round_trips_through_another_process(ros_context, ros_spin, node_process, wait_until):
    echo = node_process(["python", str(Path(__file__).parent / "msg_echo.py")], name="echo")
    wait_until(lambda: "ready" in echo.output() or not echo.alive(), 30, "echo process start")
    assert echo.alive(), echo.errors()

    node = Node("imgen_msg_sender", context=ros_context)
    sent: dict[str, object] = {}
    received: dict[str, object] = {}
    lock = threading.Lock()
    publishers = {}
    subs = []
    for counter_start, (name, cls) in enumerate(message_types().items()):
        msg = fill_message(cls(), [counter_start * 100])
        if hasattr(msg, "header"):
            msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_000 + counter_start, 123_456
            msg.header.frame_id = "fr3_link0"
        sent[name] = msg
        publishers[name] = node.create_publisher(cls, f"/imgen_test/{name}", QOS)

        def on_echo(m: object, name: str = name) -> None:
            with lock:
                received[name] = m

        subs.append(node.create_subscription(cls, f"/imgen_test/{name}/echo", on_echo, QOS))
    ros_spin(node)

    wait_until(lambda: all(p.get_subscription_count() > 0 for p in publishers.values()), 30, "echo subscriptions")
    for name, pub in publishers.items():
        pub.publish(sent[name])
    wait_until(lambda: len(received) == len(sent), 30,
               f"echoes (missing: {sorted(set(sent) - set(received))})")

    assert len(sent) >= 4 + 6 + 3
    for name, msg in sent.items():
        assert received[name] == msg, f"{name}: fields changed in transit"
        assert serialize_message(received[name]) == serialize_message(msg), name
    # the filled messages are not defaults, so equality above is meaningful
    for name, cls in message_types().items():
        assert sent[name] != cls(), name
