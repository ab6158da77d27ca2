"""BC-RNN-GMM training with robomimic's own config factory, algo factory and SequenceDataset.

Defaults are MimicGen's low-dim BC-RNN settings (lr 1e-3, 2 x 400 LSTM, sequence 10, batch 100,
GMM with 5 modes, 2000 epochs x 100 steps, 50 evaluation rollouts every 50 epochs, best
checkpoint); every size can be scaled down. Several robomimic hdf5 files can be mixed:

- without weights every sample is drawn uniformly (plain concatenation);
- with weights, file ``i`` receives a share ``w_i / sum(w)`` of all draws, spread uniformly over
  its samples (``WeightedRandomSampler`` over a ``ConcatDataset``). ``weights=[1, 1]`` on
  (base, interventions) draws intervention samples as often as base samples: the paper's
  Weighted Src Int baseline.

Every ``eval_every`` epochs (and after the last) the policy is rolled out under corruption
(:func:`imgen_ros.policy.evaluate.evaluate`, selection seeds); the best success rate (ties go to
the later, longer-trained checkpoint) is kept as ``models/best.pth``. Checkpoints are robomimic
checkpoints: ``robomimic.utils.file_utils.policy_from_checkpoint`` loads them. Logs:
``log.csv`` (one row per epoch), ``train.json`` (config, history, best), ``training.png``.
"""

from __future__ import annotations

import csv
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from imgen_ros.data.validate import DatasetError, validate_dataset
from imgen_ros.policy.checkpoint import task_obs_shapes
from imgen_ros.policy.evaluate import OBS_KEYS, SELECTION_SEED_BASE, EvalResult, RobomimicPolicy, evaluate
from imgen_ros.policy.plots import plot_training
from imgen_ros.policy.precision import check_precision, runnable_precision, use_bf16_recurrence
from imgen_ros.policy.robomimic_compat import robomimic_modules
from imgen_ros.sim import check_task
from imgen_ros.sim.task_digest import task_digest

ACTION_DIM = 7


@dataclass
class TrainConfig:
    """One training run. Defaults: MimicGen's low-dim BC-RNN-GMM protocol."""

    task: str
    datasets: list[str]
    out_dir: str
    weights: list[float] | None = None
    epochs: int = 2000
    steps_per_epoch: int = 100
    batch_size: int = 100
    seq_length: int = 10
    learning_rate: float = 1e-3
    # learning rate of the last epoch as a fraction of ``learning_rate``, reached by a linear decay over
    # the run (robomimic's "linear" scheduler); 1.0 keeps it constant, as MimicGen does
    lr_end_factor: float = 1.0
    rnn_hidden_dim: int = 400
    rnn_num_layers: int = 2
    gmm_modes: int = 5
    eval_every: int = 50
    eval_trials: int = 50
    eval_noise: str = "on"
    eval_observability: str = "full"
    eval_seed_base: int = SELECTION_SEED_BASE
    normalize_obs: bool = False
    seed: int = 1
    device: str = "cpu"
    num_threads: int | None = None
    precision: str = "fp32"  # "bf16": the LSTM's gradient steps in bfloat16 (policy.precision)
    obs_keys: tuple[str, ...] = OBS_KEYS

    def __post_init__(self) -> None:
        # before any data is read: a bad --noise would otherwise surface at the first evaluation, epochs later
        check_task(self.task, noise=self.eval_noise, observability=self.eval_observability)
        if not self.datasets:
            raise ValueError("at least one dataset is required")
        if self.weights is not None:
            if len(self.weights) != len(self.datasets):
                raise ValueError(f"got {len(self.weights)} weights for {len(self.datasets)} datasets")
            if any(not (w >= 0 and math.isfinite(w)) for w in self.weights) or sum(self.weights) <= 0:
                raise ValueError(f"weights must be finite, >= 0 and not all 0, got {self.weights}")
        for name in ("epochs", "steps_per_epoch", "batch_size", "seq_length", "rnn_hidden_dim", "rnn_num_layers",
                     "gmm_modes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (0.0 < self.lr_end_factor <= 1.0):
            raise ValueError(f"lr_end_factor must be in (0, 1], got {self.lr_end_factor}")
        if self.eval_every < 0 or self.eval_trials < 0:
            raise ValueError("eval_every and eval_trials must be >= 0")
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {self.device!r}")
        check_precision(self.precision)
        if self.precision != "fp32" and self.device != "cpu":
            raise ValueError(f"precision {self.precision!r} is implemented for device 'cpu' only")
        runnable_precision(self.precision, explicit=True)  # a bf16 this CPU cannot run: refused before any work
        self.obs_keys = tuple(self.obs_keys)


@dataclass
class TrainResult:
    out_dir: str
    best_checkpoint: str
    last_checkpoint: str
    best_epoch: int
    best_success_rate: float | None
    history: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0


# ----------------------------------------------------------------------------------------------
# Datasets
# ----------------------------------------------------------------------------------------------

def inspect_dataset(path: str | Path, obs_keys: Sequence[str]) -> dict[str, Any]:
    """Check a robomimic hdf5 for training; returns env_args, obs shapes, #demos, #samples.

    Raises FileNotFoundError / ValueError naming the file and the missing/wrong key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not an hdf5 file ({exc})") from exc
    with f:
        if "data" not in f:
            raise ValueError(f"{path}: no 'data' group (not a robomimic dataset)")
        data = f["data"]
        demos = [k for k in data.keys() if k.startswith("demo_")]
        if not demos:
            raise ValueError(f"{path}: 'data' holds no demo_<i> groups")
        if "env_args" not in data.attrs:
            raise ValueError(f"{path}: data.attrs['env_args'] missing")
        env_args = json.loads(data.attrs["env_args"])
        shapes: dict[str, tuple[int, ...]] = {}
        samples = 0
        for demo in demos:
            group = data[demo]
            if "num_samples" not in group.attrs:
                raise ValueError(f"{path}: data/{demo} lacks attrs['num_samples']")
            if "actions" not in group:
                raise ValueError(f"{path}: data/{demo}/actions missing")
            if group["actions"].shape[1:] != (ACTION_DIM,):
                raise ValueError(f"{path}: data/{demo}/actions has shape {group['actions'].shape}, "
                                 f"expected (T, {ACTION_DIM})")
            for key in obs_keys:
                if f"obs/{key}" not in group:
                    raise ValueError(f"{path}: data/{demo}/obs/{key} missing (policy obs keys: {list(obs_keys)})")
                shape = tuple(group[f"obs/{key}"].shape[1:])
                if shapes.setdefault(key, shape) != shape:
                    raise ValueError(f"{path}: data/{demo}/obs/{key} has shape {shape}, other demos {shapes[key]}")
            samples += int(group.attrs["num_samples"])
    return {"path": str(path), "env_args": env_args, "obs_shapes": shapes, "demos": len(demos), "samples": samples}


def check_training_data(cfg: TrainConfig, sim_evaluation: bool = True) -> list[dict[str, Any]]:
    """Validate every dataset before training starts; ValueError (one line, naming file and demo) if not fit.

    Each file passes ``imgen dataset validate`` (data/validate.py: structure, NaN/Inf, action range,
    shapes) and was recorded for ``cfg.task``; all files have the same observation shapes; and when
    the policy will be evaluated in the simulator (``sim_evaluation`` and evaluations configured)
    the observations match the task's layout under ``cfg.eval_observability``, so the first
    evaluation cannot fail after hours of training. Returns :func:`inspect_dataset` per file.
    """
    for path in cfg.datasets:
        try:
            validate_dataset(path, task=cfg.task)
        except DatasetError as exc:
            raise ValueError(str(exc)) from exc
    infos = [inspect_dataset(p, cfg.obs_keys) for p in cfg.datasets]
    shapes0 = infos[0]["obs_shapes"]
    for info in infos[1:]:
        if info["obs_shapes"] != shapes0:
            raise ValueError(f"observation shapes differ between {infos[0]['path']} {shapes0} and "
                             f"{info['path']} {info['obs_shapes']}")
    if sim_evaluation and cfg.eval_every > 0 and cfg.eval_trials > 0:
        expected = task_obs_shapes(cfg.task, cfg.eval_observability)
        for key, shape in shapes0.items():
            if key in expected and expected[key] != shape:
                raise ValueError(f"{infos[0]['path']}: obs/{key} (every demo) has per-step shape {shape}, but task "
                                 f"'{cfg.task}' with observability '{cfg.eval_observability}' gives {expected[key]}; "
                                 "evaluation rollouts would fail (match --observability to the data, or "
                                 "--eval-every 0)")
    return infos


def sample_weights(lengths: Sequence[int], weights: Sequence[float] | None) -> np.ndarray:
    """Per-sample draw probabilities for concatenated datasets of ``lengths`` (sums to 1).

    ``weights=None``: uniform over all samples. Otherwise dataset ``i`` gets mass ``w_i / sum(w)``
    split evenly over its samples.
    """
    if any(n <= 0 for n in lengths):
        raise ValueError(f"every dataset needs at least one sample, got lengths {list(lengths)}")
    total = sum(lengths)
    if weights is None:
        return np.full(total, 1.0 / total)
    if len(weights) != len(lengths):
        raise ValueError(f"got {len(weights)} weights for {len(lengths)} datasets")
    mass = np.asarray(weights, dtype=float) / float(np.sum(weights))
    return np.concatenate([np.full(n, m / n) for n, m in zip(lengths, mass, strict=True)])


def compute_obs_stats(paths: Sequence[str | Path], obs_keys: Sequence[str],
                      min_std: float = 1e-2) -> dict[str, dict[str, np.ndarray]]:
    """Per-key mean/std over every sample of every file, in robomimic's format ({"mean","std"}: (1, D)).

    As robomimic, 1e-3 is added to the std; it is also floored at ``min_std`` so a dimension that is
    (nearly) constant in the data (e.g. a not-yet-revealed observability flag) does not explode when
    it changes at test time.
    """
    chunks: dict[str, list[np.ndarray]] = {k: [] for k in obs_keys}
    for path in paths:
        with h5py.File(path, "r") as f:
            for demo in f["data"]:
                if demo.startswith("demo_"):
                    for k in obs_keys:
                        chunks[k].append(np.asarray(f[f"data/{demo}/obs/{k}"], dtype=np.float64))
    stats = {}
    for k, parts in chunks.items():
        x = np.concatenate(parts, axis=0)
        std = np.maximum(x.std(axis=0, keepdims=True) + 1e-3, min_std)
        stats[k] = {"mean": x.mean(axis=0, keepdims=True).astype(np.float32), "std": std.astype(np.float32)}
    return stats


def make_sampler(lengths: Sequence[int], weights: Sequence[float] | None, num_samples: int, seed: int) -> Any:
    """A seeded ``WeightedRandomSampler`` over the concatenation of datasets of ``lengths``.

    Yields ``num_samples`` indices (with replacement) into the ``ConcatDataset``; see
    :func:`sample_weights` for how ``weights`` split the draws.
    """
    import torch
    from torch.utils.data import WeightedRandomSampler

    probs = torch.as_tensor(sample_weights(lengths, weights), dtype=torch.double)
    return WeightedRandomSampler(probs, num_samples=num_samples, replacement=True,
                                 generator=torch.Generator().manual_seed(seed))


def _robomimic_config(cfg: TrainConfig, rm: Any) -> Any:
    config = rm.config_factory("bc")
    with config.values_unlocked():
        config.experiment.name = Path(cfg.out_dir).name or "imgen"
        config.experiment.validate = False
        config.experiment.logging.terminal_output_to_txt = False
        config.experiment.logging.log_tb = False
        config.experiment.save.enabled = True
        config.experiment.epoch_every_n_steps = cfg.steps_per_epoch
        config.experiment.rollout.enabled = cfg.eval_every > 0
        config.experiment.rollout.n = cfg.eval_trials
        config.experiment.rollout.rate = cfg.eval_every
        config.experiment.render_video = False
        config.train.data = str(Path(cfg.datasets[0]).resolve())
        config.train.output_dir = str(Path(cfg.out_dir).resolve())
        config.train.num_data_workers = 0
        config.train.hdf5_cache_mode = "all"
        config.train.hdf5_load_next_obs = False
        # robomimic 0.3.0 cannot normalize (B, T, D) batches in postprocess_batch_for_training; imgen
        # normalizes in the collate function and stores the stats in the checkpoint, where
        # policy_from_checkpoint / RolloutPolicy apply them (that path requires this flag).
        config.train.hdf5_normalize_obs = cfg.normalize_obs
        config.train.seq_length = cfg.seq_length
        config.train.frame_stack = 1
        config.train.dataset_keys = ("actions",)
        config.train.batch_size = cfg.batch_size
        config.train.num_epochs = cfg.epochs
        config.train.seed = cfg.seed
        config.train.cuda = cfg.device.startswith("cuda")
        lr = config.algo.optim_params.policy.learning_rate
        lr.initial = cfg.learning_rate
        lr.epoch_schedule = [cfg.epochs] if cfg.lr_end_factor < 1.0 else []
        lr.scheduler_type = "linear"
        lr.decay_factor = cfg.lr_end_factor
        config.algo.actor_layer_dims = ()
        config.algo.gmm.enabled = True
        config.algo.gmm.num_modes = cfg.gmm_modes
        config.algo.gmm.min_std = 0.0001
        config.algo.gmm.std_activation = "softplus"
        config.algo.gmm.low_noise_eval = True
        config.algo.rnn.enabled = True
        config.algo.rnn.horizon = cfg.seq_length
        config.algo.rnn.hidden_dim = cfg.rnn_hidden_dim
        config.algo.rnn.num_layers = cfg.rnn_num_layers
        config.algo.rnn.rnn_type = "LSTM"
        config.observation.modalities.obs.low_dim = list(cfg.obs_keys)
        config.observation.modalities.obs.rgb = []
    return config


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------

class _Log:
    """CSV rows (one per epoch) + the history kept for JSON and the plot."""

    FIELDS = ("epoch", "step", "loss", "log_likelihood", "lr", "epoch_s", "elapsed_s", "success_rate", "ci_low",
              "ci_high", "eval_trials", "best_success_rate")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        with path.open("w", newline="") as f:
            csv.DictWriter(f, fieldnames=self.FIELDS).writeheader()

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.FIELDS, extrasaction="ignore").writerow(row)


def _normalizing_collate(stats: dict[str, dict[str, np.ndarray]] | None) -> Callable[[list], dict]:
    import torch
    from torch.utils.data import default_collate

    if stats is None:
        return default_collate
    tensors = {k: (torch.as_tensor(d["mean"][0]), torch.as_tensor(d["std"][0])) for k, d in stats.items()}

    def collate(items: list) -> dict:
        batch = default_collate(items)
        for k, (mean, std) in tensors.items():
            batch["obs"][k] = (batch["obs"][k].float() - mean) / std
        return batch

    return collate


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(cfg: TrainConfig, progress: Callable[[str], None] = print,
          evaluate_fn: Callable[..., EvalResult] = evaluate, work_dir: str | Path | None = None) -> TrainResult:
    """Train BC-RNN-GMM on ``cfg.datasets``; returns the best/last checkpoints and the history.

    Files go to ``work_dir`` when given (a staging directory the caller moves to ``cfg.out_dir``
    afterwards, see ``imgen_ros.data.outputs.output_dir``); recorded paths always name ``cfg.out_dir``.
    """
    import torch
    from torch.utils.data import ConcatDataset, DataLoader

    t_start = time.monotonic()
    infos = check_training_data(cfg, sim_evaluation=evaluate_fn is evaluate)
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but torch.cuda.is_available() is False on this machine")
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    out = Path(work_dir if work_dir is not None else cfg.out_dir)
    models = out / "models"
    models.mkdir(parents=True, exist_ok=True)

    rm = robomimic_modules()
    config = _robomimic_config(cfg, rm)
    rm.ObsUtils.initialize_obs_utils_with_config(config)
    _seed_everything(cfg.seed)
    device = torch.device(cfg.device)

    datasets = [rm.SequenceDataset(hdf5_path=str(Path(p).resolve()), obs_keys=cfg.obs_keys,
                                   dataset_keys=config.train.dataset_keys, frame_stack=1,
                                   seq_length=cfg.seq_length, pad_frame_stack=True, pad_seq_length=True,
                                   get_pad_mask=False, goal_mode=None, hdf5_cache_mode="all",
                                   hdf5_use_swmr=True, hdf5_normalize_obs=False, load_next_obs=False)
                for p in cfg.datasets]
    lengths = [len(d) for d in datasets]
    probs = sample_weights(lengths, cfg.weights)
    sampler = make_sampler(lengths, cfg.weights, cfg.batch_size * cfg.steps_per_epoch, cfg.seed)
    obs_stats = compute_obs_stats(cfg.datasets, cfg.obs_keys) if cfg.normalize_obs else None
    loader = DataLoader(ConcatDataset(datasets), batch_size=cfg.batch_size, sampler=sampler, num_workers=0,
                        drop_last=True, collate_fn=_normalizing_collate(obs_stats))
    shares = [float(probs[sum(lengths[:i]):sum(lengths[:i + 1])].sum()) for i in range(len(lengths))]
    progress(f"train {cfg.task}: {len(datasets)} dataset(s) "
             + ", ".join(f"{Path(p).name} ({info['demos']} demos, {n} samples, {s:.0%} of draws)"
                         for p, info, n, s in zip(cfg.datasets, infos, lengths, shares, strict=True)))

    shape_meta = rm.FileUtils.get_shape_metadata_from_dataset(dataset_path=str(Path(cfg.datasets[0]).resolve()),
                                                              all_obs_keys=list(cfg.obs_keys))
    env_meta = infos[0]["env_args"]
    model = rm.algo_factory(config.algo_name, config, obs_key_shapes=shape_meta["all_shapes"],
                            ac_dim=shape_meta["ac_dim"], device=device)
    if cfg.precision == "bf16" and use_bf16_recurrence(model.nets) == 0:
        raise ValueError("precision 'bf16' needs a recurrent policy (rnn_num_layers >= 1)")
    log = _Log(out / "log.csv")
    imgen_meta = {"task": cfg.task, "datasets": [str(p) for p in cfg.datasets], "weights": cfg.weights,
                  "eval_noise": cfg.eval_noise, "eval_observability": cfg.eval_observability,
                  "precision": cfg.precision, "task_digest": task_digest(cfg.task)}

    def save(path: Path, epoch: int, success_rate: float | None) -> None:
        params = {"model": model.serialize(), "config": config.dump(), "algo_name": config.algo_name,
                  "env_metadata": env_meta, "shape_metadata": shape_meta,
                  "imgen": {**imgen_meta, "epoch": epoch, "success_rate": success_rate}}
        if obs_stats is not None:
            params["obs_normalization_stats"] = {k: {m: v.tolist() for m, v in d.items()} for k, d in obs_stats.items()}
        tmp = path.with_suffix(".tmp")
        torch.save(params, tmp)
        tmp.replace(path)

    best_sr: float | None = None
    best_epoch = 0
    evaluations: list[dict[str, Any]] = []
    step = 0
    best_path, last_path = models / "best.pth", models / "last.pth"
    for epoch in range(1, cfg.epochs + 1):
        t_epoch = time.monotonic()
        model.set_train()
        losses, lls = [], []
        for batch in loader:
            input_batch = model.process_batch_for_training(batch)
            input_batch = model.postprocess_batch_for_training(input_batch, obs_normalization_stats=None)
            info = model.train_on_batch(input_batch, epoch, validate=False)
            logged = model.log_info(info)
            losses.append(float(logged["Loss"]))
            lls.append(float(logged.get("Log_Likelihood", float("nan"))))
            step += 1
        model.on_epoch_end(epoch)
        row: dict[str, Any] = {"epoch": epoch, "step": step, "loss": float(np.mean(losses)),
                               "log_likelihood": float(np.mean(lls)),
                               "lr": float(model.optimizers["policy"].param_groups[0]["lr"]),
                               "epoch_s": round(time.monotonic() - t_epoch, 3)}
        do_eval = cfg.eval_every > 0 and cfg.eval_trials > 0 and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs)
        if do_eval:
            model.set_eval()
            policy = RobomimicPolicy(rm.RolloutPolicy(model, obs_normalization_stats=obs_stats), obs_keys=cfg.obs_keys)
            result = evaluate_fn(cfg.task, policy, trials=cfg.eval_trials, noise=cfg.eval_noise,
                                 observability=cfg.eval_observability, seed_base=cfg.eval_seed_base)
            evaluations.append({"epoch": epoch, **{k: v for k, v in result.to_dict().items() if k != "per_trial"}})
            row.update(success_rate=result.success_rate, ci_low=result.ci_low, ci_high=result.ci_high,
                       eval_trials=result.trials)
            if best_sr is None or result.success_rate >= best_sr:
                best_sr, best_epoch = result.success_rate, epoch
                save(best_path, epoch, best_sr)
        row["best_success_rate"] = best_sr
        row["elapsed_s"] = round(time.monotonic() - t_start, 2)
        log.add(row)
        msg = f"epoch {epoch}/{cfg.epochs} step {step} loss {row['loss']:.3f} ({row['epoch_s']:.1f} s)"
        if do_eval:
            msg += f" | eval {row['success_rate']:.0%} over {row['eval_trials']} (best {best_sr:.0%} @ {best_epoch})"
        progress(msg)
    save(last_path, cfg.epochs, evaluations[-1]["success_rate"] if evaluations else None)
    if best_sr is None:  # no evaluation: the last checkpoint is the one we have
        best_epoch = cfg.epochs
        save(best_path, cfg.epochs, None)

    final = Path(cfg.out_dir)
    result = TrainResult(out_dir=str(final), best_checkpoint=str(final / "models" / best_path.name),
                         last_checkpoint=str(final / "models" / last_path.name),
                         best_epoch=best_epoch, best_success_rate=best_sr, history=log.rows,
                         evaluations=evaluations, wall_s=time.monotonic() - t_start)
    cfg_dict = asdict(cfg)
    cfg_dict["obs_keys"] = list(cfg.obs_keys)
    (out / "train.json").write_text(json.dumps({"config": cfg_dict, "datasets": infos, "draw_shares": shares,
                                                "robomimic_version": rm.version, **asdict(result)}, indent=2))
    plot_training(log.rows, out / "training.png", title=f"{cfg.task}: {final.name}")
    return result
