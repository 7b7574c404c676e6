"""The margin rule on intervals with known answers (pipeline.analysis.decision)."""

import math

import numpy as np
import pytest

from pipeline.analysis import decision

ALPHA = 0.05


def diffs(center: float, sd: float = 0.1, n: int = 400, seed: int = 0) -> np.ndarray:
    """Per-repeat differences with mean exactly ``center`` (so the interval sits where the test says)."""
    d = np.random.default_rng(seed).normal(0.0, sd, n)
    return d - d.mean() + center


def verdict(d: np.ndarray, relation: str, margin: float = 1.0) -> str:
    return decision.verdict(relation, decision.where(decision.margin_tests(d, margin, ALPHA), ALPHA))


def test_an_interval_inside_the_margin_is_equivalent_and_says_so_when_significant_but_negligible():
    d = diffs(-0.07, sd=0.2)
    t = decision.margin_tests(d, 1.0, ALPHA)
    assert -1 < t.low < t.high < 0 and t.p_inside < 1e-10
    assert verdict(d, "lower") == decision.EQUIVALENT
    assert decision.negligible(t.low, t.high, 1.0)  # excludes 0, far inside +-1
    assert verdict(d, "equal") == decision.SUPPORTED  # an "alike" claim is supported by equivalence
    assert verdict(d, "not_lower") == decision.SUPPORTED
    assert not decision.negligible(-0.2, 0.3, 1.0)


def test_an_interval_straddling_the_margin_is_inconclusive():
    d = diffs(-1.0, sd=2.0)
    t = decision.margin_tests(d, 1.0, ALPHA)
    assert t.low < -1 < t.high < 0  # significant, but not clearly beyond the margin
    assert verdict(d, "lower") == decision.INCONCLUSIVE
    assert verdict(d, "equal") == decision.INCONCLUSIVE  # a significant difference does not contradict "alike"
    assert verdict(d, "not_lower") == decision.INCONCLUSIVE


def test_an_interval_beyond_the_margin_supports_or_contradicts():
    below, above = diffs(-3.0), diffs(+3.0)
    assert verdict(below, "lower") == decision.SUPPORTED and verdict(above, "lower") == decision.CONTRADICTED
    assert verdict(above, "higher") == decision.SUPPORTED and verdict(below, "higher") == decision.CONTRADICTED
    assert verdict(below, "equal") == decision.CONTRADICTED == verdict(above, "equal")
    assert verdict(below, "not_lower") == decision.CONTRADICTED and verdict(above, "not_lower") == decision.SUPPORTED


def test_the_interval_rule_and_the_tests_agree():
    for center in (-2.5, -1.1, -0.9, 0.0, 0.95, 1.3):
        t = decision.margin_tests(diffs(center, sd=1.0), 1.0, ALPHA)
        assert decision.where(t, ALPHA) == decision.locate(t.low, t.high, 1.0)


def test_no_spread_gives_a_point_interval():
    t = decision.margin_tests(np.zeros(10), 1.0, ALPHA)
    assert (t.low, t.high) == (0.0, 0.0) and decision.where(t, ALPHA) == decision.INSIDE
    assert decision.where(decision.margin_tests(np.full(10, -2.0), 1.0, ALPHA), ALPHA) == decision.BELOW


def test_holm_adjusts_each_statement_over_the_family_and_can_undo_a_decision():
    edge = decision.margin_tests(diffs(-1.1, sd=1.0, n=400, seed=1), 1.0, ALPHA)
    assert decision.where(edge, ALPHA) == decision.BELOW  # alone: just beyond the margin
    family = decision.holm_family([edge, *(decision.margin_tests(diffs(0.0, seed=s), 1.0, ALPHA) for s in (2, 3))])
    assert family[0].p_below == pytest.approx(min(1.0, 3 * edge.p_below))  # smallest of three p-values
    assert decision.where(family[0], ALPHA) == decision.STRADDLES
    assert decision.holm_family([edge]) == [edge]


def test_unpaired_margin_tests_use_welch():
    rng = np.random.default_rng(4)
    t = decision.margin_tests_unpaired(rng.normal(100, 1, 300), rng.normal(103, 2, 200), 1.0, ALPHA)
    assert t.low < t.estimate < t.high < -1 and decision.where(t, ALPHA) == decision.BELOW


def test_combining_pairs_and_not_run():
    assert decision.combine([decision.SUPPORTED, decision.INCONCLUSIVE]) == decision.SUPPORTED
    assert decision.combine([decision.SUPPORTED, decision.CONTRADICTED]) == decision.INCONCLUSIVE
    assert decision.combine([decision.NOT_RUN, decision.EQUIVALENT]) == decision.EQUIVALENT
    assert decision.combine([decision.NOT_RUN]) == decision.NOT_RUN


def test_repeats_needed_come_from_the_sd_of_the_differences():
    # gap to the nearest margin 0.27, z 1.96, sd 3.5: (1.96 * 3.5 / 0.27)^2 = 645.6
    assert decision.repeats_needed(-1.27, 3.5, 1.0, ALPHA) == 646
    assert decision.repeats_needed(0.0, 0.0, 1.0, ALPHA) == 1
    assert math.isinf(decision.repeats_needed(1.0, 2.0, 1.0, ALPHA))


def test_holm_gives_statsmodels_values_bit_for_bit():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(0)
    for p in (rng.uniform(0, 1, 13), rng.uniform(0, 0.2, 40), np.array([0.01, 0.01, 0.5, 0.9, 0.01]), np.array([0.3])):
        assert np.array_equal(decision.holm_adjusted(p), multipletests(p, method="holm")[1])
