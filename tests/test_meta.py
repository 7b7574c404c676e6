"""The panel's answers: the interval-vs-margin rule, paired effects, and the meta-analysis on known values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from pipeline.analysis import decision, meta
from pipeline.analysis.claims import EXPECTATIONS
from pipeline.params import compose_config, regimes

RECORDS = {r.name: r for r in regimes(compose_config())}
TRAIN_PAIRS = 22  # the shampoo study's full window


@pytest.mark.parametrize(
    ("low", "high", "relation", "expected"),
    [
        (-0.05, -0.02, "lower", "supported"),  # wholly beyond -margin
        (0.02, 0.05, "lower", "contradicted"),  # wholly beyond +margin
        (-0.005, 0.008, "lower", "equivalent"),  # wholly inside
        (-0.02, 0.0, "lower", "inconclusive"),  # straddles -margin
        (-0.005, 0.008, "equal", "supported"),
        (0.02, 0.05, "equal", "contradicted"),
        (-0.02, 0.0, "equal", "inconclusive"),
    ],
)
def test_the_interval_against_the_margin_decides(low, high, relation, expected):
    assert decision.verdict(relation, decision.locate(low, high, 0.01)) == expected


def test_equal_effects_pool_to_their_value_with_no_heterogeneity():
    pooled = meta.meta_analysis(np.full(5, 0.05), np.array([0.01, 0.02, 0.005, 0.03, 0.01]), 0.05)
    assert pooled["pooled"] == pytest.approx(0.05) and pooled["tau2"] == pytest.approx(0.0, abs=1e-12)
    assert pooled["i2"] == pytest.approx(0.0, abs=1e-12)


def test_the_random_effects_pool_matches_its_closed_form():
    # Equal within-series variances v: the pooled effect is the plain mean, and Paule-Mandel's tau^2 solves
    # sum (y - mean)^2 / (v + tau^2) = k - 1, i.e. tau^2 = var(y) - v.
    y, v = np.array([0.1, 0.2, 0.35, 0.0]), 0.01
    pooled = meta.meta_analysis(y, np.full(4, v), 0.05)
    tau2 = np.var(y, ddof=1) - v
    se = np.sqrt((v + tau2) / 4)
    assert pooled["pooled"] == pytest.approx(0.1625)
    assert pooled["tau2"] == pytest.approx(tau2, rel=1e-6)
    assert pooled["ci_high"] - pooled["pooled"] == pytest.approx(1.959964 * se, rel=1e-5)
    assert pooled["pi_high"] - pooled["pooled"] == pytest.approx(scipy_stats.t.ppf(0.975, 2) * np.sqrt(tau2 + se**2),
                                                                 rel=1e-5)


def made_up_results(shift: float) -> pd.DataFrame:
    """Two series x 2 origins x 50 seeds: stateful's relative RMSE is stateless's plus ``shift`` plus noise."""
    rng = np.random.default_rng(1)
    rows = []
    for name in ("s1", "s2", "s3"):
        for origin in (0, 1):
            base = 1 + rng.normal(0, 0.05, 50)
            for regime, values in (("stateless", base), ("stateful", base + shift + rng.normal(0, 0.002, 50))):
                rows.append(pd.DataFrame({"series": name, "origin": origin, "regime": regime, "seed": np.arange(50),
                                          "relative_rmse": values}))
    return pd.concat(rows, ignore_index=True)


def test_a_known_paired_shift_is_recovered_and_decided_on_every_series():
    contrast = [c for c in meta.contrasts(EXPECTATIONS, RECORDS, TRAIN_PAIRS) if c.label == "1"]
    effects = meta.effects(made_up_results(-0.03), contrast, margin=0.01, alpha=0.05)
    per_series = effects[effects.origin == "all"]
    assert per_series.effect.to_numpy() == pytest.approx(-0.03, abs=0.002)
    assert set(per_series.verdict) == {"supported"}
    pooled = meta.pooled(effects, contrast, 0.01, 0.05).iloc[0]
    assert pooled["pooled"] == pytest.approx(-0.03, abs=0.002) and pooled["verdict"] == "supported"
    assert meta.tally(pooled) == "supported on 3 of 3 series, contradicted on 0, equivalent on 0"


def test_identical_regimes_are_equivalent_everywhere():
    contrast = [c for c in meta.contrasts(EXPECTATIONS, RECORDS, TRAIN_PAIRS) if c.label == "1"]
    results = made_up_results(0.0)
    results.loc[results.regime == "stateful", "relative_rmse"] = results.loc[
        results.regime == "stateless", "relative_rmse"].to_numpy()
    effects = meta.effects(results, contrast, 0.01, 0.05)
    assert effects.identical.all() and set(effects.verdict) == {"equivalent"}
    assert meta.pooled(effects, contrast, 0.01, 0.05).iloc[0]["note"] == "identical on every series and repeat"


def test_only_the_pairs_that_may_decide_an_expectation_are_contrasts():
    labels = [c.label for c in meta.contrasts(EXPECTATIONS, RECORDS, TRAIN_PAIRS)]
    assert labels == ["1", "2", "3", "4b", "5a", "6a"]  # 4a and 6b are compound, 5b null by construction


def test_one_series_is_reported_unpooled_and_inconclusive():
    contrast = [c for c in meta.contrasts(EXPECTATIONS, RECORDS, TRAIN_PAIRS) if c.label == "1"]
    results = made_up_results(-0.03)
    effects = meta.effects(results[results.series == "s1"], contrast, 0.01, 0.05)
    pooled = meta.pooled(effects, contrast, 0.01, 0.05).iloc[0]
    assert np.isnan(pooled["pooled"]) and np.isnan(pooled["ci_low"]) and pooled["verdict"] == "inconclusive"
    assert pooled["note"] == "too few series with a spread to pool"
    assert meta.tally(pooled) == "supported on 1 of 1 series, contradicted on 0, equivalent on 0"
