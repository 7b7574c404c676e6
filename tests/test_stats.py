"""The statistics on data with known answers."""

import math

import numpy as np
import pytest

from pipeline.analysis import stats

BOOT = stats.Bootstrap(resamples=500, seed=3)
SEEDS = np.arange(40)


def sample(values, seeds=SEEDS) -> stats.Sample:
    return stats.Sample(np.asarray(values, dtype=np.float64), np.asarray(seeds)[: len(values)])


def noise(seed: int, n: int = 40, sd: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, sd, n)


def one_pair(a: stats.Sample, b: stats.Sample, alpha: float = 0.05) -> dict:
    return stats.pairwise({"a": a, "b": b}, BOOT, alpha).iloc[0].to_dict()


def test_identical_values_with_different_seeds_are_tested_unpaired_and_not_significant():
    values = 100 + noise(1)
    row = one_pair(sample(values), sample(values, SEEDS + 1000))
    assert row["design"] == stats.UNPAIRED
    assert (row["rank_test"], row["mean_test"]) == ("Mann-Whitney U", "Welch t")
    assert row["rank_p"] == pytest.approx(1.0) and row["mean_p"] == pytest.approx(1.0)
    assert row["mean_diff"] == 0 and row["d"] == 0
    assert row["ci_low"] < 0 < row["ci_high"]
    assert row["outcome"] == stats.NO_DIFFERENCE


def test_identical_paired_regimes_are_equivalent_by_construction_not_tested():
    values = 100 + noise(2)
    row = one_pair(sample(values), sample(values.copy()))
    assert row["design"] == stats.IDENTICAL and row["outcome"] == stats.EQUIVALENT
    assert math.isnan(row["rank_p"]) and math.isnan(row["mean_p"]) and math.isnan(row["rank_p_holm"])
    assert (row["ci_low"], row["ci_high"]) == (0.0, 0.0)


def test_identical_pairs_do_not_count_in_the_holm_family():
    base = 100 + noise(3)
    table = stats.pairwise(
        {"a": sample(base), "b": sample(base.copy()), "c": sample(base + 5 + noise(4))}, BOOT, 0.05
    )
    tested = table[table.design == stats.PAIRED]
    assert len(tested) == 2
    np.testing.assert_allclose(tested.rank_p_holm, np.minimum(1, 2 * tested.rank_p))  # m = 2, not 3


def test_paired_shift_is_significant_in_the_right_direction_with_an_interval_around_it():
    a = 100 + noise(5, sd=8)  # a large spread shared by both regimes, as a shared initialisation gives
    b = a + 2.0 + noise(6, sd=0.5)
    row = one_pair(sample(a), sample(b))
    assert row["design"] == stats.PAIRED
    assert (row["rank_test"], row["mean_test"]) == ("Wilcoxon signed-rank", "paired t")
    assert row["rank_p_holm"] < 1e-6 and row["mean_p_holm"] < 1e-6
    assert row["outcome"] == "a lower"
    assert row["ci_low"] < -2.0 + 0.3 and row["ci_high"] > -2.0 - 0.3 and row["ci_high"] < 0
    assert row["d_z"] < -3  # a mean difference of 2 against differences spread by 0.5


def test_unpaired_shift_is_significant_with_known_effect_sizes():
    a, b = 100 + noise(7, 60, 2.0), 110 + noise(8, 60, 2.0)
    row = one_pair(sample(a, np.arange(60)), sample(b, np.arange(60) + 100))
    assert row["design"] == stats.UNPAIRED and row["outcome"] == "a lower"
    assert row["rank_p_holm"] < 1e-10 and row["mean_p_holm"] < 1e-10
    assert row["d"] == pytest.approx(-5.0, abs=1.0)
    assert math.isnan(row["d_z"])


def test_effect_sizes_on_hand_computed_cases():
    assert stats.cohens_dz([1.0, 2, 3, 4], [0.0, 0, 0, 0]) == pytest.approx(2.5 / np.std([1, 2, 3, 4], ddof=1))
    assert stats.cohens_d(np.array([1.0, 2, 3]), np.array([3.0, 4, 5])) == pytest.approx(-2.0)
    assert list(stats.lower_share(np.array([1.0, 2, 3]), np.array([2.0, 2, 1]))) == [1.0, 0.5, 0.0]


def test_holm_against_a_hand_checked_case():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> raised to 0.06 (monotone).
    adjusted = stats.holm([0.01, 0.04, 0.03, 0.005, float("nan")])
    np.testing.assert_allclose(adjusted[:4], [0.03, 0.06, 0.06, 0.02])
    assert math.isnan(adjusted[4])
    assert list(adjusted[:4] < 0.05) == [True, False, False, True]


def test_holm_keeps_the_order_of_raw_p_values_in_a_pairwise_table():
    base = 100 + noise(9, sd=5)
    pool = {f"r{k}": sample(base + 0.15 * k + noise(10 + k, sd=0.6)) for k in range(5)}
    table = stats.pairwise(pool, BOOT, 0.05)
    by_raw = table.sort_values("mean_p")
    assert by_raw.mean_p_holm.is_monotonic_increasing
    assert (table.mean_p_holm >= table.mean_p).all() and (table.mean_p_holm <= 1).all()


def test_an_outcome_needs_both_tests_and_agreeing_signs():
    row = {"design": stats.PAIRED, "a": "x", "b": "y", "mean_diff": -1.0, "median_diff": -0.5}
    assert stats.outcome({**row, "rank_p_holm": 0.001, "mean_p_holm": 0.001}, 0.05) == "x lower"
    assert stats.outcome({**row, "rank_p_holm": 0.2, "mean_p_holm": 0.001}, 0.05) == stats.DISAGREE
    assert stats.outcome({**row, "rank_p_holm": 0.2, "mean_p_holm": 0.3}, 0.05) == stats.NO_DIFFERENCE
    skewed = {**row, "median_diff": 0.5, "rank_p_holm": 0.001, "mean_p_holm": 0.001}
    assert stats.outcome(skewed, 0.05) == stats.DISAGREE


def test_paired_interval_is_narrower_only_when_repeats_are_correlated():
    shared = noise(11, sd=10)  # the luck of an initialisation, common to both regimes
    correlated = one_pair(sample(100 + shared), sample(101 + shared + noise(12)))
    assert correlated["width_ratio"] < 0.25
    independent = one_pair(sample(100 + noise(13, sd=10)), sample(101 + noise(14, sd=10)))
    assert 0.6 < independent["width_ratio"] < 1.5


def test_bootstrap_is_seeded_and_covers_the_mean():
    x = 100 + noise(18, sd=4)
    first = stats.bootstrap_ci([x], np.mean, BOOT, "mean")
    assert first == stats.bootstrap_ci([x], np.mean, BOOT, "mean")
    assert first != stats.bootstrap_ci([x], np.mean, stats.Bootstrap(500, seed=4), "mean")
    assert first[0] < x.mean() < first[1]
    assert stats.bootstrap_ci([np.full(5, 7.0)], np.mean, BOOT, "mean") == (7.0, 7.0)


def test_bootstrap_falls_back_to_percentile_where_bca_is_undefined():
    low, high = stats.bootstrap_ci([np.array([1.0, 1.0, 1.0, 1.0, 2.0])], np.median, BOOT, "median")
    assert 1.0 <= low <= high <= 2.0


def test_batched_intervals_equal_one_at_a_time_and_keep_constant_rows_exact():
    rows = np.vstack([50 + noise(19, sd=3), 70 + noise(20, sd=1), np.full(40, 5.0)])
    low, high = stats.bootstrap_cis(rows, np.mean, BOOT, "mean")
    assert (low[2], high[2]) == (5.0, 5.0)
    assert np.all(low[:2] < rows[:2].mean(axis=1)) and np.all(rows[:2].mean(axis=1) < high[:2])
    again = stats.bootstrap_cis(rows.copy(), np.mean, BOOT, "mean")
    np.testing.assert_array_equal(low, again[0])


def test_drawing_the_resamples_in_batches_changes_no_bit(monkeypatch):
    rows = np.vstack([50 + noise(26, 130, sd=3), 70 + noise(27, 130, sd=1)])

    def everything() -> list[np.ndarray]:
        means = [stats.bootstrap_cis(r, np.mean, BOOT, "mean") for r in (rows, rows[:1])]  # BCa's jackknife too
        spread = stats.sd_ratio_cis(rows[:1], rows[1:], BOOT, "spread")
        return [*means[0], *means[1], *spread, stats.se_by_repeats(rows, [5, 130], 250, np.random.default_rng(0))]

    batched = everything()
    monkeypatch.setattr(stats, "BATCH", 7)  # divides neither the resamples nor the repeats
    ragged = everything()
    monkeypatch.setattr(stats, "BATCH", 10**6)  # all at once
    for a, b, c in zip(batched, ragged, everything(), strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("values", [np.vstack([noise(28, 300, sd=10), noise(29, 300, sd=3)]), noise(30, 300)])
def test_standard_errors_are_those_of_every_draw_at_once(values):
    rows, sizes, draws = np.atleast_2d(values), [5, 30, 300], 450
    rng = np.random.default_rng(5)
    at_once = np.column_stack([rows[:, rng.integers(0, 300, size=(draws, n))].mean(axis=-1).std(axis=-1, ddof=1)
                               for n in sizes])
    se = stats.se_by_repeats(values, sizes, draws, np.random.default_rng(5))
    np.testing.assert_array_equal(se, at_once if values.ndim == 2 else at_once[0])


def test_a_heavy_tailed_sample_where_the_mean_and_the_hodges_lehmann_shift_disagree():
    d = np.full(400, 0.3) + noise(21, 400, sd=0.05)
    d[:8] = -40.0  # a few blow-ups
    estimate, low, high = stats.hodges_lehmann(d, 0.95)
    assert d.mean() < -0.4 and 0.25 < low < estimate < high < 0.35  # the mean says a wins; the bulk says b
    a, b = 100 + d, np.full(400, 100.0)
    assert stats.lower_share(a, b).mean() == pytest.approx(8 / 400)


def test_hodges_lehmann_of_a_symmetric_shift_and_its_interval():
    d = 2.0 + noise(22, 200, sd=1.0)
    estimate, low, high = stats.hodges_lehmann(d, 0.95)
    assert low < 2.0 < high and abs(estimate - np.median(d)) < 0.2 and high - low < 0.5


def test_sd_ratio_intervals_find_a_smaller_spread():
    base = noise(23, 300, sd=4.0)
    low, high = stats.sd_ratio_cis(np.vstack([100 + 0.5 * base, 100 + base]), np.vstack([100 + base, 100 + base]),
                                   BOOT, "spread")
    assert np.exp(high[0]) < 0.6 and np.exp(low[0]) > 0.4  # half the spread
    assert (low[1], high[1]) == (0.0, 0.0)  # identical rows: ratio exactly 1


def test_standard_error_against_repeats_follows_sd_over_root_n():
    pool = noise(20, n=1000, sd=10)
    sizes = [5, 20, 100]
    se = stats.se_by_repeats(pool, sizes, 4000, np.random.default_rng(0))
    np.testing.assert_allclose(se, pool.std() / np.sqrt(sizes), rtol=0.06)
    both = stats.se_by_repeats(np.vstack([pool, 2 * pool]), sizes, 4000, np.random.default_rng(0))
    np.testing.assert_allclose(both[1], 2 * both[0])  # the same draws for every row
    np.testing.assert_allclose(both[0], se)


def test_fewer_than_two_repeats_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="repeats >= 2"):
        stats.pairwise({"a": sample([1.0]), "b": sample([2.0])}, BOOT, 0.05)
