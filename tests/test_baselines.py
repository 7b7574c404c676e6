"""Classical baselines: the same walk-forward months and RMSE as the LSTMs."""

import json
import subprocess
import sys
from io import BytesIO
from textwrap import dedent

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from pipeline import data
from pipeline.analysis import baselines
from pipeline.stages import fetch

SHAMPOO = pd.read_csv(BytesIO(fetch.packaged("shampoo.csv")))["Sales"].to_numpy(np.float64)
CFG = OmegaConf.create({"season": 12, "arima_order": [1, 1, 0], "ets_trend": "add"})  # a quick ARIMA to refit


def test_walk_forward_shows_each_forecaster_exactly_the_past():
    seen = []

    def record(history: np.ndarray) -> float:
        seen.append(history.copy())
        return float(len(history))

    raw = np.arange(10.0) * 3
    forecasts = baselines.walk_forward(raw, 4, record)
    np.testing.assert_array_equal(forecasts, [6, 7, 8, 9])
    for history, t in zip(seen, range(6, 10), strict=True):
        np.testing.assert_array_equal(history, raw[:t])


def test_seasonal_naive_repeats_the_same_month_a_season_earlier():
    season = np.tile([10.0, 30.0, 20.0, 50.0], 5)
    np.testing.assert_array_equal(baselines.walk_forward(season, 8, baselines.seasonal_naive(4)), season[-8:])
    forecasts = baselines.walk_forward(SHAMPOO, 12, baselines.seasonal_naive(12))
    np.testing.assert_array_equal(forecasts, SHAMPOO[12:24])


def test_seasonal_naive_needs_a_full_season_of_history():
    with pytest.raises(ValueError, match=r"baselines\.season"):
        baselines.walk_forward(np.arange(10.0), 5, baselines.seasonal_naive(12))


def test_exponential_smoothing_with_trend_follows_a_straight_line():
    line = 50.0 + 4.0 * np.arange(30)
    forecasts = baselines.walk_forward(line, 6, baselines.exponential_smoothing("add"))
    np.testing.assert_allclose(forecasts, line[-6:], atol=0.5)
    np.testing.assert_array_equal(forecasts, baselines.walk_forward(line, 6, baselines.exponential_smoothing("add")))


def test_arima_forecasts_a_noisy_random_walk_near_its_last_value():
    walk = 100 + np.cumsum(np.random.default_rng(0).normal(0, 1, 60))
    forecasts = baselines.walk_forward(walk, 5, baselines.arima((1, 1, 0)))
    assert np.all(np.abs(forecasts - walk[-6:-1]) < 3)


def ar1_walk(phi: float, n: int, seed: int) -> np.ndarray:
    """A series whose differences follow an exact AR(1) without intercept: d_t = phi * d_(t-1) + e_t."""
    e = np.random.default_rng(seed).normal(0.0, 1.0, n)
    d = np.zeros(n)
    for t in range(1, n):
        d[t] = phi * d[t - 1] + e[t]
    return 100 + np.cumsum(d)


def test_linear_lag1_recovers_the_coefficient_of_an_exact_ar1_series():
    raw = ar1_walk(0.6, 2000, seed=1)
    _, _, slope = baselines.fit_linear_lags(raw, train_obs=2000, interval=1, lag=1)
    assert slope == pytest.approx(0.6, abs=0.04)  # standard error ~ sqrt((1 - 0.36) / 2000) = 0.018
    noiseless = 100 + np.cumsum(0.5 ** np.arange(40))  # d_t = 0.5 d_(t-1) exactly
    forecasts = baselines.walk_forward(noiseless, 6, baselines.linear_lags(34, 1, refit=False, lag=1))
    np.testing.assert_allclose(forecasts, noiseless[-6:], rtol=1e-9)


def test_the_lag_regression_takes_the_lstms_k_inputs_and_recovers_an_exact_ar3():
    d = np.zeros(60)
    d[:3] = (1.0, -0.5, 0.8)
    for t in range(3, 60):  # d_t = 0.2 d_(t-3) - 0.3 d_(t-2) + 0.5 d_(t-1), oldest first, no noise
        d[t] = 0.2 * d[t - 3] - 0.3 * d[t - 2] + 0.5 * d[t - 1]
    raw = 100 + np.concatenate([[0.0], np.cumsum(d)])
    scaler, intercept, slopes = baselines.fit_linear_lags(raw, train_obs=40, interval=1, lag=3)
    np.testing.assert_allclose(slopes, [0.2, -0.3, 0.5], atol=1e-8)
    assert intercept == pytest.approx(scaler.min_ * (1 - slopes.sum()), abs=1e-8)  # no intercept before scaling
    forecasts = baselines.walk_forward(raw, 12, baselines.linear_lags(40, 1, refit=False, lag=3))
    np.testing.assert_allclose(forecasts, raw[-12:], rtol=1e-9)


def test_the_lag1_regression_forecasts_as_before_bit_for_bit():
    scaler, intercept, slopes = baselines.fit_linear_lags(SHAMPOO[:24], train_obs=24, interval=1, lag=1)
    forecast = baselines.linear_lags(24, 1, refit=False, lag=1)
    for t in range(24, 36):  # the lag-1 formula as it was written before model.lag: one slope times one input
        last = data.scale(scaler, data.difference(SHAMPOO[:t], 1)[-1:])[0]
        step = data.invert_scale(scaler, np.array([intercept + float(slopes[0]) * last]))[0]
        assert forecast(SHAMPOO[:t]) == float(SHAMPOO[t - 1] + step)


def test_fitted_once_uses_only_the_training_months():
    raw = ar1_walk(0.3, 60, seed=2)
    changed = raw.copy()
    changed[50:] += np.linspace(0, 30, 10)  # the test months differ; a model fitted once must not notice
    for make in (lambda: baselines.arima((1, 1, 0), 48), lambda: baselines.exponential_smoothing("add", 48),
                 lambda: baselines.linear_lags(48, 1, refit=False, lag=1)):
        once, other = make(), make()
        assert once(raw[:48]) == pytest.approx(other(changed[:48]))  # the same fit on the same 48 months
        assert once(raw[:52]) != pytest.approx(other(changed[:52]))  # then fed different actual months
    refit = baselines.linear_lags(48, 1, refit=True, lag=1)
    assert refit(raw[:55]) != pytest.approx(baselines.linear_lags(48, 1, refit=False, lag=1)(raw[:55]))


def test_score_on_the_shampoo_series():
    table = baselines.score(SHAMPOO, 12, CFG)
    assert list(table.model) == [
        "persistence", "seasonal_naive_12", "exp_smoothing", "exp_smoothing_once", "arima_1_1_0",
        "arima_1_1_0_once", "linear_lag1", "linear_lag1_once",
    ]
    assert set(table.fit) == {"no parameters", baselines.REFIT, baselines.ONCE}
    rmse = dict(zip(table.model, table.rmse, strict=True))
    assert rmse["linear_lag1_once"] < 90  # the LSTMs' own inputs, fitted on their 22 training pairs
    assert rmse["persistence"] == pytest.approx(136.761, abs=5e-4)  # the write-up's figure
    actual = data.test_targets(SHAMPOO, 12)
    assert rmse["seasonal_naive_12"] == pytest.approx(float(data.rmse(SHAMPOO[12:24], actual)))
    assert np.isfinite(table.rmse).all() and table.description.str.len().gt(0).all()


def test_the_walks_forward_spread_over_forked_workers_give_the_same_table():
    pd.testing.assert_frame_equal(baselines.score(SHAMPOO, 12, CFG, workers=2), baselines.score(SHAMPOO, 12, CFG),
                                  check_exact=True)


def test_scored_at_lag_3_under_the_same_names_on_the_same_months():
    lag1, lag3 = (baselines.score(SHAMPOO, 12, CFG, refits=False, lag=lag).set_index("model") for lag in (1, 3))
    assert list(lag3.index) == list(lag1.index)  # results tables line up across lags
    assert lag3.loc["persistence", "rmse"] == lag1.loc["persistence", "rmse"]
    assert lag3.loc["linear_lag1_once", "rmse"] != lag1.loc["linear_lag1_once", "rmse"]
    assert "the 3 previous months' scaled differences" in lag3.loc["linear_lag1_once", "description"]


def test_every_blas_runs_one_thread_while_the_models_fit():
    # A fresh process, where statsmodels is not imported yet: importing it loads scipy's own BLAS, which the
    # limit must hold too, or its threads spin through every filter step (five times the stage's CPU time).
    code = dedent(f"""
        import json, numpy as np, threadpoolctl
        from omegaconf import OmegaConf
        from pipeline.analysis import baselines
        seen = {{}}
        def walk_forward(raw, n, forecaster):
            blas = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
            seen.update((i["filepath"], i["num_threads"]) for i in blas)
            return np.ones(n)
        baselines.walk_forward = walk_forward
        baselines.score(np.arange(1.0, 37.0), 12, OmegaConf.create({dict(CFG)!r}))
        print(json.dumps(seen))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    threads = json.loads(done.stdout)
    assert any("scipy.libs" in path for path in threads), threads  # scipy's own, loaded by importing statsmodels
    assert set(threads.values()) == {1}, threads
