"""Stage ``panel``: every state regime on every series and forecast origin of a panel, and the answers across it.

Reads ``panel`` (which series, repeats, margin, baselines), the model, engine and regimes from the
config and each series from ``conf/series/<name>.yaml``; every series is loaded and validated before
anything trains. Per series the shampoo study's own procedure runs at each origin (``pipeline.panel``),
cached per series. Writes the per-repeat results to ``paths.panel_results`` and under ``paths.panel``:
baselines, per-series summary, effects per series and origin, the meta-analysis per contrast, series
features, plots and the report, and logs one MLflow parent run for the panel with a child per series.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from pipeline import errors, io, progress, resume, series, tracking
from pipeline.analysis import features, meta, panel_report
from pipeline.analysis.claims import EXPECTATIONS
from pipeline.artifacts import model_spec
from pipeline.engines import make_engine
from pipeline.panel import SeriesResults, Setting, run_panel
from pipeline.params import ConfigError, load_params, regimes
from pipeline.seeds import repeat_seeds


@dataclass(frozen=True)
class PanelOutcome:
    results: pd.DataFrame
    baselines: pd.DataFrame
    effects: pd.DataFrame
    pooled: pd.DataFrame
    computed: list[str]  # series computed afresh (the others came from the cache)
    files: tuple[Path, ...]


def load_panel(cfg: DictConfig, series_dir: Path = series.SERIES_DIR) -> list[series.PanelSeries]:
    """Every series of the panel, loaded and validated (a bad one stops the run before anything trains)."""
    names = list(cfg.panel.series)
    if len(set(names)) != len(names) or not names:
        raise ConfigError(f"panel.series must list distinct series names, got {names}: remove the repeats.")
    min_train = max(r.train_rows or 1 for r in regimes(cfg))
    return [series.load(name, series_dir, min_train, cfg.model.lag) for name in names]


def setting(cfg: DictConfig) -> Setting:
    repeats, margin = cfg.panel.repeats, cfg.panel.margin
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 2:
        raise ConfigError(f"panel.repeats must be an integer >= 2 (intervals need a spread), got {repeats!r}.")
    if not isinstance(margin, int | float) or margin < 0:
        raise ConfigError(f"panel.margin must be a share of persistence RMSE >= 0, got {margin!r}: e.g. 0.01.")
    return Setting(tuple(regimes(cfg)), model_spec(cfg), cfg.model.lag, repeat_seeds(cfg.base_seed, repeats),
                   cfg.engine, None if cfg.panel.baselines == "none" else cfg.baselines, cfg.panel.baselines == "all")


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Per series and regime: mean RMSE, relative RMSE and MASE, and the share of repeats beating persistence."""
    grouped = results.groupby(["series", "regime"], sort=False)
    return pd.DataFrame({
        "mean_rmse": grouped.rmse.mean(), "mean_relative_rmse": grouped.relative_rmse.mean(),
        "mean_mase": grouped.mase.mean(),
        "share_beating_persistence": grouped.relative_rmse.apply(lambda s: (s < 1).mean()),
    }).reset_index()


def run(
    cfg: DictConfig, root: Path, series_dir: Path = series.SERIES_DIR, parent: str | None = None, label: str = ""
) -> PanelOutcome:
    """The panel, its answers and outputs; logged as a run of its own, or under a sweep's run (``parent``)."""
    panel = load_panel(cfg, series_dir)
    outcome, computed = results_of(cfg, panel)
    # Training pairs of the full window at the shortest series' first origin: what decides whether a regime's
    # state passes between batches, and so which pairs are clean contrasts.
    train_pairs = min(len(ps.at_origin(0)) - ps.spec.interval - cfg.model.lag - ps.spec.test_size for ps in panel)
    contrast_list = meta.contrasts(EXPECTATIONS, {r.name: r for r in regimes(cfg)}, train_pairs)
    if not contrast_list:
        raise ConfigError("the selected regimes include no clean pair of an expectation (pipeline/analysis/claims.py): "
                          "select both regimes of at least one pair, e.g. regime=[stateful,stateless].")
    effects = meta.effects(outcome.results, contrast_list, cfg.panel.margin, cfg.stats.alpha)
    pooled = meta.pooled(effects, contrast_list, cfg.panel.margin, cfg.stats.alpha)
    by_frequency = pooled_by_frequency(panel, effects, contrast_list, cfg.panel.margin, cfg.stats.alpha)
    return PanelOutcome(outcome.results, outcome.baselines, effects, pooled, computed,
                        write_outputs(cfg, root, panel, outcome, effects, pooled, by_frequency, parent, label))


def results_of(cfg: DictConfig, panel: list[series.PanelSeries]) -> tuple[SeriesResults, list[str]]:
    """Every series' per-repeat results and baselines, from the resume cache where nothing about a series changed,
    the others computed together (the audit runs it with the cache off); and the series computed."""
    chosen = setting(cfg)
    engine, cache = make_engine(cfg.engine), resume.cache_from_config(cfg)
    with progress.bar(len(panel), f"panel {cfg.panel.name}: series") as bar:
        outcome, computed = run_panel(panel, chosen, engine, cache, bar.update)
    if computed != [ps.name for ps in panel]:
        print(f"panel: computed {computed or 'nothing'}; the other series came from the cache ({cache.directory})")
    return outcome, computed


def pooled_by_frequency(
    panel: list[series.PanelSeries], effects: pd.DataFrame, contrast_list: list[meta.Contrast], margin: float,
    alpha: float,
) -> pd.DataFrame:
    """The meta-analysis within each frequency (monthly, quarterly, annual) of the panel."""
    parts = []
    for frequency in dict.fromkeys(ps.spec.frequency for ps in panel):
        names = {ps.name for ps in panel if ps.spec.frequency == frequency}
        part = meta.pooled(effects[effects.series.isin(names)], contrast_list, margin, alpha)
        parts.append(part.assign(frequency=frequency))
    return pd.concat(parts, ignore_index=True).sort_values(["contrast", "frequency"], kind="stable")


def write_outputs(
    cfg: DictConfig, root: Path, panel: list[series.PanelSeries], outcome: SeriesResults, effects: pd.DataFrame,
    pooled: pd.DataFrame, by_frequency: pd.DataFrame, parent: str | None = None, label: str = "",
) -> tuple[Path, ...]:
    out = Path(root) / cfg.paths.panel
    summary = summarise(outcome.results)
    feature_table = features.table(panel, outcome.results)
    winners = features.winners_by_kind(feature_table)
    tables = {"baselines": outcome.baselines, "summary": summary, "effects": effects,
              "pooled": pooled, "pooled_by_frequency": by_frequency, "features": feature_table}
    io.write_csv(Path(root) / cfg.paths.panel_results, outcome.results)
    files = [Path(root) / cfg.paths.panel_results]
    for name, table in tables.items():
        io.write_csv(out / f"{name}.csv", table)
        files.append(out / f"{name}.csv")
    io.write_csv(out / "winners.csv", winners.reset_index())
    files.append(out / "winners.csv")
    plots = {"heatmap": "heatmap.png"}
    panel_report.heatmap(effects, out / "heatmap.png")
    for _, row in pooled.iterrows():
        rows = effects[(effects.contrast == row.contrast) & (effects.origin == "all")]
        panel_report.forest_plot(rows, row, cfg.panel.margin, out / f"forest_{row.contrast}.png")
        plots[row.contrast] = f"forest_{row.contrast}.png"
    for stale in set(out.glob("forest_*.png")) - {out / p for p in plots.values()}:  # an earlier run's contrasts
        stale.unlink()
    metrics = metrics_of(pooled)
    io.write_json(out / "metrics.json", metrics)
    settings = (f"{len(cfg.regime)} regimes, {cfg.panel.repeats} repeats per regime, series and origin, "
                f"{cfg.model.units} LSTM unit(s), {cfg.model.epochs} epochs, lag {cfg.model.lag}, engine "
                f"{cfg.engine.name}")
    text = panel_report.markdown(cfg.panel.name, cfg.panel.margin, settings, pooled, by_frequency, summary,
                                 outcome.baselines, feature_table, winners, plots)
    panel_report.write(text, out / "report.md", out / "report.html")
    files += [out / p for p in plots.values()] + [out / "metrics.json", out / "report.md", out / "report.html"]
    tracking.log_panel(cfg, root, results=outcome.results, metrics=metrics, files=files,
                       specs={ps.name: asdict(ps.spec) for ps in panel}, parent=parent, label=label)
    return tuple(files)


def metrics_of(pooled: pd.DataFrame) -> dict[str, float]:
    """The panel's verdicts as numbers: per contrast the pooled effect, its interval, tau^2, I^2 and counts."""
    metrics = {}
    for _, row in pooled.iterrows():
        for key in ("pooled", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "i2", "supported", "contradicted",
                    "equivalent", "inconclusive"):
            value = float(row.get(key, np.nan))
            if np.isfinite(value):
                metrics[f"contrast_{row.contrast}.{key}"] = value
    return metrics


def main() -> None:
    run(load_params(), Path.cwd())


if __name__ == "__main__":
    errors.cli(main)
