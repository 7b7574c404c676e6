"""Statistics for comparing regimes' RMSE distributions: tests, Holm, effect sizes and bootstrap intervals.

Pure functions of arrays built on scipy.stats and statsmodels; no files, no TensorFlow. Two regimes are
*paired* when their repeats carry the same seeds in the same order (repeat r of both started from the same
initial weights), and then the per-repeat differences are tested. Paired regimes whose per-repeat RMSEs
are identical are *equivalent by construction*: no test is run, since there is no variation to test.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

PAIRED, UNPAIRED, IDENTICAL = "paired", "unpaired", "identical"
EQUIVALENT = "equivalent by construction"
NO_DIFFERENCE = "no significant difference"
DISAGREE = "tests disagree"
SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
PAIRWISE_COLUMNS = [
    "a", "b", "design", "n_a", "n_b", "mean_a", "mean_b", "mean_diff", "median_diff", "ci_low", "ci_high",
    "unpaired_ci_low", "unpaired_ci_high", "rank_test", "rank_stat", "rank_p", "rank_p_holm",
    "mean_test", "mean_stat", "mean_p", "mean_p_holm", "d_z", "d", "cliffs_delta", "width_ratio", "outcome",
]


@dataclass(frozen=True)
class Bootstrap:
    """How every interval is drawn: ``resamples`` per interval, streams derived from ``seed``."""

    resamples: int
    seed: int
    method: str = "BCa"
    confidence: float = 0.95


@dataclass(frozen=True)
class Sample:
    """One regime's per-repeat RMSEs and the seed of each repeat, in repeat order."""

    values: np.ndarray
    seeds: np.ndarray


def rng_for(seed: int, label: str) -> np.random.Generator:
    """A fresh generator for one kind of quantity, derived from ``seed`` and ``label`` alone.

    Every interval of a kind resamples with the same draws: none depends on which others were computed
    first, and equal data always gets equal intervals.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(zlib.crc32(label.encode()),)))


def bootstrap_ci(
    samples: Sequence[np.ndarray],
    statistic: Callable[..., np.ndarray],
    boot: Bootstrap,
    label: str,
) -> tuple[float, float]:
    """Bootstrap interval of ``statistic(*samples, axis=-1)``, each sample resampled independently.

    Constant samples give the point value (nothing to resample). Where BCa is undefined (a jackknife
    without spread, e.g. a median over tied values) the percentile interval is used instead.
    """
    samples = [np.asarray(s, dtype=np.float64) for s in samples]
    if all(np.ptp(s) == 0 for s in samples):
        value = float(statistic(*samples, axis=-1))
        return value, value

    def draw(method: str) -> tuple[float, float]:
        result = stats.bootstrap(
            samples,
            statistic,
            n_resamples=boot.resamples,
            vectorized=True,
            confidence_level=boot.confidence,
            method=method,
            rng=rng_for(boot.seed, label),
        )
        return float(result.confidence_interval.low), float(result.confidence_interval.high)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy divides by zero on the way to the warning below
        warnings.simplefilter("error", stats.DegenerateDataWarning)  # filters added last are matched first
        try:
            return draw(boot.method)
        except stats.DegenerateDataWarning:
            pass
    return draw("percentile")


def mean_diff(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def location_intervals(values: np.ndarray, boot: Bootstrap) -> dict[str, float]:
    """Mean and median with their bootstrap intervals (the same streams for every sample: equal data, equal CIs)."""
    mean_lo, mean_hi = bootstrap_ci([values], np.mean, boot, "mean")
    median_lo, median_hi = bootstrap_ci([values], np.median, boot, "median")
    return {
        "mean": float(np.mean(values)), "mean_low": mean_lo, "mean_high": mean_hi,
        "median": float(np.median(values)), "median_low": median_lo, "median_high": median_hi,
    }


# --- effect sizes ---------------------------------------------------------------------------------


def cohens_dz(a: np.ndarray, b: np.ndarray) -> float:
    """Mean per-repeat difference over the differences' standard deviation (paired designs)."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    sd = diff.std(ddof=1)
    return float(diff.mean() / sd) if sd > 0 else float("nan")


def cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    """Difference of means over the pooled standard deviation."""
    na, nb = len(a), len(b)
    pooled = np.sqrt(((na - 1) * np.var(a, ddof=1) + (nb - 1) * np.var(b, ddof=1)) / (na + nb - 2))
    return float((np.mean(a) - np.mean(b)) / pooled) if pooled > 0 else float("nan")


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> float:
    """P(a > b) - P(a < b) over all cross pairs, read off the Mann-Whitney U statistic of ``a``."""
    u = stats.mannwhitneyu(a, b, method="asymptotic").statistic
    return float(2.0 * u / (len(a) * len(b)) - 1.0)


# --- tests ----------------------------------------------------------------------------------------


def design(a: Sample, b: Sample) -> str:
    """``identical``, ``paired`` (same seeds, repeat by repeat) or ``unpaired``."""
    if not np.array_equal(a.seeds, b.seeds):
        return UNPAIRED
    return IDENTICAL if np.array_equal(a.values, b.values) else PAIRED


def compare_pair(a: Sample, b: Sample, boot: Bootstrap, label: str = "diff") -> dict[str, object]:
    """Tests, effect sizes and intervals of ``a - b`` (lower RMSE is better, so negative favours ``a``).

    ``label`` names the random streams of the intervals (see ``rng_for``).
    """
    x, y = np.asarray(a.values, dtype=np.float64), np.asarray(b.values, dtype=np.float64)
    kind = design(a, b)
    row: dict[str, object] = {
        "design": kind,
        "n_a": len(x),
        "n_b": len(y),
        "mean_a": float(x.mean()),
        "mean_b": float(y.mean()),
        "mean_diff": float(x.mean() - y.mean()),
        "median_diff": float(np.median(x - y) if kind != UNPAIRED else np.median(x) - np.median(y)),
        "d_z": cohens_dz(x, y) if kind == PAIRED else float("nan"),
        "d": cohens_d(x, y),
        "cliffs_delta": cliffs_delta(x, y),
    }
    if kind == IDENTICAL:
        return {**row, "ci_low": 0.0, "ci_high": 0.0}
    unpaired_ci = bootstrap_ci([x, y], mean_diff, boot, f"{label}|unpaired")
    if kind == UNPAIRED:
        rank, mean = stats.mannwhitneyu(x, y), stats.ttest_ind(x, y, equal_var=False)
        row.update(rank_test="Mann-Whitney U", mean_test="Welch t", ci_low=unpaired_ci[0], ci_high=unpaired_ci[1])
    else:
        rank, mean = stats.wilcoxon(x, y), stats.ttest_rel(x, y)
        paired_ci = bootstrap_ci([x - y], np.mean, boot, f"{label}|paired")
        row.update(rank_test="Wilcoxon signed-rank", mean_test="paired t", ci_low=paired_ci[0], ci_high=paired_ci[1])
        row.update(unpaired_ci_low=unpaired_ci[0], unpaired_ci_high=unpaired_ci[1])
    row.update(
        rank_stat=float(rank.statistic),
        rank_p=float(rank.pvalue),
        mean_stat=float(mean.statistic),
        mean_p=float(mean.pvalue),
    )
    return row


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values; NaN (no test run) stays NaN and is not counted as a test."""
    p = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full_like(p, np.nan)
    tested = ~np.isnan(p)
    if tested.any():
        adjusted[tested] = multipletests(p[tested], method="holm")[1]
    return adjusted


def outcome(row: Mapping[str, object], alpha: float) -> str:
    """What a pair's Holm-adjusted tests say: who is lower, no difference, or that the two tests disagree.

    A difference needs both tests to reject and the mean and median differences to point the same way.
    """
    if row["design"] == IDENTICAL:
        return EQUIVALENT
    rank_sig, mean_sig = row["rank_p_holm"] < alpha, row["mean_p_holm"] < alpha
    if not (rank_sig or mean_sig):
        return NO_DIFFERENCE
    sign = np.sign(row["mean_diff"])
    if rank_sig and mean_sig and sign == np.sign(row["median_diff"]) and sign != 0:
        return f"{row['a'] if sign < 0 else row['b']} lower"
    return DISAGREE


def pairwise(samples: Mapping[str, Sample], boot: Bootstrap, alpha: float) -> pd.DataFrame:
    """Every pair of regimes (in the mapping's order) tested, Holm-corrected per test family, with outcomes.

    The two families are the rank tests (Wilcoxon or Mann-Whitney) and the mean tests (paired or Welch t);
    pairs equivalent by construction are not tests and do not count towards the correction.
    """
    short = sorted(name for name, s in samples.items() if len(s.values) < 2)
    if short:
        raise ValueError(f"regimes {short} have fewer than 2 repeats: nothing to test; rerun with repeats >= 2.")
    rows = [
        {"a": a, "b": b, **compare_pair(samples[a], samples[b], boot)} for a, b in combinations(samples, 2)
    ]
    table = pd.DataFrame(rows).reindex(columns=PAIRWISE_COLUMNS)
    table["rank_p_holm"] = holm(table["rank_p"].astype(float))
    table["mean_p_holm"] = holm(table["mean_p"].astype(float))
    table["width_ratio"] = (table.ci_high - table.ci_low) / (table.unpaired_ci_high - table.unpaired_ci_low)
    table["outcome"] = [outcome(row, alpha) for row in table.to_dict("records")]
    return table


# --- verdicts on stated expectations ----------------------------------------------------------------

Relation = Literal["lower", "equal"]


def equivalence_p(a: Sample, b: Sample, margin: float) -> float:
    """Two one-sided tests (TOST) that the mean difference lies within +-margin; paired when seeds match."""
    kind = design(a, b)
    if kind == IDENTICAL:
        return 0.0
    if kind == UNPAIRED:
        return float(ttost_ind(a.values, b.values, -margin, margin, usevar="unequal")[0])
    return float(ttost_paired(a.values, b.values, -margin, margin)[0])


def pair_verdict(row: Mapping[str, object], relation: Relation, alpha: float, tost_p: float = float("nan")) -> str:
    """supported / contradicted / inconclusive for "RMSE of a is {relation} than b's", from a pairwise row."""
    result = row["outcome"]
    if relation == "lower":  # identical regimes: a cannot beat b
        verdicts = {f"{row['a']} lower": SUPPORTED, f"{row['b']} lower": CONTRADICTED, EQUIVALENT: CONTRADICTED}
        return verdicts.get(result, INCONCLUSIVE)
    if result == EQUIVALENT or (result == NO_DIFFERENCE and tost_p < alpha):
        return SUPPORTED
    return CONTRADICTED if result.endswith(" lower") else INCONCLUSIVE


def combine(verdicts: Sequence[str]) -> str:
    """One verdict from several pairs: the decisive one when they do not conflict, else inconclusive."""
    decisive = set(verdicts) - {INCONCLUSIVE}
    return decisive.pop() if len(decisive) == 1 else INCONCLUSIVE


# --- how many repeats -----------------------------------------------------------------------------


def se_by_repeats(values: np.ndarray, sizes: Sequence[int], draws: int, rng: np.random.Generator) -> np.ndarray:
    """Standard error of the mean of n repeats, for each n in ``sizes``, from ``draws`` resamples of the pool.

    Each draw takes n repeats with replacement (as if running n fresh repeats) and the spread of the
    draws' means is the standard error a study of n repeats would have.
    """
    values = np.asarray(values, dtype=np.float64)
    return np.array([values[rng.integers(0, len(values), size=(draws, n))].mean(axis=1).std(ddof=1) for n in sizes])


def repeats_for_halfwidth(sd: float, halfwidth: float, confidence: float) -> int:
    """Repeats needed for a normal-approximation interval of the mean no wider than +-halfwidth."""
    z = stats.norm.ppf(0.5 + confidence / 2)
    return int(np.ceil((z * sd / halfwidth) ** 2))
