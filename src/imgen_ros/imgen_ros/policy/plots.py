"""PNG plots of training curves and experiment results (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_training(history: Sequence[dict], path: str | Path, title: str) -> Path:
    """Loss per epoch (left axis) and evaluation success rate (right axis) over training."""
    epochs = [row["epoch"] for row in history]
    losses = [row.get("loss") for row in history]
    evals = [(row["epoch"], row["success_rate"]) for row in history if row.get("success_rate") is not None]
    fig, ax_loss = plt.subplots(figsize=(7, 4))
    ax_loss.plot(epochs, losses, color="tab:blue", label="training loss (GMM NLL)")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss", color="tab:blue")
    ax_sr = ax_loss.twinx()
    if evals:
        ax_sr.plot([e for e, _ in evals], [s for _, s in evals], "o-", color="tab:orange",
                   label="success rate (eval under corruption)")
    ax_sr.set_ylim(-0.02, 1.02)
    ax_sr.set_ylabel("success rate", color="tab:orange")
    ax_loss.set_title(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_bars(names: Sequence[str], ours: Sequence[float], errors: Sequence[tuple[float, float]],
              paper: Sequence[float | None], path: str | Path, title: str) -> Path:
    """Grouped bar chart: our success rate (with 95 % Wilson interval) beside the paper's number."""
    n = len(names)
    xs = list(range(n))
    width = 0.38
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * n), 4.2))
    lower = [max(0.0, o - lo) for o, (lo, _) in zip(ours, errors, strict=True)]
    upper = [max(0.0, hi - o) for o, (_, hi) in zip(ours, errors, strict=True)]
    ax.bar([x - width / 2 for x in xs], ours, width, yerr=[lower, upper], capsize=3, color="tab:blue",
           label="imgen (ours)")
    paper_x = [x + width / 2 for x, p in zip(xs, paper, strict=True) if p is not None]
    paper_y = [p for p in paper if p is not None]
    if paper_y:
        ax.bar(paper_x, paper_y, width, color="tab:gray", alpha=0.7, label="paper")
    for x, o in zip(xs, ours, strict=True):
        ax.text(x - width / 2, o + 0.02, f"{o:.0%}", ha="center", fontsize=8)
    ax.set_xticks(xs)
    ax.set_xticklabels(names, rotation=20, ha="right")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("success rate")
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
