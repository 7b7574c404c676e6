"""A regime's RMSE over its repeats as a histogram: the image on its MLflow run (matplotlib's object API only, no
pyplot; imported when drawing). Its own module, so that the compare stage draws it without importing MLflow."""

from __future__ import annotations

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
