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


def plot_table(variants: Sequence[str], columns: Sequence[str],
               ours: dict[tuple[str, str], tuple[float, float, float]],
               paper: dict[str, dict[str, float]], path: str | Path, title: str) -> Path:
    """One panel per column: our success rate per variant (95 % Wilson interval) beside the paper's."""
    n = len(variants)
    width = 0.38
    fig, axes = plt.subplots(1, len(columns), figsize=(max(6.0, 1.25 * n) * len(columns), 4.4), squeeze=False)
    for ax, column in zip(axes[0], columns, strict=True):
        xs = list(range(n))
        rates = [ours.get((v, column), (0.0, 0.0, 0.0)) for v in variants]
        ys = [r[0] for r in rates]
        lower = [max(0.0, r[0] - r[1]) for r in rates]
        upper = [max(0.0, r[2] - r[0]) for r in rates]
        ax.bar([x - width / 2 for x in xs], ys, width, yerr=[lower, upper], capsize=3, color="tab:blue",
               label="imgen (95% Wilson CI)")
        paper_points = [(x, paper.get(v, {}).get(column)) for x, v in zip(xs, variants, strict=True)]
        paper_points = [(x, p) for x, p in paper_points if p is not None]
        if paper_points:
            ax.bar([x + width / 2 for x, _ in paper_points], [p for _, p in paper_points], width, color="tab:gray",
                   alpha=0.7, label="paper")
        for x, y in zip(xs, ys, strict=True):
            ax.text(x - width / 2, y + 0.03, f"{y:.0%}", ha="center", fontsize=8)
        ax.set_xticks(xs)
        ax.set_xticklabels(variants, rotation=25, ha="right", fontsize=8)
        ax.set_ylim(0, 1.12)
        ax.set_ylabel("success rate")
        ax.set_title(column)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
