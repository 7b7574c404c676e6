"""Classical baselines, scored over the same test months and with the same RMSE as the LSTMs.

Each forecaster sees every raw observation before a test month and forecasts that month, exactly as the
LSTMs' walk-forward validation feeds them the actual past. Every statistical model is scored twice:
*refit* from scratch before each test month on everything seen so far (up to 35 observations), and
*fitted once* on the training months alone (the 24 the LSTMs learn from), its parameters then held fixed
while the actual months are fed in, so that a baseline can be compared with models that saw the same data.
The linear lag regression takes the LSTMs' own inputs: the ``model.lag`` previous months' differences, scaled with
the training scaler, fitted by OLS on the training pairs. It keeps the name ``linear_lag1`` whatever the lag, so that
results tables line up across settings (the lag is the run's ``model.lag``). statsmodels fits the models; no
TensorFlow here. statsmodels (two seconds' import, with scipy) is imported by the functions that make the models, so
that the evaluate stage scores its regimes while a second process imports it and scores these.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from threadpoolctl import threadpool_limits

from pipeline import data, processes

Forecaster = Callable[[np.ndarray], float]  # every observation so far -> forecast of the next one
REFIT, ONCE = "refit every month", "fitted once on the training months"


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
    from statsmodels.tools.sm_exceptions import ModelWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return fit()


def exponential_smoothing(trend: str | None, train_obs: int | None = None) -> Forecaster:
    """Holt's exponential smoothing; ``train_obs`` set: parameters and initial states fitted on those alone."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    def fit(history: np.ndarray):
        return _fit_quietly(ExponentialSmoothing(history, trend=trend, initialization_method="estimated").fit)

    def refit(history: np.ndarray) -> float:
        return float(fit(history).forecast(1)[0])

    if train_obs is None:
        return refit
    fixed = None

    def once(history: np.ndarray) -> float:
        nonlocal fixed
        if fixed is None:
            fixed = fit(history[:train_obs]).params
        initial = {"initial_level": fixed["initial_level"]}
        smoothing = {"smoothing_level": fixed["smoothing_level"]}
        if trend:
            initial["initial_trend"] = fixed["initial_trend"]
            smoothing["smoothing_trend"] = fixed["smoothing_trend"]
        model = ExponentialSmoothing(history, trend=trend, initialization_method="known", **initial)
        return float(_fit_quietly(lambda: model.fit(optimized=False, **smoothing)).forecast(1)[0])

    return once


def arima(order: Sequence[int], train_obs: int | None = None) -> Forecaster:
    """ARIMA; ``train_obs`` set: parameters fitted on those alone, then applied to every longer history."""
    from statsmodels.tsa.arima.model import ARIMA

    fitted = None

    def forecast(history: np.ndarray) -> float:
        nonlocal fitted
        if train_obs is None:
            return float(_fit_quietly(ARIMA(history, order=tuple(order)).fit).forecast(1)[0])
        if fitted is None:
            fitted = _fit_quietly(ARIMA(history[:train_obs], order=tuple(order)).fit)
        return float(fitted.apply(history).forecast(1)[0])

    return forecast


def fit_linear_lags(history: np.ndarray, train_obs: int, interval: int, lag: int) -> tuple[object, float, np.ndarray]:
    """(training scaler, intercept, slopes) of the OLS fit of each scaled difference of ``history`` on the ``lag``
    before it (``data.frame``'s pairs; slopes oldest first); the scaler is fitted on the first ``train_obs``
    observations' differences, as for the LSTMs. Both sides share the scaler, so the slopes are those of the raw
    differences."""
    from statsmodels.regression.linear_model import OLS
    from statsmodels.tools.tools import add_constant

    scaler = data.fit_scaler(data.difference(history[:train_obs], interval))
    x, y = data.frame(data.scale(scaler, data.difference(history, interval)), lag)
    intercept, *slopes = OLS(y, add_constant(x, has_constant="add")).fit().params
    return scaler, float(intercept), np.array(slopes, dtype=np.float64)


def linear_lags(train_obs: int, interval: int, refit: bool, lag: int) -> Forecaster:
    """OLS of a month's scaled difference on the ``lag`` before it: the LSTMs' inputs and scaler.

    Fitted on the training pairs (``refit``: on every pair seen so far); forecasts are mapped back through the
    scaler and the differencing.
    """
    fixed = None

    def forecast(history: np.ndarray) -> float:
        nonlocal fixed
        if refit or fixed is None:
            fixed = fit_linear_lags(history if refit else history[:train_obs], train_obs, interval, lag)
        scaler, intercept, slopes = fixed
        last = data.scale(scaler, data.difference(history, interval)[-lag:])
        step = data.invert_scale(scaler, np.array([intercept + slopes @ last]))[0]
        return float(history[-interval] + step)

    return forecast


def forecasters(
    cfg: DictConfig, train_obs: int, interval: int, lag: int
) -> dict[str, tuple[str, str, Forecaster]]:
    """Baseline name -> (what it forecasts from, how it is fitted, forecaster), from the ``baselines`` block."""
    p, d, q = cfg.arima_order
    ets = f"exponential smoothing, trend {cfg.ets_trend}"
    previous = ("the previous month's scaled difference" if lag == 1
                else f"the {lag} previous months' scaled differences")
    lag1 = f"OLS on {previous}, the LSTMs' input"
    return {
        f"seasonal_naive_{cfg.season}": (f"the same month {cfg.season} months earlier", "no parameters",
                                         seasonal_naive(cfg.season)),
        "exp_smoothing": (ets, REFIT, exponential_smoothing(cfg.ets_trend)),
        "exp_smoothing_once": (ets, ONCE, exponential_smoothing(cfg.ets_trend, train_obs)),
        f"arima_{p}_{d}_{q}": (f"ARIMA({p},{d},{q})", REFIT, arima((p, d, q))),
        f"arima_{p}_{d}_{q}_once": (f"ARIMA({p},{d},{q})", ONCE, arima((p, d, q), train_obs)),
        "linear_lag1": (lag1, REFIT, linear_lags(train_obs, interval, refit=True, lag=lag)),
        "linear_lag1_once": (lag1, ONCE, linear_lags(train_obs, interval, refit=False, lag=lag)),
    }


def score(
    raw: np.ndarray, test_size: int, cfg: DictConfig, interval: int = 1, refits: bool = True, lag: int = 1,
    workers: int = 1,
) -> pd.DataFrame:
    """RMSE over the test months of persistence and each baseline: ``model, rmse, description, fit``.

    ``refits`` False leaves out the models refit every month (an ARIMA refit costs seconds per month on a long
    series), keeping those fitted once on the training months, as the LSTMs are. ``lag``: the linear lag
    regression's inputs, the LSTMs' (``model.lag``). ``workers`` > 1: the baselines' walks forward spread over that
    many processes forked once statsmodels is imported (the same bits)."""
    actual = data.test_targets(raw, test_size)
    persistence = float(data.rmse(data.persistence_forecast(raw, test_size), actual))
    rows = [("persistence", persistence, "the previous month", "no parameters")]
    made = forecasters(cfg, len(raw) - test_size, interval, lag)  # imports statsmodels, and scipy's own BLAS with it
    names = [name for name, (_, fit, _) in made.items() if refits or fit != REFIT]
    # The state-space filters multiply matrices a few elements wide: OpenBLAS's threads only wake and wait
    # (10.5 s against 0.9 s on 2 busy cores for the shampoo study, the same bits), so one thread does them. The limit
    # holds only the BLAS libraries loaded when it is set, hence after the forecasters are made; forked workers
    # inherit it.
    with threadpool_limits(limits=1, user_api="blas"):
        if workers > 1:
            with processes.forked_pool(workers) as pool:
                forecasts = list(pool.map(partial(_walk_forward, raw, test_size, cfg, interval, lag), names))
        else:
            forecasts = [walk_forward(raw, test_size, made[name][2]) for name in names]
    for name, forecast in zip(names, forecasts, strict=True):
        description, fit, _ = made[name]
        rows.append((name, float(data.rmse(forecast, actual)), description, fit))
    return pd.DataFrame(rows, columns=["model", "rmse", "description", "fit"]).astype({"rmse": np.float64})


def _walk_forward(raw: np.ndarray, test_size: int, cfg: DictConfig, interval: int, lag: int, name: str) -> np.ndarray:
    """The named baseline's walk forward, its forecaster made anew: a closure cannot be sent to a worker."""
    _, _, forecaster = forecasters(cfg, len(raw) - test_size, interval, lag)[name]
    return walk_forward(raw, test_size, forecaster)
