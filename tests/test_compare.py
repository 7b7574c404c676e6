"""The compare stage on a made-up study with known effects (conftest.EFFECTS): no training, no TensorFlow."""

import time

import numpy as np
import pandas as pd
import pytest

from pipeline import io, processes
from pipeline.analysis import decision, stats
from pipeline.artifacts import paths
from pipeline.params import ConfigError
from pipeline.stages import compare


def verdict_of(verdicts: pd.DataFrame) -> dict[str, str]:
    return dict(zip(verdicts.key, verdicts.verdict, strict=True))


def test_verdicts_follow_the_known_effects(evaluated):
    cfg, root = evaluated(16)
    tables = compare.run(cfg, root).tables
    verdicts = verdict_of(tables.verdicts)
    assert {k: v for k, v in verdicts.items() if k.startswith("E")} == {
        "E1": decision.CONTRADICTED,  # stateless (0.8) beats stateful (1.0) by ~10 RMSE, far beyond the margin
        "E2": decision.SUPPORTED,  # stateless (0.8) beats stateless_shuffle (0.9)
        "E3": decision.SUPPORTED,  # the batch-12 pair shares its forecasts: equal by construction
        "E4": decision.SUPPORTED,  # decided on seed_train < seed_train_no_resets; stateful vs noreset is compound
        "E5": decision.INCONCLUSIVE,  # seed_train = stateful in law: an interval across -1 at 16 repeats
        "E6": decision.INCONCLUSIVE,  # reset_test has stateful's effect
    }
    assert verdicts["F7"] == decision.CONTRADICTED  # seed_train_no_resets (1.2) is far from the best
    assert verdicts["S1"] == decision.SUPPORTED  # stateless's spread is 0.8 of stateful's
    e4 = tables.evidence[tables.evidence.key == "E4"].set_index("b")
    assert e4.at["noreset", "kind"] == "compound" and not e4.at["noreset", "usable"]
    assert e4.at["noreset", "factors"] == "resets in training, test starts from"
    assert e4.at["seed_train_no_resets", "verdict"] == decision.SUPPORTED
    # Holm runs over the confirmatory family only: the distinct pairs that decide a claim
    e = tables.evidence
    family = e[e.endpoint.eq("mean") & e.usable.astype(bool)]
    distinct = {frozenset(pair) for pair in zip(family.a, family.b, strict=True)}
    in_family = e[e.in_family.fillna(False).astype(bool)]
    assert {frozenset(pair) for pair in zip(in_family.a, in_family.b, strict=True)} == distinct
    assert len(distinct) == len(tables.decisive())
    compound = e[(e.kind == "compound") & ~e.usable.astype(bool) & e.endpoint.eq("mean")].iloc[0]
    pool = compare.samples(tables.results, tables.order)
    raw = decision.margin_tests(pool[compound.a].values - pool[compound.b].values, cfg.stats.margin, 0.05)
    assert compound.p_below == pytest.approx(raw.p_below)  # not in the family: unadjusted


def test_verdict_rows_read_each_pair_in_the_claims_direction(evaluated):
    cfg, root = evaluated(16)
    evidence = compare.run(cfg, root).tables.evidence.set_index(["key", "a", "b"])
    e1, f2 = evidence.loc[("E1", "stateful", "stateless")], evidence.loc[("F2", "stateless", "stateful")]
    assert e1.estimate == pytest.approx(-f2.estimate) and (e1.low, e1.high) == pytest.approx((-f2.high, -f2.low))
    assert (e1.hl, e1.hl_low) == pytest.approx((-f2.hl, -f2.hl_high))
    assert e1.p_lower == pytest.approx(1 - f2.p_lower)
    assert e1.p_below == pytest.approx(f2.p_above) and e1.verdict == decision.CONTRADICTED
    assert f2.verdict == decision.SUPPORTED


def test_the_margin_decides_and_its_sensitivity_is_reported(evaluated):
    cfg, root = evaluated(16, "stats.margin=20")
    tables = compare.run(cfg, root).tables
    verdicts = verdict_of(tables.verdicts)
    assert verdicts["E1"] == decision.EQUIVALENT and verdicts["E2"] == decision.EQUIVALENT  # 10 and 5 < 20
    assert list(tables.sensitivity.columns) == [10.0, 20.0, 40.0]
    assert tables.sensitivity.at["E1", 10.0] == decision.INCONCLUSIVE  # an interval of about [9, 12] crosses 10


def test_outputs_are_written_in_their_layouts(evaluated):
    cfg, root = evaluated(8)
    comparison = compare.run(cfg, root)
    p = paths(cfg, root)
    summary = pd.read_csv(p.summary)
    assert list(summary.statistic) == ["count", "mean", "std", "min", "25%", "50%", "75%", "max"]
    assert list(summary.columns[1:]) == list(cfg.regime)
    tests = pd.read_csv(p.tests)
    assert len(tests) == 28 and (tests.outcome == stats.EQUIVALENT).sum() == 0  # twins merged: 8 distinct regimes
    assert {"E1", "E6", "F2", "F7", "S1", "S3"} <= set(pd.read_csv(p.verdicts).key)
    written = io.read_json(p.metrics)
    assert set(written["baselines"]) == {"persistence", "far_off"} and written["verdicts"]["E3"] == decision.SUPPORTED
    assert sorted(f.stem for f in p.se_data.glob("*.csv")) == sorted(cfg.regime)
    forecast = pd.read_csv(p.forecast_data / "stateful.csv")
    assert list(forecast.columns) == ["step", "period", "actual", "forecast"] and len(forecast) == 12
    assert all(path.is_file() for path in comparison.files)
    assert {comparison.section, *comparison.plots} <= set(comparison.files)


def test_same_inputs_give_the_same_bytes_whoever_draws_the_plots(evaluated):
    cfg, root = evaluated(6)
    first = compare.run(cfg, root)
    before = {path: path.read_bytes() for path in first.files}
    for path in first.plots:
        path.unlink()
    with processes.forked_pool(1) as painter:  # as the stage's main() runs it
        compare.run(cfg, root, painter)
    assert {path: path.read_bytes() for path in first.files} == before


def test_a_plot_that_fails_in_the_painter_fails_the_stage(evaluated):
    cfg, root = evaluated(4)
    (paths(cfg, root).forecast_plot / "in-the-way").mkdir(parents=True)  # no file can be written there
    with processes.forked_pool(1) as painter, pytest.raises(OSError):
        compare.run(cfg, root, painter)


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


def test_regimes_not_run_show_as_not_run(evaluated):
    cfg, root = evaluated(16)
    p = paths(cfg, root)
    results = pd.read_csv(p.results)
    io.write_csv(p.results, results[~results.regime.isin(["noreset", "stateful_batch12", "stateless_batch12"])])
    tables = compare.run(cfg, root).tables
    e4 = tables.evidence[tables.evidence.key == "E4"].set_index("b")
    assert e4.at["noreset", "missing"] == "noreset" and e4.at["noreset", "verdict"] == decision.NOT_RUN
    verdicts = verdict_of(tables.verdicts)
    assert verdicts["E4"] == decision.SUPPORTED  # its clean pair ran
    assert verdicts["E3"] == decision.NOT_RUN and verdicts["F4"] == decision.NOT_RUN
    text = compare.run(cfg, root).section.read_text()
    assert "3. Stateful and stateless LSTMs give alike results at the same batch size (12): not run." in text


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
    paths(cfg, root).baselines.unlink()
    with pytest.raises(FileNotFoundError, match=r"dvc repro baselines\)"):
        compare.run(cfg, root)
    paths(cfg, root).forecasts.unlink()
    with pytest.raises(FileNotFoundError, match=r"dvc repro evaluate\)"):
        compare.run(cfg, root)


@pytest.mark.slow
def test_ten_regimes_of_a_thousand_repeats_compare_well_under_a_minute(evaluated):  # the bench times it properly
    cfg, root = evaluated(1000, "stats.bootstrap_resamples=2000", "stats.se_draws=2000")
    start = time.perf_counter()
    comparison = compare.run(cfg, root)
    elapsed = time.perf_counter() - start
    assert elapsed < 60, f"compare took {elapsed:.1f} s"
    assert comparison.tables.summary.loc["count"].eq(1000).all()
    assert np.isfinite(comparison.tables.intervals[["mean_low", "mean_high"]].to_numpy()).all()
