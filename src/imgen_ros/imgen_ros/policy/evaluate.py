"""Policy wrapper for robomimic checkpoints and the evaluation harness (rollouts under corruption).

A *policy* is anything with ``reset()`` and ``act(obs) -> np.ndarray(7,)`` (the sim contract).
:class:`RobomimicPolicy` adapts robomimic's ``RolloutPolicy`` to it; :func:`load_policy` turns a
spec string ("expert", "expert:true" or a checkpoint path) into one; :func:`evaluate` runs
``trials`` episodes on fixed seeds and reports the success rate with a Wilson 95 % interval. A
BC-RNN checkpoint is rolled out on a pool of envs with one batched forward pass per control step
(:mod:`imgen_ros.policy.batch_rollout`); other policies run one episode at a time.

Evaluation seeds: trial ``i`` uses ``seed_base + i``. :data:`EVAL_SEED_BASE` and
:data:`SELECTION_SEED_BASE` are far from the seeds data collection uses, so evaluation scenes
and corruptions are never training scenes, and the final evaluation never reuses the scenes
that picked the best checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from imgen_ros.data.outputs import atomic_file, check_file_output, nearest_existing
from imgen_ros.policy.batch_rollout import (
    DEFAULT_EVAL_BATCH,
    MAX_EVAL_BATCH,
    BatchedRnnPolicy,
    EnvPool,
    run_pooled,
    supports_batching,
)
from imgen_ros.policy.checkpoint import CheckpointError, checkpoint_task_digest, load_checked, observation_shapes
from imgen_ros.policy.robomimic_compat import robomimic_modules
from imgen_ros.policy.stats import wilson_interval

OBS_KEYS = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object")
EVAL_SEED_BASE = 1_000_000
SELECTION_SEED_BASE = 2_000_000
VIDEO_CAMERA = "agentview"
_POOL = EnvPool()  # the envs of the last batched evaluation in this process, reused by the next


class Policy(Protocol):
    def reset(self) -> None: ...

    def act(self, obs: dict[str, NDArray]) -> NDArray: ...


class RobomimicPolicy:
    """A robomimic ``RolloutPolicy`` (e.g. BC-RNN-GMM) behind the ``reset()/act(obs)`` contract."""

    def __init__(self, rollout_policy: Any, obs_keys: tuple[str, ...] = OBS_KEYS,
                 checkpoint: str | None = None, trained_task_digest: str | None = None) -> None:
        self.rollout_policy = rollout_policy
        self.obs_keys = tuple(obs_keys)
        self.checkpoint = checkpoint
        self.trained_task_digest = trained_task_digest  # the task definition it was trained on, if recorded

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu", task: str | None = None,
                        obs_shapes: Mapping[str, tuple[int, ...]] | None = None, task_label: str = "--task",
                        observability: str | None = None) -> RobomimicPolicy:
        """Load safely (policy.checkpoint), check task/observation layout, then build with robomimic's
        ``FileUtils.policy_from_checkpoint``; any failure is a one-line CheckpointError naming the file."""
        ckpt = load_checked(path, task, obs_shapes, task_label, observability)
        torch_device = _torch_device(device)
        rm = robomimic_modules()
        try:
            # robomimic prints its observation spec to stdout here; keep stdout for results (--json)
            with contextlib.redirect_stdout(sys.stderr):
                rollout_policy, ckpt = rm.FileUtils.policy_from_checkpoint(ckpt_dict=ckpt, device=torch_device)
        except Exception as exc:  # untrusted content; robomimic raises a bare Exception for unknown algo names
            detail = " ".join(str(exc).split())
            detail = detail if len(detail) <= 300 else detail[:297] + "..."
            raise CheckpointError(f"checkpoint {path}: not a loadable robomimic checkpoint "
                                  f"({type(exc).__name__}: {detail})") from exc
        keys = tuple(ckpt["shape_metadata"]["all_obs_keys"])
        return cls(rollout_policy, obs_keys=keys, checkpoint=str(path),
                   trained_task_digest=checkpoint_task_digest(ckpt))

    def reset(self) -> None:
        self.rollout_policy.start_episode()

    def batched(self, slots: int) -> BatchedRnnPolicy | None:
        """The same network acting for ``slots`` envs at once, or None when it is not a closed-loop RNN."""
        if not supports_batching(self.rollout_policy):
            return None
        return BatchedRnnPolicy(self.rollout_policy, self.obs_keys, slots)

    def act(self, obs: dict[str, NDArray]) -> NDArray:
        missing = [k for k in self.obs_keys if k not in obs]
        if missing:
            raise KeyError(f"observation lacks keys {missing} the policy was trained on (has {sorted(obs)})")
        import torch

        with torch.inference_mode():  # robomimic's get_action builds no autograd graph this way
            action = self.rollout_policy({k: np.asarray(obs[k], dtype=np.float64) for k in self.obs_keys})
        return np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)


def _torch_device(device: str) -> Any:
    """``torch.device(device)``; ValueError for a malformed name or a CUDA device this machine lacks."""
    import torch

    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"--device {device!r}: not a torch device (cpu, cuda, cuda:N)") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device!r}: CUDA is not available on this machine")
    return resolved


def load_policy(spec: str | Path, env: Any, device: str = "cpu", task: str | None = None,
                obs_shapes: Mapping[str, tuple[int, ...]] | None = None, task_label: str = "--task") -> Policy:
    """A policy for ``env`` from a spec.

    - ``"expert"``: the scripted *naive* expert, acting on the observed (possibly corrupted) poses
      — a stand-in for a perfectly trained base policy, which makes the same pose-error mistakes.
    - ``"expert:true"``: the privileged scripted expert (true poses).
    - anything else: a robomimic checkpoint path, checked against ``task``/``obs_shapes`` (by
      default those of ``env`` when it is a sim TaskEnv) before use; CheckpointError if it does not fit.
    """
    spec = str(spec)
    if spec in ("expert", "expert:true"):
        from imgen_ros.sim.expert import ScriptedExpert

        return ScriptedExpert(env, use_true_poses=spec == "expert:true")
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"policy spec {spec!r} is neither 'expert', 'expert:true' nor an existing checkpoint")
    observability = None
    if env is not None and isinstance(getattr(env, "observability", None), str) and hasattr(env, "task"):
        observability = env.observability
        task = env.name if task is None else task
        if obs_shapes is None:
            obs_shapes = observation_shapes(len(env.task.object_names), env.observability)
    return RobomimicPolicy.from_checkpoint(path, device=device, task=task, obs_shapes=obs_shapes,
                                           task_label=task_label, observability=observability)


@dataclass
class TrialResult:
    seed: int
    success: bool
    steps: int
    mistake: bool


@dataclass
class EvalResult:
    task: str
    policy: str
    noise: str
    observability: str
    trials: int
    successes: int
    success_rate: float
    ci_low: float
    ci_high: float
    seed_base: int
    mean_steps: float
    mistakes: int
    wall_s: float
    per_trial: list[TrialResult] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    task_digest: str = ""  # the definition of the task evaluated on (sim.task_digest)
    trained_task_digest: str | None = None  # the one the checkpoint was trained on, where it records it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def task_changed(self) -> str:
        """A warning when the checkpoint was trained on another definition of the task, else ''."""
        if self.trained_task_digest is None or self.trained_task_digest == self.task_digest:
            return ""
        return (f"warning: {self.policy} was trained on another definition of task {self.task} (digest "
                f"{self.trained_task_digest}, now {self.task_digest}: its scene or settings changed since)")

    def summary(self) -> str:
        changed = self.task_changed()
        return (f"{self.task} [{self.policy}] noise={self.noise} obs={self.observability}: "
                f"{self.successes}/{self.trials} = {self.success_rate:.0%} "
                f"(95% Wilson CI {self.ci_low:.0%}-{self.ci_high:.0%}), {self.mistakes} episodes with a "
                f"detected mistake, {self.wall_s:.1f} s" + (f"\n{changed}" if changed else ""))


def run_episode(env: Any, policy: Policy, seed: int,
                on_frame: Callable[[NDArray], None] | None = None,
                render: Callable[[], NDArray] | None = None) -> TrialResult:
    """One closed-loop episode on ``seed``; success is the env's success flag at any step."""
    obs = env.reset(seed)
    policy.reset()
    success = False
    mistake = False
    steps = 0
    for steps in range(1, env.horizon + 1):  # noqa: B007
        if on_frame is not None and render is not None:
            on_frame(render())
        obs, _reward, done, info = env.step(policy.act(obs))
        success = success or bool(info.get("success", False))
        mistake = mistake or bool(info.get("mistake", False))
        if done or success:
            break
    if on_frame is not None and render is not None:
        on_frame(render())
    return TrialResult(seed=seed, success=success, steps=steps, mistake=mistake)


def evaluate(task: str, policy: Policy | str | Path, *, trials: int = 50, noise: str = "on",
             observability: str = "full", seed_base: int = EVAL_SEED_BASE, videos: int = 0,
             video_dir: str | Path | None = None, device: str = "cpu", env: Any = None,
             progress: Callable[[int, int, int], None] | None = None,
             batch: int = DEFAULT_EVAL_BATCH, overwrite: bool = False) -> EvalResult:
    """Roll ``policy`` out ``trials`` times in ``task`` (seeds ``seed_base + i``) and count successes.

    ``policy`` may be a Policy object or a spec for :func:`load_policy`. The first ``videos``
    trials are recorded to ``video_dir/trial_<seed>.mp4``; an existing one is refused before any trial
    unless ``overwrite``. ``progress(done, trials, successes)``
    is called after each trial (in the order trials finish). A batchable checkpoint runs the
    trials without video on up to ``batch`` envs side by side (``batch=1`` or a given ``env``: one
    at a time); ``per_trial`` is in seed order either way.
    """
    if trials <= 0:
        raise ValueError(f"trials must be > 0, got {trials}")
    if not 1 <= batch <= MAX_EVAL_BATCH:
        raise ValueError(f"batch must be in 1..{MAX_EVAL_BATCH}, got {batch}")
    if videos and video_dir is None:
        raise ValueError("videos > 0 needs a video_dir")
    _torch_device(device)  # a bad --device is refused for a scripted policy too, not only for a checkpoint
    if videos:
        _check_video_dir(Path(video_dir))
        for i in range(min(videos, trials)):
            check_file_output(_video_path(video_dir, seed_base + i), overwrite=overwrite)
    own_env = env is None
    from imgen_ros.sim import make_env
    from imgen_ros.sim.task_digest import task_digest

    pool_key = (task, noise, observability)

    def pooled_env() -> Any:
        return make_env(task, noise=noise, observability=observability)

    if own_env:  # a rendering env of its own for videos; otherwise the pool's first (kept for the next call)
        env = make_env(task, noise=noise, observability=observability, render=True) if videos else \
            _POOL.get(pool_key, 1, pooled_env)[0]
    name = str(policy) if isinstance(policy, (str, Path)) else type(policy).__name__
    if isinstance(policy, (str, Path)):
        policy = load_policy(policy, env, device=device)
    t0 = time.monotonic()
    results: list[TrialResult] = []
    video_paths: list[str] = []
    pooled = None
    if own_env and batch > 1 and trials > videos and isinstance(policy, RobomimicPolicy):
        pooled = policy.batched(min(batch, trials - videos))
    sequential = videos if pooled is not None else trials

    def finished(seed: int, success: bool, steps: int, mistake: bool) -> None:
        results.append(TrialResult(seed=seed, success=success, steps=steps, mistake=mistake))
        if progress is not None:
            progress(len(results), trials, sum(r.success for r in results))

    rng_state = _torch_rng_state()
    try:
        for i in range(sequential):
            seed = seed_base + i
            seed_policy_sampling(seed)
            if i < videos:
                frames: list[NDArray] = []
                result = run_episode(env, policy, seed, on_frame=frames.append,
                                     render=lambda: env.render(VIDEO_CAMERA, 320, 240))
                video_paths.append(str(_write_video(frames, _video_path(video_dir, seed), overwrite)))
            else:
                result = run_episode(env, policy, seed)
            finished(result.seed, result.success, result.steps, result.mistake)
        if pooled is not None:
            seed_policy_sampling(seed_base + sequential)   # the batch draws its samples together
            run_pooled(_POOL.get(pool_key, pooled.slots, pooled_env), pooled,
                       [seed_base + i for i in range(sequential, trials)], finished)
    finally:
        _restore_torch_rng(rng_state)
        if own_env and videos:
            env.close()
    results.sort(key=lambda r: r.seed)
    successes = sum(r.success for r in results)
    low, high = wilson_interval(successes, trials)
    return EvalResult(task=task, policy=name, noise=noise, observability=observability, trials=trials,
                      successes=successes, success_rate=successes / trials, ci_low=low, ci_high=high,
                      seed_base=seed_base, mean_steps=float(np.mean([r.steps for r in results])),
                      mistakes=sum(r.mistake for r in results), wall_s=time.monotonic() - t0,
                      per_trial=results, videos=video_paths, task_digest=task_digest(task),
                      trained_task_digest=getattr(policy, "trained_task_digest", None))


def seed_policy_sampling(seed: int) -> None:
    """A GMM policy samples its actions from torch's global generator, which torch seeds at random in
    each process: without this, ``imgen eval`` of one checkpoint on the same seeds gave 11 to 14 of 20
    from run to run. Seeded from the trial's seed, an evaluation repeats exactly (for a given --batch:
    a batch draws the samples of all its envs together)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def _torch_rng_state() -> Any:
    torch = sys.modules.get("torch")
    return None if torch is None else torch.get_rng_state()


def _restore_torch_rng(state: Any) -> None:
    """Hand the caller's generator back as it was (training's selection rollouts leave its stream alone)."""
    if state is not None:
        sys.modules["torch"].set_rng_state(state)


def _check_video_dir(folder: Path) -> None:
    """Refuse (ValueError) a video directory that is a file, lies under a file or cannot be written,
    before any trial runs."""
    existing = nearest_existing(folder)
    if not existing.is_dir():
        where = "exists" if existing == folder.absolute() else f"lies under {existing}, which exists"
        raise ValueError(f"video directory {folder} {where} and is not a directory")
    if not os.access(existing, os.W_OK):
        raise ValueError(f"video directory {folder}: {existing} is not writable")


def _video_path(video_dir: str | Path, seed: int) -> Path:
    return Path(video_dir) / f"trial_{seed}.mp4"


def _write_video(frames: list[NDArray], path: Path, overwrite: bool) -> Path:
    """Write ``frames`` to ``path`` (beside it first, renamed into place when complete)."""
    import imageio.v2 as imageio

    try:
        with atomic_file(path, overwrite=overwrite, suffix=".mp4") as tmp, \
                imageio.get_writer(tmp, fps=20, macro_block_size=1) as writer:
            for frame in frames:
                writer.append_data(np.asarray(frame, dtype=np.uint8))
    except OSError as exc:
        raise ValueError(f"cannot write video {path}: {exc.strerror or exc}") from exc
    return path
