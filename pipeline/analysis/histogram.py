"""A regime's RMSE over its repeats as a histogram: the image on its MLflow run (matplotlib's object API only, no
pyplot; imported when drawing). Its own module, so that the track stage draws them in a second process while the
first imports MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FILE = "rmse_histogram.png"  # its name among a run's artifacts


def rmse_histogram(rmse: pd.Series, baselines: pd.DataFrame, title: str) -> Figure:
    """Every repeat's RMSE as a histogram, with the baselines as vertical lines."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4))
    figure.subplots_adjust(left=0.09, right=0.98, bottom=0.12, top=0.93)  # fixed: a layout engine triples the cost
    ax = figure.subplots()
    ax.hist(rmse, bins="auto", color="C0", alpha=0.8, histtype="stepfilled")  # one polygon, not a patch per bin
    for i, row in enumerate(baselines.itertuples(), start=1):  # C0 is the bars' colour
        ax.axvline(row.rmse, color=f"C{i}", linestyle="--", label=f"{row.model} {row.rmse:.1f}")
    ax.set(xlabel="test RMSE (monthly sales)", ylabel="repeats", title=title)
    ax.legend(fontsize="small")
    return figure


def title(regime: str, repeats: int) -> str:
    return f"{regime}: {repeats} repeats"


def draw_files(results: pd.DataFrame, baselines: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """Each regime's histogram as ``folder/<n>/FILE``, the bytes MLflow's ``log_figure`` would write: regime -> file."""
    files = {}
    for n, (regime, rows) in enumerate(results.groupby("regime", sort=False)):
        files[regime] = folder / str(n) / FILE
        files[regime].parent.mkdir(parents=True)
        rmse_histogram(rows.sort_values("repeat").rmse, baselines, title(regime, len(rows))).savefig(files[regime])
    return files
