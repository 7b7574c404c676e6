"""Stage ``evaluate``: walk-forward one-step forecasts over the test months, scored by RMSE.

Each step feeds the actual previous observation; forecasts are mapped back through the scaler and
the differencing before scoring. Writes one row per repeat (``regime, repeat, seed, rmse``), every
step's forecast, and the persistence and classical baselines scored on the same months.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from pipeline import data, errors, io, resume
from pipeline.analysis import baselines
from pipeline.artifacts import Paths, load_differenced, load_problem, load_scaler, model_spec, paths
from pipeline.engines import Engine, Problem, TrainedReplicas, make_engine
from pipeline.params import load_params, regimes
from pipeline.regimes import StateRegime


def score_regime(
    name: str, forecasts: np.ndarray, actual: np.ndarray, periods: np.ndarray, seeds: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-repeat RMSE table and long per-step forecast table for one regime's raw forecasts (R, T)."""
    repeats = np.arange(len(seeds))
    results = pd.DataFrame(
        {"regime": name, "repeat": repeats, "seed": seeds.astype(np.int64), "rmse": data.rmse(forecasts, actual)}
    )
    steps = np.arange(forecasts.shape[1])
    long = pd.DataFrame(
        {
            "regime": name,
            "repeat": np.repeat(repeats, len(steps)),
            "step": np.tile(steps, len(repeats)),
            "period": np.tile(periods, len(repeats)),
            "actual": np.tile(actual, len(repeats)),
            "forecast": forecasts.reshape(-1),
        }
    )
    return results, long


def forecast_in_chunks(
    engine: Engine, trained: TrainedReplicas, problem: Problem, regime: StateRegime, cache: resume.ChunkCache,
    identity: str,
) -> np.ndarray:
    """``engine.forecast`` one chunk of replicas at a time, each chunk taken from ``cache`` or saved to it."""
    parts = []
    for part in cache.chunks(len(trained)):
        chunk = resume.take(trained, part)
        scaled, _ = cache.get_or_compute(
            "forecasts", resume.forecasts_key(identity, chunk), partial(engine.forecast, chunk, problem, regime),
            resume.load_forecasts, resume.save_forecasts,
        )
        parts.append(scaled)
    return np.concatenate(parts)


def score_regimes(cfg: DictConfig, p: Paths) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every selected regime's RMSE table and per-step forecasts, from its trained replicas under ``p``."""
    engine = make_engine(cfg.engine)
    series = load_differenced(p)
    raw, test_size, interval = series["raw"], cfg.data.test_size, cfg.data.interval
    actual = data.test_targets(raw, test_size)
    periods = series["periods"][-test_size:]
    cache, spec = resume.cache_from_config(cfg), model_spec(cfg)
    results, forecasts = [], []
    for regime in regimes(cfg):
        trained = TrainedReplicas.load(p.model(regime.name))
        if len(trained) != cfg.repeats:
            raise ValueError(f"{p.model(regime.name)} holds {len(trained)} repeats, not {cfg.repeats}: rerun train.")
        problem = load_problem(p, regime.window)
        identity = resume.replica_identity(cfg.engine, regime, spec, problem)
        scaled = forecast_in_chunks(engine, trained, problem, regime, cache, identity)
        raw_forecasts = data.invert_forecasts(scaled, load_scaler(p, regime.window), raw, test_size, interval)
        table, long = score_regime(regime.name, raw_forecasts, actual, periods, trained.seeds)
        results.append(table)
        forecasts.append(long)
    return pd.concat(results, ignore_index=True), pd.concat(forecasts, ignore_index=True)


def run(cfg: DictConfig, root: Path) -> pd.DataFrame:
    p = paths(cfg, root)
    results_table, forecasts = score_regimes(cfg, p)
    raw, test_size = load_differenced(p)["raw"], cfg.data.test_size
    io.write_csv(p.results, results_table)
    io.write_csv(p.forecasts, forecasts)
    io.write_csv(p.baselines, baselines.score(raw, test_size, cfg.baselines, cfg.data.interval))
    return results_table


def main() -> None:
    run(load_params(), Path.cwd())


if __name__ == "__main__":
    errors.cli(main)
