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


def preload() -> None:
    """Import what drawing needs, in a worker that is to draw, before its first plot arrives."""
    import matplotlib.backends.backend_agg  # the PNG writer, imported by the first save
    import matplotlib.figure  # noqa: F401


def figure(**kwargs: Any) -> Any:
    """A figure outside pyplot, which only files are made of here: importing pyplot costs half a second."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def save(fig: Any, path: Path) -> None:
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    if fig.canvas.manager is not None:  # made by pyplot, which holds it until closed
        pyplot().close(fig)


def boxplot(results: pd.DataFrame, order: list[str], baselines: pd.DataFrame, path: Path) -> None:
    """RMSE by regime on an axis zoomed to the bulk of every regime; repeats beyond it are drawn at its edge
    as arrows with their count, so the outliers stay visible without squashing the boxes."""
    values = [results.loc[results.regime == r, "rmse"].to_numpy() for r in order]
    everything = np.concatenate(values)
    low, high = np.quantile(everything, [0.0, 0.99])
    near = [b for b in baselines.rmse if low - 0.25 * (high - low) <= b <= high]
    low, high = min([low, *near]), max([high, *near])
    pad = 0.04 * (high - low or 1.0)
    low, high = low - pad, high + pad
    fig = figure(figsize=(WIDTH, 5.2))
    ax = fig.subplots()
    ax.boxplot(values, tick_labels=order, showmeans=True, whis=(2.5, 97.5),
               flierprops={"markersize": 3, "alpha": 0.4}, meanprops={"markerfacecolor": "white"})
    for i, v in enumerate(values, start=1):
        above = int((v > high).sum())
        if above:  # drawn at the top edge: a marker, and how many repeats lie beyond it
            ax.plot([i], [high], marker="^", color="firebrick", markersize=6, clip_on=False, zorder=4)
            ax.annotate(f"{above} above\nmax {v.max():.0f}", (i, high), xytext=(0, -18), textcoords="offset points",
                        ha="center", fontsize=7, color="firebrick")
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
    """Left: each confirmatory contrast's interval now, against the +-margin band (a forest plot). Right: the
    repeats its interval needs to clear the nearest margin (from the SD of its paired differences), against
    the repeats this study has. Meaningful at any pool size: only the SD of the differences is estimated."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    if contrasts.empty:  # an evidence table with no pair at all has no columns either
        contrasts = pd.DataFrame(columns=["a", "b", "estimate", "low", "high", "needed", "n"], dtype=float)
    rows = max(1, len(contrasts))
    fig = figure(figsize=(WIDTH, 1.2 + 0.38 * rows))
    left, right = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [1.4, 1]})
    y = np.arange(len(contrasts))[::-1]
    labels = [f"{a} - {b}" for a, b in zip(contrasts.a, contrasts.b, strict=True)]
    left.axvspan(-margin, margin, color="tab:green", alpha=0.12, label=f"within ±{margin:g}")
    left.axvline(0, color="grey", linewidth=0.6)
    left.errorbar(contrasts.estimate, y, xerr=[contrasts.estimate - contrasts.low, contrasts.high - contrasts.estimate],
                  fmt="o", color="tab:blue", markersize=4, capsize=3)
    left.set_yticks(y, labels, fontsize=8)
    left.set_xlabel(f"a - b, mean RMSE [{confidence:.0%} interval]; shaded: ±margin", fontsize=9)
    left.grid(True, axis="x", alpha=0.3)
    needed = contrasts.needed.replace(np.inf, np.nan)
    finite = needed.dropna()
    top = max([10.0, *finite, *contrasts.n]) * 3
    right.barh(y, needed.fillna(top), color=["tab:blue" if np.isfinite(v) else "lightgrey" for v in contrasts.needed],
               height=0.5)
    for yi, v in zip(y, contrasts.needed, strict=True):
        right.annotate(f"{v:.0f}" if np.isfinite(v) else "never (on a margin)", (min(v, top) if np.isfinite(v) else top,
                       yi), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
    if len(contrasts):
        right.axvline(int(contrasts.n.max()), color="black", linestyle=":", linewidth=1, label="repeats now")
    right.set_xscale("log")
    right.set_xlim(1, top * 5)
    right.xaxis.set_major_locator(LogLocator(numticks=8))
    right.xaxis.set_minor_locator(NullLocator())  # minor ticks on a log axis cost most of the drawing time
    right.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    right.set_xlabel("repeats to clear the nearest margin (log; dotted: now)", fontsize=9)
    right.grid(True, axis="x", alpha=0.3)
    if contrasts.empty:
        left.text(0.5, 0.5, "no confirmatory contrast ran", ha="center", va="center", transform=left.transAxes)
    fig.suptitle("Where each decision stands, and how many repeats it needs", fontsize=10)
    fig.tight_layout()
    save(fig, path)


def forecast_plot(forecasts: pd.DataFrame, order: list[str], path: Path) -> None:
    """Forecast against actual for each test month, one panel per regime (its median repeat)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    cols = min(5, len(order))
    rows = math.ceil(len(order) / cols)
    fig = figure(figsize=(max(7.0, 2.2 * cols), 2.4 * rows + 0.8))
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
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
    height = 2.4 * rows + 0.8
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.35 / height, top=1 - 1.05 / height, hspace=0.5, wspace=0.08)
    save(fig, path)
