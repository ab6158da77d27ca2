"""The FR3's estimated external wrench at the TCP (libfranka ``O_F_ext_hat_K``), simulated in MuJoCo.

The exact wrench is the sum of the contact forces on the hand and both fingers, as a force and a
torque about the TCP in the world (= base) frame: MuJoCo's ``cfrc_ext`` of those bodies after
``mj_rnePostConstraint`` (every contact's ``mj_contactForce``, rotated to the world frame and
summed; contacts between the fingers cancel). ``WrenchEstimate`` turns it into what the robot reports:

* libfranka's sign: the wrench the robot applies to the environment (= minus the contact wrench on
  the robot; see ``core.contact``);
* a first-order low-pass (``lowpass_tau_s``): libfranka derives the estimate from the low-pass
  filtered external joint torques (``tau_ext_hat_filtered``);
* a bias per episode, uniform in ``[-bias_force_n, bias_force_n]`` per axis, that drifts linearly
  with the TCP's travel from its episode-start position (a random 3x3 gain with entries
  N(0, ``drift_n_per_m``)): the model-based estimate's error depends on pose and payload;
* a force proportional to the TCP's acceleration (``dynamics_error_kg``, unmodelled inertia);
* white Gaussian noise per sample (``noise_force_n``, ``noise_torque_nm``).

The numbers are assumptions, not a measurement of our FR3: "a few N" of pose- and payload-dependent
bias (issue 9; users of libfranka's estimate report a noise floor of a few N and a load-dependent
bias), noise of ~0.5-1 N, a filter corner near 15 Hz, 50 g of unmodelled mass. Replace them with a
free-space recording of ``robot_state.external_wrench`` over the workspace once the robot is
available. Everything is seeded by the episode seed (a stream of its own: the scene and corruption
samples are unchanged) and the sample index, so ``state_array`` / ``load_state_array`` restore it.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from numpy.typing import ArrayLike, NDArray

ROBOT_BODIES = ("hand", "left_finger", "right_finger")
_SEED_SALT = 0x57E4C4  # separates the wrench error stream from the scene stream of the same seed
_NOISE_BLOCK = 2048    # samples of noise drawn per episode (then reused cyclically)
STATE_SIZE = 25
_ROLL1, _ROLL2 = [1, 2, 0], [2, 0, 1]


@dataclass(frozen=True)
class WrenchErrorConfig:
    """The estimation error added to the exact contact wrench (see the module docstring)."""

    enabled: bool = True
    bias_force_n: float = 3.0
    bias_torque_nm: float = 0.3
    drift_n_per_m: float = 2.0
    noise_force_n: float = 0.7
    noise_torque_nm: float = 0.07
    lowpass_tau_s: float = 0.01
    dynamics_error_kg: float = 0.05

    def __post_init__(self) -> None:
        values = (self.bias_force_n, self.bias_torque_nm, self.drift_n_per_m, self.noise_force_n,
                  self.noise_torque_nm, self.lowpass_tau_s, self.dynamics_error_kg)
        if any(not np.isfinite(v) or v < 0 for v in values):
            raise ValueError(f"wrench error parameters must be finite and >= 0, got {self}")


def _cross_rows(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Row-wise cross product of (k, 3) arrays (np.cross is slow on small inputs)."""
    return a[:, _ROLL1] * b[:, _ROLL2] - a[:, _ROLL2] * b[:, _ROLL1]


def contact_wrench(model: mujoco.MjModel, data: mujoco.MjData, point: ArrayLike,
                   bodies: tuple[str, ...] = ROBOT_BODIES) -> NDArray[np.float64]:
    """Exact wrench (6,) the environment applies to ``bodies`` through contacts, in the world frame:
    force (N) and torque (N m) about ``point``. Runs ``mj_rnePostConstraint`` on ``data``."""
    ids = [model.body(b).id for b in bodies]
    mujoco.mj_rnePostConstraint(model, data)
    com_based = data.cfrc_ext[ids].sum(axis=0)   # torque about the subtree com of the root, force
    arm = data.subtree_com[model.body_rootid[ids[0]]] - np.asarray(point, dtype=float)
    return np.concatenate([com_based[3:], com_based[:3] + np.cross(arm, com_based[3:])])


@dataclass(frozen=True)
class StateSamples:
    """Robot-state samples taken within one control step: stamps (k,), force estimates (k, 3) (the
    torque of the last one is in ``WrenchEstimate.last``), TCP heights (k,) and gripper widths (k,)."""

    stamps: NDArray[np.float64]
    force: NDArray[np.float64]
    tcp_z: NDArray[np.float64]
    gripper_width: NDArray[np.float64]


class WrenchEstimate:
    """The simulated ``O_F_ext_hat_K`` of one episode, sampled at the robot-state rate.

    ``record`` takes a sample (contact forces on the hand and fingers, TCP position, gripper width)
    after each controller interval; ``flush`` at the end of the control step turns the samples
    recorded since the last flush into estimates in one vectorized pass (``sample`` = both)."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, site_id: int,
                 finger_qpos: ArrayLike, config: WrenchErrorConfig | None = None, capacity: int = 8) -> None:
        self.model, self.data, self.site_id = model, data, site_id
        self.config = config or WrenchErrorConfig()
        bodies = np.array([model.body(b).id for b in ROBOT_BODIES])
        self._root = int(model.body_rootid[bodies[0]])
        # the hand and its fingers are consecutive bodies: a slice copies their rows cheaply
        self._bodies = slice(int(bodies[0]), int(bodies[0]) + 3) if np.all(np.diff(bodies) == 1) else bodies
        fingers = np.asarray(finger_qpos, dtype=int)
        if len(fingers) != 2 or fingers[1] != fingers[0] + 1:
            raise ValueError(f"the finger joints' qpos must be adjacent, got {fingers.tolist()}")
        self._fingers = slice(int(fingers[0]), int(fingers[0]) + 2)
        self._lowpass_cache: dict[bytes, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
        self._alloc(capacity)
        self.reset(0)

    def _alloc(self, capacity: int) -> None:
        # Rows 0 and 1 of time and TCP hold the two previous samples (for dt, velocity, acceleration).
        self._time = np.zeros(capacity + 2)
        self._tcp = np.zeros((capacity + 2, 3))
        self._cfrc = np.zeros((capacity, len(ROBOT_BODIES), 6))
        self._com = np.zeros((capacity, 3))
        self._fq = np.zeros((capacity, 2))
        self._count = 0

    def _grow(self) -> None:
        old = (self._time, self._tcp, self._cfrc, self._com, self._fq)
        self._alloc(2 * len(self._cfrc))
        for new, prev in zip((self._time, self._tcp, self._cfrc, self._com, self._fq), old, strict=True):
            new[:len(prev)] = prev

    def reset(self, seed: int) -> None:
        """New episode: draw the bias and the noise of ``seed``; the TCP's present pose is the start
        (at rest, nothing touching the hand: ``last`` is the bias until the first sample)."""
        self._seed = int(seed)
        self._draw(self._seed)
        self._index = 0
        self._count = 0
        self._filtered = np.zeros(6)
        self._start = self.data.site_xpos[self.site_id].copy()
        now = float(self.data.time)
        self._time[:2] = (now - 0.01, now)
        self._tcp[:2] = self._start
        self.last = self._bias.copy() if self.config.enabled else np.zeros(6)   # at rest, before the first sample

    def _draw(self, seed: int) -> None:
        cfg = self.config
        rng = np.random.default_rng([seed, _SEED_SALT])
        self._bias = np.concatenate([rng.uniform(-cfg.bias_force_n, cfg.bias_force_n, 3),
                                     rng.uniform(-cfg.bias_torque_nm, cfg.bias_torque_nm, 3)])
        self._drift_t = rng.normal(0.0, cfg.drift_n_per_m, (3, 3)).T  # applied to row vectors
        scale = np.array([cfg.noise_force_n] * 3 + [cfg.noise_torque_nm] * 3)
        self._noise = rng.normal(0.0, 1.0, (_NOISE_BLOCK, 6)) * scale

    def record(self) -> None:
        """Take one robot-state sample now (call after each controller interval)."""
        k, d = self._count, self.data
        if k == len(self._cfrc):
            self._grow()
        mujoco.mj_rnePostConstraint(self.model, d)
        self._time[k + 2] = d.time
        self._tcp[k + 2] = d.site_xpos[self.site_id]
        self._cfrc[k] = d.cfrc_ext[self._bodies]
        self._com[k] = d.subtree_com[self._root]
        self._fq[k] = d.qpos[self._fingers]
        self._count = k + 1

    def flush(self) -> StateSamples:
        """The force estimates of the samples recorded since the last flush (libfranka sign, base =
        world frame); ``last`` becomes the full wrench estimate of the newest sample."""
        k, cfg = self._count, self.config
        self._count = 0
        times, positions = self._time[:k + 2], self._tcp[:k + 2]
        stamps, tcp = times[2:].copy(), positions[2:].copy()
        widths = self._fq[:k].sum(axis=1)
        if k == 0:
            return StateSamples(stamps, np.zeros((0, 3)), tcp[:, 2], widths)
        com_based = self._cfrc[:k].sum(axis=1)   # on the robot: torque about the root's subtree com, force
        force = -com_based[:, 3:]   # what the robot applies to the world
        dts = np.maximum(np.diff(times), 1e-9)   # k + 1 intervals; the last k are this flush's samples'
        if cfg.enabled:
            weights, decay = self._lowpass(dts[1:])
        else:
            weights, decay = np.eye(k), np.zeros(k)
        # Torque about the TCP, only where it is reported (the newest sample): the filtered moment of
        # sum_i w_i (com - tcp_i) x f_i from the 3x3 sum of weighted outer products.
        w = weights[-1]
        moments = ((self._com[:k] - tcp) * w[:, None]).T @ force
        torque = (-(w @ com_based[:, :3]) + decay[-1] * self._filtered[3:]
                  + np.array([moments[1, 2] - moments[2, 1], moments[2, 0] - moments[0, 2],
                              moments[0, 1] - moments[1, 0]]))
        filtered = weights @ force + decay[:, None] * self._filtered[:3]
        self._filtered = np.concatenate([filtered[-1], torque])
        velocity = np.diff(positions, axis=0) / dts[:, None]
        accel = np.diff(velocity, axis=0) / dts[1:, None]
        self._time[:2], self._tcp[:2] = times[k:k + 2].copy(), positions[k:k + 2].copy()  # (views of them)
        if not cfg.enabled:
            self.last = self._filtered.copy()
            return StateSamples(stamps, filtered, tcp[:, 2].copy(), widths)
        noise = self._noise[(self._index + np.arange(k)) % _NOISE_BLOCK]
        self._index += k
        estimate = (filtered + self._bias[:3] + noise[:, :3] + (tcp - self._start) @ self._drift_t
                    + cfg.dynamics_error_kg * accel)
        self.last = np.concatenate([estimate[-1], torque + self._bias[3:] + noise[-1, 3:]])
        return StateSamples(stamps, estimate, tcp[:, 2].copy(), widths)

    def _lowpass(self, dts: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The first-order low-pass ``y_i = y_(i-1) + a_i (x_i - y_(i-1))``, ``a_i = dt_i / (tau + dt_i)``,
        over k samples as ``y = W x + decay * y_0`` (cached per sample spacing: it is nearly always the
        same)."""
        key = dts.tobytes()
        cached = self._lowpass_cache.get(key)
        if cached is not None:
            return cached
        tau = self.config.lowpass_tau_s
        k = len(dts)
        alpha = np.ones(k) if tau == 0 else np.where(dts > 0, dts / (tau + np.abs(dts)), 1.0)
        weights, decay = np.zeros((k, k)), np.ones(k)
        for i in range(k):
            if i:
                weights[i, :i] = weights[i - 1, :i] * (1.0 - alpha[i])
            weights[i, i] = alpha[i]
            decay[i] = (decay[i - 1] if i else 1.0) * (1.0 - alpha[i])
        if len(self._lowpass_cache) > 64:
            self._lowpass_cache.clear()
        self._lowpass_cache[key] = (weights, decay)
        return weights, decay

    def sample(self) -> NDArray[np.float64]:
        """Take one sample now and return its wrench estimate (6,)."""
        self.record()
        self.flush()
        return self.last.copy()

    # ---------------------------------------------------------------- state (TaskEnv.get_state)
    def state_array(self) -> NDArray[np.float64]:
        """Everything the next estimates depend on (``STATE_SIZE``), between control steps."""
        return np.concatenate([[self._seed, self._index], self._time[:2], self._filtered, self._start,
                               self._tcp[:2].reshape(-1), self.last])

    def load_state_array(self, state: ArrayLike) -> None:
        s = np.asarray(state, dtype=float)
        if s.shape != (STATE_SIZE,):
            raise ValueError(f"wrench estimate state must have shape ({STATE_SIZE},), got {s.shape}")
        seed = int(s[0])
        if seed != self._seed:
            self._seed = seed
            self._draw(seed)
        self._index = int(s[1])
        self._time[:2] = s[2:4]
        self._filtered = s[4:10].copy()
        self._start = s[10:13].copy()
        self._tcp[:2] = s[13:19].reshape(2, 3)
        self.last = s[19:25].copy()
        self._count = 0
