"""Stage ``compare``: the regimes' RMSE distributions turned into tests, intervals, verdicts and a report.

Reads the evaluate stage's tables, writes the descriptive summary (the write-up's layout), every pairwise
test, the verdicts on the write-up's expectations, the SE-vs-repeats follow-up, DVC metrics and plots,
and ``report.md`` / ``report.html``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from pipeline import data, io
from pipeline.analysis import report, stats
from pipeline.artifacts import Paths, paths
from pipeline.params import ConfigError, load_params


@dataclass(frozen=True)
class Expectation:
    """A claim of the write-up, tested on the regime pairs that differ only in what it is about."""

    number: int
    claim: str
    pairs: tuple[tuple[str, str], ...]  # (a, b): the claim is about a's RMSE against b's
    relation: stats.Relation  # "lower": a beats b; "equal": a and b perform alike


EXPECTATIONS = (
    Expectation(1, "A stateful LSTM outperforms a stateless one", (("stateful", "stateless"),), "lower"),
    Expectation(
        2, "A stateless LSTM trained without shuffling outperforms one trained with it",
        (("stateless", "stateless_shuffle"),), "lower",
    ),
    Expectation(
        3, "Stateful and stateless LSTMs give alike results at the same batch size (12)",
        (("stateful_batch12", "stateless_batch12"),), "equal",
    ),
    Expectation(
        4, "Resetting state after each training epoch improves test RMSE",
        (("stateful", "noreset"), ("seed_train", "seed_train_no_resets")), "lower",
    ),
    Expectation(
        5, "Warming the state on the training set before forecasting improves test RMSE",
        (("seed_train", "stateful"), ("seed_train_no_resets", "noreset")), "lower",
    ),
    Expectation(
        6, "Not resetting state between one-step test predictions improves test RMSE",
        (("stateful", "reset_test"), ("seed_train", "seed_train_resets")), "lower",
    ),
)

RESULTS_COLUMNS = ("regime", "repeat", "seed", "rmse")
FORECAST_COLUMNS = ("regime", "repeat", "step", "period", "actual", "forecast")


@dataclass(frozen=True)
class Comparison:
    """What the stage produced: its tables, and every file it wrote (for a tracker to log)."""

    tables: report.Tables
    report: Path
    html: Path
    plots: tuple[Path, ...]
    files: tuple[Path, ...]


def read_table(path: Path, columns: tuple[str, ...], stage: str) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the {stage} stage first (dvc repro {stage}).")
    table = pd.read_csv(path)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing} (has {list(table.columns)}): rerun the {stage} stage.")
    return table


def samples(results: pd.DataFrame, order: list[str]) -> dict[str, stats.Sample]:
    """Each regime's RMSEs and seeds in repeat order."""
    by_regime = {name: group.sort_values("repeat") for name, group in results.groupby("regime", sort=False)}
    return {r: stats.Sample(by_regime[r].rmse.to_numpy(np.float64), by_regime[r].seed.to_numpy()) for r in order}


def describe(results: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """count, mean, std, min, quartiles and max of RMSE, one column per regime in ``order``."""
    wide = results.pivot(index="repeat", columns="regime", values="rmse")
    return wide[order].describe()


def intervals(pool: dict[str, stats.Sample], boot: stats.Bootstrap, baselines: pd.DataFrame) -> pd.DataFrame:
    """Per regime: mean and median with bootstrap intervals, and the share of repeats beating each baseline."""
    rows = []
    for name, sample in pool.items():
        beats = {f"beats_{b.model}": float(np.mean(sample.values < b.rmse)) for b in baselines.itertuples()}
        rows.append({"regime": name, **stats.location_intervals(sample.values, boot), **beats})
    return pd.DataFrame(rows)


def oriented(row: dict, a: str, b: str) -> dict:
    """A pairwise row read as ``a - b``: differences, intervals and effect sizes change sign when flipped."""
    if (row["a"], row["b"]) == (a, b):
        return row
    flipped = {**row, "a": a, "b": b, "mean_a": row["mean_b"], "mean_b": row["mean_a"]}
    flipped.update(n_a=row["n_b"], n_b=row["n_a"])
    for key in ("mean_diff", "median_diff", "d_z", "d", "cliffs_delta"):
        flipped[key] = -row[key]
    for low, high in (("ci_low", "ci_high"), ("unpaired_ci_low", "unpaired_ci_high")):
        flipped[low], flipped[high] = -row[high], -row[low]
    return flipped


VERDICT_EVIDENCE = (
    "design", "n_a", "mean_a", "mean_b", "mean_diff", "ci_low", "ci_high", "rank_test", "rank_p_holm",
    "mean_test", "mean_p_holm", "d_z", "d", "cliffs_delta", "outcome",
)
VERDICT_COLUMNS = [
    "expectation", "claim", "a", "b", "relation", *VERDICT_EVIDENCE, "tost_p", "missing", "verdict", "overall"
]


def verdicts(
    tests: pd.DataFrame,
    pool: dict[str, stats.Sample],
    alpha: float,
    margin: float,
    expectations: Sequence[Expectation] = EXPECTATIONS,
) -> pd.DataFrame:
    """One row per (expectation, regime pair): the evidence, the pair's verdict and the expectation's overall one."""
    rows_by_pair = {frozenset((r["a"], r["b"])): r for r in tests.to_dict("records")}
    rows = []
    for e in expectations:
        start = len(rows)
        for a, b in e.pairs:
            base = {"expectation": e.number, "claim": e.claim, "a": a, "b": b, "relation": e.relation}
            absent = [r for r in (a, b) if r not in pool]
            if absent:
                rows.append({**base, "verdict": stats.INCONCLUSIVE, "missing": " and ".join(absent)})
                continue
            row = oriented(rows_by_pair[frozenset((a, b))], a, b)
            tost = stats.equivalence_p(pool[a], pool[b], margin) if e.relation == "equal" else float("nan")
            verdict = stats.pair_verdict(row, e.relation, alpha, tost)
            rows.append({**base, **{k: row[k] for k in VERDICT_EVIDENCE}, "tost_p": tost, "verdict": verdict})
        overall = stats.combine([r["verdict"] for r in rows[start:]])
        for r in rows[start:]:
            r["overall"] = overall
    return pd.DataFrame(rows).reindex(columns=VERDICT_COLUMNS)


def se_table(pool: dict[str, stats.Sample], cfg: DictConfig) -> pd.DataFrame:
    """Standard error of each regime's mean for study sizes up to its pool, resampled and by formula."""
    rows = []
    for name, sample in pool.items():
        n_pool = len(sample.values)
        sizes = [n for n in cfg.se_repeats if n <= n_pool] or [n_pool]
        rng = stats.rng_for(cfg.bootstrap_seed, "se")  # the same draws for every regime, as for the intervals
        resampled = stats.se_by_repeats(sample.values, sizes, cfg.se_draws, rng)
        sd = float(np.std(sample.values, ddof=1))
        for n, se in zip(sizes, resampled, strict=True):
            rows.append({"regime": name, "repeats": n, "se_resampled": float(se), "se_formula": sd / np.sqrt(n)})
    return pd.DataFrame(rows)


def median_forecasts(results: pd.DataFrame, forecasts: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Per-step forecasts of each regime's median repeat (the lower middle one when the count is even)."""
    frames = []
    for name in order:
        repeats = results[results.regime == name].sort_values(["rmse", "repeat"], kind="stable")
        chosen = repeats.iloc[(len(repeats) - 1) // 2]
        repeat, rmse = int(chosen["repeat"]), float(chosen["rmse"])
        steps = forecasts[(forecasts.regime == name) & (forecasts["repeat"] == repeat)].sort_values("step")
        if steps.empty:
            raise ValueError(f"{name!r} repeat {repeat} has no forecasts in the forecasts table: rerun evaluate.")
        frames.append(steps.assign(rmse=rmse)[[*FORECAST_COLUMNS, "rmse"]])
    return pd.concat(frames, ignore_index=True)


def metrics(summary: pd.DataFrame, baselines: pd.DataFrame) -> dict:
    out = {
        regime: {stat.replace("%", "pct"): float(summary.at[stat, regime]) for stat in summary.index}
        for regime in summary.columns
    }
    out["baselines"] = {row.model: float(row.rmse) for row in baselines.itertuples()}
    return out


def bootstrap_spec(cfg: DictConfig) -> stats.Bootstrap:
    alpha = cfg.alpha
    if not 0 < alpha < 1:
        raise ConfigError(f"stats.alpha must lie strictly between 0 and 1, got {alpha!r}: e.g. stats.alpha=0.05.")
    if cfg.bootstrap_method not in ("BCa", "percentile", "basic"):
        raise ConfigError(f"stats.bootstrap_method must be BCa, percentile or basic, got {cfg.bootstrap_method!r}.")
    for key in ("bootstrap_resamples", "se_draws"):
        if cfg[key] < 2:
            raise ConfigError(f"stats.{key} must be at least 2, got {cfg[key]!r}: e.g. stats.{key}=2000.")
    return stats.Bootstrap(cfg.bootstrap_resamples, cfg.bootstrap_seed, cfg.bootstrap_method, 1 - alpha)


def write_plot_data(directory: Path, table: pd.DataFrame, columns: list[str]) -> None:
    """One CSV per regime (what `dvc plots` draws), removing files of regimes no longer in the study."""
    names = list(dict.fromkeys(table.regime))
    for stale in set(directory.glob("*.csv")) - {directory / f"{n}.csv" for n in names}:
        stale.unlink()
    for name in names:
        io.write_csv(directory / f"{name}.csv", table.loc[table.regime == name, columns])


def run(cfg: DictConfig, root: Path) -> Comparison:
    p = paths(cfg, root)
    results = read_table(p.results, RESULTS_COLUMNS, "evaluate")
    forecasts = read_table(p.forecasts, FORECAST_COLUMNS, "evaluate")
    baselines = read_table(p.baselines, ("model", "rmse"), "evaluate")
    if not p.raw.is_file():
        raise FileNotFoundError(f"{p.raw} is missing: the report records its checksum; run the fetch stage.")
    order = list(dict.fromkeys(results.regime))
    pool = samples(results, order)
    boot = bootstrap_spec(cfg.stats)
    tests = stats.pairwise(pool, boot, cfg.stats.alpha)
    tables = report.Tables(
        results=results,
        summary=describe(results, order),
        intervals=intervals(pool, boot, baselines),
        baselines=baselines,
        tests=tests,
        verdicts=verdicts(tests, pool, cfg.stats.alpha, cfg.stats.equivalence_margin),
        se=se_table(pool, cfg.stats),
        forecasts=median_forecasts(results, forecasts, order),
    )
    return write(cfg, p, tables)


def write(cfg: DictConfig, p: Paths, tables: report.Tables) -> Comparison:
    io.write_csv(p.summary, tables.summary.reset_index(names="statistic"))
    io.write_csv(p.intervals, tables.intervals)
    io.write_csv(p.tests, tables.tests)
    io.write_csv(p.verdicts, tables.verdicts)
    io.write_csv(p.se_repeats, tables.se)
    io.write_json(p.metrics, metrics(tables.summary, tables.baselines))
    write_plot_data(p.se_data, tables.se, ["repeats", "se_resampled", "se_formula"])
    write_plot_data(p.forecast_data, tables.forecasts, ["step", "period", "actual", "forecast"])
    plots = report.Plots(boxplot=p.boxplot, se=p.se_plot, forecasts=p.forecast_plot)
    report.draw(tables, plots)
    report.write(cfg, tables, plots, data.file_sha256(p.raw), p.studies, p.report_md, p.report_html)
    print(tables.summary.to_string(float_format=lambda v: f"{v:.3f}"))
    print(report.verdict_overview(tables.verdicts).to_string())
    tables_written = (p.summary, p.intervals, p.tests, p.verdicts, p.se_repeats, p.metrics)
    plot_data = (*sorted(p.se_data.glob("*.csv")), *sorted(p.forecast_data.glob("*.csv")))
    return Comparison(
        tables=tables,
        report=p.report_md,
        html=p.report_html,
        plots=tuple(plots),
        files=(*tables_written, *plots, *plot_data, p.report_md, p.report_html),
    )


def main() -> None:
    from pipeline import tracking  # mlflow is imported only where a run is logged, not by every import of compare

    cfg, root = load_params(), Path.cwd()
    comparison = run(cfg, root)
    t = comparison.tables
    tracking.log_study(cfg, root, results=t.results, summary=t.summary, baselines=t.baselines,
                       verdicts=t.verdicts, files=comparison.files, kind="repro")


if __name__ == "__main__":
    main()
