"""The part every teleop node shares (not a node): poll a teleop.TeleopDevice, publish
``teleop/command`` at 20 Hz and the takeover/deadman heartbeat ``teleop/engaged`` at 50 Hz.

A stale or disconnected device publishes nothing at all, so the arbiter's watchdog sees a dead
teleop and holds the robot (a supervisor who cannot take over must not let the policy drive).
``/diagnostics``: the device, OK while it reports, WARN while stale or dead.
"""

from __future__ import annotations

import time

from rclpy.node import Node
from std_msgs.msg import Bool

from imgen_msgs.msg import DeltaPoseCommand
from imgen_ros.core import diagnostics as diag
from imgen_ros.core import topics
from imgen_ros.core.command import DeltaCommand, Source
from imgen_ros.nodes._ros import attach_diagnostics, command_to_msg, declare_fixed, now_s, qos
from imgen_ros.teleop.device import TeleopCommand, TeleopDevice


class TeleopNode(Node):
    """Publishes a device's commands; subclasses feed the device (keys, evdev, Joy)."""

    def __init__(self, name: str, device: TeleopDevice, **kwargs) -> None:
        super().__init__(name, **kwargs)
        self.device = device
        command_rate = declare_fixed(self, "command_rate_hz", 20.0, "teleop/command rate [Hz] (the 20 Hz control rate)",
                                     "[1, 100]")
        heartbeat_rate = declare_fixed(self, "heartbeat_rate_hz", 50.0, "teleop/engaged heartbeat rate [Hz]",
                                       "[1, 1000]")
        self.step = 0
        self.latest: TeleopCommand | None = None
        self.alive = True          # subclasses clear it while the device is gone
        self.reporting = False     # the last poll gave a fresh command
        self.robot_gripper = -1.0  # the gripper last commanded to the robot (by anyone)
        self.command_pub = self.create_publisher(DeltaPoseCommand, topics.TELEOP_COMMAND, qos(topics.TELEOP_COMMAND))
        self.engaged_pub = self.create_publisher(Bool, topics.TELEOP_ENGAGED, qos(topics.TELEOP_ENGAGED))
        self.create_subscription(DeltaPoseCommand, topics.ROBOT_COMMAND, self._on_robot_command,
                                 qos(topics.ROBOT_COMMAND))
        self.create_timer(1.0 / command_rate, self._command)
        self.create_timer(1.0 / heartbeat_rate, self._heartbeat)
        attach_diagnostics(self, self._diagnostics, name.removesuffix("_teleop"))

    def _diagnostics(self) -> list[diag.Status]:
        engaged = self.latest is not None and self.latest.takeover
        state = "dead" if not self.alive else "stale" if not self.reporting else "reporting"
        return [diag.flag_status("device", self.alive and self.reporting,
                                 f"device reporting; takeover {'held' if engaged else 'released'}",
                                 f"device {state}: publishing nothing (the arbiter holds)",
                                 {"state": state, "engaged": str(engaged), "commands": str(self.step)})]

    def _on_robot_command(self, msg: DeltaPoseCommand) -> None:
        self.robot_gripper = msg.gripper

    def poll(self) -> None:
        """Read pending device input (override for polled devices)."""

    def _current(self) -> TeleopCommand | None:
        self.poll()
        self.reporting = False
        if not self.alive:
            return None
        cmd = self.device.command(time.monotonic())
        if cmd.takeover and not (self.latest is not None and self.latest.takeover):
            # take over with the gripper as the robot has it, so a held object is not dropped
            self.device.set_gripper(self.robot_gripper > 0)
            cmd = self.device.command(time.monotonic())
        if cmd.stale:
            self.get_logger().warning("teleop device stale: publishing nothing (the arbiter holds)",
                                      throttle_duration_sec=2.0)
            return None
        self.latest = cmd
        self.reporting = True
        return cmd

    def _heartbeat(self) -> None:
        cmd = self._current()
        if cmd is not None:
            self.engaged_pub.publish(Bool(data=bool(cmd.takeover)))

    def _command(self) -> None:
        cmd = self._current()
        if cmd is None:
            return
        command = DeltaCommand.from_action(cmd.action, source=Source.HUMAN, stamp=now_s(self), step=self.step)
        self.step += 1
        self.command_pub.publish(command_to_msg(command))

    def close(self) -> None:
        self.device.close()
