"""The shampoo study's procedure on every series and forecast origin of a panel, one series at a time.

Each origin runs the same functions as the shampoo study's stages, in memory: difference
(``data.difference``), scale on the training rows only (``stages.scale.scale_window``), frame
(``stages.frame.frame_window``), train each distinct procedure once (``stages.train.train_procedures``), forecast
walk-forward (``stages.train.forecast_all``), invert and score (``stages.evaluate.score_regime``).
So at the shampoo series' last origin the panel's per-repeat RMSEs are the shampoo study's, bit for bit.

Beside the raw RMSE every repeat gets two scale-free scores, so that series can be pooled: its RMSE
relative to persistence on the same months, and its MASE (mean absolute error over the in-sample mean
absolute error of the seasonal naive forecast, or of persistence when there is no season).

A series' results are cached whole under a key that hashes everything that determines them (its values
and file, the regimes, model, engine, seeds, baselines, the code and library versions), so changing one
series file recomputes that series alone, and a panel that stops part-way keeps every finished series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from pipeline import data, io, resume, series
from pipeline.analysis import baselines
from pipeline.artifacts import to_problem
from pipeline.engines.base import Engine, ModelSpec, Problem
from pipeline.provenance import NUMERIC_LIBRARIES, code_fingerprint, digest, library_versions
from pipeline.regimes import StateRegime
from pipeline.stages import evaluate, frame, scale, train

RESULTS_COLUMNS = ("series", "origin", "regime", "repeat", "seed", "rmse", "relative_rmse", "mase")
BASELINE_COLUMNS = ("series", "origin", "model", "rmse", "relative_rmse", "description")
# Sources whose change may change a series' numbers: the engines and every function the procedure calls.
PANEL_CODE = (*resume.ENGINE_CODE, "data.py", "series.py", "panel.py", "artifacts.py", "analysis/baselines.py",
              "stages/scale.py", "stages/frame.py", "stages/train.py", "stages/evaluate.py")


@dataclass(frozen=True)
class Setting:
    """What every series of a panel is run with."""

    regimes: tuple[StateRegime, ...]
    model: ModelSpec
    lag: int  # inputs per pair: the previous differences (model.lag)
    seeds: np.ndarray
    engine_cfg: DictConfig
    baselines_cfg: DictConfig | None  # None: no statistical baselines (persistence is always scored)
    baseline_refits: bool = False  # also the statistical baselines refit every month (slow), not only fitted once


@dataclass(frozen=True)
class SeriesResults:
    results: pd.DataFrame  # RESULTS_COLUMNS, one row per origin, regime and repeat
    baselines: pd.DataFrame  # BASELINE_COLUMNS, one row per origin and baseline

    def save(self, path: Path) -> None:
        arrays = {f"results.{c}": _column(self.results[c]) for c in RESULTS_COLUMNS}
        arrays.update({f"baselines.{c}": _column(self.baselines[c]) for c in BASELINE_COLUMNS})
        io.save_arrays(path, arrays)

    @classmethod
    def load(cls, path: Path) -> SeriesResults:
        arrays = io.load_arrays(path)
        return cls(
            pd.DataFrame({c: arrays[f"results.{c}"] for c in RESULTS_COLUMNS}),
            pd.DataFrame({c: arrays[f"baselines.{c}"] for c in BASELINE_COLUMNS}),
        )


def _column(values: pd.Series) -> np.ndarray:
    return values.to_numpy() if pd.api.types.is_numeric_dtype(values) else values.to_numpy().astype(str)


def mase_scale(history: np.ndarray, season: int) -> float:
    """In-sample mean absolute error of the seasonal naive forecast (persistence when ``season`` is 1)."""
    history = np.asarray(history, dtype=np.float64)
    return float(np.mean(np.abs(history[season:] - history[:-season])))


def origin_problems(
    ps: series.PanelSeries, origin: int, setting: Setting
) -> tuple[np.ndarray, np.ndarray, dict[str, tuple[Problem, data.MinMaxScaler]]]:
    """One origin's values, the transformed values, and each training window's problem and scaler."""
    spec = ps.spec
    values = ps.at_origin(origin)
    transformed = series.transform(spec, values)
    diffs = data.difference(transformed, spec.interval)
    windows = {}
    for window, train_rows in scale.windows_of(setting.regimes).items():
        scaled, scaler = scale.scale_window(diffs, spec.test_size, train_rows, setting.lag)
        supervised = frame.frame_window(scaled, spec.test_size, train_rows, setting.lag)
        windows[window] = (to_problem(asdict(supervised)), scaler)
    return values, transformed, windows


def series_results(
    ps: series.PanelSeries, setting: Setting, engine: Engine, cache: resume.ChunkCache
) -> SeriesResults:
    """Every origin of one series, computed afresh (``panel_results`` of that series alone)."""
    return panel_results([ps], setting, engine, cache, lambda *_: None)[0]


def panel_results(
    panel: Sequence[series.PanelSeries], setting: Setting, engine: Engine, cache: resume.ChunkCache,
    finished: Callable[[series.PanelSeries, SeriesResults], None],
) -> list[SeriesResults]:
    """Every origin of every series, computed afresh: each distinct training procedure of every series and origin
    trained once, all in one ``train_procedures`` call (equally shaped ones share wide programs, and the workers
    stay busy from the first series to the last), then every regime forecast and scored, series by series, each
    handed to ``finished`` as soon as it is scored."""
    origins = {ps.name: [origin_problems(ps, k, setting) for k in range(ps.spec.origins)] for ps in panel}
    groups, identity_of = {}, {}
    for ps in panel:
        for k, (_, _, windows) in enumerate(origins[ps.name]):
            for regime in setting.regimes:
                problem = windows[regime.window][0]
                try:
                    identity, record = train.procedure_of(setting.engine_cfg, regime, problem, setting.model)
                except ValueError as err:
                    raise series.SeriesError(f"series '{ps.name}' origin {k}: {err}") from None
                group = groups.setdefault(identity, train.Procedure(record, problem, name=ps.name))
                group.regimes.append(f"{regime.name}@{k}")
                identity_of[ps.name, k, regime.name] = identity
    trained = train.train_procedures(engine, groups, setting.model, setting.seeds, cache)
    requests = []
    for ps in panel:
        for k, (_, _, windows) in enumerate(origins[ps.name]):
            for regime in setting.regimes:
                problem = windows[regime.window][0]
                identity = resume.replica_identity(setting.engine_cfg, regime, setting.model, problem)
                requests.append(((trained[identity_of[ps.name, k, regime.name]], problem, regime), identity))
    all_forecasts = iter(train.forecast_all(engine, requests, cache))  # in the order of the loops below
    parts = []
    for ps in panel:
        part = score_series(ps, setting, origins[ps.name], all_forecasts)
        finished(ps, part)
        parts.append(part)
    return parts


def score_series(
    ps: series.PanelSeries, setting: Setting, origins: list, scaled: Iterator[np.ndarray]
) -> SeriesResults:
    """One series' scores from its scaled forecasts (taken from ``scaled`` origin by origin, regime by regime)
    and its baselines."""
    spec, test_size = ps.spec, ps.spec.test_size
    results, baseline_tables = [], []
    for k, (values, transformed, windows) in enumerate(origins):
        actual = data.test_targets(values, test_size)
        periods = np.array(ps.periods[: ps.origin_end(k)][-test_size:])
        persistence = float(data.rmse(data.persistence_forecast(values, test_size), actual))
        scale_mase = mase_scale(values[:-test_size], spec.season)
        for regime in setting.regimes:
            scaler = windows[regime.window][1]
            forecasts = series.invert_transform(
                spec, data.invert_forecasts(next(scaled), scaler, transformed, test_size, spec.interval)
            )
            table, _ = evaluate.score_regime(regime.name, forecasts, actual, periods, setting.seeds)
            table["relative_rmse"] = table["rmse"] / persistence
            table["mase"] = np.mean(np.abs(forecasts - actual), axis=-1) / scale_mase
            results.append(table.assign(series=ps.name, origin=k))
        baseline_tables.append(_baselines(ps, k, values, persistence, setting))
    return SeriesResults(pd.concat(results, ignore_index=True)[list(RESULTS_COLUMNS)],
                         pd.concat(baseline_tables, ignore_index=True))


def _baselines(
    ps: series.PanelSeries, origin: int, values: np.ndarray, persistence: float, setting: Setting
) -> pd.DataFrame:
    test_size = ps.spec.test_size
    if setting.baselines_cfg is None:
        table = pd.DataFrame({"model": ["persistence"], "rmse": [persistence], "description": ["the previous period"]})
    else:
        cfg = OmegaConf.merge(setting.baselines_cfg, {"season": max(ps.spec.season, 1)})
        table = baselines.score(values, test_size, cfg, ps.spec.interval, setting.baseline_refits, setting.lag)
        if ps.spec.season == 1:  # a seasonal naive forecast with season 1 is persistence again
            table = table[~table.model.str.startswith("seasonal_naive")]
    table = table.reset_index(drop=True)
    table.insert(0, "origin", origin)
    table.insert(0, "series", ps.name)
    table["relative_rmse"] = table["rmse"] / persistence
    return table[list(BASELINE_COLUMNS)]


def series_key(ps: series.PanelSeries, setting: Setting) -> str:
    """Hash of everything that determines a series' results."""
    versions = library_versions()
    record = {
        "series": {k: v for k, v in asdict(ps.spec).items() if k != "description"},  # words change no number
        "periods": list(ps.periods),
        "regimes": [asdict(r) for r in setting.regimes],
        "model": asdict(setting.model),
        "lag": setting.lag,
        "seeds": [int(s) for s in setting.seeds],
        "engine": OmegaConf.to_container(setting.engine_cfg, resolve=True),
        "baselines": None if setting.baselines_cfg is None else OmegaConf.to_container(setting.baselines_cfg),
        "baseline_refits": setting.baseline_refits,
        "code": code_fingerprint(*PANEL_CODE),
        "libraries": {name: versions[name] for name in NUMERIC_LIBRARIES},
    }
    return digest(record, (ps.values,))


def run_panel(
    panel: Sequence[series.PanelSeries], setting: Setting, engine: Engine, cache: resume.ChunkCache,
    done: Callable[[int], None],
) -> tuple[SeriesResults, list[str]]:
    """Every series' results, each taken from ``cache`` when nothing about it changed (the rest computed together,
    each cached as soon as it is scored); and the series computed."""
    keys = {ps.name: series_key(ps, setting) for ps in panel}
    found = {ps.name: cache.lookup("panel", keys[ps.name], SeriesResults.load) for ps in panel}
    done(sum(result is not None for result in found.values()))
    missing = [ps for ps in panel if found[ps.name] is None]

    def finished(ps: series.PanelSeries, result: SeriesResults) -> None:
        cache.store("panel", keys[ps.name], result, SeriesResults.save)
        found[ps.name] = result
        done(1)

    if missing:
        panel_results(missing, setting, engine, cache, finished)
    return (
        SeriesResults(pd.concat([found[ps.name].results for ps in panel], ignore_index=True),
                      pd.concat([found[ps.name].baselines for ps in panel], ignore_index=True)),
        [ps.name for ps in missing],
    )
