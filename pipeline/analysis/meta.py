"""Answers across a panel: paired effects per series and origin, their random-effects meta-analysis, verdicts.

An expectation's contrast "a vs b" is measured per repeat as the difference of relative RMSE (RMSE over
persistence RMSE on the same months), a minus b, on the same seed: negative means a is better, and -0.01
is one percent of persistence's error. Per series and origin the effect is the mean of those differences
with a t interval over repeats; per series it is the mean over origins, with the interval over repeats of
each seed's mean across origins (so origins are the series' fixed test windows, repeats its training
randomness). Series are pooled with statsmodels' random-effects meta-analysis (``combine_effects``,
Paule-Mandel tau^2), whose weights account for each series' own precision and the spread between series.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats
from statsmodels.stats.meta_analysis import combine_effects

from pipeline.analysis import decision
from pipeline.analysis.claims import Claim
from pipeline.analysis.contrasts import decides
from pipeline.analysis.contrasts import design as pair_design
from pipeline.analysis.decision import Relation
from pipeline.regimes import StateRegime


@dataclass(frozen=True)
class Contrast:
    """One regime pair of one expectation: the claim is about a's relative RMSE against b's."""

    label: str  # "1", or "4a", "4b" for an expectation tested on two pairs
    claim: str
    a: str
    b: str
    relation: Relation


def contrasts(claims: Sequence[Claim], records: Mapping[str, StateRegime], train_pairs: int) -> list[Contrast]:
    """One contrast per regime pair of each claim whose regimes were both run (``records``) and that may decide
    it (``analysis.contrasts.decides``: a clean one-factor contrast, or twins for an "equal" claim); compound
    pairs are left out, as in the shampoo study. ``train_pairs``: training pairs of the full window."""
    out = []
    for c in claims:
        for i, (a, b) in enumerate(c.pairs):
            label = c.key.removeprefix("E") + ("" if len(c.pairs) == 1 else "abcdefgh"[i])
            if a in records and b in records:
                pair = pair_design(records[a], records[b], train_pairs)
                if decides(c.factor, c.relation, pair):
                    out.append(Contrast(label, c.text, a, b, c.relation))
    return out


def paired_differences(results: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """``series, origin, seed, diff``: a's relative RMSE minus b's on the same series, origin and seed."""
    keys = ["series", "origin", "seed"]
    left = results.loc[results.regime == a, [*keys, "relative_rmse"]]
    right = results.loc[results.regime == b, [*keys, "relative_rmse"]]
    pairs = left.merge(right, on=keys, suffixes=("_a", "_b"), validate="one_to_one")
    if len(pairs) != len(left) or len(pairs) != len(right):
        raise ValueError(f"regimes {a} and {b} do not share seeds on every series and origin: rerun the panel.")
    return pairs.assign(diff=pairs.relative_rmse_a - pairs.relative_rmse_b)[[*keys, "diff"]]


def mean_interval(diffs: np.ndarray, alpha: float) -> dict[str, float]:
    """Mean, its standard error and (1 - alpha) t interval over repeats."""
    diffs = np.asarray(diffs, dtype=np.float64)
    n = len(diffs)
    mean = float(diffs.mean())
    se = float(diffs.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    half = float(scipy_stats.t.ppf(1 - alpha / 2, n - 1) * se) if n > 1 else float("nan")
    return {"effect": mean, "se": se, "ci_low": mean - half, "ci_high": mean + half, "repeats": n}


def effects(results: pd.DataFrame, contrast_list: Sequence[Contrast], margin: float, alpha: float) -> pd.DataFrame:
    """Every contrast's effect per series and origin, and per series (origin "all"), each with its verdict."""
    rows = []
    for c in contrast_list:
        diffs = paired_differences(results, c.a, c.b)
        for (name, origin), part in diffs.groupby(["series", "origin"], sort=False):
            interval = mean_interval(part["diff"], alpha)
            rows.append({"contrast": c.label, "series": name, "origin": str(origin), **interval})
        for name, part in diffs.groupby("series", sort=False):
            per_seed = part.groupby("seed", sort=True)["diff"].mean()
            rows.append({"contrast": c.label, "series": name, "origin": "all", **mean_interval(per_seed, alpha)})
    table = pd.DataFrame(rows, columns=["contrast", "series", "origin", "effect", "se", "ci_low", "ci_high", "repeats"])
    relation = {c.label: c.relation for c in contrast_list}
    table["identical"] = (table.effect == 0) & (table.se == 0)
    table["verdict"] = [
        decision.verdict(relation[r.contrast], decision.locate(r.ci_low, r.ci_high, margin))
        if r.se == r.se else decision.INCONCLUSIVE
        for r in table.itertuples()
    ]
    return table


def meta_analysis(effect: np.ndarray, variance: np.ndarray, alpha: float) -> dict[str, float]:
    """Random-effects pooled effect with its interval, prediction interval, tau^2, I^2 and Cochran's Q.

    The prediction interval (where a new series' effect is expected to lie) is mu +- t_{k-2} sqrt(tau^2 + se^2)
    (Higgins, Thompson & Spiegelhalter 2009), from statsmodels' mu, se and tau^2; it needs k >= 3 series.
    """
    effect, variance = np.asarray(effect, dtype=np.float64), np.asarray(variance, dtype=np.float64)
    k = len(effect)
    if k < 2:
        raise ValueError(f"a meta-analysis needs at least 2 series with a variance, got {k}.")
    res = combine_effects(effect, variance, method_re="iterated", alpha=alpha)
    mu, se = float(res.mean_effect_re), float(res.sd_eff_w_re)
    z = scipy_stats.norm.ppf(1 - alpha / 2)
    half_pi = float(scipy_stats.t.ppf(1 - alpha / 2, k - 2) * np.sqrt(res.tau2 + se**2)) if k >= 3 else float("nan")
    # I^2 is (Q - df) / Q truncated at 0 (Higgins & Thompson 2002); statsmodels leaves it untruncated, which is
    # meaningless (and huge) when the effects agree exactly (Q ~ 0)
    i2 = float(res.i2) if res.q > k - 1 else 0.0
    return {
        "pooled": mu, "pooled_se": se, "ci_low": mu - z * se, "ci_high": mu + z * se,
        "pi_low": mu - half_pi, "pi_high": mu + half_pi,
        "tau2": float(res.tau2), "i2": i2, "q": float(res.q), "series": k,
    }


def pooled(effect_table: pd.DataFrame, contrast_list: Sequence[Contrast], margin: float, alpha: float) -> pd.DataFrame:
    """Per contrast: the meta-analysis across series, its verdict, and the per-series verdict counts."""
    rows = []
    per_series = effect_table[effect_table.origin == "all"]
    for c in contrast_list:
        part = per_series[per_series.contrast == c.label]
        counts = part.verdict.value_counts()
        row = {"contrast": c.label, "claim": c.claim, "a": c.a, "b": c.b, "relation": c.relation,
               "n_series": len(part), **{v: int(counts.get(v, 0)) for v in decision.VERDICTS}}
        usable = part[part.se > 0]
        if part.identical.all():
            row.update(pooled=0.0, pooled_se=0.0, ci_low=0.0, ci_high=0.0, pi_low=0.0, pi_high=0.0, tau2=0.0,
                       i2=0.0, q=0.0, series=len(part), note="identical on every series and repeat")
        elif len(usable) >= 2:
            row.update(meta_analysis(usable.effect, usable.se**2, alpha), note="")
        else:  # every column still there (not a number), so that a panel of one series per frequency reports
            row.update(dict.fromkeys(("pooled", "pooled_se", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "i2",
                                      "q"), np.nan), series=len(usable), note="too few series with a spread to pool")
        row["verdict"] = (decision.verdict(c.relation, decision.locate(row["ci_low"], row["ci_high"], margin))
                          if np.isfinite(row["ci_low"]) else decision.INCONCLUSIVE)
        rows.append(row)
    return pd.DataFrame(rows)


def tally(row: pd.Series | dict) -> str:
    """"supported on k of N series, contradicted on m, equivalent on e" for one pooled row."""
    return (f"supported on {row['supported']} of {row['n_series']} series, contradicted on {row['contradicted']}, "
            f"equivalent on {row['equivalent']}")
