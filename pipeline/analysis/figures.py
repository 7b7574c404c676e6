"""The report's plots (matplotlib, imported only when drawing): RMSE by regime, repeats a decision needs, and
the median repeat's forecasts. Everything is drawn from the compare stage's tables; nothing here computes a
statistic beyond the projection sd/sqrt(n) the repeats plot draws.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import io

WIDTH = 11.0  # inches at 110 dpi: about 1200 px, the report's column at 1400 px


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path) -> None:
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    pyplot().close(fig)


def boxplot(results: pd.DataFrame, order: list[str], baselines: pd.DataFrame, path: Path) -> None:
    """RMSE by regime on an axis zoomed to the bulk of every regime; repeats beyond it are drawn at its edge
    as arrows with their count, so the outliers stay visible without squashing the boxes."""
    plt = pyplot()
    values = [results.loc[results.regime == r, "rmse"].to_numpy() for r in order]
    everything = np.concatenate(values)
    low, high = np.quantile(everything, [0.0, 0.99])
    near = [b for b in baselines.rmse if low - 0.25 * (high - low) <= b <= high]
    low, high = min([low, *near]), max([high, *near])
    pad = 0.04 * (high - low or 1.0)
    low, high = low - pad, high + pad
    fig, ax = plt.subplots(figsize=(WIDTH, 5.2))
    ax.boxplot(values, tick_labels=order, showmeans=True, whis=(2.5, 97.5),
               flierprops={"markersize": 3, "alpha": 0.4}, meanprops={"markerfacecolor": "white"})
    for i, v in enumerate(values, start=1):
        above = int((v > high).sum())
        if above:
            ax.annotate(f"{above} above\nmax {v.max():.0f}", (i, high), xytext=(0, -22), textcoords="offset points",
                        ha="center", fontsize=7, color="firebrick",
                        arrowprops={"arrowstyle": "->", "color": "firebrick"})
    ax.set_ylim(low, high)
    styles = [("--", "dimgrey"), (":", "tab:brown"), ("-.", "tab:purple"), ((0, (5, 1)), "tab:olive"),
              ((0, (1, 1)), "tab:cyan"), ((0, (3, 1, 1, 1)), "tab:pink")]
    shown = [b for b in baselines.itertuples() if low <= b.rmse <= high]
    for (style, color), row in zip(styles * 2, shown, strict=False):
        ax.axhline(row.rmse, linestyle=style, linewidth=1.3, color=color, label=f"{row.model} {row.rmse:.1f}")
    if shown:
        ax.legend(title="baselines", fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    off = [f"{b.model} {b.rmse:.0f}" for b in baselines.itertuples() if not low <= b.rmse <= high]
    if off:
        ax.set_xlabel("off the scale: " + ", ".join(off), fontsize=8, color="dimgrey")
    ax.set_ylabel("test RMSE (monthly sales)")
    ax.set_title(f"Walk-forward RMSE by state regime ({len(values[0])} repeats; whiskers 2.5-97.5%, "
                 "triangle = mean; axis zoomed to the bulk)", fontsize=10)
    ax.tick_params(axis="x", rotation=30)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    save(fig, path)


def repeats_plot(contrasts: pd.DataFrame, margin: float, confidence: float, path: Path) -> None:
    """For each confirmatory contrast: its 95% interval projected against repeats (mean +- z sd/sqrt(n), from
    the SD of its paired differences), the +-margin band and the pool's size. The interval settles where the
    band no longer straddles a margin line. Meaningful at any pool size, since only the SD is estimated."""
    from scipy.stats import norm

    plt = pyplot()
    n_panels = max(1, len(contrasts))
    cols = min(3, n_panels)
    rows = math.ceil(n_panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH, 3.0 * rows + 0.6), squeeze=False)
    z = norm.ppf(0.5 + confidence / 2)
    for ax, c in zip(axes.flat, contrasts.to_dict("records"), strict=False):
        pool = int(c["n"])
        top = max(10 * pool, 100)
        if np.isfinite(c["needed"]):
            top = max(top, 2 * c["needed"])
        n = np.unique(np.geomspace(2, min(top, 1e6), 200).astype(int))
        half = z * c["sd_diff"] / np.sqrt(n)
        ax.fill_between(n, c["estimate"] - half, c["estimate"] + half, alpha=0.3, color="tab:blue",
                        label="projected 95% interval")
        ax.axhline(c["estimate"], color="tab:blue", linewidth=1)
        for m in (-margin, margin):
            ax.axhline(m, color="firebrick", linestyle="--", linewidth=1)
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.axvline(pool, color="black", linestyle=":", linewidth=1)
        needed = f"{c['needed']:.0f}" if np.isfinite(c["needed"]) else "never (on a margin)"
        ax.set_title(f"{c['a']} - {c['b']}\nneeds {needed}, has {pool}", fontsize=8.5)
        ax.set_xscale("log")
        span = max(abs(c["estimate"]) + 2 * margin, 3 * margin)
        ax.set_ylim(-span, span)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    for ax in axes.flat[len(contrasts):]:
        ax.set_visible(False)
    if contrasts.empty:
        axes[0, 0].set_visible(True)
        axes[0, 0].text(0.5, 0.5, "no confirmatory contrast ran", ha="center", va="center")
    fig.supxlabel("repeats per regime (log scale; dotted: this study)", fontsize=9)
    fig.supylabel("a - b, RMSE (dashed: +-margin)", fontsize=9)
    fig.suptitle("How many repeats each decision needs", fontsize=10)
    fig.tight_layout()
    save(fig, path)


def forecast_plot(forecasts: pd.DataFrame, order: list[str], path: Path) -> None:
    """Forecast against actual for each test month, one panel per regime (its median repeat)."""
    plt = pyplot()
    cmap = plt.get_cmap("tab10")
    cols = min(5, len(order))
    rows = math.ceil(len(order) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(7.0, 2.2 * cols), 2.4 * rows + 0.8), sharex=True,
                             sharey=True, squeeze=False)
    for i, (ax, name) in enumerate(zip(axes.flat, order, strict=False)):
        steps = forecasts[forecasts.regime == name]
        ax.plot(steps.step, steps.actual, color="black", marker="o", markersize=2.5, label="actual")
        ax.plot(steps.step, steps.forecast, color=cmap(i % 10), marker="s", markersize=2.5, label="forecast")
        ax.set_title(f"{name}\nrepeat {steps.repeat.iloc[0]}, RMSE {steps.rmse.iloc[0]:.1f}", fontsize=8)
        ax.set_xticks(steps.step[::3], steps.period[::3], fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    for ax in axes.flat[len(order):]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=7)
    fig.supylabel("monthly sales", fontsize=9)
    fig.suptitle("One-step forecasts of the test months:\nthe median repeat of each regime", fontsize=10)
    fig.tight_layout()
    save(fig, path)
