"""spacemouse_teleop: a 3Dconnexion SpaceMouse read directly from its evdev node (no spacenav).

``device_path`` (e.g. /dev/input/by-id/usb-3Dconnexion_SpaceMouse_Compact-event-mouse) is opened
non-blocking and drained at 100 Hz into teleop.SpaceMouseDevice (button 0 gripper toggle, button 1
takeover deadman by default). A vanished device (unplugged) or one that stops reporting mid-motion
is dead: the node publishes nothing and the arbiter holds. With the ``spacenav`` driver running,
use joy_teleop instead.
"""

from __future__ import annotations

import time

from imgen_ros.nodes._ros import declare_config, run
from imgen_ros.nodes._teleop import TeleopNode
from imgen_ros.teleop.spacemouse import SpaceMouseConfig, SpaceMouseDevice


class SpaceMouseTeleop(TeleopNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("spacemouse_teleop", SpaceMouseDevice(), **kwargs)
        self.config = declare_config(self, SpaceMouseConfig, {"device_path": ""})
        self.device = SpaceMouseDevice(self.config)
        path = self.get_parameter("device_path").value
        if not path:
            raise ValueError("spacemouse_teleop: set the 'device_path' parameter to the SpaceMouse's evdev node "
                             "(/dev/input/by-id/usb-3Dconnexion_*-event-mouse)")
        self.device.open(path)
        self.create_timer(0.01, self.poll)
        self.get_logger().info(f"SpaceMouse on {path}")

    def poll(self) -> None:
        self.device.read_fd(now=time.monotonic())


def main(args: list[str] | None = None) -> None:
    run(SpaceMouseTeleop, args)


if __name__ == "__main__":
    main()
