"""joy_teleop: a ``sensor_msgs/Joy`` stream (the ``spacenav`` driver's ``spacenav/joy``) as teleop.

Axes/buttons go through teleop.SpaceMouseDevice (deadzone, gains, operator yaw; button 0 toggles
the gripper, button 1 is the takeover deadman by default). With ``joy_continuous`` (spacenav
publishes continuously) a silence longer than ``stale_timeout_s`` is a dead device; otherwise only
a deflected cap or held button that stops reporting is. Topic: ``joy_topic`` (default spacenav/joy).
"""

from __future__ import annotations

import time

from sensor_msgs.msg import Joy

from imgen_ros.nodes._ros import declare_config, run
from imgen_ros.nodes._teleop import TeleopNode
from imgen_ros.teleop.spacemouse import SpaceMouseConfig, SpaceMouseDevice


class JoyTeleop(TeleopNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("joy_teleop", SpaceMouseDevice(), **kwargs)
        self.config = declare_config(self, SpaceMouseConfig, {"joy_topic": "spacenav/joy", "joy_continuous": True})
        self.device = SpaceMouseDevice(self.config)
        self.continuous = bool(self.get_parameter("joy_continuous").value)
        self.last_joy: float | None = None
        topic = self.get_parameter("joy_topic").value
        self.create_subscription(Joy, topic, self._on_joy, 10)
        self.get_logger().info(f"teleop from sensor_msgs/Joy on {self.resolve_topic_name(topic)}")

    def poll(self) -> None:
        if self.continuous:
            silent = self.last_joy is None or time.monotonic() - self.last_joy > self.config.stale_timeout_s
            if silent and self.alive:
                self.get_logger().warning("no Joy messages: teleop dead, publishing nothing")
            self.alive = not silent

    def _on_joy(self, msg: Joy) -> None:
        self.last_joy = time.monotonic()
        try:
            self.device.update_joy(list(msg.axes)[:6], list(msg.buttons), time.monotonic())
        except ValueError as exc:
            self.get_logger().error(f"bad Joy message: {exc}", throttle_duration_sec=2.0)


def main(args: list[str] | None = None) -> None:
    run(JoyTeleop, args)


if __name__ == "__main__":
    main()
