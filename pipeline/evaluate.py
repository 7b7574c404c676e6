"""Stage ``evaluate``: walk-forward one-step forecasts over the test months, scored by RMSE.

Each step feeds the actual previous observation; forecasts are mapped back through the scaler and
the differencing before scoring. Writes one row per repeat (``regime, repeat, seed, rmse``), every
step's forecast, and the persistence baseline scored on the same months.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from pipeline import data, io
from pipeline.artifacts import load_differenced, load_problem, load_scaler, paths
from pipeline.engines import TrainedReplicas, make_engine
from pipeline.params import load_params, regimes


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


def run(cfg: DictConfig, root: Path) -> pd.DataFrame:
    p = paths(cfg, root)
    engine = make_engine(cfg.engine)
    series = load_differenced(p)
    raw, test_size, interval = series["raw"], cfg.data.test_size, cfg.data.interval
    actual = data.test_targets(raw, test_size)
    periods = series["periods"][-test_size:]
    results, forecasts = [], []
    for regime in regimes(cfg):
        trained = TrainedReplicas.load(p.model(regime.name))
        if len(trained) != cfg.repeats:
            raise ValueError(f"{p.model(regime.name)} holds {len(trained)} repeats, not {cfg.repeats}: rerun train.")
        scaled = engine.forecast(trained, load_problem(p, regime.window), regime)
        raw_forecasts = data.invert_forecasts(scaled, load_scaler(p, regime.window), raw, test_size, interval)
        table, long = score_regime(regime.name, raw_forecasts, actual, periods, trained.seeds)
        results.append(table)
        forecasts.append(long)
    persistence = data.persistence_forecast(raw, test_size)
    baselines = pd.DataFrame({"model": ["persistence"], "rmse": [float(data.rmse(persistence, actual))]})
    results_table = pd.concat(results, ignore_index=True)
    io.write_csv(p.results, results_table)
    io.write_csv(p.forecasts, pd.concat(forecasts, ignore_index=True))
    io.write_csv(p.baselines, baselines)
    return results_table


def main() -> None:
    run(load_params(), Path.cwd())


if __name__ == "__main__":
    main()
