"""sim_human_teleop: the simulated human as a teleop device on the ROS graph (simulation only).

Runs inside the sim_node process on the same world (it needs the true poses and the contact-based
mistake signal, like imgen_ros.sim.human.SimulatedHuman): while the policy drives it watches for
``env.mistake_detected()``; then it presses the takeover button (``teleop/engaged`` true, 50 Hz)
and drives ``teleop/command`` (20 Hz) with the privileged scripted expert (back off, then finish
the task on the true poses) until the episode ends. Not engaged, it sends zero motion with the
gripper as it is, so a takeover never jumps the gripper. ``/diagnostics``: watching or engaged, and
the interventions so far (always OK: a simulated device does not fail).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from std_msgs.msg import Bool

from imgen_msgs.msg import DeltaPoseCommand, EpisodeEvent
from imgen_ros.core import diagnostics as diag
from imgen_ros.core import topics
from imgen_ros.core.command import DeltaCommand, Source
from imgen_ros.core.params import check_fields, param
from imgen_ros.nodes._ros import attach_diagnostics, command_to_msg, declare_config, now_s, qos
from imgen_ros.sim.expert import ScriptedExpert

TERMINAL = (EpisodeEvent.EVENT_SUCCESS, EpisodeEvent.EVENT_FAILURE, EpisodeEvent.EVENT_ABORT)


@dataclass(frozen=True)
class SimHumanTeleopConfig:
    heartbeat_rate_hz: float = param(50.0, "teleop/engaged heartbeat rate [Hz]", "[1, 1000]")
    command_rate_hz: float = param(20.0, "teleop/command rate [Hz] (the 20 Hz control rate)", "[1, 100]")

    def __post_init__(self) -> None:
        check_fields(self)


class SimHumanTeleop(Node):
    def __init__(self, env, callback_group=None, **kwargs) -> None:
        super().__init__("sim_human_teleop", **kwargs)
        self.env = env
        self.config = declare_config(self, SimHumanTeleopConfig)
        self.human = ScriptedExpert(env, use_true_poses=True)
        self.engaged = False
        self.active = False
        self.episode_id = 0
        self.interventions = 0
        self.step = 0
        self.engaged_pub = self.create_publisher(Bool, topics.TELEOP_ENGAGED, qos(topics.TELEOP_ENGAGED))
        self.command_pub = self.create_publisher(DeltaPoseCommand, topics.TELEOP_COMMAND, qos(topics.TELEOP_COMMAND))
        self.create_subscription(EpisodeEvent, topics.EPISODE_EVENTS, self._on_event, qos(topics.EPISODE_EVENTS),
                                 callback_group=callback_group)
        self.create_timer(1.0 / self.get_parameter("heartbeat_rate_hz").value, self._heartbeat,
                          callback_group=callback_group)
        self.create_timer(1.0 / self.get_parameter("command_rate_hz").value, self._command,
                          callback_group=callback_group)
        attach_diagnostics(self, self._diagnostics, "sim", callback_group=callback_group)

    def _diagnostics(self) -> list[diag.Status]:
        state = "engaged" if self.engaged else "watching for a mistake" if self.active else "no episode"
        return [diag.flag_status("device", True, f"simulated human {state}; {self.interventions} interventions", "",
                                 {"engaged": str(self.engaged), "interventions": str(self.interventions)})]

    def _on_event(self, msg: EpisodeEvent) -> None:
        if msg.event == EpisodeEvent.EVENT_START and msg.episode_id != self.episode_id:
            self.episode_id, self.active, self.engaged, self.step = msg.episode_id, True, False, 0
            self.human.reset()
        elif msg.event in TERMINAL and msg.episode_id == self.episode_id:
            self.active = False
            self.engaged = False

    def _heartbeat(self) -> None:
        self.engaged_pub.publish(Bool(data=self.engaged))

    def _command(self) -> None:
        if self.active and not self.engaged and self.env.mistake_detected():
            self.engaged = True
            self.interventions += 1
            self.human.begin_recovery()
            self.get_logger().info(f"episode {self.episode_id}: mistake detected, taking over")
            self._heartbeat()
        if self.engaged:
            command = DeltaCommand.from_action(self.human.act(None), self.env.scale, source=Source.HUMAN,
                                               stamp=now_s(self), step=self.step)
        else:
            command = DeltaCommand(np.zeros(3), np.zeros(3), self.env.gripper_command, Source.HUMAN, now_s(self),
                                   self.step)
        self.step += 1
        self.command_pub.publish(command_to_msg(command))


def main(args: list[str] | None = None) -> None:
    raise SystemExit("sim_human_teleop needs the simulated world's true state: it runs inside sim_node "
                     "(parameter simulated_human: true), not as a process of its own")


if __name__ == "__main__":
    main()
