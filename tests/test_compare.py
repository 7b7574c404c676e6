"""The compare stage on a made-up study with known effects (conftest.EFFECTS): no training, no TensorFlow."""

import time

import numpy as np
import pandas as pd
import pytest

from pipeline import io
from pipeline.analysis import stats
from pipeline.artifacts import paths
from pipeline.params import ConfigError
from pipeline.stages import compare


def overall(verdicts: pd.DataFrame) -> dict[int, str]:
    return verdicts.groupby("expectation").overall.first().to_dict()


def test_verdicts_follow_the_known_effects(evaluated):
    cfg, root = evaluated(16)
    verdicts = compare.run(cfg, root).tables.verdicts
    assert overall(verdicts) == {
        1: stats.CONTRADICTED,  # stateless (0.8) beats stateful (1.0)
        2: stats.SUPPORTED,  # stateless (0.8) beats stateless_shuffle (0.9)
        3: stats.SUPPORTED,  # the batch-12 pair shares its forecasts
        4: stats.SUPPORTED,  # stateful < noreset and seed_train < seed_train_no_resets
        5: stats.SUPPORTED,  # seed_train_no_resets < noreset decides; seed_train = stateful in law
        6: stats.INCONCLUSIVE,  # reset_test and seed_train_resets have stateful's effect
    }
    e3 = verdicts[verdicts.expectation == 3].iloc[0]
    assert e3.design == stats.IDENTICAL and e3.outcome == stats.EQUIVALENT
    e5 = verdicts[verdicts.expectation == 5].set_index("a")
    assert list(e5.verdict) == [stats.INCONCLUSIVE, stats.SUPPORTED]
    assert e5.at["seed_train_no_resets", "mean_diff"] < 0


def test_verdict_rows_read_each_pair_in_the_expectations_direction(evaluated):
    cfg, root = evaluated(16)
    tables = compare.run(cfg, root).tables
    tests = tables.tests.set_index(["a", "b"])
    row = tables.verdicts.set_index(["a", "b"]).loc[("seed_train", "stateful")]
    stored = tests.loc[("stateful", "seed_train")]  # config order puts stateful first
    assert row.mean_diff == pytest.approx(-stored.mean_diff)
    assert (row.ci_low, row.ci_high) == pytest.approx((-stored.ci_high, -stored.ci_low))
    assert row.d_z == pytest.approx(-stored.d_z) and row.rank_p_holm == stored.rank_p_holm


def test_outputs_are_written_in_their_layouts(evaluated):
    cfg, root = evaluated(8)
    comparison = compare.run(cfg, root)
    p = paths(cfg, root)
    summary = pd.read_csv(p.summary)
    assert list(summary.statistic) == ["count", "mean", "std", "min", "25%", "50%", "75%", "max"]
    assert list(summary.columns[1:]) == list(cfg.regime)
    tests = pd.read_csv(p.tests)
    assert len(tests) == 45 and (tests.outcome == stats.EQUIVALENT).sum() == 2
    assert set(pd.read_csv(p.verdicts).expectation) == {1, 2, 3, 4, 5, 6}
    assert set(io.read_json(p.metrics)["baselines"]) == {"persistence", "far_off"}
    assert sorted(f.stem for f in p.se_data.glob("*.csv")) == sorted(cfg.regime)
    forecast = pd.read_csv(p.forecast_data / "stateful.csv")
    assert list(forecast.columns) == ["step", "period", "actual", "forecast"] and len(forecast) == 12
    assert all(path.is_file() for path in comparison.files)
    assert {comparison.report, comparison.html, *comparison.plots} <= set(comparison.files)


def test_same_inputs_give_the_same_bytes(evaluated):
    cfg, root = evaluated(6)
    first = compare.run(cfg, root)
    before = {path: path.read_bytes() for path in first.files}
    compare.run(cfg, root)
    assert {path: path.read_bytes() for path in first.files} == before


def test_regimes_with_other_seeds_are_compared_unpaired(evaluated):
    cfg, root = evaluated(10)
    p = paths(cfg, root)
    results = pd.read_csv(p.results)
    results.loc[results.regime == "noreset", "seed"] += 1  # as if run from another base seed
    io.write_csv(p.results, results)
    tests = compare.run(cfg, root).tables.tests
    involved = (tests.a == "noreset") | (tests.b == "noreset")
    assert (tests[involved].design == stats.UNPAIRED).all() and (tests[~involved].design != stats.UNPAIRED).all()
    assert set(tests[involved].rank_test) == {"Mann-Whitney U"}


def test_expectations_on_regimes_not_in_the_study_are_inconclusive(evaluated):
    cfg, root = evaluated(16)
    p = paths(cfg, root)
    results = pd.read_csv(p.results)
    io.write_csv(p.results, results[results.regime != "noreset"])
    verdicts = compare.run(cfg, root).tables.verdicts
    e4 = verdicts[verdicts.expectation == 4].set_index("b")
    assert e4.at["noreset", "missing"] == "noreset" and e4.at["noreset", "verdict"] == stats.INCONCLUSIVE
    assert e4.at["seed_train_no_resets", "verdict"] == stats.SUPPORTED and e4.overall.iloc[0] == stats.SUPPORTED


def test_stale_plot_data_of_dropped_regimes_is_removed(evaluated):
    cfg, root = evaluated(6)
    p = paths(cfg, root)
    compare.run(cfg, root)
    results = pd.read_csv(p.results)
    io.write_csv(p.results, results[results.regime != "stateless_shuffle"])
    compare.run(cfg, root)
    assert not (p.se_data / "stateless_shuffle.csv").exists()
    assert not (p.forecast_data / "stateless_shuffle.csv").exists()


def test_median_repeat_is_the_lower_middle_one():
    results = pd.DataFrame({"regime": "r", "repeat": [0, 1, 2, 3], "seed": [0, 1, 2, 3], "rmse": [9.0, 1.0, 5.0, 3.0]})
    forecasts = pd.DataFrame(
        {"regime": "r", "repeat": [0, 1, 2, 3], "step": 0, "period": "p", "actual": 1.0, "forecast": [9.0, 1, 5, 3]}
    )
    chosen = compare.median_forecasts(results, forecasts, ["r"])
    assert chosen["repeat"].tolist() == [3] and chosen.rmse.tolist() == [3.0]  # sorted 1, 3, 5, 9


def test_missing_inputs_and_bad_settings_say_what_to_do(evaluated):
    with pytest.raises(ConfigError, match=r"stats\.alpha"):  # refused as the config is composed
        evaluated(4, "stats.alpha=1.5")
    cfg, root = evaluated(4)
    paths(cfg, root).forecasts.unlink()
    with pytest.raises(FileNotFoundError, match="evaluate"):
        compare.run(cfg, root)


@pytest.mark.slow
def test_ten_regimes_of_a_thousand_repeats_compare_well_under_a_minute(evaluated):
    cfg, root = evaluated(1000, "stats.bootstrap_resamples=2000", "stats.se_draws=2000")
    start = time.perf_counter()
    comparison = compare.run(cfg, root)
    elapsed = time.perf_counter() - start
    assert elapsed < 60, f"compare took {elapsed:.1f} s"
    assert comparison.tables.summary.loc["count"].eq(1000).all()
    assert np.isfinite(comparison.tables.intervals[["mean_low", "mean_high"]].to_numpy()).all()
