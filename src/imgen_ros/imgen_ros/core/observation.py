"""Policy observations from the robot state and object pose estimates, with optional corruption.

The layout matches the simulator's low-dim observation (``TaskEnv.observation``):
``robot0_eef_pos`` (3), ``robot0_eef_quat`` (4, xyzw), ``robot0_gripper_qpos`` (2) and ``object`` =
per object (in ``object_ids`` order) the believed position (3) and quaternion (4), then the
observability channel: ``full`` -> revealed pose (7) + flag, ``partial`` -> cue (3) + flag,
``none`` -> flag. Before the channel is revealed it is zeros with flag 0 (on the real robot it
stays so unless a node publishes a revealed estimate). Under ``full``, once revealed, the revealed
object's believed pose is its current estimate without the corruption (the paper's "ground truth pose
upon contact"), while the channel keeps the pose revealed at contact: as the simulator does, where the
believed pose then follows the true one (the cube lifted in the hand) and the channel does not.

Pose-corruption models (for experiments; applied to the believed object positions):
``off``; ``episode_offset`` - one constant planar offset per episode, uniform in
``[-half_range, half_range]`` per axis with ``|d_i| >= minimum_i`` on the axes whose minimum is
> 0 (the paper's sensor-error model, e.g. block grasp: x ±1 cm, y ±7 cm with |dy| >= 2.5 cm);
``gaussian`` - fresh N(0, sigma²) per axis at every step; ``task`` - the task's own per-object model
(``core.corruption``, the one the simulator uses), sampled once per episode.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.corruption import sample_task_corruption
from imgen_ros.core.params import check_fields, param
from imgen_ros.core.pose import quat_on_hemisphere

OBSERVABILITY_CHANNEL_DIMS = {"full": 8, "partial": 4, "none": 1}
# the robot's observation keys and their per-step shapes (a dataset's, a checkpoint's input layout)
ROBOT_OBS_SHAPES = {"robot0_eef_pos": (3,), "robot0_eef_quat": (4,), "robot0_gripper_qpos": (2,)}
NOISE_MODES = ("off", "episode_offset", "gaussian", "task")


@dataclass(frozen=True)
class NoiseConfig:
    mode: str = param("off", "pose corruption: off | episode_offset (box below) | gaussian (per step) | task (the "
                      "task's own model, core.corruption: what the simulator trains and evaluates against); "
                      "live in policy_node: a new mode takes effect at the next episode START",
                      choices=NOISE_MODES, live=True)
    half_range_m: tuple[float, float, float] = param((0.01, 0.07, 0.0), "episode_offset: per-axis half range [m]",
                                                     ("[0, 0.2]", "[0, 0.2]", "[0, 0.2]"))
    minimum_m: tuple[float, float, float] = param((0.0, 0.025, 0.0), "episode_offset: per-axis minimum |offset| [m]",
                                                  ("[0, 0.2]", "[0, 0.2]", "[0, 0.2]"))
    sigma_m: float = param(0.005, "gaussian: standard deviation per axis [m]", "[0, 0.1]")
    seed: int = param(0, "corruption seed; episode k uses seed + k (recorded with the episode)", "[0, 2147483647]")

    def __post_init__(self) -> None:
        try:
            check_fields(self)
        except ValueError as exc:
            raise ValueError(f"noise.{exc}") from None
        lo, hi = np.asarray(self.minimum_m, float), np.asarray(self.half_range_m, float)
        if lo.shape != (3,) or hi.shape != (3,) or np.any(lo < 0) or np.any((lo > 0) & (lo >= hi)):
            raise ValueError(f"noise: need 0 <= minimum_m < half_range_m per axis (3 values each), got "
                             f"minimum_m={self.minimum_m}, half_range_m={self.half_range_m}")


class PoseNoise:
    """Samples the corruption of believed object positions (see the module docstring); ``task`` names
    the model of ``mode: task``."""

    def __init__(self, config: NoiseConfig, task: str | None = None) -> None:
        if config.mode == "task":
            if not task:
                raise ValueError("noise.mode 'task' needs the task whose corruption model to use")
            sample_task_corruption(task, np.random.default_rng(0))   # a task without a model fails here
        self.config = config
        self.task = task
        self.seed = config.seed
        self.rng = np.random.default_rng(config.seed)
        self.offset = np.zeros(3)
        self.offsets: dict[str, NDArray[np.float64]] | None = None   # mode task: per object

    def new_episode(self, seed: int | None = None) -> None:
        if seed is not None:
            self.seed = seed
            self.rng = np.random.default_rng(seed)
        cfg = self.config
        self.offsets = None
        self.offset = np.zeros(3)
        if cfg.mode == "task":
            self.offsets = sample_task_corruption(self.task, self.rng)
        elif cfg.mode == "episode_offset":
            half, minimum = np.asarray(cfg.half_range_m, float), np.asarray(cfg.minimum_m, float)
            magnitude = self.rng.uniform(np.where(minimum > 0, minimum, 0.0), half)
            sign = np.where(minimum > 0, self.rng.choice((-1.0, 1.0), size=3), 1.0)
            symmetric = self.rng.uniform(-half, half)
            self.offset = np.where(minimum > 0, sign * magnitude, symmetric)

    def sample(self) -> NDArray[np.float64]:
        """The offset to add to a believed position at this step (every object alike; mode task: see
        :meth:`sample_for`)."""
        if self.config.mode == "gaussian":
            return self.rng.normal(0.0, self.config.sigma_m, 3)
        return self.offset.copy()

    def sample_for(self, object_ids: Iterable[str]) -> dict[str, NDArray[np.float64]]:
        """Offsets per object at this step (objects the task's model does not corrupt get zeros)."""
        ids = list(object_ids)
        if self.offsets is not None:
            return {i: self.offsets.get(i, np.zeros(3)).copy() for i in ids}
        return dict.fromkeys(ids, self.sample())


@dataclass(frozen=True)
class ObjectEstimate:
    """A believed object pose (position m, quaternion xyzw) in the base frame."""

    position: NDArray[np.float64]
    quat_xyzw: NDArray[np.float64]


@dataclass(frozen=True)
class ObservationConfig:
    object_ids: tuple[str, ...] = ("cube",)
    observability: str = "full"
    noise: NoiseConfig = field(default_factory=NoiseConfig)

    def __post_init__(self) -> None:
        if self.observability not in OBSERVABILITY_CHANNEL_DIMS:
            raise ValueError(f"observability must be one of {list(OBSERVABILITY_CHANNEL_DIMS)}, "
                             f"got {self.observability!r}")
        if not self.object_ids:
            raise ValueError("object_ids must name at least one object")


def channel_vector(observability: str, revealed: ObjectEstimate | None) -> NDArray[np.float64]:
    """The observability channel for ``revealed`` (None: not revealed yet)."""
    dim = OBSERVABILITY_CHANNEL_DIMS[observability]
    out = np.zeros(dim)
    if revealed is None or observability == "none":
        return out
    if observability == "full":
        out[:3], out[3:7] = revealed.position, revealed.quat_xyzw
    else:
        out[:3] = revealed.position
    out[-1] = 1.0
    return out


def build_observation(config: ObservationConfig, tcp_position: NDArray, tcp_quat_xyzw: NDArray,
                      gripper_qpos: NDArray, objects: dict[str, ObjectEstimate],
                      corruption: dict[str, NDArray] | None = None,
                      revealed: ObjectEstimate | None = None,
                      revealed_object: str | None = None) -> dict[str, NDArray[np.float64]]:
    """The policy's observation dict; ``corruption`` (per object id) is added to believed positions.

    Under ``full`` observability a ``revealed`` estimate (of ``revealed_object``, default the first
    object id) fills the channel, and that object's believed pose is its current estimate, uncorrupted,
    as in the simulator."""
    missing = [o for o in config.object_ids if o not in objects]
    if missing:
        raise KeyError(f"no pose estimate for object(s) {missing}")
    corrected = None
    if revealed is not None and config.observability == "full":
        corrected = revealed_object or config.object_ids[0]
    parts = []
    for name in config.object_ids:
        est = objects[name]
        offset = np.zeros(3) if corruption is None or name == corrected else \
            np.asarray(corruption.get(name, np.zeros(3)), float)
        parts += [np.asarray(est.position, float) + offset, np.asarray(est.quat_xyzw, float)]
    parts.append(channel_vector(config.observability, revealed))
    obs = {
        "robot0_eef_pos": np.asarray(tcp_position, float).copy(),
        "robot0_eef_quat": quat_on_hemisphere(tcp_quat_xyzw),
        "robot0_gripper_qpos": np.asarray(gripper_qpos, float).copy(),
        "object": np.concatenate(parts),
    }
    for key, value in obs.items():
        if not np.all(np.isfinite(value)):
            raise ValueError(f"observation '{key}' contains NaN/Inf: {value}")
    return obs
