"""Stage ``compare``: per-regime RMSE distributions as the write-up's table, a box plot and DVC metrics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from pipeline import io
from pipeline.artifacts import paths
from pipeline.params import load_params


def describe(results: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """count, mean, std, min, quartiles and max of RMSE, one column per regime in ``order``."""
    wide = results.pivot(index="repeat", columns="regime", values="rmse")
    return wide[order].describe()


def metrics(summary: pd.DataFrame, baselines: pd.DataFrame) -> dict:
    out = {
        regime: {stat.replace("%", "pct"): float(summary.at[stat, regime]) for stat in summary.index}
        for regime in summary.columns
    }
    out["baselines"] = {row.model: float(row.rmse) for row in baselines.itertuples()}
    return out


def boxplot(results: pd.DataFrame, order: list[str], baselines: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(order)), 4.5))
    ax.boxplot([results.loc[results.regime == r, "rmse"] for r in order], tick_labels=order)
    for row in baselines.itertuples():
        ax.axhline(row.rmse, linestyle="--", linewidth=1, color="grey")
        ax.annotate(row.model, (0.5, row.rmse), va="bottom", fontsize=8, color="grey")
    ax.set_ylabel("test RMSE (monthly sales)")
    ax.set_title(f"Walk-forward RMSE by state regime ({results.groupby('regime').size().max()} repeats)")
    ax.tick_params(axis="x", rotation=35)
    fig.tight_layout()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)


def run(cfg: DictConfig, root: Path) -> pd.DataFrame:
    p = paths(cfg, root)
    results = pd.read_csv(p.results)
    baselines = pd.read_csv(p.baselines)
    order = list(dict.fromkeys(results.regime))
    summary = describe(results, order)
    io.write_csv(p.summary, summary.reset_index(names="statistic"))
    io.write_json(p.metrics, metrics(summary, baselines))
    boxplot(results, order, baselines, p.boxplot)
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    return summary


def main() -> None:
    run(load_params(), Path.cwd())


if __name__ == "__main__":
    main()
