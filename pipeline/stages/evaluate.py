"""Stage ``evaluate``: the walk-forward one-step forecasts of the test months (made by ``train``), scored by RMSE.

Each step fed the actual previous observation; forecasts are mapped back through the scaler and
the differencing before scoring. No TensorFlow here. Writes one row per repeat (``regime, repeat, seed, rmse``) and
every step's forecast; the baselines on the same months are the ``baselines`` stage's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from pipeline import data, errors, io
from pipeline.artifacts import Paths, load_differenced, load_scaler, paths
from pipeline.errors import MissingInput
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


def score_regimes(cfg: DictConfig, p: Paths) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every selected regime's RMSE table and per-step forecasts, from the forecasts the train stage saved."""
    series = load_differenced(p)
    raw, test_size, interval = series["raw"], cfg.data.test_size, cfg.data.interval
    actual = data.test_targets(raw, test_size)
    periods = series["periods"][-test_size:]
    results, forecasts = [], []
    for regime in regimes(cfg):
        path = p.scaled_forecasts(regime.name)
        if not path.is_file():
            raise MissingInput(f"{path} is missing: run the train stage (dvc repro train).")
        saved = io.load_arrays(path)
        if len(saved["seeds"]) != cfg.repeats or saved["forecasts"].shape[1:] != (test_size,):
            raise MissingInput(f"{path} holds {saved['forecasts'].shape} forecasts, not {cfg.repeats} repeats of "
                             f"{test_size} months: rerun train (dvc repro train).")
        raw_forecasts = data.invert_forecasts(saved["forecasts"], load_scaler(p, regime.window), raw, test_size,
                                              interval)
        table, long = score_regime(regime.name, raw_forecasts, actual, periods, saved["seeds"])
        results.append(table)
        forecasts.append(long)
    return pd.concat(results, ignore_index=True), pd.concat(forecasts, ignore_index=True)


def run(cfg: DictConfig, root: Path) -> pd.DataFrame:
    """Score the regimes and write their tables."""
    p = paths(cfg, root)
    results_table, forecasts = score_regimes(cfg, p)
    io.write_csv(p.results, results_table)
    io.write_csv(p.forecasts, forecasts)
    return results_table


def main() -> None:
    run(load_params(), Path.cwd())


if __name__ == "__main__":
    errors.cli(main)
