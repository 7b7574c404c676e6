"""Statistics for comparing regimes' RMSE distributions: tests, Holm, effect sizes and bootstrap intervals.

Pure functions of arrays built on scipy.stats and statsmodels; no files, no TensorFlow. Two regimes are
*paired* when their repeats carry the same seeds in the same order (repeat r of both started from the same
initial weights), and then the per-repeat differences are tested. Paired regimes whose per-repeat RMSEs
are identical are *equivalent by construction*: no test is run, since there is no variation to test.
Intervals of many quantities at once are one vectorized bootstrap over a (k, n) array: every row is
resampled with the same draws of repeats, which keeps the rows' pairing and costs one call. scipy.stats is
imported where it is used: importing it takes a second, which the compare stage spends while its tracking
process starts.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import combinations

import numpy as np
import pandas as pd

from pipeline.analysis.decision import holm_adjusted

# Resamples (or studies) drawn and reduced at a time: all at once, a (rows, 2000, 1000) float array takes hundreds
# of megabytes, and touching fresh memory costs more than the arithmetic. Splitting the draws changes no bit: the
# generator's stream does not depend on how it is split, and each resample is reduced on its own.
BATCH = 100
PAIRED, UNPAIRED, IDENTICAL = "paired", "unpaired", "identical"
EQUIVALENT = "equivalent by construction"
NO_DIFFERENCE = "no significant difference"
DISAGREE = "tests disagree"
PAIRWISE_COLUMNS = [
    "a", "b", "design", "n_a", "n_b", "mean_a", "mean_b", "mean_diff", "median_diff", "ci_low", "ci_high",
    "unpaired_ci_low", "unpaired_ci_high", "rank_test", "rank_stat", "rank_p", "rank_p_holm",
    "mean_test", "mean_stat", "mean_p", "mean_p_holm", "d_z", "d", "width_ratio", "outcome",
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


def _bootstrap(samples: list[np.ndarray], statistic: Callable, boot: Bootstrap, label: str, paired: bool,
               method: str | None = None):
    from scipy import stats

    def draw(method: str):
        return stats.bootstrap(
            samples, statistic, n_resamples=boot.resamples, batch=BATCH, vectorized=True, paired=paired, axis=-1,
            confidence_level=boot.confidence, method=method, rng=rng_for(boot.seed, label),
        ).confidence_interval

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy divides by zero on the way to the warning below
        warnings.simplefilter("error", stats.DegenerateDataWarning)  # filters added last are matched first
        try:
            return draw(method or boot.method)
        except stats.DegenerateDataWarning:
            pass
    return draw("percentile")


def bootstrap_cis(
    rows: np.ndarray, statistic: Callable[..., np.ndarray], boot: Bootstrap, label: str, method: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap interval of ``statistic(row, axis=-1)`` for every row of a (k, n) array, in one call.

    Rows without spread give their point value. Where BCa is undefined (a jackknife without spread, e.g. a
    median over tied values) the percentile interval is used for the call instead. ``method`` overrides
    ``boot.method`` (BCa's jackknife recomputes the statistic n times: cheap for a mean, seconds for a
    quantile or a ratio of SDs over 1000 repeats).
    """
    rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
    point = np.asarray(statistic(rows, axis=-1), dtype=np.float64)
    low, high = point.copy(), point.copy()
    spread = np.ptp(rows, axis=-1) > 0
    if spread.any():
        ci = _bootstrap([rows[spread]], statistic, boot, label, paired=False, method=method)
        low[spread], high[spread] = ci.low, ci.high
    return low, high


def bootstrap_ci(
    samples: Sequence[np.ndarray], statistic: Callable[..., np.ndarray], boot: Bootstrap, label: str
) -> tuple[float, float]:
    """Bootstrap interval of ``statistic(*samples, axis=-1)``, each sample resampled independently."""
    samples = [np.asarray(s, dtype=np.float64) for s in samples]
    if all(np.ptp(s) == 0 for s in samples):
        value = float(statistic(*samples, axis=-1))
        return value, value
    ci = _bootstrap(samples, statistic, boot, label, paired=False)
    return float(ci.low), float(ci.high)


def log_sd_ratio(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.log(np.std(a, axis=axis, ddof=1)) - np.log(np.std(b, axis=axis, ddof=1))


def sd_ratio_cis(a: np.ndarray, b: np.ndarray, boot: Bootstrap, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap intervals of log(sd(a) / sd(b)) for paired (k, n) arrays, repeats resampled jointly
    (percentile: BCa's jackknife of an SD ratio over 1000 repeats costs seconds)."""
    a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    point = log_sd_ratio(a, b)
    low, high = point.copy(), point.copy()
    differ = np.any(a != b, axis=-1)  # identical rows: ratio exactly 1
    if differ.any():
        ci = _bootstrap([a[differ], b[differ]], log_sd_ratio, boot, label, paired=True, method="percentile")
        low[differ], high[differ] = ci.low, ci.high
    return low, high


def mean_diff(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


# --- robust and tail endpoints --------------------------------------------------------------------


def hodges_lehmann(diffs: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """Hodges-Lehmann paired shift (median of the Walsh averages) with its distribution-free interval.

    The interval inverts the Wilcoxon signed-rank test (normal approximation to its null distribution):
    the estimator's own companion interval, exact in coverage up to that approximation, and far cheaper than
    bootstrapping a median of n(n+1)/2 averages.
    """
    from scipy import stats

    d = np.asarray(diffs, dtype=np.float64)
    n = len(d)
    i, j = _pairs_with_self(n)
    walsh = (d[i] + d[j]) / 2
    z = stats.norm.ppf(0.5 + confidence / 2)
    k = int(np.floor(n * (n + 1) / 4 - z * np.sqrt(n * (n + 1) * (2 * n + 1) / 24)))
    k = min(max(k, 0), len(walsh) - 1)
    m = len(walsh)
    middle = [(m - 1) // 2, m // 2]
    ranked = np.partition(walsh, sorted({k, m - 1 - k, *middle}))  # the order statistics needed, not a full sort
    return float(ranked[middle].mean()), float(ranked[k]), float(ranked[m - 1 - k])


@cache
def _pairs_with_self(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (i, j), i <= j, of the Walsh averages of n values: one set for every contrast of a study."""
    i, j = np.triu_indices(n)
    i.flags.writeable = j.flags.writeable = False  # shared between calls
    return i, j


def lower_share(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per repeat: 1 where a's RMSE is below b's, 1/2 on a tie, else 0 (its mean is P(a < b) on the pairs)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a < b) + 0.5 * (a == b)


def quantile95(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.quantile(x, 0.95, axis=axis)


def quantile95_ci(x: np.ndarray, confidence: float) -> tuple[float, float]:
    """Distribution-free interval of the 95th percentile from order statistics (``scipy.stats.quantile_test``)."""
    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    if np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    ci = stats.quantile_test(x, q=float(quantile95(x)), p=0.95).confidence_interval(confidence)
    return float(ci.low), float(ci.high)


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


# --- tests ----------------------------------------------------------------------------------------


def design(a: Sample, b: Sample) -> str:
    """``identical``, ``paired`` (same seeds, repeat by repeat) or ``unpaired``."""
    if not np.array_equal(a.seeds, b.seeds):
        return UNPAIRED
    return IDENTICAL if np.array_equal(a.values, b.values) else PAIRED


def _tests(x: np.ndarray, y: np.ndarray, kind: str, confidence: float) -> dict[str, object]:
    """Rank and mean tests of ``x - y`` and t intervals, paired or unpaired (not for identical samples)."""
    from scipy import stats
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    alpha = 1 - confidence
    if kind == UNPAIRED:
        rank, mean = stats.mannwhitneyu(x, y), stats.ttest_ind(x, y, equal_var=False)
        low, high = CompareMeans(DescrStatsW(x), DescrStatsW(y)).tconfint_diff(alpha, usevar="unequal")
        row = {"rank_test": "Mann-Whitney U", "mean_test": "Welch t", "ci_low": low, "ci_high": high}
    else:
        rank, mean = stats.wilcoxon(x, y), stats.ttest_rel(x, y)
        low, high = DescrStatsW(x - y).tconfint_mean(alpha)
        u_low, u_high = CompareMeans(DescrStatsW(x), DescrStatsW(y)).tconfint_diff(alpha, usevar="unequal")
        row = {"rank_test": "Wilcoxon signed-rank", "mean_test": "paired t", "ci_low": low, "ci_high": high,
               "unpaired_ci_low": u_low, "unpaired_ci_high": u_high}
    return {**{k: float(v) if not isinstance(v, str) else v for k, v in row.items()},
            "rank_stat": float(rank.statistic), "rank_p": float(rank.pvalue),
            "mean_stat": float(mean.statistic), "mean_p": float(mean.pvalue)}


def _describe_pair(x: np.ndarray, y: np.ndarray, kind: str) -> dict[str, object]:
    return {
        "design": kind, "n_a": len(x), "n_b": len(y), "mean_a": float(x.mean()), "mean_b": float(y.mean()),
        "mean_diff": float(x.mean() - y.mean()),
        "median_diff": float(np.median(x - y) if kind != UNPAIRED else np.median(x) - np.median(y)),
        "d_z": cohens_dz(x, y) if kind == PAIRED else float("nan"), "d": cohens_d(x, y),
    }


def compare_pair(a: Sample, b: Sample, boot: Bootstrap, label: str = "diff") -> dict[str, object]:
    """Tests and effect sizes of ``a - b`` (lower RMSE is better, so negative favours ``a``), with a bootstrap
    interval of the mean difference (``label`` names its random stream, see ``rng_for``)."""
    x, y = np.asarray(a.values, dtype=np.float64), np.asarray(b.values, dtype=np.float64)
    kind = design(a, b)
    row = _describe_pair(x, y, kind)
    if kind == IDENTICAL:
        return {**row, "ci_low": 0.0, "ci_high": 0.0}
    row.update(_tests(x, y, kind, boot.confidence))
    low, high = bootstrap_ci([x, y] if kind == UNPAIRED else [x - y],
                             mean_diff if kind == UNPAIRED else np.mean, boot, f"{label}|{kind}")
    return {**row, "ci_low": low, "ci_high": high}


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values; NaN (no test run) stays NaN and is not counted as a test."""
    p = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full_like(p, np.nan)
    tested = ~np.isnan(p)
    if tested.any():
        adjusted[tested] = holm_adjusted(p[tested])
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


def twins(samples: Mapping[str, Sample]) -> dict[str, list[str]]:
    """Regimes whose repeats are identical (same seeds, same RMSEs), grouped under the first in order."""
    groups: dict[str, list[str]] = {}
    for name, s in samples.items():
        head = next((h for h in groups if design(samples[h], s) == IDENTICAL), name)
        groups.setdefault(head, []).append(name)
    return groups


def pairwise(samples: Mapping[str, Sample], boot: Bootstrap, alpha: float) -> pd.DataFrame:
    """Every pair of regimes (in the mapping's order) tested, Holm-corrected per test family, with outcomes.

    The two families are the rank tests (Wilcoxon or Mann-Whitney) and the mean tests (paired or Welch t);
    pairs equivalent by construction are not tests and do not count towards the correction. Intervals of
    the mean difference are t intervals (paired, or Welch's), consistent with the mean test.
    """
    short = sorted(name for name, s in samples.items() if len(s.values) < 2)
    if short:
        raise ValueError(f"regimes {short} have fewer than 2 repeats: nothing to test; rerun with repeats >= 2.")
    rows = []
    for a, b in combinations(samples, 2):
        x, y = (np.asarray(samples[r].values, dtype=np.float64) for r in (a, b))
        kind = design(samples[a], samples[b])
        row = {"a": a, "b": b, **_describe_pair(x, y, kind)}
        row.update({"ci_low": 0.0, "ci_high": 0.0} if kind == IDENTICAL else _tests(x, y, kind, boot.confidence))
        rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=PAIRWISE_COLUMNS)
    table["rank_p_holm"] = holm(table["rank_p"].astype(float))
    table["mean_p_holm"] = holm(table["mean_p"].astype(float))
    table["width_ratio"] = (table.ci_high - table.ci_low) / (table.unpaired_ci_high - table.unpaired_ci_low)
    table["outcome"] = [outcome(row, alpha) for row in table.to_dict("records")]
    return table


# --- how many repeats -----------------------------------------------------------------------------


def resampled_studies(values: np.ndarray, n: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``draws`` studies of ``n`` repeats drawn with replacement from the pool, shape (draws, n)."""
    values = np.asarray(values, dtype=np.float64)
    return values[rng.integers(0, len(values), size=(draws, n))]


def se_by_repeats(values: np.ndarray, sizes: Sequence[int], draws: int, rng: np.random.Generator) -> np.ndarray:
    """Standard error of the mean of n repeats, for each n in ``sizes``, from ``draws`` resamples of the pool.

    ``values`` may be (n_pool,) or (k, n_pool): every row is resampled with the same draws. Returns
    (len(sizes),) or (k, len(sizes)).
    """
    values = np.asarray(values, dtype=np.float64)
    rows = np.atleast_2d(values)
    se = np.column_stack([_study_means(rows, n, draws, rng).std(axis=-1, ddof=1) for n in sizes])
    return se[0] if values.ndim == 1 else se


def _study_means(rows: np.ndarray, n: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Each row's mean over ``draws`` studies of ``n`` repeats drawn from it with replacement, shape (k, draws):
    every row with the same draws, ``BATCH`` studies at a time."""
    return np.concatenate([rows[:, rng.integers(0, rows.shape[1], size=(min(BATCH, draws - start), n))].mean(axis=-1)
                           for start in range(0, draws, BATCH)], axis=-1)
