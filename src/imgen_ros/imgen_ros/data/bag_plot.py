"""Top-down pictures of recorded episodes (``imgen bag plot``; matplotlib, headless, ROS-free).

One panel per episode, in the base frame ``fr3_link0`` seen from above (x forward to the right, y
left upwards, equal scale): the TCP path coloured by the arbiter's control mode (POLICY / HUMAN /
HOLD), the cube where the robot believed it (dashed square) and where it was (filled square,
simulation only) at the episode's START, the TCP where contact revealed the object (star), start
and end of the path, and the outcome, takeovers and measured corruption in the title.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon

from imgen_ros.data.bag_info import EpisodeTimeline, ObjectSample

MODE_COLORS = {0: "#1f77b4", 1: "#ff7f0e", 2: "#7f7f7f"}   # POLICY blue, HUMAN orange, HOLD grey
MODE_LABELS = {0: "POLICY", 1: "HUMAN", 2: "HOLD"}
BELIEVED_COLOR, TRUE_COLOR, REVEAL_COLOR = "#9467bd", "#2ca02c", "#d62728"
OUTCOME_COLORS = {"SUCCESS": "#2ca02c", "FAILURE": "#d62728", "ABORT": "#d62728"}


@dataclass(frozen=True)
class PlotConfig:
    cube_size_m: float = 0.05       # edge of the drawn squares (block_grasp's cube: 5 cm)
    columns: int = 2                # panels per row
    panel_in: float = 5.0           # panel width and height [in]
    dpi: int = 110
    margin_m: float = 0.03          # around the path and the cubes

    def __post_init__(self) -> None:
        if not (self.cube_size_m > 0 and self.columns >= 1 and self.panel_in > 0 and self.dpi > 0
                and self.margin_m >= 0):
            raise ValueError(f"invalid plot config {self}")


def _square(center: Sequence[float], yaw: float, size: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    h = size / 2
    corners = np.array([[-h, -h], [h, -h], [h, h], [-h, h]])
    return corners @ np.array([[c, s], [-s, c]]) + np.asarray(center[:2])


def _draw_cube(ax: Axes, sample: ObjectSample, size: float, believed: bool) -> None:
    square = _square(sample.position, sample.yaw, size)
    if believed:
        ax.add_patch(Polygon(square, closed=True, fill=False, edgecolor=BELIEVED_COLOR, linestyle="--",
                             linewidth=2.0, zorder=2))
    else:
        ax.add_patch(Polygon(square, closed=True, facecolor=TRUE_COLOR, alpha=0.35, edgecolor=TRUE_COLOR,
                             linewidth=1.5, zorder=1))


def _title(tl: EpisodeTimeline) -> str:
    takeovers = len(tl.human_segments())
    first = f"episode {tl.episode_id} · {tl.task} · {tl.outcome}"
    second = f"{tl.duration_s:.1f} s · {takeovers} takeover{'s' if takeovers != 1 else ''}"
    offsets = [(oid, off) for oid in tl.object_ids() if (off := tl.measured_offset(oid)) is not None]
    if offsets:
        _, off = offsets[0]
        second += f" · believed−true ({1000 * off[0]:+.0f}, {1000 * off[1]:+.0f}) mm"
    return f"{first}\n{second}"


def draw_episode(ax: Axes, tl: EpisodeTimeline, config: PlotConfig = PlotConfig()) -> None:
    """One episode's top-down panel on ``ax``."""
    xy = tl.tcp_xyz[:, :2]
    points = [xy]
    if len(xy) >= 2:
        modes = [tl.mode_at(int(t)) for t in tl.tcp_t[1:]]
        segments = np.stack([xy[:-1], xy[1:]], axis=1)
        colors = [MODE_COLORS.get(m if m is not None else 2, MODE_COLORS[2]) for m in modes]
        ax.add_collection(LineCollection(segments, colors=colors, linewidths=2.5, zorder=3,
                                         capstyle="round", joinstyle="round"))
    for oid in tl.object_ids():
        true, believed = tl.first(tl.true, oid), tl.first(tl.believed, oid)
        for sample, is_believed in ((true, False), (believed, True)):
            if sample is not None:
                _draw_cube(ax, sample, config.cube_size_m, is_believed)
                points.append(_square(sample.position, sample.yaw, config.cube_size_m))
    if len(xy):
        ax.plot(*xy[0], "o", color="black", markerfacecolor="white", markersize=9, markeredgewidth=2, zorder=5)
        ax.plot(*xy[-1], "s", color="black", markersize=8, zorder=5)
    if tl.reveal is not None and (tcp := tl.tcp_at(tl.reveal.t)) is not None:
        ax.plot(tcp[0], tcp[1], "*", color=REVEAL_COLOR, markersize=17, markeredgecolor="black",
                markeredgewidth=0.8, zorder=6)
    pts = np.concatenate([p.reshape(-1, 2) for p in points if len(p)]) if any(len(p) for p in points) else \
        np.zeros((1, 2))
    lo, hi = pts.min(axis=0) - config.margin_m, pts.max(axis=0) + config.margin_m
    center, half = (lo + hi) / 2, max(float(np.max(hi - lo)) / 2, 0.05)
    ax.set_xlim(center[0] - half, center[0] + half)
    ax.set_ylim(center[1] - half, center[1] + half)
    ax.set_aspect("equal")
    ax.grid(True, alpha=0.3)
    ax.set_xlabel("x [m] (fr3_link0)")
    ax.set_ylabel("y [m]")
    ax.set_title(_title(tl), fontsize=10, color=OUTCOME_COLORS.get(tl.outcome, "black"))


def legend_handles() -> list:
    h = [Line2D([], [], color=MODE_COLORS[m], linewidth=3, label=f"TCP, {MODE_LABELS[m]}") for m in (0, 1, 2)]
    h += [Polygon(np.zeros((4, 2)), closed=True, facecolor=TRUE_COLOR, alpha=0.35, edgecolor=TRUE_COLOR,
                  label="cube, true"),
          Polygon(np.zeros((4, 2)), closed=True, fill=False, edgecolor=BELIEVED_COLOR, linestyle="--",
                  linewidth=2, label="cube, believed"),
          Line2D([], [], marker="*", color=REVEAL_COLOR, markeredgecolor="black", linestyle="none",
                 markersize=14, label="reveal (contact)"),
          Line2D([], [], marker="o", color="black", markerfacecolor="white", markeredgewidth=2, linestyle="none",
                 markersize=9, label="start"),
          Line2D([], [], marker="s", color="black", linestyle="none", markersize=8, label="end")]
    return h


def plot_episodes(timelines: Sequence[EpisodeTimeline], path: str | Path, config: PlotConfig = PlotConfig()) -> Path:
    """Write one PNG with a panel per episode and one legend below them."""
    if not timelines:
        raise ValueError("no episode to plot")
    cols = min(config.columns, len(timelines))
    rows = math.ceil(len(timelines) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(config.panel_in * cols, config.panel_in * rows + 0.8),
                             squeeze=False, layout="constrained")
    try:
        for ax, tl in zip(axes.flat, timelines, strict=False):
            draw_episode(ax, tl, config)
        for ax in list(axes.flat)[len(timelines):]:
            ax.set_visible(False)
        fig.legend(handles=legend_handles(), loc="outside lower center", ncol=4 if cols > 1 else 3, fontsize=9,
                   frameon=False)
        path = Path(path)
        fig.savefig(path, dpi=config.dpi, format="png")
    finally:
        plt.close(fig)
    return path
