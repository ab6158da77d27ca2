"""Health of the graph for ``/diagnostics`` (ROS-free): status levels from documented thresholds.

Every node publishes about once a second one status per aspect (``nodes._ros.attach_diagnostics``
names it ``"<node fqn>: <aspect>"``); the functions here turn what a node measured into a
:class:`Status`. Levels follow ``diagnostic_msgs/DiagnosticStatus``: OK, WARN (degraded, still
working), ERROR (the node, or the robot because of it, is not doing its job). The thresholds
(documented in ``docs/ros.md``):

- input ages at the policy, by measurement stamp: robot state > 50 ms WARN (the real robot's
  state arrives every 4 ms, the simulator's every 20 ms), pose estimate > 0.2 s WARN; ERROR
  beyond the policy's own limits (``max_input_age_s`` 0.2 s, ``max_object_age_s`` 1 s), where it
  stops commanding; never received: WARN;
- policy loop: p99 |period error| over the last 100 ticks > 5 ms WARN, > half a period ERROR;
  p99 compute time > half a period WARN, > one period ERROR;
- arbiter: HOLD for a fault (``stale_*``, ``nan_pose``, ``nonfinite_*``, ``latched_*``) ERROR,
  HOLD waiting for an input WARN, other HOLDs (no episode, operator) and POLICY/HUMAN OK; more than
  10 % of the episode's commands clipped by the safety filter WARN;
- estimator (last 2 s of frames): fit rate < 50 % WARN, 0 % ERROR; last valid estimate older than
  0.2 s WARN, 1 s ERROR (as the policy's pose age); no depth frame for 1 s ERROR;
- driver: last robot state read > 0.1 s ago WARN, > 1 s ERROR; commands dropped as stale or
  refused in the last 5 s WARN;
- recorder: time since the open chunk was last closed > 2 x ``chunk_s`` WARN, > 5 x ERROR;
- contact detector: robot state age as the policy's; teleop: a stale or dead device WARN (it
  publishes nothing and the arbiter holds); sim_node: an injected fault WARN; generation server:
  the last goal failed WARN.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

PERIOD_S = 1.0            # publication period of /diagnostics
RECENT_WINDOW_S = 5.0     # counters "in the last 5 s"
FIT_WINDOW_S = 2.0        # the estimator's fit rate window
LOOP_WINDOW = 100         # policy ticks in the loop statistics


class Level(IntEnum):
    """Values match diagnostic_msgs/DiagnosticStatus."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


@dataclass(frozen=True)
class Threshold:
    """Higher is worse: above ``warn`` WARN, above ``error`` ERROR (NaN: WARN)."""

    warn: float
    error: float

    def level(self, value: float) -> Level:
        if math.isnan(value):
            return Level.WARN
        if value > self.error:
            return Level.ERROR
        return Level.WARN if value > self.warn else Level.OK


STATE_AGE_S = Threshold(0.05, 0.2)
POSE_AGE_S = Threshold(0.2, 1.0)
PERIOD_ERROR_P99_S = 0.005          # WARN above; ERROR above half a period
COMPUTE_P99_PERIODS = Threshold(0.5, 1.0)
CLIP_FRACTION_WARN = 0.1
FIT_RATE_WARN = 0.5
FRAME_AGE_ERROR_S = 1.0
DRIVER_STATE_AGE_S = Threshold(0.1, 1.0)
CHUNK_LAG_CHUNKS = Threshold(2.0, 5.0)
FAULT_PREFIXES = ("stale_", "nan_", "nonfinite_", "latched_")


@dataclass(frozen=True)
class Status:
    """One aspect of a node's health (a DiagnosticStatus without the node name)."""

    aspect: str
    level: Level
    message: str
    values: Mapping[str, str] = field(default_factory=dict)
    hardware_id: str | None = None     # None: the node's


def worst(levels: Iterable[Level]) -> Level:
    return max(levels, default=Level.OK)


def _fmt(value: float, unit: str = "s", scale: float = 1.0, digits: int = 3) -> str:
    return "never" if math.isinf(value) else f"{value * scale:.{digits}f} {unit}".rstrip()


class RecentEvents:
    """Times of events (drops, refusals) kept for ``window_s``; counts those still inside."""

    def __init__(self, window_s: float = RECENT_WINDOW_S) -> None:
        self.window_s = window_s
        self.total = 0
        self._times: deque[float] = deque()

    def add(self, now: float) -> None:
        self.total += 1
        self._times.append(now)

    def count(self, now: float) -> int:
        while self._times and self._times[0] < now - self.window_s:
            self._times.popleft()
        return len(self._times)


# ---------------------------------------------------------------- generic
def age_status(aspect: str, ages: Mapping[str, tuple[float, Threshold]]) -> Status:
    """Ages (s, inf = never received) of named inputs, each against its threshold."""
    levels, parts = [], []
    for name, (age, threshold) in ages.items():
        level = Level.WARN if math.isinf(age) else threshold.level(age)
        levels.append(level)
        parts.append(f"no {name} yet" if math.isinf(age) else
                     f"{name} {age * 1e3:.0f} ms old" + ("" if level == Level.OK else f" ({level.name})"))
    return Status(aspect, worst(levels), "; ".join(parts),
                  {f"{name}_age_s": "inf" if math.isinf(a) else f"{a:.4f}" for name, (a, _) in ages.items()})


def flag_status(aspect: str, ok: bool, ok_message: str, warn_message: str,
                values: Mapping[str, str] | None = None) -> Status:
    """A two-state status: OK or WARN."""
    return Status(aspect, Level.OK if ok else Level.WARN, ok_message if ok else warn_message, dict(values or {}))


# ---------------------------------------------------------------- arbiter
def arbiter_mode_status(mode: str, reason: str, episode_id: int, episode_active: bool) -> Status:
    """The control mode: a HOLD caused by a fault is ERROR, one waiting for an input WARN."""
    values = {"mode": mode, "reason": reason, "episode_id": str(episode_id), "episode_active": str(episode_active)}
    if mode == "HOLD" and reason.startswith(FAULT_PREFIXES):
        return Status("mode", Level.ERROR, f"HOLD: fault {reason}", values)
    if mode == "HOLD" and reason.startswith("waiting_for_"):
        return Status("mode", Level.WARN, f"HOLD: {reason}", values)
    return Status("mode", Level.OK, f"{mode} ({reason})", values)


def arbiter_clip_status(clipped: int, steps: int, clipped_total: int, last_clip: Sequence[str]) -> Status:
    """Commands the safety filter changed: WARN above 10 % of the episode's commands."""
    fraction = clipped / steps if steps else 0.0
    level = Level.WARN if fraction > CLIP_FRACTION_WARN else Level.OK
    message = f"{clipped} of {steps} commands clipped this episode ({fraction:.0%})"
    if last_clip:
        message += f"; last: {','.join(last_clip)}"
    return Status("safety clips", level, message, {"clipped_episode": str(clipped), "steps": str(steps),
                                                   "clipped_total": str(clipped_total),
                                                   "last_clip": ",".join(last_clip)})


# ---------------------------------------------------------------- policy
def policy_loop_status(period_errors_s: Sequence[float], compute_s: Sequence[float], rate_hz: float) -> Status:
    """p99 |period error| and p99 compute time of the last decisions against the control period."""
    period = 1.0 / rate_hz
    errors = np.abs(np.asarray([e for e in period_errors_s if math.isfinite(e)], float))
    compute = np.asarray([c for c in compute_s if math.isfinite(c)], float)
    if errors.size == 0 and compute.size == 0:
        return Status("loop", Level.OK, "no decisions yet", {"decisions": "0"})
    err99 = float(np.percentile(errors, 99)) if errors.size else 0.0
    comp99 = float(np.percentile(compute, 99)) if compute.size else 0.0
    err_level = Threshold(PERIOD_ERROR_P99_S, 0.5 * period).level(err99)
    comp_level = COMPUTE_P99_PERIODS.level(comp99 / period)
    message = (f"period error p99 {err99 * 1e3:.1f} ms, compute p99 {comp99 * 1e3:.1f} ms "
               f"(period {period * 1e3:.0f} ms, {compute.size} decisions)")
    values = {"period_error_p99_s": f"{err99:.5f}", "compute_p99_s": f"{comp99:.5f}",
              "compute_p50_s": f"{float(np.median(compute)) if compute.size else 0.0:.5f}",
              "decisions": str(max(errors.size, compute.size))}
    return Status("loop", worst((err_level, comp_level)), message, values)


def policy_input_status(state_age_s: float, pose_age_s: float, max_state_age_s: float,
                        max_pose_age_s: float) -> Status:
    """Ages of the newest robot state and valid pose estimate (by their stamps) at the policy; ERROR
    where the policy stops acting (its own limits)."""
    return age_status("inputs", {
        "robot state": (state_age_s, Threshold(min(STATE_AGE_S.warn, max_state_age_s), max_state_age_s)),
        "pose estimate": (pose_age_s, Threshold(min(POSE_AGE_S.warn, max_pose_age_s), max_pose_age_s))})


# ---------------------------------------------------------------- estimator
@dataclass(frozen=True)
class FitSample:
    """One published estimate (``t``: when it was published, seconds on the node's clock)."""

    t: float
    valid: bool
    reason: str
    fitness: float


def estimator_status(samples: Sequence[FitSample], now: float, last_valid_t: float | None,
                     window_s: float = FIT_WINDOW_S) -> Status:
    """Fit rate (valid estimates / frames over the last ``window_s``), fitness, rejections by reason,
    and the age of the last valid estimate (stale: WARN / ERROR as the policy's pose age)."""
    recent = [s for s in samples if s.t >= now - window_s]
    last_frame_age = now - samples[-1].t if samples else math.inf
    valid_age = math.inf if last_valid_t is None else now - last_valid_t
    rejections: dict[str, int] = {}
    for s in recent:
        if not s.valid:
            rejections[s.reason] = rejections.get(s.reason, 0) + 1
    fitness = [s.fitness for s in recent if s.valid and math.isfinite(s.fitness)]
    rate = sum(s.valid for s in recent) / len(recent) if recent else 0.0
    values = {"frames": str(len(recent)), "fit_rate": f"{rate:.3f}",
              "fitness_mean": f"{float(np.mean(fitness)):.3f}" if fitness else "nan",
              "last_valid_age_s": "inf" if math.isinf(valid_age) else f"{valid_age:.3f}",
              **{f"rejected_{reason}": str(n) for reason, n in sorted(rejections.items())}}
    if not samples:
        return Status("fit", Level.WARN, "no depth frame yet", values)
    if last_frame_age > FRAME_AGE_ERROR_S:
        return Status("fit", Level.ERROR, f"no depth frame for {last_frame_age:.1f} s", values)
    rate_level = Level.ERROR if rate == 0 else Level.WARN if rate < FIT_RATE_WARN else Level.OK
    age_level = Level.WARN if math.isinf(valid_age) else POSE_AGE_S.level(valid_age)
    message = f"fit rate {rate:.0%} of {len(recent)} frames"
    if fitness:
        message += f", fitness {np.mean(fitness):.2f}"
    if rejections:
        message += "; rejected: " + ", ".join(f"{r} {n}" for r, n in sorted(rejections.items()))
    if age_level != Level.OK:
        message += f"; last valid estimate {_fmt(valid_age, 's', digits=1)} ago"
    return Status("fit", worst((rate_level, age_level)), message, values)


# ---------------------------------------------------------------- driver
def driver_connection_status(driver: str, started: bool, state_age_s: float, last_error: str) -> Status:
    """The driver is started and its robot state is being read."""
    values = {"driver": driver, "started": str(started), "state_age_s": f"{state_age_s:.3f}",
              "last_error": last_error}
    if not started:
        return Status("connection", Level.ERROR, f"driver '{driver}' not started", values)
    level = Level.WARN if math.isinf(state_age_s) else DRIVER_STATE_AGE_S.level(state_age_s)
    message = f"driver '{driver}': " + ("no robot state read yet" if math.isinf(state_age_s)
                                        else f"robot state read {state_age_s * 1e3:.0f} ms ago")
    if level != Level.OK and last_error:
        message += f" ({last_error})"
    return Status("connection", level, message, values)


def driver_commands_status(executed: int, dropped: RecentEvents, refused: RecentEvents, now: float) -> Status:
    """Commands executed, dropped as stale and refused: WARN while any were dropped or refused in the
    last ``RECENT_WINDOW_S``."""
    recent_dropped, recent_refused = dropped.count(now), refused.count(now)
    level = Level.WARN if recent_dropped or recent_refused else Level.OK
    message = (f"{executed} executed; dropped stale {dropped.total} ({recent_dropped} in the last "
               f"{dropped.window_s:.0f} s); refused {refused.total} ({recent_refused} recent)")
    return Status("commands", level, message, {"executed": str(executed), "dropped_stale": str(dropped.total),
                                               "dropped_stale_recent": str(recent_dropped),
                                               "refused": str(refused.total), "refused_recent": str(recent_refused)})


# ---------------------------------------------------------------- recorder
def recorder_status(bag: str | None, bytes_written: int, chunk_lag_s: float, chunk_s: float,
                    episodes: int) -> Status:
    """The open bag, its size and the chunk lag (what a kill would lose) against ``chunk_s``."""
    values = {"bag": bag or "", "bytes": str(bytes_written), "chunk_lag_s": f"{chunk_lag_s:.3f}",
              "episodes": str(episodes)}
    if bag is None:
        return Status("recording", Level.OK, f"idle ({episodes} episodes recorded)", values)
    level = CHUNK_LAG_CHUNKS.level(chunk_lag_s / chunk_s)
    return Status("recording", level, f"{bag}: {bytes_written / 1e6:.2f} MB, chunk lag {chunk_lag_s:.1f} s "
                  f"(chunks of {chunk_s:g} s)", values)
