"""Classical baselines, scored over the same test months and with the same RMSE as the LSTMs.

Each forecaster sees every raw observation before a test month and forecasts that month, refitting
from scratch at each step, exactly as the LSTMs' walk-forward validation feeds them the actual past.
statsmodels fits the models; no TensorFlow here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from statsmodels.tools.sm_exceptions import ModelWarning
from statsmodels.tsa.arima.model import ARIMA
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from pipeline import data

Forecaster = Callable[[np.ndarray], float]  # every observation so far -> forecast of the next one


def walk_forward(raw: np.ndarray, test_size: int, forecaster: Forecaster) -> np.ndarray:
    """One-step forecasts of the last ``test_size`` observations, each from all observations before it."""
    raw = np.asarray(raw, dtype=np.float64)
    return np.array([forecaster(raw[:t]) for t in range(len(raw) - test_size, len(raw))])


def seasonal_naive(season: int) -> Forecaster:
    def forecast(history: np.ndarray) -> float:
        if len(history) < season:
            raise ValueError(
                f"seasonal naive needs {season} observations before the first test month, got {len(history)}: "
                "set baselines.season to at most the training length."
            )
        return float(history[-season])

    return forecast


def _fit_quietly(fit: Callable[[], object]) -> object:
    # A few dozen observations routinely trip statsmodels' convergence and starting-value warnings; the
    # fits are used as they stand, as a forecaster refitting every month unattended would use them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelWarning)
        return fit()


def exponential_smoothing(trend: str | None) -> Forecaster:
    def forecast(history: np.ndarray) -> float:
        model = ExponentialSmoothing(history, trend=trend, initialization_method="estimated")
        return float(_fit_quietly(model.fit).forecast(1)[0])

    return forecast


def arima(order: Sequence[int]) -> Forecaster:
    def forecast(history: np.ndarray) -> float:
        return float(_fit_quietly(ARIMA(history, order=tuple(order)).fit).forecast(1)[0])

    return forecast


def forecasters(cfg: DictConfig) -> dict[str, tuple[str, Forecaster]]:
    """Baseline name -> (what it does, forecaster), from the ``baselines`` config block."""
    p, d, q = cfg.arima_order
    return {
        f"seasonal_naive_{cfg.season}": (
            f"the same month {cfg.season} months earlier",
            seasonal_naive(cfg.season),
        ),
        "exp_smoothing": (
            f"exponential smoothing, trend {cfg.ets_trend}, refit every month",
            exponential_smoothing(cfg.ets_trend),
        ),
        f"arima_{p}_{d}_{q}": (f"ARIMA({p},{d},{q}), refit every month", arima((p, d, q))),
    }


def score(raw: np.ndarray, test_size: int, cfg: DictConfig) -> pd.DataFrame:
    """RMSE over the test months of persistence and each configured baseline: ``model, rmse, description``."""
    actual = data.test_targets(raw, test_size)
    rows = [("persistence", float(data.rmse(data.persistence_forecast(raw, test_size), actual)), "the previous month")]
    for name, (description, forecaster) in forecasters(cfg).items():
        rows.append((name, float(data.rmse(walk_forward(raw, test_size, forecaster), actual)), description))
    return pd.DataFrame(rows, columns=["model", "rmse", "description"]).astype({"rmse": np.float64})
