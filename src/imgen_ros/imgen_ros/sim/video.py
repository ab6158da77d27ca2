"""Episode videos: render frames while a policy runs and write them as H.264 MP4 (imageio-ffmpeg).

Frames from steps where the acting policy reports ``is_intervening`` (the simulated human, or any
policy exposing that flag) get a red border, so robot and human segments are easy to tell apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import imageio.v2 as imageio
import numpy as np
from numpy.typing import NDArray

from imgen_ros.sim.cameras import OffscreenRenderer

HUMAN_BORDER_RGB = (220, 30, 30)
SUCCESS_BORDER_RGB = (30, 180, 60)


class _Policy(Protocol):
    def reset(self) -> None: ...

    def act(self, obs: dict) -> NDArray: ...


class _Env(Protocol):
    horizon: int

    def reset(self, seed: int) -> dict: ...

    def step(self, action: NDArray) -> tuple[dict, float, bool, dict]: ...

    def render(self, camera: str, width: int, height: int) -> NDArray[np.uint8]: ...


class VideoWriter:
    """Append uint8 RGB frames (H, W, 3) of one size; writes an MP4 on :meth:`close`.

    Sizes must be multiples of 16 for H.264 macro blocks (640x480, 320x240, ...); other sizes are
    rejected rather than silently rescaled.
    """

    def __init__(self, path: str | Path, fps: float = 20.0, quality: int = 7) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise ValueError(f"video path must end in .mp4, got '{self.path}'")
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if not self.path.parent.is_dir():
            problem = "is not a directory" if self.path.parent.exists() else "does not exist"
            raise ValueError(f"output directory {problem}: '{self.path.parent}'")
        self.fps = fps
        self.frames_written = 0
        self._shape: tuple[int, ...] | None = None
        self._writer = imageio.get_writer(str(self.path), format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                          quality=quality, pixelformat="yuv420p", macro_block_size=16)

    def append(self, frame: NDArray[np.uint8]) -> None:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        if frame.shape[0] % 16 or frame.shape[1] % 16:
            raise ValueError(f"frame size {frame.shape[1]}x{frame.shape[0]} is not a multiple of 16")
        if self._shape is None:
            self._shape = frame.shape
        elif frame.shape != self._shape:
            raise ValueError(f"frame shape {frame.shape} differs from the first frame's {self._shape}")
        self._writer.append_data(frame)
        self.frames_written += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def add_border(frame: NDArray[np.uint8], rgb: tuple[int, int, int], width: int = 6) -> NDArray[np.uint8]:
    """Copy of ``frame`` with a coloured border ``width`` pixels wide."""
    out = frame.copy()
    out[:width] = rgb
    out[-width:] = rgb
    out[:, :width] = rgb
    out[:, -width:] = rgb
    return out


@dataclass
class EpisodeResult:
    seed: int
    success: bool
    steps: int
    intervention_steps: int


def record_episode(env: _Env, policy: _Policy, seed: int, writer: VideoWriter, camera: str,
                   width: int, height: int, frame_every: int = 1, hold_last_s: float = 0.5,
                   renderer: OffscreenRenderer | None = None) -> EpisodeResult:
    """Run one episode of ``policy`` in ``env`` and append its frames to ``writer``.

    Every ``frame_every``-th control step is rendered, by ``renderer`` from ``env.data`` when given
    (shadows off: ~4x faster on llvmpipe), else by ``env.render``. The last frame is held for
    ``hold_last_s`` seconds with a green border on success.
    """
    if frame_every < 1:
        raise ValueError(f"frame_every must be >= 1, got {frame_every}")

    def render() -> NDArray[np.uint8]:
        if renderer is not None:
            return renderer.rgb(env.data, camera, width, height)  # type: ignore[attr-defined]
        return env.render(camera, width, height)

    obs = env.reset(seed)
    policy.reset()
    frame = render()
    writer.append(frame)
    success, steps, human_steps = False, 0, 0
    for step in range(env.horizon):
        action = policy.act(obs)
        intervening = bool(getattr(policy, "is_intervening", False))
        human_steps += int(intervening)
        obs, _reward, done, info = env.step(action)
        steps = step + 1
        success = bool(info.get("success", False))
        if steps % frame_every == 0 or done:
            frame = render()
            writer.append(add_border(frame, HUMAN_BORDER_RGB) if intervening else frame)
        if done:
            break
    last = add_border(frame, SUCCESS_BORDER_RGB) if success else frame
    for _ in range(round(hold_last_s * writer.fps)):
        writer.append(last)
    return EpisodeResult(seed=seed, success=success, steps=steps, intervention_steps=human_steps)


def read_video_frames(path: str | Path) -> list[NDArray[np.uint8]]:
    """Decode every frame of a video (for tests and inspection)."""
    reader: Any = imageio.get_reader(str(path), format="FFMPEG")
    try:
        return [np.asarray(f) for f in reader]
    finally:
        reader.close()
