"""A generation job (picklable, JSON-able) and the attempt function every executor runs.

Worker processes (local pool or Ray) build the environment, the source pool and the policy once
per job and keep them in a per-process cache; each attempt ``k`` then runs with the seed
``attempt_seed(job.seed, k)``, independent of which process runs it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgen_ros.data.outputs import fingerprint
from imgen_ros.datagen.episodes import AttemptResult, GenerationParams, generate_imgen, generate_mimicgen
from imgen_ros.datagen.replay import ReplayConfig
from imgen_ros.datagen.sources import DemoPool, InterventionPool

KINDS = ("imgen", "mimicgen")


def attempt_seed(seed: int, attempt: int) -> int:
    """The scene/corruption/noise seed of attempt ``attempt`` of a run seeded ``seed`` (31-bit)."""
    return int(np.random.SeedSequence([int(seed), int(attempt)]).generate_state(1)[0] & 0x7FFFFFFF)


@dataclass(frozen=True)
class GenerationJob:
    kind: str  # imgen | mimicgen
    task: str
    source: str  # absolute path of the source hdf5
    seed: int = 0
    policy: str | None = None  # I-MG: "expert" (naive expert, observed poses) or a checkpoint path
    noise: str | None = None  # pose corruption of the scene; None: "off" for mimicgen, "on" for imgen
    # params.selection None is resolved here by kind (episodes.DEFAULT_SELECTION: random for both kinds)
    observability: str = "full"
    source_mask: str | None = None
    params: GenerationParams = field(default_factory=GenerationParams)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown generation kind {self.kind!r} (choose from {list(KINDS)})")
        if self.noise is None:
            object.__setattr__(self, "noise", "off" if self.kind == "mimicgen" else "on")
        object.__setattr__(self, "params", self.params.resolved(self.kind))  # selection default by kind
        if self.kind == "imgen" and self.params.policy_execution and not self.policy:
            raise ValueError("I-MG with policy execution needs a policy ('expert' or a checkpoint path)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenerationJob:
        d = dict(d)
        params = dict(d.pop("params"))
        params["replay"] = ReplayConfig(**params["replay"])
        return cls(params=GenerationParams(**params), **d)

    def key(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def input_files(self) -> dict[str, str]:
        """The files the job reads: ``source``, and ``checkpoint`` when a policy checkpoint is executed."""
        files = {"source": self.source}
        if self.kind == "imgen" and self.params.policy_execution and self.policy not in (None, "expert"):
            files["checkpoint"] = str(self.policy)
        return files

    def input_fingerprints(self) -> dict[str, dict[str, Any]]:
        """Content fingerprints (size, sha256) of :meth:`input_files` that exist, for the resume check."""
        return {role: fingerprint(path) for role, path in self.input_files().items() if Path(path).is_file()}


@dataclass
class _Context:
    env: Any
    pool: Any
    policy: Any


_CACHE: dict[str, _Context] = {}


def _build_context(job: GenerationJob) -> _Context:
    from imgen_ros.sim import make_env

    env = make_env(job.task, noise=job.noise, observability=job.observability)
    if job.kind == "mimicgen":
        return _Context(env, DemoPool.from_file(job.source, job.task, env.subtasks, job.source_mask,
                                                drop_holds=job.params.replay.drop_holds), None)
    pool = InterventionPool.from_file(job.source, job.task, env.subtasks, job.source_mask,
                                      drop_holds=job.params.replay.drop_holds)
    policy = None
    if job.params.policy_execution:
        policy = load_generation_policy(job.policy, env)
    return _Context(env, pool, policy)


def load_generation_policy(spec: str, env: Any) -> Any:
    """``expert`` -> the naive scripted expert (observed poses); else a robomimic checkpoint via imgen_ros.policy."""
    if spec == "expert":
        from imgen_ros.sim.expert import ScriptedExpert

        return ScriptedExpert(env, use_true_poses=False)
    if not Path(spec).is_file():
        raise FileNotFoundError(f"--policy {spec!r}: neither 'expert' nor an existing checkpoint file")
    try:
        from imgen_ros.policy.evaluate import load_policy
    except ImportError as exc:
        raise RuntimeError(f"cannot load checkpoint {spec}: imgen_ros.policy is unavailable ({exc})") from exc
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)  # one process per core: no intra-op threads
    return load_policy(spec, env)


def context_for(job: GenerationJob) -> _Context:
    key = job.key()
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = _build_context(job)
    return _CACHE[key]


def run_attempt(job: GenerationJob, attempt: int) -> AttemptResult:
    """Run attempt ``attempt`` of ``job`` in this process (building the cached context on first use)."""
    ctx = context_for(job)
    seed = attempt_seed(job.seed, attempt)
    if ctx.policy is not None:
        from imgen_ros.policy.evaluate import seed_policy_sampling

        seed_policy_sampling(seed)   # stochastic (GMM) policies sample from the attempt's seed
    if job.kind == "mimicgen":
        return generate_mimicgen(ctx.env, ctx.pool, attempt, seed, job.params)
    return generate_imgen(ctx.env, ctx.policy, ctx.pool, attempt, seed, job.params)


def warm_up(job: GenerationJob) -> bool:
    """Build the context (env, sources, policy) now; used to surface setup errors before a run."""
    context_for(job)
    return True
