"""Videos of some generation attempts (``--videos K``): the first K kept and the first K failed ones.

Attempts are deterministic in their seed, so after a run the chosen attempts are simply rerun here
in this process with a renderer attached; frames from the generated (human-labelled) recovery
get a red border, like the simulated human's frames in ``imgen_ros.sim.video``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from imgen_ros.data.reader import DatasetReader
from imgen_ros.datagen.episodes import KEPT_OUTCOMES
from imgen_ros.datagen.job import GenerationJob, context_for, run_attempt

CAMERA = "agentview"
SIZE = (320, 240)
MAX_SCAN = 500  # attempts scanned for failures beyond the committed ones


class _RenderingEnv:
    """Proxy of a TaskEnv that renders a frame after every reset/step."""

    def __init__(self, env: Any) -> None:
        self._env = env
        self.frames: list[np.ndarray] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)

    def reset(self, seed: int) -> dict:
        obs = self._env.reset(seed)
        self.frames = [self._env.render(CAMERA, *SIZE)]
        return obs

    def step(self, action: np.ndarray) -> tuple:
        out = self._env.step(action)
        self.frames.append(self._env.render(CAMERA, *SIZE))
        return out


def write_videos(job: GenerationJob, out: str | Path, k: int) -> list[Path]:
    """Render the first ``k`` kept and ``k`` failed attempts of a finished run to ``<out>_videos/``."""
    from imgen_ros.sim.video import HUMAN_BORDER_RGB, VideoWriter, add_border

    out = Path(out)
    with DatasetReader(out) as reader:
        kept = reader.json_attr("imgen_bookkeeping", {}).get("kept_attempts", [])
    folder = out.with_name(out.stem + "_videos")
    folder.mkdir(parents=True, exist_ok=True)
    ctx = context_for(job)
    real_env = ctx.env
    ctx.env = _RenderingEnv(real_env)
    written: list[Path] = []
    try:
        wanted_fail = k
        chosen = list(kept[:k])
        for attempt in range(MAX_SCAN):
            if wanted_fail == 0 and not chosen:
                break
            is_kept = attempt in kept
            if not is_kept and wanted_fail == 0:
                continue
            if is_kept and attempt not in chosen:
                continue
            result = run_attempt(job, attempt)
            label = "kept" if result.outcome in KEPT_OUTCOMES else result.outcome
            if is_kept:
                chosen.remove(attempt)
            elif result.outcome not in KEPT_OUTCOMES:
                wanted_fail -= 1
            else:
                continue
            path = folder / f"attempt_{attempt:05d}_{label}.mp4"
            takeover = -1
            if result.episode is not None:
                takeover = int(result.episode.attrs.get("takeover_step", -1))
            with VideoWriter(path) as writer:
                for i, frame in enumerate(ctx.env.frames):
                    writer.append(add_border(frame, HUMAN_BORDER_RGB) if 0 <= takeover < i else frame)
            written.append(path)
    finally:
        ctx.env = real_env
    return written
