"""The shampoo study as a reader sees it: the compare stage's section of the report (``paths.shampoo_report``).

Everything is drawn from the compare stage's tables; nothing here computes a statistic (the plots are in
``pipeline.analysis.figures``). The section opens with the answer, one line per expectation, and its scope;
the evidence follows, widest tables last or folded. The report stage (``pipeline.stages.report``) puts it
together with the other studies' sections as ``report.md`` and a self-contained ``report.html``
(``pipeline.analysis.document``).
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from pipeline import io
from pipeline.analysis import decision, figures, stats
from pipeline.params import to_yaml
from pipeline.provenance import library_versions

VERDICT_WORDS = decision.VERDICTS
PAIRING_PAYS = 0.8  # median paired/unpaired width below which the report says pairing narrows the intervals


@dataclass(frozen=True)
class Tables:
    """Everything the compare stage computed, as the report reads it."""

    results: pd.DataFrame  # regime, repeat, seed, rmse
    summary: pd.DataFrame  # describe(): statistics x regimes
    intervals: pd.DataFrame  # per regime: mean, median, p95 with intervals, tail shares, share beating baselines
    baselines: pd.DataFrame  # model, rmse, description, fit
    tests: pd.DataFrame  # stats.pairwise over one regime per group of twins (exploratory)
    twins: dict  # first regime of each group of identical regimes -> the group
    factors: pd.DataFrame  # per regime: its acting factors
    evidence: pd.DataFrame  # one row per (claim, pair): design, estimate, interval, endpoints, verdict
    verdicts: pd.DataFrame  # one row per claim
    sensitivity: pd.DataFrame  # claim x margin -> verdict
    published: pd.DataFrame  # the write-up's runs beside the pool
    a_vs_a: dict  # finding 1: A-vs-A spread of 10-repeat studies drawn from the pool
    se: pd.DataFrame  # regime, repeats, se_resampled, se_formula (the write-up's follow-up)
    forecasts: pd.DataFrame  # median repeat's per-step forecasts

    @property
    def order(self) -> list[str]:
        return list(self.summary.columns)

    def decisive(self) -> pd.DataFrame:
        return decisive(self.evidence)

    def evidence_by_claim(self) -> dict[str, list[dict]]:
        """Each claim's evidence rows as records, the table converted once (a conversion costs per column)."""
        grouped: dict[str, list[dict]] = {}
        for e in self.evidence.to_dict("records"):
            grouped.setdefault(e["key"], []).append(e)
        return grouped


def decisive(evidence: pd.DataFrame) -> pd.DataFrame:
    """The confirmatory mean contrasts on paired repeats: usable pairs, one row per distinct pair."""
    if evidence.empty:
        return evidence
    used = evidence[(evidence.endpoint == "mean") & evidence.usable.astype(bool)]
    if "sd_diff" in used:  # endpoints on the pairs need paired repeats
        used = used[used.sd_diff.notna()]
    if used.empty:  # e.g. one regime run: no contrast decides anything
        return used
    return used.loc[~used.apply(lambda r: frozenset((r.a, r.b)), axis=1).duplicated()]


@dataclass(frozen=True)
class Plots:
    boxplot: Path
    se: Path
    forecasts: Path

    def __iter__(self) -> Iterator[Path]:
        return (getattr(self, f.name) for f in fields(self))


def _now(draw: Callable[..., None], *args: Any) -> None:
    draw(*args)


def draw_evaluated(results: pd.DataFrame, order: list[str], baselines: pd.DataFrame, forecasts: pd.DataFrame,
                   plots: Plots, submit: Callable[..., Any] = _now) -> list[Any]:
    """The plots drawn from evaluate's tables alone (the RMSE boxplot, the median forecasts), each through
    ``submit`` (drawn now, or by a worker's ``submit``: then the futures are returned)."""
    return [submit(figures.boxplot, results, order, baselines, plots.boxplot),
            submit(figures.forecast_plot, forecasts, order, plots.forecasts)]


def draw_compared(cfg: DictConfig, evidence: pd.DataFrame, plots: Plots, submit: Callable[..., Any] = _now) -> Any:
    """The plot drawn from the claims' evidence: where each decisive contrast stands, and the repeats it needs."""
    return submit(figures.repeats_plot, decisive(evidence), cfg.stats.margin, 1 - cfg.stats.alpha, plots.se)


def draw(cfg: DictConfig, tables: Tables, plots: Plots) -> None:
    draw_evaluated(tables.results, tables.order, tables.baselines, tables.forecasts, plots)
    draw_compared(cfg, tables.evidence, plots)


# --- formatting -----------------------------------------------------------------------------------


def _num(value: float, digits: int = 2, sign: bool = False) -> str:
    """Fixed decimals, or two significant digits for values too small to show that way (-0.0012, not -0.00)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    value = value + 0.0  # -0.0 prints as 0
    spec = f".{digits}f" if value == 0 or abs(value) >= 0.5 * 10.0**-digits else ".2g"
    return format(value, ("+" if sign else "") + spec)


def _p(value: float) -> str:
    if value is None or math.isnan(value):
        return "—"
    return "<1e-300" if value == 0 else f"{value:.2g}"


def _ci(low: float, high: float, sign: bool = False) -> str:
    return f"[{_num(low, sign=sign)}, {_num(high, sign=sign)}]"


def _diff_ci(row: dict) -> str:
    """A pair's mean difference with its interval: ``+1.23 [+0.80, +1.66]``."""
    return f"{_num(row['mean_diff'], sign=True)} {_ci(row['ci_low'], row['ci_high'], sign=True)}"


def markdown_table(frame: pd.DataFrame, index: bool = False) -> str:
    return frame.to_markdown(index=index, disable_numparse=True)


def _level(cfg: DictConfig) -> str:
    """The confidence level of every interval, 1 - alpha, as a percentage."""
    return f"{1 - cfg.stats.alpha:.0%}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _family(evidence: pd.DataFrame) -> int:
    """How many distinct pairs Holm's correction ran over."""
    if "in_family" not in evidence:
        return 0
    family = evidence[evidence.in_family.fillna(False).astype(bool)]
    return len({frozenset(p) for p in zip(family.a, family.b, strict=True)})


def _side(low: float, high: float, at: float) -> int:
    """-1, 0 or +1: an interval wholly below ``at``, across it, or wholly above it."""
    return -1 if high < at else 1 if low > at else 0


def _pair(e: dict) -> str:
    return f"`{e['a']}` - `{e['b']}`"


def _effect(e: dict) -> str:
    """An evidence row's estimate with its interval: RMSE and % for a mean, a ratio for a spread."""
    if e["verdict"] == decision.NOT_RUN:
        return f"`{e['missing']}` not run"
    if e["endpoint"] == "spread":
        return f"SD ratio {e['estimate']:.2f} [{e['low']:.2f}, {e['high']:.2f}]"
    return (f"{_num(e['estimate'], sign=True)} {_ci(e['low'], e['high'], sign=True)} RMSE "
            f"({round(e['pct'], 1) + 0.0:+.1f}%)")


def _words(e: dict, margin: float) -> str:
    """What a decided mean pair says, in words."""
    a, b, est = f"`{e['a']}`", f"`{e['b']}`", e["estimate"]
    if e["verdict"] == decision.NOT_RUN:
        return f"not run ({e['missing']} not in this study)"
    if e["kind"] == "equal by construction":
        return "identical repeat for repeat: equal by construction"
    size = f"{abs(est):.2f} RMSE ({abs(e['pct']):.1f}%)"
    if e["position"] == decision.BELOW:
        return f"{a} is lower than {b} by {size}, beyond the ±{margin:g} margin"
    if e["position"] == decision.ABOVE:
        return f"{a} is higher than {b} by {size}, beyond the ±{margin:g} margin"
    if e["position"] == decision.INSIDE:
        tail = ": significant but negligible" if e["negligible"] else ""
        return f"the difference lies within ±{margin:g}{tail}"
    needed = f"about {e['needed']:.0f} repeats would settle it" if np.isfinite(e["needed"]) else "it sits on the margin"
    if e.get("position_95") in (decision.BELOW, decision.ABOVE, decision.INSIDE):
        side = {decision.BELOW: "below -", decision.ABOVE: "above +", decision.INSIDE: "inside ±"}[e["position_95"]]
        return (f"the 95% interval alone lies {side}{margin:g}, but not once Holm's correction over the "
                f"{int(e['family'])} confirmatory contrasts is applied; {needed}")
    return f"the interval straddles the ±{margin:g} margin; {needed}"


# --- sections -------------------------------------------------------------------------------------


def answer(cfg: DictConfig, tables: Tables) -> str:
    margin = cfg.stats.margin
    mean_rmse = float(tables.intervals["mean"].mean())
    lines = []
    verdicts = tables.verdicts.set_index("key")
    evidence = tables.evidence_by_claim()
    for key in [k for k in verdicts.index if k.startswith("E")]:
        v = verdicts.loc[key]
        group = evidence.get(key, [])
        used = [e for e in group if e["usable"]]
        unused = [e for e in group if not e["usable"] and e["verdict"] != decision.NOT_RUN]
        if v.verdict == decision.NOT_RUN:
            detail = "; ".join(f"{_pair(e)} {_effect(e)}" for e in group)
        elif not used:
            detail = "no pair in this study changes that factor alone"
        else:
            detail = "; ".join(f"{_pair(e)} = {_effect(e)}: {_words(e, margin)}" for e in used)
        if unused:
            detail += " (not used: " + ", ".join(f"{_pair(e)}, {e['kind']}" for e in unused) + ")"
        lines.append(f"- **{key[1:]}. {v.claim}: {v.verdict}.** {detail}.")
    every = [*tables.verdicts.verdict, *([tables.a_vs_a["verdict"]] if "verdict" in tables.a_vs_a else [])]
    others = [*tables.verdicts.verdict[~tables.verdicts.key.str.startswith("E")],
              *([tables.a_vs_a["verdict"]] if "verdict" in tables.a_vs_a else [])]
    tally = ", ".join(f"{others.count(w)} {w}" for w in VERDICT_WORDS if w in others)
    counts = ", ".join(f"{every.count(w)} {w}" for w in VERDICT_WORDS if w in every)
    best = tables.baselines.sort_values("rmse").iloc[0]
    how = ", ".join(str(best[c]) for c in ("description", "fit") if c in best and isinstance(best[c], str))
    rmse = tables.results.rmse.to_numpy()
    beaten = float(np.mean(best.rmse < rmse))
    n = int(tables.summary.loc["count"].max())
    return f"""## The answer

Verdicts on the write-up's six expectations, each decided by where the {_level(cfg)} interval of the mean
difference lies against a smallest effect that matters of ±{margin:g} RMSE ({100 * margin / mean_rmse:.1f}% of
the mean RMSE {mean_rmse:.1f}), on the regime pairs that differ in exactly the factor it is about. a - b < 0
means a forecasts better.

{chr(10).join(lines)}

The write-up's other {len(others)} claims (its review's findings and its remarks on spread): {tally}; see
[every claim](#verdicts-on-every-claim). Against all of this, the best classical baseline, `{best.model}`
({how}), scores {best.rmse:.1f} RMSE, better than {beaten:.1%} of all {len(rmse)}
LSTM repeats: a bigger gap than any regime effect.

**Scope.** One series (shampoo sales, 36 months), one split (the last 12 months forecast walk-forward), one
model configuration. The {n} repeats per regime measure *training randomness only* (initial weights and, where
shuffled, row order); they say how precisely these regimes are compared on this split, not how they would
rank on other series or splits. Generality is the question of a panel of series, not of this report.
Verdict counts over every claim: {counts}.
"""


def question(cfg: DictConfig, tables: Tables) -> str:
    regimes = OmegaConf.to_container(cfg.regime, resolve=True)
    rows = [
        {
            "regime": name,
            "stateful": _yes(r["stateful"]),
            "training rows": "all" if r["train_rows"] is None else f"last {r['train_rows']}",
            "batch": r["batch_size"],
            "shuffle": _yes(r["shuffle"]),
            "reset after epoch": _yes(r["reset_after_epoch"]) if r["stateful"] else "(every batch)",
            "warm on training set": _yes(r["warm_start"]),
            "reset after prediction": _yes(r["reset_after_prediction"]) if r["stateful"] else "(every batch)",
            "forecast": "one step at a time" if r["forecast"] == "one_step" else "test rows in one batch",
        }
        for name, r in regimes.items()
        if name in tables.order
    ]
    return f"""## The question and the design

An LSTM carries an internal state from one input to the next. Keras lets that state be kept (stateful) or
cleared after every batch (stateless), and a stateful model can be reset after each training epoch, warmed
up on the training set before forecasting, or reset between forecasts. The write-up this study reproduces
fits a one-unit LSTM to the first two years of monthly shampoo sales and forecasts the third year one month
at a time, feeding each actual month back in (walk-forward validation). It compared ten ways of managing the
state by eye over 10 repeats and asked for more repeats and significance tests. Lower RMSE is better.

The regimes as their records state them:

{markdown_table(pd.DataFrame(rows))}

What reaches the state is not always what a record says: a stateful layer on one batch per epoch, reset after
each, never passes state between batches; a reset after every prediction undoes a warm-up; training that is
never reset starts the test from the state training ended in. The same regimes as the factors *act*
(derived from the records by `pipeline/analysis/contrasts.py`), which is what the contrasts below are built on:

{markdown_table(tables.factors)}
"""


def claims_section(cfg: DictConfig, tables: Tables) -> str:
    margin, level = cfg.stats.margin, _level(cfg)
    rows = []
    evidence = tables.evidence_by_claim()
    for v in tables.verdicts.to_dict("records"):
        group = evidence.get(v["key"], [])
        used = [e for e in group if e["usable"]] or group
        rows.append({
            "#": v["key"], "claim (source)": f"{v['claim']} ({v['source']})",
            "decided on (a - b)": "<br>".join(f"{_pair(e)}: {_effect(e)}" for e in used),
            "verdict": v["verdict"],
        })
    f1 = tables.a_vs_a
    if "mean" in f1:
        rows.append({
            "#": f1["key"], "claim (source)": f"{f1['text']} ({f1['source']})",
            "decided on (a - b)": (f"two {f1['repeats']}-repeat studies of `{f1['regime']}` drawn from the pool: "
                                   f"means differ by a median {f1['mean']['median']:.2f} (middle half "
                                   f"{f1['mean']['q25']:.2f}-{f1['mean']['q75']:.2f}), SDs by "
                                   f"{f1['std']['median']:.2f} ({f1['std']['q25']:.2f}-{f1['std']['q75']:.2f})"),
            "verdict": f1["verdict"],
        })
    sens = tables.sensitivity.rename(columns=lambda m: f"margin ±{m:g}").reset_index(names="#")
    s = cfg.stats
    return f"""## Verdicts on every claim

The write-up's six expectations (E), the findings of its review (F) and its remarks on spread (S). Its
wording is paraphrased; where the write-up only says "may", the claim is read as its plain direction.

{markdown_table(pd.DataFrame(rows))}

**Decision rule.** A smallest effect of interest, ±{margin:g} RMSE (`stats.margin`), says how big a
difference must be to matter. A claim on mean RMSE is decided by where the {level} interval of the mean
paired difference lies: wholly beyond the margin in the claimed direction, **supported**; wholly beyond it the
other way, **contradicted**; wholly inside ±{margin:g}, **equivalent** (*significant but negligible* when it
also excludes 0); straddling a margin, **inconclusive**. An "alike" claim is supported by equivalence and
contradicted only by an interval wholly outside the margin; "no obvious improvement" is supported unless the
interval lies wholly below -{margin:g}. Each statement is a one-sided t test against a margin
(statsmodels' `ttest_mean`; TOST, `ttost_mean`, for equivalence), and Holm's method runs over the
{_family(tables.evidence)} distinct confirmatory contrasts (one family; the full pairwise table below is
exploratory), so an interval just beyond a margin at 95% can stay inconclusive after the correction (the
answer says so where it happens); intervals are shown at 95%, unadjusted. Only pairs that differ in exactly the
factor a claim is about decide it; compound pairs are shown, not used. Spread claims compare SDs: the
bootstrap {level} interval of the SD ratio against 1/(1+{s.spread_margin:g}) .. 1+{s.spread_margin:g}
(`stats.spread_margin`). A claim with several usable pairs takes the verdict they reach without conflict;
F7, about regimes as wholes, needs every pair. F1 is supported when 3 is a typical A-vs-A gap (within the
middle half) and contradicted when it falls outside the middle 95%.

How the verdicts move with the margin (`stats.margin_sensitivity`):

{markdown_table(sens)}
"""


def contrasts_section(tables: Tables) -> str:
    rows, notes = [], {}
    seen = set()
    for e in tables.evidence.to_dict("records"):
        if (e["a"], e["b"], e["key"][0]) in seen:
            continue
        seen.add((e["a"], e["b"], e["key"][0]))
        differs = e.get("factors") or "—"
        if isinstance(e.get("implied"), str) and e["implied"]:
            differs += f" (implies: {e['implied']})"
        rows.append({"claim": e["key"], "a vs b": f"`{e['a']}` vs `{e['b']}`", "acting factors that differ": differs,
                     "kind": e["kind"], "decides": "yes" if e["usable"] else "no"})
        if isinstance(e.get("note"), str) and e["note"] and not any(set(k) == {e["a"], e["b"]} for k in notes):
            notes[(e["a"], e["b"])] = e["note"]
    note_lines = "\n".join(f"- `{a}` vs `{b}`: {note}" for (a, b), note in notes.items())
    return f"""## Contrasts: which factors each pair differs in

A pair decides a claim only when it differs in exactly the factor the claim is about (clean); pairs that
differ in more (compound) are shown but not used, and so are pairs null by construction. Against a
stateless regime, the resets during training and between predictions are part of what "stateful" means, so
they are listed as implied, not as further differences.

{markdown_table(pd.DataFrame(rows))}

Pairs equal or null by construction:

{note_lines or "- none in this study"}
"""


def endpoints_section(cfg: DictConfig, tables: Tables) -> str:
    rows, words = [], []
    level, margin = _level(cfg), cfg.stats.margin
    for e in tables.decisive().to_dict("records"):
        rows.append({
            "a - b": _pair(e),
            f"mean [{level} CI]": f"{_num(e['estimate'], sign=True)} {_ci(e['low'], e['high'], sign=True)}",
            f"Hodges-Lehmann shift [{level} CI]": f"{_num(e['hl'], sign=True)} {_ci(e['hl_low'], e['hl_high'], True)}",
            f"P(a < b) on pairs [{level} CI]": f"{e['p_lower']:.2f} [{e['p_lower_low']:.2f}, {e['p_lower_high']:.2f}]",
            f"repeats within ±{margin:g}": f"{e['within_margin']:.0%}",
            "differences min .. max": f"{_num(e['diff_min'], sign=True)} .. {_num(e['diff_max'], sign=True)}",
        })
        mean_zero, hl_zero = _side(e["low"], e["high"], 0.0), _side(e["hl_low"], e["hl_high"], 0.0)
        mean_margin, hl_margin = e["position"], decision.locate(e["hl_low"], e["hl_high"], margin)
        if mean_zero != hl_zero or mean_margin != hl_margin:
            words.append(
                f"- {_pair(e)}: the mean, {_num(e['estimate'], sign=True)} {_ci(e['low'], e['high'], True)}, and the "
                f"bulk disagree: the median paired shift is {_num(e['hl'], sign=True)} "
                f"{_ci(e['hl_low'], e['hl_high'], True)} and `{e['a']}` is lower in {e['p_lower']:.0%} of repeats. "
                f"The differences run from {_num(e['diff_min'], sign=True)} to {_num(e['diff_max'], sign=True)} "
                f"(excess kurtosis {e['kurtosis']:.0f}): a few repeats with large differences, not the typical "
                "repeat, set the mean.")
    tail = pd.DataFrame({
        "regime": tables.intervals.regime,
        f"mean [{level} CI]": [f"{_num(r['mean'])} {_ci(r['mean_low'], r['mean_high'])}"
                               for r in tables.intervals.to_dict("records")],
        "median": tables.intervals["median"].map(_num),
        f"95th percentile [{level} CI]": [f"{_num(r['p95'])} {_ci(r['p95_low'], r['p95_high'])}"
                                          for r in tables.intervals.to_dict("records")],
        "repeats worse than persistence": [f"{v:.1%}" for v in tables.intervals.worse_than_persistence],
    })
    agree = "\n".join(words) or "- For every confirmatory contrast the mean and the bulk point the same way."
    return f"""## Mean, bulk and tail

The primary endpoint is the mean RMSE, as in the write-up's tables. Two robust endpoints on the same pairs
say what the bulk of repeats does: the Hodges-Lehmann shift (median of the pairwise averages of the per-repeat
differences, with the interval that inverts the Wilcoxon signed-rank test) and P(a < b), the share of
repeats in which a forecasts better (bootstrap interval). Where they disagree with the mean, the tail is why:

{agree}

{markdown_table(pd.DataFrame(rows))}

Tail risk per regime: the 95th percentile of RMSE over repeats (distribution-free interval from order
statistics) and the share of repeats that forecast worse than persistence.

{markdown_table(tail)}
"""


def rmse_section(cfg: DictConfig, tables: Tables, plots: Plots, rel: dict[Path, str]) -> str:
    summary = tables.summary.T.map(lambda v: _num(v, 3))
    summary["count"] = tables.summary.T["count"].map(lambda v: f"{v:.0f}")
    return f"""## RMSE per regime

The write-up's table, one row per regime: the distribution of test RMSE over the repeats.

{markdown_table(summary, index=True)}

![RMSE by regime]({rel[plots.boxplot]})
"""


def baselines_section(cfg: DictConfig, tables: Tables) -> str:
    previous = "one" if cfg.model.lag == 1 else f"{cfg.model.lag} (`model.lag`)"
    rmse = tables.results.rmse.to_numpy()
    b = tables.baselines
    fit = b.get("fit", "")
    frame = pd.DataFrame({
        "baseline": b.model,
        "forecasts each test month from": b.description if "description" in b else "",
        "fitted": fit,
        "RMSE": b.rmse.map(lambda v: _num(v, 3)),
        "LSTM repeats it beats": [f"{np.mean(v < rmse):.1%}" for v in b.rmse],
    })
    return f"""## Baselines

Scored on the same test months with the same walk-forward harness: each sees every actual observation before
the month it forecasts. The statistical models are scored twice: refit before every month on everything seen
so far (up to 35 observations), and fitted once on the 24 training months the LSTMs learn from, parameters
then held fixed (the fair comparison). `linear_lag1` regresses a month's scaled difference on the previous
{previous}: the LSTMs' own inputs and scaler, without the LSTM.

{markdown_table(frame)}
"""


def published_section(cfg: DictConfig, tables: Tables) -> str:
    pub = tables.published
    if pub.empty:
        return "## Published against reproduced\n\nThe write-up publishes no figures for this series.\n"
    rows = []
    for r in pub.to_dict("records"):
        if r["missing"]:
            rows.append({"regime (run)": f"{r['regime']} ({r['run']})", "published mean (SD)": f"{r['mean']:.2f} "
                         f"({r['std']:.2f})", "pool mean (SD)": "not run", "draws as far: mean": "not run",
                         "draws as far: SD": "not run"})
            continue
        rows.append({
            "regime (run)": f"{r['regime']} ({r['run']})",
            "published mean (SD)": f"{r['mean']:.2f} ({r['std']:.2f})",
            "pool mean (SD)": f"{r['pool_mean']:.2f} ({r['pool_std']:.2f})",
            "draws as far: mean": f"{r['p_mean']:.1%}", "draws as far: SD": f"{r['p_std']:.1%}",
        })
    n = int(pub.repeats.iloc[0])
    unusual = pub[~pub.missing.astype(bool) & (pub.p_mean < 0.05)] if "p_mean" in pub else pub.iloc[:0]
    f1 = tables.a_vs_a
    a_vs_a = ""
    if "mean" in f1 and "published" in f1["mean"]:
        a_vs_a = (f" The write-up's own A-vs-A test (two runs of `{f1['regime']}`) differed by "
                  f"{f1['mean']['published']:.2f} in the mean and {f1['std']['published']:.2f} in the SD; two "
                  f"{f1['repeats']}-repeat studies drawn from the pool differ by at least as much in "
                  f"{f1['mean']['p_published']:.0%} and {f1['std']['p_published']:.0%} of draws.")
    names = ", ".join(f"`{r.regime}` (run {r.run})" for r in unusual.itertuples()) or "none"
    return f"""## Published against reproduced

The write-up's {n}-repeat means and SDs beside this study's pool, and how often a study of {n} repeats drawn
from the pool ({cfg.stats.se_draws} draws) lands at least that far from the pool's mean (or SD). A large share
means the published figure is ordinary luck at {n} repeats; a small one means it differs from this
reproduction by more than luck (the write-up ran Keras 2 on other hardware, so a systematic difference is
possible). Published means that luck explains less than 5% of the time: {names}.{a_vs_a}

{markdown_table(pd.DataFrame(rows))}
"""


def repeats_section(cfg: DictConfig, tables: Tables, plots: Plots, rel: dict[Path, str]) -> str:
    margin, level = cfg.stats.margin, _level(cfg)
    rows = []
    for e in tables.decisive().to_dict("records"):
        needed = f"{e['needed']:.0f}" if np.isfinite(e["needed"]) else "never (on a margin)"
        rows.append({
            "a - b": _pair(e), "mean difference": _num(e["estimate"], sign=True),
            "SD of the differences": _num(e["sd_diff"]), "repeats now": f"{int(e['n'])}",
            "interval now": _ci(e["low"], e["high"], sign=True), "verdict": e["verdict"],
            f"repeats to resolve against ±{margin:g}": needed,
        })
    return f"""## How many repeats a decision needs

For each confirmatory contrast, the repeats at which its interval (half-width z·sd/√n, from the SD of the
*paired differences*, at the {level} level Bonferroni-adjusted over the confirmatory family so that it holds
after Holm's correction) would clear the nearest margin around the observed difference, so that the verdict
no longer depends on more data. A contrast far from both margins settles with few repeats; one whose
difference sits near a margin needs many, or never settles. (The write-up's proposed follow-up, the standard
error of each regime's own mean against the number of repeats, is sd/√n by construction; it is kept in
`se_repeats.csv` for the record.)

{markdown_table(pd.DataFrame(rows))}

![Repeats each decision needs]({rel[plots.se]})
"""


def forecast_section(plots: Plots, rel: dict[Path, str]) -> str:
    return f"""## Forecasts of the median repeat

For each regime, the repeat with the median RMSE (the lower middle one for an even count), its one-step
forecast of each test month against the actual sales. The same data, one CSV per regime, is registered as a
DVC plot.

![Forecast against actual]({rel[plots.forecasts]})
"""


def pairwise_section(cfg: DictConfig, tables: Tables) -> str:
    level = _level(cfg)
    name = {head: " = ".join(f"`{g}`" for g in group) for head, group in tables.twins.items()}
    rows = [
        {
            "a": name[r["a"]], "b": name[r["b"]], "design": r["design"],
            f"mean a - b [{level} CI]": _diff_ci(r),
            "rank test p (Holm)": _p(r["rank_p_holm"]), "t test p (Holm)": _p(r["mean_p_holm"]),
            "d_z": _num(r["d_z"], sign=True), "outcome": r["outcome"],
        }
        for r in tables.tests.to_dict("records")
    ]
    merged = [g for g in tables.twins.values() if len(g) > 1]
    twins = "; ".join(" = ".join(g) for g in merged) or "none"  # plain: markdown is not rendered in <summary>
    paired = tables.tests[tables.tests.design == stats.PAIRED]
    ratio = paired.width_ratio
    pairing = ""
    if len(paired):
        pairing = (f" Pairing: across the {len(paired)} paired pairs the paired interval is a median "
                   f"{ratio.median():.0%} as wide as the unpaired (Welch) one on the same repeats "
                   f"({ratio.min():.0%} to {ratio.max():.0%}), narrower for {int((ratio < 1).sum())} of them"
                   + (": the shared initial weights cancel much of a repeat's luck." if ratio.median() < PAIRING_PAYS
                      else "; by the end of training most of a repeat's luck is its regime's own."))
    tested = int(tables.tests.rank_p.notna().sum())
    return f"""## Every pair of regimes (exploratory)

<details><summary>All {len(tables.tests)} pairs of distinct regimes (twins merged: {twins})</summary>

Exploratory, not part of the verdicts: Wilcoxon signed-rank and paired t tests on the per-repeat differences
(Mann-Whitney U and Welch's t for pairs with different seeds), Holm-corrected over these {tested} tests per
family, t intervals of the mean difference. An outcome names the lower regime only when both tests reject and
the mean and median differences agree in sign; "tests disagree" is mostly heavy tails (see
[Mean, bulk and tail](#mean-bulk-and-tail)).{pairing}

{markdown_table(pd.DataFrame(rows))}

</details>
"""


def setup(cfg: DictConfig, tables: Tables, data_sha256: str) -> str:
    results = tables.results
    seeds = {name: tuple(g.sort_values("repeat").seed) for name, g in results.groupby("regime", sort=False)}
    groups = list(dict.fromkeys(seeds.values()))
    if len(groups) == 1:
        design = "repeat *r* of every regime used the same seed, so it started from the same initial weights "
        design += "(a paired design: regimes are compared repeat by repeat)"
    else:
        by_group = [", ".join(f"`{n}`" for n, s in seeds.items() if s == g) for g in groups]
        design = "regimes fall into groups with different seeds (pairs across groups are tested unpaired): "
        design += "; ".join(by_group)
    first = groups[0][:10]
    shown = ", ".join(f"{r}: {s}" for r, s in enumerate(first))
    pinned = cfg.data.sha256
    if not pinned:
        check = "no pinned checksum"
    else:
        check = "matches the pinned checksum" if pinned == data_sha256 else f"**differs from the pinned** `{pinned}`"
    versions = {**library_versions(), **{lib: metadata.version(lib) for lib in ("statsmodels", "matplotlib")}}
    software = ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
    s = cfg.stats
    # lag 1, the write-up's input, goes unsaid: a lag-1 report reads as it always has
    inputs = f", each input the {cfg.model.lag} previous differences" if cfg.model.lag > 1 else ""
    return f"""## Setup

- **Data**: `{cfg.paths.raw}` ({cfg.data.name}), the last {cfg.data.test_size} months forecast walk-forward;
  sha256 `{data_sha256}` ({check}).
- **Model**: LSTM with {cfg.model.units} unit(s) and a dense output, {cfg.model.epochs} epochs, Adam
  (learning rate {cfg.model.learning_rate}){inputs}; engine `{cfg.engine.name}`.
- **Repeats and seeds**: {int(tables.summary.loc["count"].max())} repeats per regime, base seed {cfg.base_seed};
  {design}. Seeds of the first repeats: {shown}. Every repeat's seed is in `{cfg.paths.results}`.
- **Statistics**: alpha {s.alpha}, Holm over the confirmatory family; margin ±{s.margin:g} RMSE (sensitivity
  at {", ".join(f"{f:g}x" for f in s.margin_sensitivity)}), spread margin {s.spread_margin:g};
  {s.bootstrap_method} bootstrap intervals at {1 - s.alpha:.0%} with {s.bootstrap_resamples} resamples, seed
  {s.bootstrap_seed}; {s.se_draws} studies drawn from the pool per published run.
- **Software**: Python {platform.python_version()}, {software}.

<details><summary>Resolved configuration (params.yaml as composed from conf/)</summary>

```yaml
{to_yaml(cfg).rstrip()}
```

</details>
"""


# --- the section ---------------------------------------------------------------------------------


def markdown(cfg: DictConfig, tables: Tables, plots: Plots, data_sha256: str, fragment: Path) -> str:
    """The study's section, its image links relative to ``fragment``'s folder."""
    here = fragment.parent
    rel = {path: Path(os.path.relpath(path, here)).as_posix() for path in plots}
    sections = [
        f"# How should an LSTM's state be managed? State regimes compared on the {cfg.data.name} series\n\n"
        f"*Written by the `compare` stage (`dvc repro`) from `{cfg.paths.results}`; every figure is recomputed "
        "from the study's outputs, nothing is typed in.*\n",
        answer(cfg, tables),
        question(cfg, tables),
        claims_section(cfg, tables),
        contrasts_section(tables),
        endpoints_section(cfg, tables),
        rmse_section(cfg, tables, plots, rel),
        baselines_section(cfg, tables),
        published_section(cfg, tables),
        repeats_section(cfg, tables, plots, rel),
        forecast_section(plots, rel),
        pairwise_section(cfg, tables),
        setup(cfg, tables, data_sha256),
    ]
    return "\n".join(sections)


def write(cfg: DictConfig, tables: Tables, plots: Plots, data_sha256: str, fragment: Path) -> None:
    io.write_text(fragment, markdown(cfg, tables, plots, data_sha256, fragment))
