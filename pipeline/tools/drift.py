"""Has a reproduction drifted from the committed reference? Parameters, DVC metrics and per-repeat tables compared.

Pure functions of tables and mappings (no files, no TensorFlow), used by ``pipeline.tools.reproduce``. Two tolerances:

- *exact*, when the reproduction ran on the platform the reference was made on (same OS, CPU family, Python
  and pinned libraries): the study is deterministic there, so any bit that differs is drift.
- *distribution*, on another platform, where floating-point round-off may legitimately move single numbers:
  each outcome column of each per-repeat table is tested against the reference, per group (regime, framing),
  with the comparison stage's tests (``pipeline.analysis.stats``: Wilcoxon signed-rank and paired t when the seeds
  pair up, Mann-Whitney U and Welch t when they do not), Holm-corrected over every column tested; a column
  drifts when either test rejects at ``stats.alpha``. No fixed epsilon on any single number.

Either way, a reference made with other parameters is stale, and that is drift too: the fix is a refresh.

A *per-repeat table* is a CSV with ``repeat`` and ``seed`` columns; the columns before ``repeat`` name the
group (``regime`` in ``regime, repeat, seed, rmse``; none in ``repeat, seed, ...``), and its numeric and
boolean columns after them are the outcomes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from pipeline.analysis import stats

Mode = Literal["exact", "distribution"]
REFERENCE, REPRODUCED = "reference", "reproduced"
KEY_COLUMNS = ("repeat", "seed")
UNTESTABLE = "untestable"
TESTED = ("design", "mean_diff", "median_diff", "ci_low", "ci_high", "rank_test", "rank_p", "mean_test", "mean_p")
TEST_COLUMNS = [
    "table",
    "column",
    "repeats",
    "differ",
    "largest",
    "mean_reference",
    "mean_reproduced",
    *TESTED,
    "outcome",
]


@dataclass(frozen=True)
class Change:
    """One thing that differs from the reference: a parameter, a metric or a per-repeat outcome."""

    kind: str  # "parameter", "metric", "outcome" or "table"
    name: str  # e.g. model.epochs, reports/metrics.json:stateful.mean, reports/results.csv[regime=stateful].rmse
    old: Any
    new: Any
    detail: str = ""

    def describe(self) -> str:
        moved = f"{_fmt(self.old)} -> {_fmt(self.new)}"
        if _is_number(self.old) and _is_number(self.new):
            delta = self.new - self.old
            moved += f" ({delta:+.6g}" + (f", {delta / abs(self.old):+.2%})" if self.old else ")")
        return f"{self.kind} {self.name}: {moved}" + (f"; {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class Verdict:
    mode: Mode
    drift: tuple[Change, ...]  # beyond tolerance: the job fails
    within: tuple[Change, ...]  # moved, but within the tolerance of the mode


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool) and np.isfinite(value)


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if _is_number(value) else repr(value)


# --------------------------------------------------------------------------- parameters and DVC metrics


def flat(tree: Mapping[str, Any]) -> dict[str, Any]:
    """``{"model": {"epochs": 1}}`` -> ``{"model.epochs": 1}`` (lists stay whole)."""
    return pd.json_normalize(dict(tree), sep=".").iloc[0].to_dict() if tree else {}


def param_changes(reference: Mapping[str, Any], current: Mapping[str, Any]) -> list[Change]:
    """Every parameter, by dotted name, whose value differs (or that exists on one side only)."""
    old, new = flat(reference), flat(current)
    missing = "<absent>"
    return [
        Change("parameter", key, old.get(key, missing), new.get(key, missing))
        for key in sorted(old.keys() | new.keys())
        if old.get(key, missing) != new.get(key, missing)
    ]


def metric_changes(diff: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[Change]:
    """The changes in ``dvc metrics diff --json`` output: ``{file: {metric: {"old", "new", "diff"}}}``."""
    return [
        Change("metric", f"{path}:{metric}", values.get("old"), values.get("new"))
        for path, metrics in sorted(diff.items())
        for metric, values in sorted(metrics.items())
        if values.get("old") != values.get("new")
    ]


# ------------------------------------------------------------------------------------ per-repeat tables


def is_per_repeat(columns: pd.Index | list[str]) -> bool:
    return all(key in columns for key in KEY_COLUMNS)


def layout(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(group columns, outcome columns) of a per-repeat table."""
    columns = list(table.columns)
    groups = columns[: columns.index("repeat")]
    outcomes = [
        c
        for c in columns
        if c not in (*groups, *KEY_COLUMNS)
        and (pd.api.types.is_numeric_dtype(table[c]) or pd.api.types.is_bool_dtype(table[c]))
    ]
    return groups, outcomes


def _identical(a: pd.Series, b: pd.Series) -> bool:
    if pd.api.types.is_float_dtype(a) and pd.api.types.is_float_dtype(b):
        return np.array_equal(a.to_numpy(np.float64).view(np.uint64), b.to_numpy(np.float64).view(np.uint64))
    return a.astype(str).tolist() == b.astype(str).tolist()


def _sample(rows: pd.DataFrame, column: str) -> stats.Sample:
    finite = rows[np.isfinite(rows[column].astype(np.float64))]
    return stats.Sample(finite[column].to_numpy(np.float64), finite.seed.to_numpy(np.int64))


def table_rows(name: str, reference: pd.DataFrame, current: pd.DataFrame, boot: stats.Bootstrap) -> list[dict]:
    """One row per (group, outcome column): how many repeats differ, means, and the raw tests' p-values.

    Structural differences (other columns, groups or repeats) are rows with ``outcome`` set to what differs.
    """
    if list(reference.columns) != list(current.columns):
        moved = f"columns {list(reference.columns)} -> {list(current.columns)}"
        return [{"table": name, "column": "*", "outcome": moved}]
    groups, outcomes = layout(reference)
    rows = []
    ref_groups = dict(iter(reference.groupby(groups, sort=False))) if groups else {(): reference}
    cur_groups = dict(iter(current.groupby(groups, sort=False))) if groups else {(): current}
    for key in dict.fromkeys([*ref_groups, *cur_groups]):
        label = ",".join(f"{g}={v}" for g, v in zip(groups, key if isinstance(key, tuple) else (key,), strict=True))
        where = f"{name}[{label}]" if label else name
        old, new = ref_groups.get(key), cur_groups.get(key)
        if old is None or new is None:
            missing = "only in the reference" if new is None else "not in the reference"
            rows.append({"table": where, "column": "*", "outcome": missing})
            continue
        old, new = old.sort_values("repeat"), new.sort_values("repeat")
        if old.repeat.tolist() != new.repeat.tolist():
            rows.append({"table": where, "column": "repeat", "outcome": f"{len(old)} repeats -> {len(new)}"})
            continue
        for column in outcomes:
            rows.append({"table": where, "column": column, **_outcome_row(old, new, column, boot, f"{where}.{column}")})
    return rows


def _outcome_row(old: pd.DataFrame, new: pd.DataFrame, column: str, boot: stats.Bootstrap, label: str) -> dict:
    a, b = _sample(old, column), _sample(new, column)
    gaps = np.abs(new[column].to_numpy(np.float64) - old[column].to_numpy(np.float64))
    base = {
        "repeats": len(old),
        "differ": int((old[column].astype(str).to_numpy() != new[column].astype(str).to_numpy()).sum()),
        "largest": float(np.nanmax(gaps)) if np.isfinite(gaps).any() else float("nan"),
        "mean_reference": float(np.mean(a.values)) if len(a.values) else float("nan"),
        "mean_reproduced": float(np.mean(b.values)) if len(b.values) else float("nan"),
    }
    if _identical(old[column], new[column]) and old.seed.tolist() == new.seed.tolist():
        return {**base, "design": stats.IDENTICAL}
    if min(len(a.values), len(b.values)) < 2:
        return {**base, "design": UNTESTABLE}
    tested = stats.compare_pair(a, b, boot, label)
    return {**base, **{k: tested.get(k) for k in TESTED}}


def tests(rows: list[dict], alpha: float) -> pd.DataFrame:
    """Holm-correct every test in ``rows`` as one family per test kind, and read each row's outcome."""
    table = pd.DataFrame(rows).reindex(columns=TEST_COLUMNS)
    table["outcome"] = table.outcome.astype(object)
    table["rank_p_holm"] = stats.holm(table.rank_p.astype(float))
    table["mean_p_holm"] = stats.holm(table.mean_p.astype(float))
    tested = table.design.isin([stats.PAIRED, stats.UNPAIRED])
    table.loc[tested, "outcome"] = [
        stats.outcome({**row, "a": REFERENCE, "b": REPRODUCED}, alpha) for row in table[tested].to_dict("records")
    ]
    table.loc[table.design == stats.IDENTICAL, "outcome"] = stats.EQUIVALENT
    table.loc[table.design == UNTESTABLE, "outcome"] = "changed, with fewer than 2 finite values to test"
    return table


# ----------------------------------------------------------------------------------------------- verdict


def _outcome_change(row: Mapping[str, Any]) -> Change:
    name = f"{row['table']}.{row['column']}"
    if pd.isna(row.get("design")):
        return Change("table", name, REFERENCE, REPRODUCED, str(row["outcome"]))
    detail = f"{row['differ']}/{row['repeats']} repeats differ, by up to {row['largest']:.3g}"
    if row["design"] in (stats.PAIRED, stats.UNPAIRED):
        detail += (
            f"; {row['design']}: {row['rank_test']} p={row['rank_p_holm']:.3g}, {row['mean_test']} "
            f"p={row['mean_p_holm']:.3g} (Holm); {row['outcome']}"
        )
    return Change("outcome", f"mean {name}", row["mean_reference"], row["mean_reproduced"], detail)


def judge(mode: Mode, params: list[Change], metrics: list[Change], table: pd.DataFrame) -> Verdict:
    """Which changes are drift. ``exact``: all of them. ``distribution``: changed parameters, structure (columns,
    groups, repeats), outcomes that cannot be tested and outcomes whose tests reject; DVC metrics and outcomes
    that moved without a significant test are within tolerance."""
    moved = table[table.outcome != stats.EQUIVALENT]
    outcomes = [_outcome_change(row) for row in moved.to_dict("records")]
    if mode == "exact":
        return Verdict(mode, (*params, *metrics, *outcomes), ())
    within = (moved.outcome == stats.NO_DIFFERENCE).tolist()
    return Verdict(
        mode,
        (*params, *(c for c, ok in zip(outcomes, within, strict=True) if not ok)),
        (*metrics, *(c for c, ok in zip(outcomes, within, strict=True) if ok)),
    )
