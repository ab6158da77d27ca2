"""What a rehearsal runs: rows (checkpoint x perturbation), seeds, and each node's command line (ROS-free).

Every row starts a fresh graph (the arbiter's episode ids then start at 1 in every row) of these
processes, each with the parameter file the real launch gives it (``block_grasp_real.launch.py``)
and the overrides the simulator needs:

- ``sim_node``: the FR3 and the D415 (``config/sim.yaml``; ``noise: off``, the pose error is
  policy_node's; ``publish_observed_pose: false``, ``publish_revealed: false``, ``simulated_human:
  false``; depth at ``depth_rate_hz`` (30, the real launch's 640x480x30 profile); plus the row's
  perturbation parameters).
- ``cube_pose_estimator``: ``config/cube_pose_estimator.yaml`` + ``extrinsics_file`` (the simulator's
  calibration file, accepted as the real launch does with ``allow_sim_extrinsics:=true``; the
  ``extrinsics`` row writes a perturbed copy).
- ``contact_detector``: ``config/contact_detector.yaml`` (the real reveal, from robot_state).
- ``policy_node``: ``config/policy.yaml`` + the checkpoint, ``fresh_state_s: 0.005`` (real launch),
  ``observation.noise.mode: task`` (``pose_error:=task``), ``observation.noise.seed`` =
  ``seed_base - 1``, so episode ``i`` (arbiter id ``i + 1``) draws its pose error with seed
  ``seed_base + i``, the number of its scene seed (see :data:`CORRUPTION_NOTE`).
- ``intervention_arbiter``: the real robot's ``config/arbiter.yaml`` (5 cm / 0.4 rad per step, the
  real workspace, latching faults), SCHED_FIFO through ``imgen_ros.core.realtime`` as launched.
- ``joy_teleop``: ``config/joy_teleop.yaml`` (teleop:=joy); the driver stands in for the spacenav
  driver with an idle SpaceMouse, so the supervisor's heartbeat is real and nobody takes over.
- ``recorder``: ``config/recorder.yaml``, one bag per episode under ``DIR/bags/<row>/``.

With a time scale ``s`` < 1 (:data:`TIME_SCALED`) the graph runs ``s`` times as fast as real time: every rate
of every node is multiplied by ``s`` and every time-out and maximum age divided by it, so each control step
sees the same inputs, deadlines and thresholds as at real time, with ``1/s`` times the wall time to compute
them. It stands in for a machine that is ``1/s`` times faster; it is not a real-time test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from imgen_ros.core.params import read_ros_params
from imgen_ros.policy.evaluate import EVAL_SEED_BASE
from imgen_ros.rehearsal import PERTURBATIONS, TIME_SCALE_RANGE
from imgen_ros.rehearsal.perturbations import ExtrinsicsError

CORRUPTION_NOTE = (
    "Pose error: episode i is corrupted with seed seed_base + i, the number of its scene seed, by the same "
    "model (core.corruption, the task's) as imgen eval's trial i, but not with the same offset: TaskEnv draws "
    "the offset from default_rng(scene seed) after the scene's own draws (cube x, y, yaw), policy_node's "
    "PoseNoise from a fresh default_rng(seed) (and cannot know the scene's draws on a real robot). "
    "results.json lists both offsets per episode.")

# The graph's processes, in start order (the world and the camera first, the recorder last).
NODES = ("sim_node", "cube_pose_estimator", "contact_detector", "policy_node", "intervention_arbiter",
         "joy_teleop", "recorder")

# Each node's parameter file in config/ (the real launch's).
PARAMETER_FILES = {"sim_node": "sim.yaml", "cube_pose_estimator": "cube_pose_estimator.yaml",
                   "contact_detector": "contact_detector.yaml", "policy_node": "policy.yaml",
                   "intervention_arbiter": "arbiter.yaml", "joy_teleop": "joy_teleop.yaml",
                   "recorder": "recorder.yaml"}

# Every parameter of the graph that is a rate or a duration, per node, as the node names it: ("rate", x)
# is multiplied by the time scale, ("duration", x) divided by it. A rate is anything per second: the
# contact detector's width-speed threshold compares width changes per second of wall time.
TIME_SCALED: dict[str, tuple[tuple[str, str], ...]] = {
    "sim_node": (("rate", "step_rate_hz"), ("rate", "state_rate_hz"), ("rate", "pose_rate_hz"),
                 ("rate", "depth_rate_hz"), ("duration", "hold_after_s")),
    "cube_pose_estimator": (("duration", "estimator.temporal.max_gap_s"),
                            ("duration", "estimator.gripper_filter.max_state_offset_s")),
    "contact_detector": (("rate", "publish_rate_hz"), ("rate", "detector.grasp_max_speed_mps")),
    "policy_node": (("rate", "rate_hz"), ("duration", "max_input_age_s"), ("duration", "max_object_age_s"),
                    ("duration", "fresh_state_s")),
    "intervention_arbiter": (("rate", "watchdog_rate_hz"), ("rate", "state_rate_hz"),
                             ("duration", "policy_timeout_s"), ("duration", "teleop_timeout_s"),
                             ("duration", "robot_state_timeout_s"), ("duration", "pose_timeout_s"),
                             ("duration", "valid_pose_timeout_s"), ("duration", "safety.max_input_age_s")),
    "joy_teleop": (("rate", "command_rate_hz"), ("rate", "heartbeat_rate_hz"), ("duration", "stale_timeout_s")),
    "recorder": (("duration", "end_grace_s"),),
}

# The rates and durations of the graph's nodes that the time scale leaves alone, and why.
TIME_UNSCALED: dict[str, dict[str, str]] = {
    "sim_node": {"episode_gap_s": "automatic episodes only (auto_episodes 0: the driver starts each episode)"},
    "cube_pose_estimator": {"source.fps": "a RealSense or recording source's rate; the rehearsal's is ROS topics"},
    "joy_teleop": {"rel_idle_s": "evdev relative axes only; spacenav's Joy reports absolute axes"},
    "recorder": {"chunk_s": "what a killed recorder loses, not what any node does"},
}


EXPERT_SPECS = ("expert", "expert:true")  # policy_node runs the naive scripted expert for either


@dataclass(frozen=True)
class CheckpointSpec:
    """A policy to rehearse: a robomimic checkpoint or ``expert``, with the label its rows carry."""

    label: str
    policy: str

    @classmethod
    def parse(cls, text: str) -> CheckpointSpec:
        """``PATH``, ``expert`` or ``LABEL=PATH`` (the label defaults to the training directory's name
        for ``.../<name>/models/best.pth``, else the file's stem). Only the exact words ``expert`` and
        ``expert:true`` name the scripted expert; an existing file whose path holds ``=`` is a PATH."""
        label, sep, policy = text.partition("=")
        if not sep or Path(text).expanduser().is_file():
            label, policy = "", text
        if not policy:
            raise ValueError(f"--checkpoint {text!r}: empty checkpoint path")
        if policy in EXPERT_SPECS:
            return cls(label or policy, policy)
        path = Path(policy).expanduser()
        if not path.is_file():
            raise ValueError(f"--checkpoint {text!r}: {path} is not a file")
        if not label:
            label = path.parent.parent.name if path.parent.name == "models" else path.stem
        return cls(label, str(path.resolve()))


@dataclass(frozen=True)
class RehearsalConfig:
    task: str = "block_grasp"
    episodes: int = 50
    seed_base: int = EVAL_SEED_BASE
    pose_error: str = "task"                  # policy_node observation.noise.mode: task | off
    depth_rate_hz: float = 30.0
    fresh_state_s: float = 0.005              # the real launch's policy_node setting
    arbiter_rt_priority: int = 40
    extrinsics_error: ExtrinsicsError = field(default_factory=ExtrinsicsError)
    depth_noise_scale: float = 2.0
    push_step: int = 10
    push_distance_m: float = 0.03
    resume_latched: bool = True               # the driver, as operator, hands a latched fault back to the policy
    horizon: int = 400                        # the task's (imgen rehearse sets it from sim.tasks.<task>.TASK)
    time_scale: float = 1.0                   # < 1: the graph at this fraction of real time (TIME_SCALED)

    def __post_init__(self) -> None:
        if self.pose_error not in ("task", "off"):
            raise ValueError(f"pose_error must be task or off, got {self.pose_error!r}")
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if self.seed_base < 1:
            raise ValueError("seed_base must be >= 1 (policy_node's corruption seed is seed_base - 1 + episode id)")
        low, high = TIME_SCALE_RANGE
        if not low <= self.time_scale <= high:   # also refuses NaN
            raise ValueError(f"time_scale must be in [{low:g}, {high:g}], got {self.time_scale}")

    def scene_seed(self, index: int) -> int:
        """Scene seed of episode ``index`` (0-based): ``imgen eval``'s trial ``index``."""
        return self.seed_base + index

    @property
    def corruption_seed_param(self) -> int:
        """policy_node ``observation.noise.seed``: it uses seed + episode id, and ids start at 1."""
        return self.seed_base - 1

    @property
    def episode_timeout_s(self) -> float:
        """Wall time after which an episode the sim never ended is aborted (3x its horizon at 20 Hz,
        + 30 s, in scaled time): a hung graph, not a slow one."""
        return (3.0 * self.horizon / 20.0 + 30.0) / self.time_scale

    def wall_s(self, seconds: float) -> float:
        """Wall time of ``seconds`` of real-time behaviour at this time scale."""
        return seconds / self.time_scale


@dataclass(frozen=True)
class Row:
    checkpoint: CheckpointSpec
    perturbation: str

    def __post_init__(self) -> None:
        if self.perturbation not in PERTURBATIONS:
            raise ValueError(f"unknown perturbation {self.perturbation!r}; choose from {', '.join(PERTURBATIONS)}")

    @property
    def name(self) -> str:
        """Directory-safe ``<label>__<perturbation>``."""
        return f"{slug(self.checkpoint.label)}__{self.perturbation}"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "policy"


def plan_rows(checkpoints: list[CheckpointSpec], perturbations: list[str]) -> list[Row]:
    """Checkpoint-major rows; duplicate labels are refused (they would share directories)."""
    labels = [c.label for c in checkpoints]
    dupes = sorted({slug(x) for x in labels if [slug(y) for y in labels].count(slug(x)) > 1})
    if dupes:
        raise ValueError(f"two checkpoints share the label {dupes[0]!r}; name them with LABEL=PATH")
    seen: list[str] = []
    for p in perturbations:
        if p not in seen:
            seen.append(p)
    return [Row(c, p) for c in checkpoints for p in seen]


@dataclass(frozen=True)
class RowPaths:
    config_dir: Path      # the installed (or source) config/ of imgen_ros
    extrinsics: Path      # the calibration file the estimator reads
    record_dir: Path      # bags
    log_dir: Path         # one log per process


def _param(key: str, value: object) -> list[str]:
    # values are YAML: strings quoted so that e.g. "off" stays a string, not a boolean
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, str | Path):
        text = f"'{value}'"
    else:
        text = repr(value)
    return ["-p", f"{key}:={text}"]


def node_command(python: str, module: str, params_file: Path | None, params: dict[str, object]) -> list[str]:
    cmd = [python, "-m", f"imgen_ros.nodes.{module}", "--ros-args"]
    if params_file is not None:
        cmd += ["--params-file", str(params_file)]
    for key, value in params.items():
        cmd += _param(key, value)
    return cmd


def perturbation_params(row: Row, config: RehearsalConfig) -> dict[str, object]:
    """sim_node parameters of the row's perturbation (the extrinsics row changes a file instead)."""
    if row.perturbation == "depth_noise":
        return {"depth_noise_scale": float(config.depth_noise_scale)}
    if row.perturbation == "push":
        return {"push_step": int(config.push_step), "push_distance_m": float(config.push_distance_m)}
    return {}


def time_scaled(node: str, params_file: Path | None, params: dict[str, object], scale: float) -> dict[str, object]:
    """``params`` plus every :data:`TIME_SCALED` parameter of ``node`` at time scale ``scale``, from its value
    in ``params`` or else in ``params_file``; nothing changes at scale 1. A parameter in neither is an error
    (its code default would go unscaled without anyone noticing)."""
    if scale == 1.0:
        return dict(params)
    from_file = read_ros_params(params_file, node) if params_file is not None else {}
    out = dict(params)
    for kind, name in TIME_SCALED[node]:
        base = params.get(name, from_file.get(name))
        if isinstance(base, bool) or not isinstance(base, int | float):
            where = params_file or "the rehearsal's overrides"
            raise ValueError(f"{node}: {name} is not set in {where} (got {base!r}); the rehearsal's time scale "
                             "needs every rate and time-out of the graph in its parameter file")
        out[name] = float(base) * scale if kind == "rate" else float(base) / scale
    return out


def node_commands(row: Row, config: RehearsalConfig, paths: RowPaths, python: str) -> dict[str, list[str]]:
    """Command line of every process of the row's graph, in :data:`NODES` order."""
    cfg = paths.config_dir
    sim = {"task": config.task, "noise": "off", "observability": "full", "seed": config.seed_base,
           "depth_rate_hz": float(config.depth_rate_hz), "publish_observed_pose": False,
           "publish_revealed": False, "simulated_human": False, "serve_generation": False,
           "end_episodes": True, "auto_episodes": 0, **perturbation_params(row, config)}
    policy = {"checkpoint": row.checkpoint.policy, "task": config.task, "fresh_state_s": float(config.fresh_state_s),
              "observation.noise.mode": config.pose_error, "observation.noise.seed": config.corruption_seed_param}
    files = {name: cfg / PARAMETER_FILES[name] for name in NODES}
    params: dict[str, dict[str, object]] = {
        "sim_node": sim,
        "cube_pose_estimator": {"extrinsics_file": paths.extrinsics},
        "contact_detector": {},
        "policy_node": policy,
        "intervention_arbiter": {},
        "joy_teleop": {},
        "recorder": {"record_dir": paths.record_dir, "task": config.task,
                     "noise": "on" if config.pose_error == "task" else "off", "observability": "full", "robot": "sim"},
    }
    commands = {name: node_command(python, name, files[name],
                                   time_scaled(name, files[name], params[name], config.time_scale))
                for name in NODES}
    # as the real launch runs it: SCHED_FIFO where granted, a warning where not
    commands["intervention_arbiter"] = [python, "-m", "imgen_ros.core.realtime", "--priority",
                                        str(config.arbiter_rt_priority), "--", *commands["intervention_arbiter"]]
    return commands


def config_dir() -> Path:
    """imgen_ros's installed config/ (what the launch files use), else the source tree's."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            installed = Path(get_package_share_directory("imgen_ros")) / "config"
            if (installed / "arbiter.yaml").is_file():
                return installed
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    source = Path(__file__).resolve().parents[4] / "config"
    if (source / "arbiter.yaml").is_file():
        return source
    raise FileNotFoundError("imgen_ros config/ not found (neither installed nor in the source tree): run scripts/setup")


@dataclass(frozen=True)
class EvalScene:
    """What ``imgen eval`` sets up for one seed: the true cube position and TaskEnv's pose error."""

    seed: int
    cube_position: tuple[float, float, float]
    pose_error: tuple[float, float, float]


def eval_scenes(task: str, seeds: list[int]) -> dict[int, EvalScene]:
    """``imgen eval``'s scene and corruption per seed (TaskEnv with noise on, as evaluate() builds it)."""
    from imgen_ros.sim import make_env

    env = make_env(task, noise="on", observability="full")
    try:
        out = {}
        for seed in seeds:
            env.reset(seed)
            name = env.task.object_names[0]
            cube = env.object_poses()[name][:3, 3]
            out[seed] = EvalScene(seed, tuple(float(v) for v in cube),
                                  tuple(float(v) for v in env.corruption[name]))
        return out
    finally:
        env.close()
