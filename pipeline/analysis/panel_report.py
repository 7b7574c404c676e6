"""The panel study's plots (a forest plot per contrast, a series x contrast verdict heatmap) and its report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import io
from pipeline.analysis import document, figures, meta, report

VERDICT_COLORS = {"supported": "#2e7d32", "contradicted": "#c62828", "equivalent": "#1565c0",
                  "inconclusive": "#bdbdbd"}


def forest_plot(effects: pd.DataFrame, pooled_row: pd.Series, margin: float, path: Path) -> None:
    """Each series' effect with its interval, the pooled effect, its CI and prediction interval, and ±margin."""
    plt = figures.pyplot()
    rows = effects.iloc[::-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.28 * len(rows) + 1.8))
    y = np.arange(len(rows)) + 2
    colors = [VERDICT_COLORS[v] for v in rows.verdict]
    ax.errorbar(rows.effect, y, xerr=[rows.effect - rows.ci_low, rows.ci_high - rows.effect], fmt="none",
                ecolor=colors, elinewidth=1.5)
    ax.scatter(rows.effect, y, c=colors, s=18, zorder=3)
    if np.isfinite(pooled_row.get("pooled", np.nan)):
        mu, low, high = pooled_row["pooled"], pooled_row["ci_low"], pooled_row["ci_high"]
        ax.fill([low, mu, high, mu], [0.5, 0.8, 0.5, 0.2], color="black")
        if np.isfinite(pooled_row.get("pi_low", np.nan)):
            ax.hlines(0.5, pooled_row["pi_low"], pooled_row["pi_high"], color="black", linewidth=1)
    ax.axvspan(-margin, margin, color="#1565c0", alpha=0.08, label=f"±margin ({margin:g})")
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks([0.5, *y], ["pooled (CI, PI)", *rows.series])
    ax.set_xlabel(f"relative RMSE, {pooled_row['a']} minus {pooled_row['b']} (negative: {pooled_row['a']} better)")
    ax.set_title(f"{pooled_row['contrast']}: {pooled_row['claim']}", fontsize=9)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    figures.save(fig, path)


def heatmap(effects: pd.DataFrame, path: Path) -> None:
    """Series x contrast, each cell coloured by its verdict and labelled with the effect in % of persistence."""
    plt = figures.pyplot()
    from matplotlib.colors import ListedColormap

    per_series = effects[effects.origin == "all"]
    order_series = list(dict.fromkeys(per_series.series))  # the panel's order, as in the forest plots
    verdicts = per_series.pivot(index="series", columns="contrast", values="verdict").loc[order_series]
    values = per_series.pivot(index="series", columns="contrast", values="effect").loc[verdicts.index]
    order = list(VERDICT_COLORS)
    codes = verdicts.apply(lambda col: col.map(order.index)).to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(0.75 * verdicts.shape[1] + 2.5, 0.3 * verdicts.shape[0] + 1.8))
    ax.imshow(codes, cmap=ListedColormap(list(VERDICT_COLORS.values())), vmin=-0.5, vmax=len(order) - 0.5,
              aspect="auto")
    for (i, j), value in np.ndenumerate(values.to_numpy()):
        ax.text(j, i, f"{100 * value:+.1f}", ha="center", va="center", fontsize=6)
    ax.set_xticks(range(verdicts.shape[1]), verdicts.columns)
    ax.set_yticks(range(verdicts.shape[0]), verdicts.index, fontsize=7)
    ax.set_xlabel("contrast (expectation); cells: effect in % of persistence RMSE", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in VERDICT_COLORS.values()]
    fig.legend(handles, order, loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    figures.save(fig, path)


def _pct(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:+.2f}%"


def _answers(pooled: pd.DataFrame, columns: list[str]) -> str:
    table = pooled.assign(
        pooled_effect=pooled.pooled.map(_pct),
        ci=[f"{_pct(lo)} to {_pct(hi)}" for lo, hi in zip(pooled.ci_low, pooled.ci_high, strict=True)],
        prediction=[f"{_pct(lo)} to {_pct(hi)}" for lo, hi in zip(pooled.pi_low, pooled.pi_high, strict=True)],
        tau2=pooled.tau2.map(lambda v: f"{v:.2g}"), i2=pooled.i2.map(lambda v: f"{100 * v:.0f}%"),
        across_series=[meta.tally(r) for _, r in pooled.iterrows()],
    )
    return report.markdown_table(table[columns])


def _in_words(row: pd.Series) -> str:
    return (f"- **{row['contrast']}** {row['claim']} ({row['a']} vs {row['b']}): **{row['verdict']}** across the "
            f"panel, pooled effect {_pct(row['pooled'])} (95% CI {_pct(row['ci_low'])} to {_pct(row['ci_high'])}); "
            f"{meta.tally(row)}.")


def markdown(
    name: str, margin: float, settings: str, pooled: pd.DataFrame, by_frequency: pd.DataFrame,
    summary: pd.DataFrame, baselines: pd.DataFrame, features: pd.DataFrame, winners: pd.DataFrame,
    plots: dict[str, str],
) -> str:
    lines = [
        f"# Does the answer generalise? The state regimes across the {name} panel",
        "",
        f"{summary.series.nunique()} series, {settings}. Effects are differences of relative RMSE (RMSE over "
        "persistence RMSE on the same months), regime a minus regime b on the same seed: -1% means a's error is "
        f"1% of persistence's error lower. Margin (smallest effect of interest): {100 * margin:g}% of persistence "
        "RMSE. A verdict is decided by where the 95% interval lies against ±margin (supported, contradicted, "
        "equivalent, inconclusive).",
        "",
        "Scope: these series, their last test windows (origins) and this model setting; the intervals cover "
        "training randomness within a series and, pooled, the spread between series.",
        "",
        "## Answers",
        "",
        *[_in_words(r) for _, r in pooled.iterrows()],
        "",
        _answers(pooled, ["contrast", "a", "b", "pooled_effect", "ci", "prediction", "tau2", "i2", "verdict",
                          "across_series"]),
        "",
        "The prediction interval is where the effect on a new series like these is expected to lie; "
        "tau² is the between-series variance of the effect and I² the share of the spread it explains.",
        "",
        "### By frequency (should I use it on my monthly series?)",
        "",
        _answers(by_frequency, ["contrast", "frequency", "pooled_effect", "ci", "verdict", "across_series"]),
        "",
    ]
    lines += [f"![verdicts by series]({plots['heatmap']})", ""]
    lines += ["## Forest plots", ""] + [f"![{label}]({src})" for label, src in plots.items() if label != "heatmap"]
    lines += ["", "## Regimes by series (mean relative RMSE over origins and repeats)", ""]
    wide = summary.pivot(index="series", columns="regime", values="mean_relative_rmse").round(3)
    lines += [report.markdown_table(wide, index=True), ""]
    lines += ["## Baselines (relative RMSE, mean over origins)", ""]
    base = baselines.groupby(["series", "model"], sort=False)["relative_rmse"].mean().unstack().round(3)
    lines += [report.markdown_table(base, index=True), ""]
    lines += ["## Series features and the winning regime", "",
              report.markdown_table(features.round(3)), "", report.markdown_table(winners, index=True), ""]
    return "\n".join(lines) + "\n"


def write(text: str, report_md: Path, report_html: Path) -> None:
    io.write_text(report_md, text)
    io.write_text(report_html, document.to_html(text, report_md.parent))
