import numpy as np
import pandas as pd
import pytest

from pipeline.analysis import stats
from pipeline.tools import drift

BOOT = stats.Bootstrap(resamples=200, seed=0)
ALPHA = 0.05


def results(repeats: int = 30, shift: float = 0.0, seed_offset: int = 0) -> pd.DataFrame:
    """A per-repeat table like the evaluate stage's: two regimes, paired by seed, fixed made-up RMSEs."""
    rng = np.random.default_rng(3)
    rows = []
    for regime, centre in (("stateful", 100.0), ("stateless", 110.0)):
        values = centre + rng.normal(0.0, 5.0, repeats)
        rows.append(
            pd.DataFrame(
                {
                    "regime": regime,
                    "repeat": range(repeats),
                    "seed": np.arange(repeats) + 1000 + seed_offset,
                    "rmse": values,
                }
            )
        )
    table = pd.concat(rows, ignore_index=True)
    table.loc[table.regime == "stateful", "rmse"] += shift
    return table


def judged(mode: drift.Mode, reference: pd.DataFrame, current: pd.DataFrame) -> drift.Verdict:
    rows = drift.table_rows("reports/results.csv", reference, current, BOOT)
    return drift.judge(mode, [], [], drift.tests(rows, ALPHA))


def test_layout_groups_are_the_columns_before_repeat_and_outcomes_the_numbers_after_seed():
    table = pd.DataFrame(
        {
            "framing": ["a"],
            "repeat": [0],
            "seed": [7],
            "accuracy": [0.5],
            "solved": [True],
            "generated": ["ABC"],
            "final_loss": [0.1],
        }
    )
    assert drift.layout(table) == (["framing"], ["accuracy", "solved", "final_loss"])
    assert drift.layout(table.drop(columns="framing")) == ([], ["accuracy", "solved", "final_loss"])
    assert drift.is_per_repeat(table.columns) and not drift.is_per_repeat(["regime", "repeat", "step", "forecast"])


@pytest.mark.parametrize("mode", ["exact", "distribution"])
def test_an_identical_reproduction_has_no_drift_and_nothing_moved(mode):
    verdict = judged(mode, results(), results())
    assert verdict.drift == () and verdict.within == ()


def test_one_changed_bit_is_drift_when_exact_and_within_tolerance_for_distribution_tests():
    changed = results()
    changed.loc[3, "rmse"] = np.nextafter(changed.loc[3, "rmse"], np.inf)

    exact = judged("exact", results(), changed)
    (change,) = exact.drift
    assert change.name == "mean reports/results.csv[regime=stateful].rmse"
    assert "1/30 repeats differ, by up to 1.42e-14" in change.detail

    distribution = judged("distribution", results(), changed)
    assert distribution.drift == () and [c.name for c in distribution.within] == [change.name]


def test_a_shift_of_one_regime_is_drift_under_distribution_tests_and_names_regime_metric_and_size():
    verdict = judged("distribution", results(), results(shift=3.0))
    (change,) = verdict.drift
    assert change.name == "mean reports/results.csv[regime=stateful].rmse"
    assert change.new - change.old == pytest.approx(3.0)
    assert "paired: Wilcoxon signed-rank p=" in change.detail and change.detail.endswith("reference lower")
    assert "(+3, +" in change.describe()  # the amount, absolute and relative
    assert verdict.within == ()  # stateless did not move at all


def test_noise_of_the_size_round_off_causes_is_within_tolerance():
    rng = np.random.default_rng(11)
    jittered = results()
    jittered["rmse"] += rng.normal(0.0, 1e-6, len(jittered))
    verdict = judged("distribution", results(), jittered)
    assert verdict.drift == () and len(verdict.within) == 2


def test_other_seeds_are_compared_unpaired():
    rows = drift.table_rows("t.csv", results(), results(seed_offset=500, shift=4.0), BOOT)
    table = drift.tests(rows, ALPHA)
    assert set(table.design) == {stats.UNPAIRED} and set(table.rank_test) == {"Mann-Whitney U"}


@pytest.mark.parametrize("mode", ["exact", "distribution"])
@pytest.mark.parametrize(
    ("current", "says"),
    [
        (results(repeats=20), "30 repeats -> 20"),
        (results().query("regime == 'stateful'"), "only in the reference"),
        (results().rename(columns={"rmse": "mae"}), "columns"),
    ],
)
def test_a_different_shape_is_always_drift(mode, current, says):
    verdict = judged(mode, results(), current)
    assert any(says in c.describe() for c in verdict.drift), [c.describe() for c in verdict.drift]


def test_a_changed_outcome_with_too_few_values_to_test_is_drift_even_for_distribution_tests():
    one = results(repeats=1)
    changed = one.assign(rmse=one.rmse + 1.0)
    verdict = judged("distribution", one, changed)
    assert len(verdict.drift) == 2 and all("1/1 repeats differ" in c.detail for c in verdict.drift)


def test_missing_values_in_the_same_places_are_identical_and_booleans_are_outcomes():
    table = pd.DataFrame(
        {"repeat": range(4), "seed": range(4), "loss": [0.1, np.nan, 0.3, 0.4], "solved": [True, False, True, True]}
    )
    assert judged("exact", table, table.copy()).drift == ()
    flipped = table.assign(solved=~table.solved)
    (change,) = judged("exact", table, flipped).drift
    assert change.name == "mean reports/results.csv.solved" and (change.old, change.new) == (0.75, 0.25)


def test_parameter_changes_are_named_by_dotted_key_and_always_drift():
    old = {"model": {"epochs": 1000, "units": 1}, "regime": {"stateful": {"batch_size": 1}}}
    new = {"model": {"epochs": 999, "units": 1}, "regime": {"stateful": {"batch_size": 1}}, "extra": True}
    changes = drift.param_changes(old, new)
    assert [(c.name, c.old, c.new) for c in changes] == [("extra", "<absent>", True), ("model.epochs", 1000, 999)]
    assert drift.judge("distribution", changes, [], drift.tests([], ALPHA)).drift == tuple(changes)
    assert changes[1].describe() == "parameter model.epochs: 1000 -> 999 (-1, -0.10%)"


def test_dvc_metrics_diff_output_becomes_named_changes():
    diff = {
        "reports/metrics.json": {
            "stateful.mean": {"old": 103.5, "new": 104.0, "diff": 0.5},
            "stateful.count": {"old": 100.0, "new": 100.0, "diff": 0.0},
        },
        "reports/studies/echo_metrics.json": {"lstm.solved": {"old": None, "new": 3}},
    }
    changes = drift.metric_changes(diff)
    assert [c.name for c in changes] == [
        "reports/metrics.json:stateful.mean",
        "reports/studies/echo_metrics.json:lstm.solved",
    ]
    assert changes[0].describe() == "metric reports/metrics.json:stateful.mean: 103.5 -> 104 (+0.5, +0.48%)"
    assert changes[1].describe() == "metric reports/studies/echo_metrics.json:lstm.solved: None -> 3"
    exact = drift.judge("exact", [], changes, drift.tests([], ALPHA))
    distribution = drift.judge("distribution", [], changes, drift.tests([], ALPHA))
    assert exact.drift == tuple(changes) and distribution.drift == () and distribution.within == tuple(changes)
