"""Human-gated control arbitration as a ROS-free state machine.

Modes (values match imgen_msgs/ControlState): POLICY (the learned policy drives), HUMAN (teleop
drives: an intervention), HOLD (nobody drives; the robot keeps its pose and gripper).

Rules, re-evaluated on every input and on a fast timer (``update``):

- No episode -> HOLD ``no_episode``. An operator HOLD (``set_mode(HOLD)``) -> HOLD until
  ``set_mode(POLICY|HUMAN)`` or a new episode.
- The teleop deadman/takeover (``on_engaged(True)``) or ``set_mode(HUMAN)`` -> HUMAN; release ->
  POLICY.
- Faults -> HOLD with the fault as reason: robot state stale or non-finite (any mode); teleop
  heartbeat stale (any mode while ``require_teleop_heartbeat``: a supervisor who cannot take over
  is no supervisor); in HUMAN, the teleop command stale; in POLICY, the policy command stale, the
  pose estimate stream stale (camera or estimator dead: ``stale_pose``), no *valid* estimate for
  ``valid_pose_timeout_s`` (invalid fits, e.g. the hand occluding the cube while grasping, are
  tolerated that long: the policy keeps the last valid pose; ``stale_valid_pose``), or an estimate
  marked valid but not finite (``nan_pose``). Several at once: the reason is the first of robot
  state, teleop, pose, valid pose, policy, the inputs before the ones that depend on them (a policy
  falls silent because its pose went stale: the HOLD stays ``stale_pose``).
- Until every input needed by the wanted mode has been seen once in the episode, HOLD
  ``waiting_for_<input>`` (not a fault). With ``latch_faults``, a fault after the episode was
  active stays HOLD until the human takes over (a fresh takeover edge) or an operator sets a mode.
- Every mode change is an event: ->HUMAN TAKEOVER, ->POLICY HANDBACK, ->HOLD HOLD; episodes emit
  START and SUCCESS/FAILURE/ABORT.

Every command leaving the arbiter passed ``SafetyFilter``; HOLD in an episode sends zero-delta
commands with the last gripper command (episodes start open); outside episodes nothing is sent and
the driver holds on its own.
Times are seconds on one clock (the node's), arrival times for the watchdog.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.command import DeltaCommand
from imgen_ros.core.params import check_fields, meta, param
from imgen_ros.core.safety import SafetyConfig, SafetyFilter
from imgen_ros.core.watchdog import Watchdog


class Mode(IntEnum):
    POLICY = 0
    HUMAN = 1
    HOLD = 2


class Event(IntEnum):
    """Values match imgen_msgs/EpisodeEvent.EVENT_*."""

    START = 0
    SUCCESS = 1
    FAILURE = 2
    ABORT = 3
    TAKEOVER = 4
    HANDBACK = 5
    HOLD = 6


TERMINAL_EVENTS = (Event.SUCCESS, Event.FAILURE, Event.ABORT)

POLICY_INPUT, TELEOP_HEARTBEAT, TELEOP_COMMAND, ROBOT_STATE, POSE, VALID_POSE = (
    "policy", "teleop", "teleop_command", "robot_state", "pose", "valid_pose")


@dataclass(frozen=True)
class ArbiterConfig:
    """Time-outs (s) per input, arbitration policy and the safety limits.

    ``safety`` is required: a node refuses to start unless every ``safety.*`` parameter is given
    (parameter file, ``-p`` rule or parameter_overrides), so it never runs on code defaults."""

    task: str = param("block_grasp", "task name reported in episode events when start_episode names none")
    policy_timeout_s: float = param(0.075, "policy command stale after this long: HOLD [s]", "(0, 1)", live=True)
    teleop_timeout_s: float = param(0.075, "teleop heartbeat / command stale after this long: HOLD [s]", "(0, 1)",
                                    live=True)
    robot_state_timeout_s: float = param(0.075, "robot state stale after this long: HOLD [s]", "(0, 1)", live=True)
    pose_timeout_s: float = param(0.075, "object pose stream stale after this long: HOLD [s]", "(0, 1)", live=True)
    valid_pose_timeout_s: float = param(
        1.0, "no valid pose estimate for this long: HOLD [s] (bridges occlusions while grasping)", "(0, 2]",
        live=True)
    require_teleop_heartbeat: bool = param(True, "a stale teleop heartbeat holds the robot in every mode")
    latch_faults: bool = param(True, "after a fault, HOLD until a takeover or an operator sets a mode")
    safety: SafetyConfig = field(default_factory=SafetyConfig, metadata=meta("safety filter limits", required=True))

    def __post_init__(self) -> None:
        check_fields(self)

    def timeouts(self) -> dict[str, float]:
        return {POLICY_INPUT: self.policy_timeout_s, TELEOP_HEARTBEAT: self.teleop_timeout_s,
                TELEOP_COMMAND: self.teleop_timeout_s, ROBOT_STATE: self.robot_state_timeout_s,
                POSE: self.pose_timeout_s, VALID_POSE: self.valid_pose_timeout_s}


@dataclass(frozen=True)
class EpisodeEventData:
    event: Event
    episode_id: int
    step: int
    reason: str
    task: str


@dataclass
class Output:
    """What a call asks the node to publish."""

    command: DeltaCommand | None = None
    events: list[EpisodeEventData] = field(default_factory=list)
    state_changed: bool = False


class Arbiter:
    """The arbitration state machine; one instance per node."""

    def __init__(self, config: ArbiterConfig | None = None) -> None:
        self.config = config or ArbiterConfig()
        self.safety = SafetyFilter(self.config.safety)
        self.watchdog = Watchdog(self.config.timeouts())
        self.mode = Mode.HOLD
        self.reason = "no_episode"
        self.episode_id = 0
        self.episode_active = False
        self.task = self.config.task
        self.step = 0
        self.engaged = False
        self._forced_human = False
        self._operator_hold: str | None = None
        self._latched: str | None = None
        self._was_active = False
        self._pose_fault: str | None = None
        self._tcp: NDArray[np.float64] | None = None
        self._tcp_time: float | None = None
        self.last_violations: tuple[str, ...] = ()
        self.clipped = 0          # commands of the current episode the safety filter changed
        self.clipped_total = 0    # ... since the arbiter started
        self.last_clip: tuple[str, ...] = ()

    # ------------------------------------------------------------------ episodes and operator
    def start_episode(self, now: float, task: str = "") -> Output:
        out = Output()
        if self.episode_active:
            out.events.append(self._event(Event.ABORT, "new_episode_started"))
        self.episode_id += 1
        self.episode_active = True
        self.task = task or self.config.task
        self.step = 0
        self.clipped = 0
        self.safety.last_gripper = -1.0   # episodes start with the gripper open (as the policy assumes)
        self._forced_human = False
        self._operator_hold = None
        self._latched = None
        self._was_active = False
        for name in (POLICY_INPUT, POSE, VALID_POSE, TELEOP_COMMAND):
            self.watchdog.forget(name)   # the new episode's inputs must arrive afresh
        out.events.append(self._event(Event.START, "episode_start"))
        self._merge(out, self.update(now))
        out.state_changed = True
        return out

    def stop_episode(self, outcome: Event, reason: str, now: float) -> Output:
        if outcome not in TERMINAL_EVENTS:
            raise ValueError(f"episode outcome must be one of {[e.name for e in TERMINAL_EVENTS]}, got {outcome!r}")
        if not self.episode_active:
            raise RuntimeError("no episode is active")
        out = Output(events=[self._event(outcome, reason)])
        self.episode_active = False
        self._merge(out, self.update(now))
        return out

    def set_mode(self, mode: Mode, reason: str, now: float) -> tuple[Output, str]:
        """Operator request; returns the output and a message. The resulting mode is ``self.mode``."""
        mode = Mode(mode)
        self._latched = None
        if mode == Mode.HOLD:
            self._operator_hold = reason or "operator_hold"
            self._forced_human = False
        else:
            self._operator_hold = None
            self._forced_human = mode == Mode.HUMAN
        out = self.update(now)
        msg = f"mode {self.mode.name} ({self.reason})"
        return out, msg

    # ------------------------------------------------------------------ inputs
    def on_robot_state(self, tcp_position: NDArray[np.float64], now: float) -> Output:
        self._tcp = np.asarray(tcp_position, float).copy()
        self._tcp_time = now
        self.watchdog.feed(ROBOT_STATE, now)
        return self.update(now)

    def on_pose(self, valid: bool, finite: bool, now: float) -> Output:
        """A pose estimate arrived: any one shows the camera and estimator are alive; a valid one
        refreshes the pose the policy may use; one marked valid but not finite is a fault."""
        self.watchdog.feed(POSE, now)
        if valid and not finite:
            self._pose_fault = "nan_pose"
        elif valid:
            self._pose_fault = None
            self.watchdog.feed(VALID_POSE, now)
        return self.update(now)

    def on_engaged(self, engaged: bool, now: float) -> Output:
        """Teleop heartbeat with the deadman/takeover state."""
        self.watchdog.feed(TELEOP_HEARTBEAT, now)
        if engaged and not self.engaged and self._latched is not None:
            self._latched = None      # a fresh takeover is how a human clears a latched fault
        self.engaged = bool(engaged)
        return self.update(now)

    def on_policy_command(self, command: DeltaCommand, now: float) -> Output:
        self.watchdog.feed(POLICY_INPUT, now)
        out = self.update(now)
        if self.mode == Mode.POLICY:
            out.command = self._filtered(command, now)
        return out

    def on_teleop_command(self, command: DeltaCommand, now: float) -> Output:
        self.watchdog.feed(TELEOP_COMMAND, now)
        out = self.update(now)
        if self.mode == Mode.HUMAN:
            out.command = self._filtered(command, now)
        return out

    def hold_tick(self, now: float) -> Output:
        """Periodic (20 Hz) tick: in HOLD during an episode, emit a hold command so the driver keeps a
        fresh command. Outside episodes nothing is commanded (the driver holds on its own)."""
        out = self.update(now)
        if self.mode == Mode.HOLD and self.episode_active and out.command is None:
            out.command = self._hold_command(now)
        return out

    # ------------------------------------------------------------------ evaluation
    def update(self, now: float) -> Output:
        """Re-evaluate the mode; on a change, emit its event and (into HOLD) a hold command at once."""
        mode, reason = self._evaluate(now)
        out = Output()
        if mode == self.mode and reason == self.reason:
            return out
        previous = self.mode
        self.mode, self.reason = mode, reason
        out.state_changed = True
        if mode in (Mode.POLICY, Mode.HUMAN):
            self._was_active = True
        if mode != previous and self.episode_active:
            event = {Mode.HUMAN: Event.TAKEOVER, Mode.POLICY: Event.HANDBACK, Mode.HOLD: Event.HOLD}[mode]
            out.events.append(self._event(event, reason))
        if mode == Mode.HOLD and previous != Mode.HOLD and self.episode_active:
            out.command = self._hold_command(now)
        return out

    def _evaluate(self, now: float) -> tuple[Mode, str]:
        cfg = self.config
        if not self.episode_active:
            return Mode.HOLD, "no_episode"
        if self._operator_hold is not None:
            return Mode.HOLD, self._operator_hold
        wd = self.watchdog
        heartbeat_ok = not wd.is_stale(TELEOP_HEARTBEAT, now)
        want_human = self._forced_human or (self.engaged and heartbeat_ok)
        needed = [ROBOT_STATE]
        if cfg.require_teleop_heartbeat or want_human:
            needed.append(TELEOP_HEARTBEAT)
        # causes before effects: a policy stops commanding when its pose goes stale, so a stale pose names the HOLD
        needed += [TELEOP_COMMAND] if want_human else [POSE, VALID_POSE, POLICY_INPUT]
        for name in needed:
            if wd.age(name, now) == float("inf"):
                return Mode.HOLD, f"waiting_for_{name}"
        faults = [f"stale_{name}" for name in wd.stale(now, needed)]
        if self._tcp is not None and not np.all(np.isfinite(self._tcp)):
            faults.insert(0, "nonfinite_robot_state")
        if not want_human and self._pose_fault is not None:
            faults.insert(0, self._pose_fault)
        if faults:
            if cfg.latch_faults and self._was_active and self._latched is None:
                self._latched = faults[0]
            return Mode.HOLD, faults[0]
        if self._latched is not None:
            return Mode.HOLD, f"latched_{self._latched}"
        if want_human:
            return Mode.HUMAN, "operator_human" if self._forced_human else "takeover_button"
        return Mode.POLICY, "policy"

    # ------------------------------------------------------------------ helpers
    def _filtered(self, command: DeltaCommand, now: float) -> DeltaCommand:
        result = self.safety.filter(command, self._tcp, now, self._tcp_time)
        self.last_violations = result.violations
        if result.violations and not result.hold:   # a command that was changed, not refused
            self.clipped += 1
            self.clipped_total += 1
            self.last_clip = result.violations
        return self._count(result.command)

    def _hold_command(self, now: float) -> DeltaCommand:
        return self._count(self.safety.hold(now))

    def _count(self, command: DeltaCommand) -> DeltaCommand:
        stamped = DeltaCommand(command.translation, command.rotation, command.gripper, command.source,
                               command.stamp, self.step)
        if self.episode_active:
            self.step += 1
        return stamped

    def _event(self, event: Event, reason: str) -> EpisodeEventData:
        return EpisodeEventData(event, self.episode_id, self.step, reason, self.task)

    @staticmethod
    def _merge(into: Output, other: Output) -> None:
        into.events.extend(other.events)
        into.command = other.command or into.command
        into.state_changed = into.state_changed or other.state_changed
