"""The single-core steps of an experiment, each runnable in a worker process.

Every function takes JSON-able keyword arguments, writes its output files, and returns a
JSON-able summary (stored in the step's marker file). Data steps call the DATA layer's Python API
(``imgen_ros.datagen.collect.collect``, ``imgen_ros.datagen.runner.run_generation``); training
and evaluation call ``imgen_ros.policy.train`` / ``imgen_ros.policy.evaluate``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any


def _single_core() -> None:
    """One core per step: no intra-op thread pools (they thrash when two steps share 2 cores)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    import torch

    torch.set_num_threads(1)


def run_step(fn: str, kwargs: dict[str, Any], log_path: str) -> dict[str, Any]:
    """Run ``fn(**kwargs)`` from this module with stdout/stderr appended to ``log_path``."""
    _single_core()
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    func = globals()[fn]
    t0 = time.monotonic()
    with open(log_path, "a", buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        print(f"== {fn} {kwargs}", flush=True)
        result = func(**kwargs)
        print(f"== done in {time.monotonic() - t0:.1f} s: {result}", flush=True)
    sys.stdout.flush()
    return {**result, "wall_s": round(time.monotonic() - t0, 2)}


def _dataset_stats(path: str | Path) -> dict[str, Any]:
    import h5py

    with h5py.File(path, "r") as f:
        demos = [k for k in f["data"] if k.startswith("demo_")]
        samples = int(sum(int(f[f"data/{d}"].attrs["num_samples"]) for d in demos))
    return {"path": str(path), "demos": len(demos), "samples": samples}


def _fresh(out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in (out, out.with_name(out.name + ".journal")):
        if stale.exists():
            stale.unlink()
    return out


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------

def collect_demos(task: str, out: str, episodes: int, seed: int, noise: str, observability: str,
                  human: str = "operator") -> dict[str, Any]:
    """Privileged demos (the simulated ``human`` on true poses); ``noise='on'`` records them in the test env."""
    from imgen_ros.datagen.collect import CollectConfig, collect
    from imgen_ros.sim import make_env

    env = make_env(task, noise=noise, observability=observability)
    config = CollectConfig(task=task, kind="demos", policy="expert", episodes=episodes, seed=seed,
                           observability=observability, human=human)
    stats = collect(config, _fresh(out), env=env)
    env.close()
    return {**_dataset_stats(out), "collect": stats}


def collect_interventions(task: str, out: str, episodes: int, seed: int, policy: str, noise: str,
                          observability: str, human: str = "operator") -> dict[str, Any]:
    """Human-gated interventions: ``policy`` (the base checkpoint) under corruption, the simulated ``human``
    takes over."""
    from imgen_ros.datagen.collect import CollectConfig, collect
    from imgen_ros.sim import make_env

    env = make_env(task, noise=noise, observability=observability)
    config = CollectConfig(task=task, kind="interventions", policy=policy, episodes=episodes, seed=seed,
                           observability=observability, max_attempts=20 * episodes + 20, human=human)
    stats = collect(config, _fresh(out), env=env)
    env.close()
    return {**_dataset_stats(out), "collect": stats}


def recovery_segments(source: str, out: str) -> dict[str, Any]:
    """Each intervention from the take-over on (the human-labelled part), as HG-DAgger keeps it and as
    I-MG keeps its generated episodes; episodes without a take-over are dropped."""
    import numpy as np

    from imgen_ros.data.episode import ACTION_MODE_HUMAN
    from imgen_ros.data.reader import DatasetReader
    from imgen_ros.data.writer import DatasetWriter

    kept = 0
    with DatasetReader(source) as reader, DatasetWriter(_fresh(out), reader.env_args) as writer:
        writer.set_json_attr("imgen_config", {"command": "recovery_segments", "source": str(source)})
        for demo in reader.demos():
            episode = reader.load_episode(demo)
            human = np.flatnonzero(np.asarray(episode.action_modes) == ACTION_MODE_HUMAN)
            if len(human) == 0:
                continue
            part = episode.slice(int(human[0]))
            part.attrs["takeover_step"] = int(human[0])
            part.attrs["source_demo"] = demo
            writer.append(part, masks=["recovery"])
            kept += 1
    if kept == 0:
        raise ValueError(f"{source}: no episode has a human take-over")
    return _dataset_stats(out)


def generate(kind: str, task: str, source: str, out: str, n: int, seed: int, noise: str, observability: str,
             policy: str | None = None, policy_execution: bool = True, selection: str | None = None,
             allow_short: bool = False, action_noise: float | None = None,
             reveal_grace_steps: int = 2, drop_holds: bool = False) -> dict[str, Any]:
    """MimicGen (``kind='mimicgen'``) or I-MG (``kind='imgen'``) generation of exactly ``n`` kept episodes.

    ``selection`` picks each source segment (``random`` or ``nearest``, see datagen.sources); None: the
    library's default for the kind (``datagen.episodes.DEFAULT_SELECTION``). ``allow_short`` (smoke scale):
    a run that gives up keeps the episodes it kept, if any, instead of failing the step. ``action_noise``:
    the std of the noise on executed actions; None: ``ReplayConfig``'s default. ``reveal_grace_steps``:
    see ``datagen.episodes.MistakeStop`` (2 is its ``DEFAULT_REVEAL_GRACE_STEPS``). ``drop_holds``: replay the
    sources without the steps where the person held still (``ReplayConfig.drop_holds``)."""
    from imgen_ros.data.outputs import partial_path
    from imgen_ros.datagen.episodes import GenerationParams
    from imgen_ros.datagen.job import GenerationJob
    from imgen_ros.datagen.journal import journal_path
    from imgen_ros.datagen.replay import ReplayConfig
    from imgen_ros.datagen.runner import RunOptions, run_generation

    replay = ReplayConfig(drop_holds=drop_holds) if action_noise is None else \
        ReplayConfig(action_noise=action_noise, drop_holds=drop_holds)
    job = GenerationJob(kind=kind, task=task, source=str(Path(source).resolve()), seed=seed, policy=policy,
                        noise=noise, observability=observability,
                        params=GenerationParams(replay=replay, policy_execution=policy_execution,
                                                selection=selection, reveal_grace_steps=reveal_grace_steps))
    try:
        report = run_generation(job, _fresh(out), RunOptions(n=n, workers=1, progress=False, overwrite=True,
                                                              valid_every=0))
    except RuntimeError as exc:
        partial = partial_path(out)
        if not (allow_short and "gave up" in str(exc) and partial.is_file() and _dataset_stats(partial)["demos"]):
            raise
        os.replace(partial, out)
        journal_path(out).unlink(missing_ok=True)
        print(f"kept a short dataset: {exc}", flush=True)
        return {**_dataset_stats(out), "short": str(exc), "selection": job.params.selection,
                "action_noise": replay.action_noise}
    return {**_dataset_stats(out), "attempts": report.attempts, "outcomes": report.outcomes,
            "success_rate": round(report.success_rate, 4), "selection": job.params.selection,
            "action_noise": replay.action_noise}


# ----------------------------------------------------------------------------------------------
# learning
# ----------------------------------------------------------------------------------------------

def train_policy(task: str, datasets: list[str], weights: list[float] | None, out_dir: str, size: dict[str, Any],
                 seed: int, eval_noise: str, eval_observability: str) -> dict[str, Any]:
    from imgen_ros.policy.train import TrainConfig, train

    cfg = TrainConfig(task=task, datasets=list(datasets), weights=list(weights) if weights else None,
                      out_dir=out_dir, seed=seed, eval_noise=eval_noise, eval_observability=eval_observability,
                      num_threads=1, **size)
    result = train(cfg)
    return {"best_checkpoint": result.best_checkpoint, "best_epoch": result.best_epoch,
            "selection_success_rate": result.best_success_rate, "train_wall_s": round(result.wall_s, 1),
            **training_time_split(result.history, result.wall_s),
            "datasets": [_dataset_stats(p) for p in datasets], "weights": weights,
            "final_loss": result.history[-1]["loss"] if result.history else None}


def training_time_split(history: list[dict[str, Any]], wall_s: float) -> dict[str, float]:
    """Where a training run's wall time went, from its per-epoch log: ``grad_s`` (the gradient epochs),
    ``selection_s`` (checkpoint-selection rollouts and checkpoint saves after evaluated epochs) and
    ``other_s`` (data loading, model set-up, the final saves and plot; and an evaluation after epoch 1, which
    the log cannot tell from set-up)."""
    grad = sum(float(r.get("epoch_s", 0.0)) for r in history)
    selection = 0.0
    previous = None
    for r in history:
        if previous is not None and "elapsed_s" in r and "eval_trials" in r:
            selection += max(0.0, float(r["elapsed_s"]) - float(previous) - float(r.get("epoch_s", 0.0)))
        previous = r.get("elapsed_s", previous)
    return {"grad_s": round(grad, 2), "selection_s": round(selection, 2),
            "other_s": round(max(0.0, wall_s - grad - selection), 2)}


def evaluate_policy(task: str, checkpoint: str, trials: int, noise: str, observability: str,
                    seed_base: int) -> dict[str, Any]:
    from imgen_ros.policy.evaluate import evaluate

    result = evaluate(task, checkpoint, trials=trials, noise=noise, observability=observability, seed_base=seed_base)
    print(result.summary())
    out = result.to_dict()
    out["per_trial"] = [t.__dict__ for t in result.per_trial]
    return out
