"""The decision rule: a claim is judged by where an interval lies against a smallest effect of interest.

At 1000 paired repeats almost any difference is "significant", so significance alone cannot say whether a
setting matters. Following the smallest-effect-of-interest practice of equivalence testing (Lakens 2017,
"Equivalence tests", Social Psychological and Personality Science 8(4); Lakens, Scheel & Isager 2018), a
margin ``m`` (``stats.margin``, RMSE) says how large a difference has to be to matter, and a contrast
``a - b`` is decided by where its 95% interval lies:

- wholly below ``-m`` or wholly above ``+m``: a difference that matters, in that direction;
- wholly inside ``(-m, +m)``: equivalent (and *significant but negligible* when it also excludes 0);
- anything else (it straddles a margin): inconclusive at this many repeats.

Each of these three statements is one-sided at ``alpha / 2`` against a margin, so each is a t test
(statsmodels: ``ttest_mean`` against ``-m`` and ``+m``, ``ttost_mean`` for equivalence), and Holm's method
over the confirmatory family keeps the family-wise error at ``alpha``; with one contrast it is exactly
the interval rule. The same rule decides ratios of spreads on the log scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

SUPPORTED, CONTRADICTED, EQUIVALENT, INCONCLUSIVE = "supported", "contradicted", "equivalent", "inconclusive"
NOT_RUN = "not run"
VERDICTS = (SUPPORTED, CONTRADICTED, EQUIVALENT, INCONCLUSIVE, NOT_RUN)
BELOW, ABOVE, INSIDE, STRADDLES = "below", "above", "inside", "straddles"

# "lower": a's RMSE (or spread) is lower than b's by more than the margin; "higher": the mirror image;
# "equal": a and b alike (within the margin); "not_lower": a is not lower than b by the margin.
Relation = Literal["lower", "higher", "equal", "not_lower"]


@dataclass(frozen=True)
class MarginTests:
    """An estimate of ``a - b`` with its interval, and the one-sided p-values of the three interval statements."""

    estimate: float
    low: float
    high: float
    p_below: float  # H1: difference < -margin
    p_above: float  # H1: difference > +margin
    p_inside: float  # H1: -margin < difference < +margin (TOST)
    margin: float


def margin_tests(diffs: np.ndarray, margin: float, alpha: float) -> MarginTests:
    """Paired t tests of the per-repeat differences against ``-margin`` and ``+margin``, and TOST between them."""
    from statsmodels.stats.weightstats import DescrStatsW

    d = np.asarray(diffs, dtype=np.float64)
    mean = float(d.mean())
    if len(d) < 2 or np.ptp(d) == 0:  # no spread: the interval is the point itself
        return MarginTests(mean, mean, mean, float(mean >= -margin), float(mean <= margin),
                           float(not -margin < mean < margin), margin)
    stat = DescrStatsW(d)
    low, high = stat.tconfint_mean(alpha)
    return MarginTests(
        estimate=mean,
        low=float(low),
        high=float(high),
        p_below=float(stat.ttest_mean(-margin, alternative="smaller")[1]),
        p_above=float(stat.ttest_mean(margin, alternative="larger")[1]),
        p_inside=float(stat.ttost_mean(-margin, margin)[0]),
        margin=margin,
    )


def margin_tests_unpaired(a: np.ndarray, b: np.ndarray, margin: float, alpha: float) -> MarginTests:
    """The same three statements for ``mean(a) - mean(b)`` when repeats do not pair (Welch's t, unequal variances)."""
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    compare = CompareMeans(DescrStatsW(np.asarray(a, dtype=np.float64)), DescrStatsW(np.asarray(b, dtype=np.float64)))
    low, high = compare.tconfint_diff(alpha, usevar="unequal")
    return MarginTests(
        estimate=float(np.mean(a) - np.mean(b)),
        low=float(low),
        high=float(high),
        p_below=float(compare.ttest_ind(alternative="smaller", usevar="unequal", value=-margin)[1]),
        p_above=float(compare.ttest_ind(alternative="larger", usevar="unequal", value=margin)[1]),
        p_inside=float(compare.ttost_ind(-margin, margin, usevar="unequal")[0]),
        margin=margin,
    )


def holm_adjusted(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values, computed as statsmodels' ``multipletests(method="holm")`` does (a test
    holds them equal bit for bit) but without the ``gc.collect()`` it runs on every call, which costs 0.1 s each
    in a process holding pandas, scipy and MLflow."""
    p = np.asarray(pvalues, dtype=np.float64)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1))
    adjusted[adjusted > 1] = 1
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return out


def holm_family(tests: Sequence[MarginTests]) -> list[MarginTests]:
    """The same tests with each kind of p-value Holm-adjusted over the family (one contrast: unchanged)."""
    if not tests:
        return []
    adjusted = {}
    for kind in ("p_below", "p_above", "p_inside"):
        adjusted[kind] = holm_adjusted([getattr(t, kind) for t in tests])
    return [replace(t, **{k: float(v[i]) for k, v in adjusted.items()}) for i, t in enumerate(tests)]


def where(t: MarginTests, alpha: float) -> str:
    """Where the (Holm-adjusted) interval lies against the margin: below, above, inside or straddling it."""
    level = alpha / 2  # each statement is one side of the two-sided 1 - alpha interval
    if t.p_below < level:
        return BELOW
    if t.p_above < level:
        return ABOVE
    if t.p_inside < level:
        return INSIDE
    return STRADDLES


def locate(low: float, high: float, margin: float) -> str:
    """Where an interval ``[low, high]`` lies against ``+-margin`` (for intervals without p-values, e.g. bootstrap)."""
    if high < -margin:
        return BELOW
    if low > margin:
        return ABOVE
    if -margin < low and high < margin:
        return INSIDE
    return STRADDLES


def verdict(relation: Relation, position: str) -> str:
    """The verdict on "a is {relation} than b" given where the interval of ``a - b`` lies."""
    if relation == "lower":
        return {BELOW: SUPPORTED, ABOVE: CONTRADICTED, INSIDE: EQUIVALENT}.get(position, INCONCLUSIVE)
    if relation == "higher":
        return {ABOVE: SUPPORTED, BELOW: CONTRADICTED, INSIDE: EQUIVALENT}.get(position, INCONCLUSIVE)
    if relation == "equal":
        return {INSIDE: SUPPORTED, BELOW: CONTRADICTED, ABOVE: CONTRADICTED}.get(position, INCONCLUSIVE)
    if relation == "not_lower":
        return {INSIDE: SUPPORTED, ABOVE: SUPPORTED, BELOW: CONTRADICTED}.get(position, INCONCLUSIVE)
    raise ValueError(f"unknown relation {relation!r}: use lower, higher, equal or not_lower.")


def negligible(low: float, high: float, margin: float) -> bool:
    """Inside the margin and excluding 0: a difference that is real but too small to matter."""
    return locate(low, high, margin) == INSIDE and (low > 0 or high < 0)


def combine(verdicts: Sequence[str]) -> str:
    """One verdict from several usable pairs: the one they all reach; inconclusive when they conflict.

    Pairs not run are left out; an inconclusive pair does not veto a decisive one (it only lacks repeats).
    """
    run = [v for v in verdicts if v != NOT_RUN]
    if not run:
        return NOT_RUN
    decisive = set(run) - {INCONCLUSIVE}
    return decisive.pop() if len(decisive) == 1 else INCONCLUSIVE


def repeats_needed(estimate: float, sd: float, margin: float, alpha: float) -> float:
    """Repeats for a 1 - alpha interval of half-width z*sd/sqrt(n) around ``estimate`` to clear the nearest margin.

    Infinite when the estimate sits on a margin; 1 when there is no spread.
    """
    from scipy.stats import norm

    gap = min(abs(estimate - margin), abs(estimate + margin))
    if sd == 0:
        return 1.0
    if gap == 0:
        return float("inf")
    return float(np.ceil((norm.ppf(1 - alpha / 2) * sd / gap) ** 2))
