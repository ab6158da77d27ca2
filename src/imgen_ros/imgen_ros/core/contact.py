"""One definition of "the robot touched the object", from signals the FR3 measures (ROS-free).

The observability channel (the paper's "additional observation information upon contact", a
surrogate for force-torque sensing) opens when this detector fires. Simulation (``sim.env`` on
``sim.wrench``'s estimate), evaluation and the real graph (``nodes.contact_detector`` on
``robot_state``) all run this class, so training data, evaluation and deployment share it.

Inputs, per robot-state sample (``ContactSample``):

* ``wrench``: the estimated external wrench at the TCP in the base frame, force (N) then torque
  (N m), with libfranka's sign for ``O_F_ext_hat_K``: the wrench the robot applies to the
  environment (libfranka's RobotState docs; libfranka#26: pulling the hand down reads as an upward
  force). A finger pressing down on the cube reads f_z < 0. NaN = not measured. Only the force is
  used: its magnitude does not depend on the sign convention or on where the contact is.
* ``tcp_z``: TCP height in the base frame (m); ``gripper_width``: finger distance (m).

Two cues, each debounced (``debounce_samples`` consecutive samples):

* **force**: ``|f - baseline| >= force_enter_n`` (a Schmitt trigger: once on, it stays on until the
  magnitude falls below ``force_exit_n``). The baseline is the mean force of the first
  ``baseline_samples`` finite samples of the episode, taken in free space: the FR3's estimate carries
  a few N of bias that drifts with pose and payload, and zeroing it at the start of every episode
  removes most of it (``baseline_samples: 0`` disables zeroing). The cue is gated by height: it only
  counts while the TCP is at least ``min_tcp_height_m`` above the table plane ``table_z_m``. A finger
  landing on the 5 cm cube holds the TCP ~6 cm up, while the hand touching the table holds it below
  ~1.5 cm; both press upward with tens of N and the force's direction cannot tell them apart, so
  the height does: a table touch is not an object contact and reveals nothing.
* **grasp**: the fingers stopped on something: width within ``[grasp_min_width_m, grasp_max_width_m]``
  (not fully open, not closed on nothing) and changing slower than ``grasp_max_speed_mps``. The FR3's
  estimate cannot see a grasp (the squeeze is internal to the hand), the width can.

The detector latches: ``detected`` stays true for the rest of the episode (``reset`` at START).
Unknown inputs never detect: a NaN wrench disables the force cue for that sample (and is not used for
the baseline), a NaN width the grasp cue, a NaN height the force cue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from imgen_ros.core.params import check_fields, param

CUES = ("", "force", "grasp")


@dataclass(frozen=True)
class ContactDetectorConfig:
    """Thresholds of the contact detector (``detector.*`` in ``config/contact_detector.yaml``).

    Defaults are set for the FR3 + Franka Hand on Block Grasp. A finger landing on the cube reads
    60-180 N in simulation (a stiff position servo) and up to the collision threshold (30 N in
    ``robot.libfranka``) on the FR3; a finger grazing a cube edge 15-30 N. In free motion the
    simulated estimate (``sim.wrench``) stays below 4.5 N after zeroing (2,445 free-space samples of
    20 noisy simulated-human episodes, p99 3.6 N), so 10 N enters and 5 N leaves with a margin both
    ways."""

    force_enter_n: float = param(10.0, "force magnitude (baseline removed) that turns the force cue on [N]",
                                 "(0, 100]")
    force_exit_n: float = param(5.0, "magnitude below which an on force cue turns off (hysteresis) [N]", "(0, 100]")
    debounce_samples: int = param(2, "consecutive samples a cue must hold before contact is declared", "[1, 1000]")
    baseline_samples: int = param(5, "free-space samples averaged into the force baseline at episode start "
                                  "(0: no zeroing)", "[0, 10000]")
    table_z_m: float = param(0.0, "height of the table plane in the base frame [m]", "[-1, 1]")
    min_tcp_height_m: float = param(0.03, "the force cue counts only with the TCP this far above the table [m]",
                                    "[0, 1]")
    use_grasp: bool = param(True, "also detect contact from the fingers stopping on an object (width)")
    grasp_min_width_m: float = param(0.01, "narrower: the gripper closed on nothing [m]", "[0, 0.08]")
    grasp_max_width_m: float = param(0.075, "wider: the gripper is open [m]", "[0, 0.1]")
    grasp_max_speed_mps: float = param(0.02, "the fingers count as stopped below this width speed [m/s]",
                                       "(0, 1]")

    def __post_init__(self) -> None:
        check_fields(self)
        if self.force_exit_n > self.force_enter_n:
            raise ValueError(f"contact detector: force_exit_n ({self.force_exit_n}) must not exceed "
                             f"force_enter_n ({self.force_enter_n})")
        if self.grasp_min_width_m >= self.grasp_max_width_m:
            raise ValueError(f"contact detector: grasp_min_width_m ({self.grasp_min_width_m}) must be below "
                             f"grasp_max_width_m ({self.grasp_max_width_m})")


@dataclass(frozen=True)
class ContactSample:
    """One robot-state sample (see the module docstring for units and signs); ``wrench`` is (6,) or
    just its force (3,)."""

    stamp_s: float
    wrench: NDArray[np.float64]
    tcp_z: float
    gripper_width: float


STATE_SIZE = 12


class ContactDetector:
    """Debounced, hysteretic, latched contact detection over a stream of ``ContactSample``."""

    def __init__(self, config: ContactDetectorConfig | None = None) -> None:
        self.config = config or ContactDetectorConfig()
        self.reset()

    def reset(self) -> None:
        """A new episode: forget the baseline, the debounce counters and the latch."""
        self._base_n = 0
        self._base_sum = np.zeros(3)
        self._force_on = False
        self._force_count = 0
        self._grasp_count = 0
        self._prev_width = math.nan
        self._prev_stamp = math.nan
        self._cue = 0
        self._detected_stamp = math.nan
        self.force_n = math.nan  # last baseline-free force magnitude (diagnostics)

    # ---------------------------------------------------------------- results
    @property
    def detected(self) -> bool:
        """Contact happened in this episode (latched)."""
        return self._cue != 0

    @property
    def cue(self) -> str:
        """Which cue fired first: ``"force"``, ``"grasp"`` or ``""`` (none yet)."""
        return CUES[self._cue]

    @property
    def detected_stamp_s(self) -> float:
        """Stamp of the sample that completed the detection (NaN before)."""
        return self._detected_stamp

    @property
    def baseline(self) -> NDArray[np.float64] | None:
        """The force baseline (3,) once taken (zeros with ``baseline_samples: 0``), else None."""
        need = self.config.baseline_samples
        if need == 0:
            return np.zeros(3)
        return self._base_sum / self._base_n if self._base_n >= need else None

    # ---------------------------------------------------------------- the update
    def update(self, sample: ContactSample) -> bool:
        """Feed one sample; returns ``detected``."""
        cfg = self.config
        force_on = self._force_cue(sample)
        self._force_count = self._force_count + 1 if force_on else 0
        grasp_ok = self._grasp_cue(sample)
        self._grasp_count = self._grasp_count + 1 if grasp_ok else 0
        if self._cue == 0:
            if self._force_count >= cfg.debounce_samples:
                self._cue, self._detected_stamp = 1, float(sample.stamp_s)
            elif cfg.use_grasp and self._grasp_count >= cfg.debounce_samples:
                self._cue, self._detected_stamp = 2, float(sample.stamp_s)
        return self._cue != 0

    def update_batch(self, stamps: ArrayLike, wrench: ArrayLike, tcp_z: ArrayLike, gripper_width: ArrayLike) -> bool:
        """``update`` on k samples at once (stamps (k,), wrench (k, 6) or just its force (k, 3), tcp_z
        (k,), widths (k,)), with the same result. A quiet batch (baseline taken, every force magnitude
        finite and below ``force_exit_n``, every width outside the grasp window) is settled without the
        per-sample loop: no cue can be on in it."""
        stamps = np.asarray(stamps, dtype=float)
        k = len(stamps)
        if k == 0:
            return self.detected
        force_in = np.asarray(wrench, dtype=float).reshape(k, -1)[:, :3]
        tcp_z, widths = np.asarray(tcp_z, dtype=float), np.asarray(gripper_width, dtype=float)
        cfg = self.config
        if self._base_n >= cfg.baseline_samples:
            force = force_in - self._base_sum / self._base_n if cfg.baseline_samples else force_in
            squared = np.einsum("ij,ij->i", force, force)
            quiet = not np.any((widths >= cfg.grasp_min_width_m) & (widths <= cfg.grasp_max_width_m))
            if quiet and np.all(squared < cfg.force_exit_n * cfg.force_exit_n):  # False if any NaN
                self._force_on, self._force_count, self._grasp_count = False, 0, 0
                self._prev_width, self._prev_stamp = float(widths[-1]), float(stamps[-1])
                self.force_n = math.sqrt(float(squared[-1]))
                return self.detected
        for i in range(k):
            self.update(ContactSample(float(stamps[i]), force_in[i], float(tcp_z[i]), float(widths[i])))
        return self.detected

    def _force_cue(self, sample: ContactSample) -> bool:
        cfg = self.config
        w = np.asarray(sample.wrench, dtype=float)
        f = w[:3]
        if not (f[0] == f[0] and f[1] == f[1] and f[2] == f[2]):  # NaN: unknown wrench
            self._force_on = False
            self.force_n = math.nan
            return False
        if self._base_n < cfg.baseline_samples:
            self._base_sum += f
            self._base_n += 1
            self._force_on = False
            return False
        if cfg.baseline_samples:
            f = f - self._base_sum / self._base_n
        magnitude = math.sqrt(float(f[0] * f[0] + f[1] * f[1] + f[2] * f[2]))
        self.force_n = magnitude
        above_table = float(sample.tcp_z) - cfg.table_z_m >= cfg.min_tcp_height_m  # False for NaN
        if not above_table:
            self._force_on = False
        elif self._force_on:
            self._force_on = magnitude >= cfg.force_exit_n
        else:
            self._force_on = magnitude >= cfg.force_enter_n
        return self._force_on

    def _grasp_cue(self, sample: ContactSample) -> bool:
        cfg = self.config
        width, stamp = float(sample.gripper_width), float(sample.stamp_s)
        prev_width, prev_stamp = self._prev_width, self._prev_stamp
        self._prev_width, self._prev_stamp = width, stamp
        if not cfg.grasp_min_width_m <= width <= cfg.grasp_max_width_m:  # False for NaN
            return False
        dt = stamp - prev_stamp
        if not dt > 0 or prev_width != prev_width:  # first sample, repeated stamp, NaN before
            return False
        return abs(width - prev_width) <= cfg.grasp_max_speed_mps * dt

    # ---------------------------------------------------------------- state (simulator get/set_state)
    def state_array(self) -> NDArray[np.float64]:
        """Everything ``update`` depends on, flat (``STATE_SIZE``), for ``TaskEnv.get_state``."""
        return np.array([self._base_n, *self._base_sum, float(self._force_on), self._force_count, self._grasp_count,
                         self._prev_width, self._prev_stamp, self._cue, self._detected_stamp, self.force_n])

    def load_state_array(self, state: ArrayLike) -> None:
        s = np.asarray(state, dtype=float)
        if s.shape != (STATE_SIZE,):
            raise ValueError(f"contact detector state must have shape ({STATE_SIZE},), got {s.shape}")
        self._base_n = int(s[0])
        self._base_sum = s[1:4].copy()
        self._force_on = bool(s[4] > 0.5)
        self._force_count, self._grasp_count = int(s[5]), int(s[6])
        self._prev_width, self._prev_stamp = float(s[7]), float(s[8])
        self._cue = int(s[9])
        self._detected_stamp, self.force_n = float(s[10]), float(s[11])


OBSERVABILITY_MODES = ("full", "partial", "none")
_IDENTITY_XYZW = np.array([0.0, 0.0, 0.0, 1.0])


class ContactReveal:
    """The observability channel of the real graph (``nodes.contact_detector``), as the simulator's.

    Per episode (``start_episode``) it runs a :class:`ContactDetector` on the robot-state samples and
    remembers the newest valid object pose estimate. When contact is detected the channel opens with:
    ``full``, that estimate (the uncorrupted ICP pose at the moment of contact; if none has arrived
    yet, the next valid one); ``partial``, the TCP position at detection (identity orientation; the
    simulator's cue under a contact detector); ``none``, nothing (``revealed`` stays None). The
    revealed estimate is frozen until the next episode, like the simulator's."""

    def __init__(self, config: ContactDetectorConfig | None = None, observability: str = "full") -> None:
        if observability not in OBSERVABILITY_MODES:
            raise ValueError(f"observability must be one of {list(OBSERVABILITY_MODES)}, got {observability!r}")
        self.detector = ContactDetector(config)
        self.observability = observability
        self.active = False
        self._latest: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
        self._pending = False
        self.revealed: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None

    def start_episode(self) -> None:
        """START: a fresh detector (new baseline) and a closed channel."""
        self.detector.reset()
        self.active, self._pending, self.revealed = True, False, None

    def end_episode(self) -> None:
        """SUCCESS / FAILURE / ABORT: stop detecting; the channel keeps its state until the next START."""
        self.active = False

    def on_estimate(self, position: ArrayLike, quat_xyzw: ArrayLike, valid: bool = True) -> bool:
        """A pose estimate of the object; returns True when it opened a pending channel."""
        pos, quat = np.asarray(position, dtype=float).copy(), np.asarray(quat_xyzw, dtype=float).copy()
        if not (valid and pos.shape == (3,) and quat.shape == (4,) and np.all(np.isfinite(pos))
                and np.all(np.isfinite(quat))):
            return False
        self._latest = (pos, quat)
        if self._pending:
            self._pending, self.revealed = False, self._latest
            return True
        return False

    def on_state(self, sample: ContactSample, tcp_position: ArrayLike) -> bool:
        """A robot-state sample; returns True when it opened the channel."""
        if not self.active or self.revealed is not None or self._pending:
            return False
        if not self.detector.update(sample):
            return False
        if self.observability == "full":
            if self._latest is None:
                self._pending = True
                return False
            self.revealed = self._latest
            return True
        if self.observability == "partial":
            self.revealed = (np.asarray(tcp_position, dtype=float).copy(), _IDENTITY_XYZW.copy())
            return True
        return False
