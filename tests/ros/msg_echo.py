"""Child process: echo every imgen_msgs type from /imgen_test/<T> back on /imgen_test/<T>/echo."""

from __future__ import annotations

import sys
from pathlib import Path

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

sys.path.insert(0, str(Path(__file__).parent))
from msg_fill import message_types

QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def main() -> None:
    rclpy.init()
    node = Node("imgen_msg_echo")
    keep = []
    for name, cls in message_types().items():
        pub = node.create_publisher(cls, f"/imgen_test/{name}/echo", QOS)

        def forward(msg: object, pub=pub, name=name) -> None:
            pub.publish(msg)
            print(f"echoed {name}", flush=True)

        keep.append(node.create_subscription(cls, f"/imgen_test/{name}", forward, QOS))
    print("ready", flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
