"""sim_human_teleop: the simulated human as a teleop device on the ROS graph (simulation only).

Runs inside the sim_node process on the same world (it needs the true poses). Parameter ``model``
picks the human, as ``--human`` does for experiments (imgen_ros.sim.human):

- ``operator`` (default): the :class:`~imgen_ros.sim.operator.SimulatedOperator` watches the robot
  the policy drives over DDS for what a person sees going wrong, reacts after its sampled delay and
  then teleoperates on the true poses with human kinematics;
- ``oracle``: takes over the moment ``env.mistake_detected()`` fires and recovers with the
  privileged scripted expert.

Once it takes over it presses the takeover button (``teleop/engaged`` true, 50 Hz) and drives
``teleop/command`` (20 Hz) until the episode ends. Not engaged, it sends zero motion with the
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
from imgen_ros.sim.human import DEFAULT_HUMAN, HUMAN_MODELS
from imgen_ros.sim.operator import SimulatedOperator

TERMINAL = (EpisodeEvent.EVENT_SUCCESS, EpisodeEvent.EVENT_FAILURE, EpisodeEvent.EVENT_ABORT)


@dataclass(frozen=True)
class SimHumanTeleopConfig:
    heartbeat_rate_hz: float = param(50.0, "teleop/engaged heartbeat rate [Hz]", "[1, 1000]")
    command_rate_hz: float = param(20.0, "teleop/command rate [Hz] (the 20 Hz control rate)", "[1, 100]")
    model: str = param(DEFAULT_HUMAN, "simulated human: operator (sees failures late, teleoperates like a "
                       "person) or oracle (the generator's mistake detector + scripted expert)", choices=HUMAN_MODELS)

    def __post_init__(self) -> None:
        check_fields(self)


class SimHumanTeleop(Node):
    def __init__(self, env, callback_group=None, **kwargs) -> None:
        super().__init__("sim_human_teleop", **kwargs)
        self.env = env
        self.config = declare_config(self, SimHumanTeleopConfig)
        self.model = self.config.model
        self.human = ScriptedExpert(env, use_true_poses=True)
        self.operator = SimulatedOperator(env, _DrivenOverDds())
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
            self.operator.reset()  # the episode's generator: sim_node reset the env to its seed first
        elif msg.event in TERMINAL and msg.episode_id == self.episode_id:
            self.active = False
            self.engaged = False

    def _heartbeat(self) -> None:
        self.engaged_pub.publish(Bool(data=self.engaged))

    def _decide(self) -> np.ndarray | None:
        """This tick's human action once the human has taken over (None while it only watches)."""
        if self.model == "operator":
            action = self.operator.act(None) if self.active else None
            if self.operator.is_intervening and not self.engaged:
                self._take_over(f"saw {self.operator.cue.kind if self.operator.cue else 'a failure'}")
            return action if self.engaged else None
        if self.active and not self.engaged and self.env.mistake_detected():
            self.human.begin_recovery()
            self._take_over("mistake detected")
        return self.human.act(None) if self.engaged else None

    def _take_over(self, why: str) -> None:
        self.engaged = True
        self.interventions += 1
        self.get_logger().info(f"episode {self.episode_id}: {why}, taking over")
        self._heartbeat()

    def _command(self) -> None:
        action = self._decide()
        if action is not None:
            command = DeltaCommand.from_action(action, self.env.scale, source=Source.HUMAN,
                                               stamp=now_s(self), step=self.step)
        else:
            command = DeltaCommand(np.zeros(3), np.zeros(3), self.env.gripper_command, Source.HUMAN, now_s(self),
                                   self.step)
        self.step += 1
        self.command_pub.publish(command_to_msg(command))


class _DrivenOverDds:
    """The robot policy of the operator's human gating: it acts over DDS, not through this object, so the
    operator only watches the world until it takes over (its action is never sent)."""

    def reset(self) -> None:
        pass

    def act(self, obs: object) -> np.ndarray:
        return np.zeros(7)


def main(args: list[str] | None = None) -> None:
    raise SystemExit("sim_human_teleop needs the simulated world's true state: it runs inside sim_node "
                     "(parameter simulated_human: true), not as a process of its own")


if __name__ == "__main__":
    main()
