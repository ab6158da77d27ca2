"""intervention_arbiter: human-gated control between the policy and teleop (logic: core.arbiter).

Subscribes ``policy/command``, ``teleop/command``, ``teleop/engaged`` (deadman/takeover),
``robot_state`` and ``object_pose``; publishes safety-filtered ``robot/command``, ``control_state``
(on change and at 20 Hz) and ``episode_events``; serves ``start_episode``, ``stop_episode`` and
``set_control_mode``. A 200 Hz watchdog tick turns stale inputs into HOLD within time-out (75 ms) + 5 ms.
All callbacks share the node's mutually exclusive group, so the state machine sees one input at
a time. On the robot run it SCHED_FIFO (the real launch file's ``chrt -f`` prefix) so that other
load cannot delay the watchdog. The input time-outs (``*_timeout_s``) are live parameters: a set
within their range re-times the watchdog at once. ``/diagnostics``: mode (a fault HOLD is ERROR),
safety clips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from std_msgs.msg import Bool

from imgen_msgs.msg import ControlState, DeltaPoseCommand, EpisodeEvent, ObjectPoseEstimate, RobotState
from imgen_msgs.srv import SetControlMode, StartEpisode, StopEpisode
from imgen_ros.core import diagnostics as diag
from imgen_ros.core import topics
from imgen_ros.core.arbiter import Arbiter, ArbiterConfig, Event, Mode, Output
from imgen_ros.core.params import param
from imgen_ros.nodes._ros import (
    attach_diagnostics,
    command_from_msg,
    command_to_msg,
    declare_config,
    now_s,
    pose_msg_arrays,
    qos,
    run,
)
from imgen_ros.nodes._ros import to_stamp as _stamp


@dataclass(frozen=True)
class ArbiterNodeConfig(ArbiterConfig):
    """The arbitration config plus the node's loop rates (same flat parameter names)."""

    watchdog_rate_hz: float = param(200.0, "watchdog tick: stale inputs become HOLD within one tick [Hz]",
                                    "[50, 1000]")
    state_rate_hz: float = param(20.0, "control_state publication rate (also on every change) [Hz]", "[1, 100]")


class InterventionArbiter(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("intervention_arbiter", **kwargs)
        self.config = declare_config(self, ArbiterNodeConfig, on_change=self._reconfigure)
        self.arbiter = Arbiter(self.config)
        self.command_pub = self.create_publisher(DeltaPoseCommand, topics.ROBOT_COMMAND, qos(topics.ROBOT_COMMAND))
        self.state_pub = self.create_publisher(ControlState, topics.CONTROL_STATE, qos(topics.CONTROL_STATE))
        self.event_pub = self.create_publisher(EpisodeEvent, topics.EPISODE_EVENTS, qos(topics.EPISODE_EVENTS))
        self.create_subscription(DeltaPoseCommand, topics.POLICY_COMMAND, self._on_policy, qos(topics.POLICY_COMMAND))
        self.create_subscription(DeltaPoseCommand, topics.TELEOP_COMMAND, self._on_teleop, qos(topics.TELEOP_COMMAND))
        self.create_subscription(Bool, topics.TELEOP_ENGAGED, self._on_engaged, qos(topics.TELEOP_ENGAGED))
        self.create_subscription(RobotState, topics.ROBOT_STATE, self._on_robot_state, qos(topics.ROBOT_STATE))
        self.create_subscription(ObjectPoseEstimate, topics.OBJECT_POSE, self._on_pose, qos(topics.OBJECT_POSE))
        self.create_service(StartEpisode, topics.START_EPISODE, self._start_episode)
        self.create_service(StopEpisode, topics.STOP_EPISODE, self._stop_episode)
        self.create_service(SetControlMode, topics.SET_CONTROL_MODE, self._set_mode)
        self.create_timer(1.0 / self.get_parameter("watchdog_rate_hz").value, self._watchdog_tick)
        self.create_timer(1.0 / self.get_parameter("state_rate_hz").value, self._state_tick)
        attach_diagnostics(self, self._diagnostics, "fr3")
        self._emit(Output(state_changed=True))

    def _reconfigure(self, config: ArbiterNodeConfig) -> None:
        """Live time-outs: the watchdog is re-timed (arrival times kept) and the mode re-evaluated."""
        self.arbiter.watchdog.retime(config.timeouts())
        self.arbiter.config = self.config = config
        self._emit(self.arbiter.update(now_s(self)))

    def _diagnostics(self) -> list[diag.Status]:
        a = self.arbiter
        return [diag.arbiter_mode_status(a.mode.name, a.reason, a.episode_id, a.episode_active),
                diag.arbiter_clip_status(a.clipped, a.step, a.clipped_total, a.last_clip)]

    # ---------------------------------------------------------------- inputs
    def _on_policy(self, msg: DeltaPoseCommand) -> None:
        self._emit(self.arbiter.on_policy_command(command_from_msg(msg), now_s(self)))

    def _on_teleop(self, msg: DeltaPoseCommand) -> None:
        self._emit(self.arbiter.on_teleop_command(command_from_msg(msg), now_s(self)))

    def _on_engaged(self, msg: Bool) -> None:
        self._emit(self.arbiter.on_engaged(msg.data, now_s(self)))

    def _on_robot_state(self, msg: RobotState) -> None:
        position, _ = pose_msg_arrays(msg.tcp_pose)
        self._emit(self.arbiter.on_robot_state(position, now_s(self)))

    def _on_pose(self, msg: ObjectPoseEstimate) -> None:
        position, quat = pose_msg_arrays(msg.pose)
        finite = bool(np.all(np.isfinite(position)) and np.all(np.isfinite(quat)))
        self._emit(self.arbiter.on_pose(msg.valid, finite, now_s(self)))

    def _watchdog_tick(self) -> None:
        self._emit(self.arbiter.update(now_s(self)))

    def _state_tick(self) -> None:
        out = self.arbiter.hold_tick(now_s(self))
        out.state_changed = True   # ControlState at 20 Hz, not only on change
        self._emit(out)

    # ---------------------------------------------------------------- services
    def _start_episode(self, request: StartEpisode.Request, response: StartEpisode.Response):
        self._emit(self.arbiter.start_episode(now_s(self), request.task))
        response.success = True
        response.episode_id = self.arbiter.episode_id
        response.message = f"episode {self.arbiter.episode_id} ({self.arbiter.task}) started"
        self.get_logger().info(response.message)
        return response

    def _stop_episode(self, request: StopEpisode.Request, response: StopEpisode.Response):
        response.episode_id = self.arbiter.episode_id
        try:
            self._emit(self.arbiter.stop_episode(Event(request.outcome), request.reason, now_s(self)))
        except (ValueError, RuntimeError) as exc:
            response.success = False
            response.message = str(exc)
            return response
        response.success = True
        response.message = f"episode {response.episode_id} ended: {Event(request.outcome).name} {request.reason}"
        self.get_logger().info(response.message)
        return response

    def _set_mode(self, request: SetControlMode.Request, response: SetControlMode.Response):
        try:
            mode = Mode(request.mode)
        except ValueError:
            response.success = False
            response.mode = int(self.arbiter.mode)
            response.message = f"unknown mode {request.mode}; use 0 POLICY, 1 HUMAN, 2 HOLD"
            return response
        out, message = self.arbiter.set_mode(mode, request.reason, now_s(self))
        self._emit(out)
        response.success = self.arbiter.mode == mode
        response.mode = int(self.arbiter.mode)
        response.message = message
        return response

    # ---------------------------------------------------------------- outputs
    def _emit(self, out: Output) -> None:
        if out.command is not None:
            self.command_pub.publish(command_to_msg(out.command))
        for ev in out.events:
            msg = EpisodeEvent()
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.header.frame_id = topics.BASE_FRAME
            msg.episode_id, msg.task, msg.event, msg.step, msg.reason = (
                ev.episode_id, ev.task, int(ev.event), ev.step, ev.reason)
            self.event_pub.publish(msg)
        if out.state_changed:
            a = self.arbiter
            msg = ControlState()
            msg.header.stamp = _stamp(now_s(self))
            msg.header.frame_id = topics.BASE_FRAME
            msg.mode, msg.episode_id, msg.step, msg.reason = int(a.mode), a.episode_id, a.step, a.reason
            msg.clipped_commands, msg.last_clip = a.clipped, ",".join(a.last_clip)
            self.state_pub.publish(msg)


def main(args: list[str] | None = None) -> None:
    run(InterventionArbiter, args)


if __name__ == "__main__":
    main()
