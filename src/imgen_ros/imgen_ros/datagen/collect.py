"""Source collection: full demonstrations (true poses, no corruption) and human-gated interventions.

Demos: a privileged demonstrator (on true poses: the simulated human model ``human``, or a person on
a teleop device) completes the task in a noise-free scene; every step is labelled -1 (demo).
Interventions: the robot policy runs under pose corruption and the (simulated) human takes over when
it errs; each step is labelled 0 (robot) or 1 (human). ``human`` picks the simulated human
(``imgen_ros.sim.human``): ``operator`` (default: sees failures, reacts late, moves like a
teleoperator) or ``oracle`` (the scripted expert, taking over on the generator's mistake detector).
Only successful episodes are kept (for interventions, only those with a take-over). Episode ``i`` is
attempt ``i`` with seed ``attempt_seed(seed, i)``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from imgen_ros.data.episode import ACTION_MODE_DEMO, ACTION_MODE_HUMAN, ACTION_MODE_ROBOT, EpisodeRecorder
from imgen_ros.data.writer import DatasetWriter
from imgen_ros.datagen.job import attempt_seed, load_generation_policy
from imgen_ros.datagen.replay import StepTimer, recorded_step

COLLECT_KINDS = ("demos", "interventions")
TELEOP_POLICIES = ("keyboard", "spacemouse")
# the simulated human models, as imgen_ros.sim.human names them (kept here so the CLI needs no MuJoCo import)
HUMAN_MODELS = ("operator", "oracle")
DEFAULT_HUMAN = "operator"


@dataclass(frozen=True)
class CollectConfig:
    task: str
    kind: str  # demos | interventions
    policy: str = "expert"
    episodes: int = 10
    seed: int = 0
    observability: str = "full"
    max_attempts: int | None = None  # default 5 * episodes + 10
    human: str = DEFAULT_HUMAN  # simulated human model: operator | oracle

    def __post_init__(self) -> None:
        if self.kind not in COLLECT_KINDS:
            raise ValueError(f"unknown collection kind {self.kind!r} (choose from {list(COLLECT_KINDS)})")
        if self.human not in HUMAN_MODELS:
            raise ValueError(f"unknown human model {self.human!r} (choose from {list(HUMAN_MODELS)})")
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")


def make_collection_policy(config: CollectConfig, env: Any) -> Any:
    """The acting policy; for interventions it exposes ``is_intervening`` (robot vs human steps)."""
    if config.policy in TELEOP_POLICIES:
        from imgen_ros.datagen.teleop_session import teleop_policy

        return teleop_policy(config.policy, env, config.kind)
    from imgen_ros.sim.human import make_demonstrator, make_human

    if config.kind == "demos":
        if config.policy != "expert":
            raise ValueError(f"demos: --policy must be expert, keyboard or spacemouse, got {config.policy!r}")
        return make_demonstrator(config.human, env)
    return make_human(config.human, env, load_generation_policy(config.policy, env))


def collect(config: CollectConfig, out: str | Path, *, env: Any = None, policy: Any = None,
            on_episode: Callable[[int, int, bool], None] | None = None) -> dict[str, Any]:
    """Collect ``config.episodes`` kept episodes into ``out`` (flushed after each); returns the stats."""
    if env is None:
        from imgen_ros.sim import make_env

        noise = "off" if config.kind == "demos" else "on"
        env = make_env(config.task, noise=noise, observability=config.observability)
    if policy is None:
        policy = make_collection_policy(config, env)
    max_attempts = config.max_attempts or 5 * config.episodes + 10
    outcomes: Counter[str] = Counter()
    kept = attempts = 0
    t0 = time.perf_counter()
    with DatasetWriter(out, env.env_args()) as writer:
        writer.set_json_attr("imgen_config", {"command": f"collect {config.kind}", **asdict(config)})
        writer.set_progress(False, kept=0, target=config.episodes)
        while kept < config.episodes and attempts < max_attempts:
            seed = attempt_seed(config.seed, attempts)
            recorder, success = _run_episode(env, policy, seed, config.kind)
            has_human = ACTION_MODE_HUMAN in recorder._modes
            if not success:
                outcomes["failed"] += 1
            elif config.kind == "interventions" and not has_human:
                outcomes["no_intervention"] += 1
            else:
                outcomes["kept"] += 1
                episode = recorder.build({"source": f"collect:{config.kind}:{config.policy}", "attempt": attempts,
                                          "seed": seed, "human": config.human})
                writer.append(episode, masks=["source"])
                kept += 1
                writer.set_progress(kept >= config.episodes, kept=kept, target=config.episodes)
            attempts += 1
            if on_episode is not None:
                on_episode(attempts, kept, success)
        stats = {"attempts": attempts, "kept": kept, "success_rate": kept / max(attempts, 1),
                 "outcomes": dict(outcomes), "wall_s": round(time.perf_counter() - t0, 3)}
        writer.set_json_attr("imgen_stats", stats)
    if kept < config.episodes:
        raise RuntimeError(f"collected only {kept}/{config.episodes} episodes in {attempts} attempts "
                           f"({dict(outcomes)}); {out} holds the kept ones")
    return stats


def _run_episode(env: Any, policy: Any, seed: int, kind: str) -> tuple[EpisodeRecorder, bool]:
    timer = StepTimer()
    obs = env.reset(seed)
    policy.reset()
    recorder = EpisodeRecorder()
    done = False
    while not done:
        action = policy.act(obs)
        if kind == "demos":
            mode = ACTION_MODE_DEMO
        else:
            mode = ACTION_MODE_HUMAN if getattr(policy, "is_intervening", False) else ACTION_MODE_ROBOT
        obs, _, done, _ = recorded_step(env, obs, action, mode, recorder, timer)
    return recorder, bool(env.is_success())
