"""The comparison as a reader sees it: plots (matplotlib), ``report.md`` and a self-contained ``report.html``.

Everything is drawn from the compare stage's tables; nothing here computes a statistic. The HTML is the
markdown rendered by markdown-it with every image embedded as base64, so it opens anywhere on its own.
Other studies contribute markdown fragments (``<paths.studies>/*.md``, PNGs beside them), one section each.
"""

from __future__ import annotations

import base64
import html
import math
import mimetypes
import os
import platform
from collections.abc import Iterator
from dataclasses import dataclass, fields
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from markdown_it import MarkdownIt
from omegaconf import DictConfig, OmegaConf

from pipeline import io
from pipeline.analysis import stats
from pipeline.params import to_yaml
from pipeline.provenance import library_versions

VERDICT_WORDS = (stats.SUPPORTED, stats.CONTRADICTED, stats.INCONCLUSIVE)
PAIRING_PAYS = 0.8  # median paired/unpaired width below which the report says pairing narrows the intervals


@dataclass(frozen=True)
class Tables:
    """Everything the compare stage computed, as the report reads it."""

    results: pd.DataFrame  # regime, repeat, seed, rmse
    summary: pd.DataFrame  # describe(): statistics x regimes
    intervals: pd.DataFrame  # per regime: mean, median, their intervals, share beating each baseline
    baselines: pd.DataFrame  # model, rmse[, description]
    tests: pd.DataFrame  # stats.pairwise
    verdicts: pd.DataFrame  # one row per (expectation, pair)
    se: pd.DataFrame  # regime, repeats, se_resampled, se_formula
    forecasts: pd.DataFrame  # median repeat's per-step forecasts

    @property
    def order(self) -> list[str]:
        return list(self.summary.columns)


@dataclass(frozen=True)
class Plots:
    boxplot: Path
    se: Path
    forecasts: Path

    def __iter__(self) -> Iterator[Path]:
        return (getattr(self, f.name) for f in fields(self))


# --- plots ----------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    _pyplot().close(fig)


def _colors(order: list[str]) -> dict[str, tuple]:
    cmap = _pyplot().get_cmap("tab10")
    return {name: cmap(i % 10) for i, name in enumerate(order)}


def draw(tables: Tables, plots: Plots) -> None:
    boxplot(tables, plots.boxplot)
    se_plot(tables, plots.se)
    forecast_plot(tables, plots.forecasts)


def boxplot(tables: Tables, path: Path) -> None:
    """The write-up's box-and-whisker plot, with the baselines near the RMSE range drawn across it."""
    plt, order, results = _pyplot(), tables.order, tables.results
    values = [results.loc[results.regime == r, "rmse"].to_numpy() for r in order]
    fig, ax = plt.subplots(figsize=(max(7, 1.0 * len(order)) + 2, 5))
    ax.boxplot(values, tick_labels=order, showmeans=True, meanprops={"markerfacecolor": "white"})
    low, high = min(v.min() for v in values), max(v.max() for v in values)
    span = high - low or 1.0
    near = [b for b in tables.baselines.rmse if low - span <= b <= high + span]  # worth stretching the axis for
    low, high = min([low, *near]), max([high, *near])
    pad = 0.06 * (high - low)
    ax.set_ylim(low - pad, high + pad)
    off_scale, styles = [], [("--", "dimgrey"), (":", "tab:brown"), ("-.", "tab:purple"), ((0, (5, 1)), "tab:olive")]
    for i, row in enumerate(tables.baselines.itertuples()):
        if low <= row.rmse <= high:
            (style, color), label = styles[i % len(styles)], f"{row.model} {row.rmse:.1f}"
            ax.axhline(row.rmse, linestyle=style, linewidth=1.3, color=color, label=label)
        else:
            off_scale.append(f"{row.model} {row.rmse:.1f}")
    if len(off_scale) < len(tables.baselines):
        ax.legend(title="baselines", fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    if off_scale:
        ax.set_xlabel("baselines off the scale: " + ", ".join(off_scale), fontsize=8, color="dimgrey")
    ax.set_ylabel("test RMSE (monthly sales)")
    ax.set_title(f"Walk-forward RMSE by state regime ({len(values[0])} repeats; triangle = mean)")
    ax.tick_params(axis="x", rotation=35)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    fig.tight_layout()
    _save(fig, path)


def se_plot(tables: Tables, path: Path) -> None:
    """Standard error of each regime's mean against the number of repeats (log-log)."""
    plt, colors = _pyplot(), _colors(tables.order)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for name in tables.order:
        rows = tables.se[tables.se.regime == name]
        ax.plot(rows.repeats, rows.se_resampled, marker="o", markersize=3, color=colors[name], label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_ticks(ax.xaxis, sorted(set(tables.se.repeats)))
    se = tables.se.se_resampled[tables.se.se_resampled > 0]
    nice = [m * 10.0**e for e in range(-3, 4) for m in (1, 2, 3, 5)]
    _plain_log_ticks(ax.yaxis, [t for t in nice if se.min() * 0.9 <= t <= se.max() * 1.1])
    ax.set_xlabel("repeats per regime")
    ax.set_ylabel("standard error of the mean RMSE")
    ax.set_title("How precise is a regime's mean? (studies resampled from the pool of repeats)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    _save(fig, path)


def _plain_log_ticks(axis, ticks: list[float]) -> None:
    """Label a log axis at ``ticks`` in plain numbers (5, 10, 0.2) rather than powers of ten."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_ticks(ticks)
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def forecast_plot(tables: Tables, path: Path) -> None:
    """Forecast against actual for each test month, one panel per regime (its median repeat)."""
    plt, colors, order = _pyplot(), _colors(tables.order), tables.order
    cols = min(5, len(order))
    rows = math.ceil(len(order) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), sharex=True, sharey=True, squeeze=False)
    for ax, name in zip(axes.flat, order, strict=False):
        steps = tables.forecasts[tables.forecasts.regime == name]
        ax.plot(steps.step, steps.actual, color="black", marker="o", markersize=3, label="actual")
        ax.plot(steps.step, steps.forecast, color=colors[name], marker="s", markersize=3, label="forecast")
        ax.set_title(f"{name}\nrepeat {steps.repeat.iloc[0]}, RMSE {steps.rmse.iloc[0]:.1f}", fontsize=9)
        ax.set_xticks(steps.step, steps.period, rotation=90, fontsize=7)
        ax.grid(True, alpha=0.3)
    for ax in axes.flat[len(order) :]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=8)
    fig.supylabel("monthly sales")
    fig.suptitle("One-step forecasts of the test months: the median repeat of each regime")
    fig.tight_layout()
    _save(fig, path)


# --- formatting -----------------------------------------------------------------------------------


def _num(value: float, digits: int = 2, sign: bool = False) -> str:
    """Fixed decimals, or two significant digits for values too small to show that way (-0.0012, not -0.00)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
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


def _table(frame: pd.DataFrame, index: bool = False) -> str:
    return frame.to_markdown(index=index, disable_numparse=True)


# --- sections -------------------------------------------------------------------------------------


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def question(cfg: DictConfig, tables: Tables) -> str:
    regimes = OmegaConf.to_container(cfg.regime, resolve=True)
    rows = [
        {
            "regime": name,
            "stateful": _yes(r["stateful"]),
            "training rows": "all" if r["train_rows"] is None else f"last {r['train_rows']}",
            "batch": r["batch_size"],
            "shuffle": _yes(r["shuffle"]),
            "reset after each epoch": _yes(r["reset_after_epoch"]) if r["stateful"] else "(every batch)",
            "warm state on training set": _yes(r["warm_start"]),
            "reset after each prediction": _yes(r["reset_after_prediction"]) if r["stateful"] else "(every batch)",
            "forecast": "one step at a time" if r["forecast"] == "one_step" else "all test rows in one batch",
        }
        for name, r in regimes.items()
        if name in tables.order
    ]
    n = int(tables.summary.loc["count"].max())
    return f"""## The question

An LSTM carries an internal state from one input to the next. Keras lets that state be kept (stateful) or
cleared after every batch (stateless), and a stateful model can be reset after each training epoch, warmed
up on the training set before forecasting, or reset between forecasts. The write-up this study reproduces
fits a one-unit LSTM to the first two years of monthly shampoo sales and forecasts the third year one month
at a time, feeding each actual month back in (walk-forward validation). It compared ten ways of managing the
state by eye over 10 repeats, stated six expectations, and ended by asking for more repeats and significance
tests. This report answers that request with **{n} repeats per regime**: each expectation is tested on the
regime pairs that differ only in what it is about, with paired tests, corrected p-values, effect sizes and
bootstrap intervals. Lower RMSE is better throughout.

{_table(pd.DataFrame(rows))}
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
    return f"""## Setup

- **Data**: `{cfg.paths.raw}` ({cfg.data.name}), the last {cfg.data.test_size} months forecast walk-forward;
  sha256 `{data_sha256}` ({check}).
- **Model**: LSTM with {cfg.model.units} unit(s) and a dense output, {cfg.model.epochs} epochs, Adam
  (learning rate {cfg.model.learning_rate}); engine `{cfg.engine.name}`.
- **Repeats and seeds**: {int(tables.summary.loc["count"].max())} repeats per regime, base seed {cfg.base_seed};
  {design}. Seeds of the first repeats: {shown}. Every repeat's seed is in `{cfg.paths.results}`.
- **Statistics**: alpha {s.alpha} after Holm's correction; {s.bootstrap_method} bootstrap intervals at
  {1 - s.alpha:.0%} with {s.bootstrap_resamples} resamples, seed {s.bootstrap_seed}; equivalence margin
  ±{s.equivalence_margin} RMSE; {s.se_draws} resampled studies per size for the standard errors.
- **Software**: Python {platform.python_version()}, {software}.

<details><summary>Resolved configuration (params.yaml as composed from conf/)</summary>

```yaml
{to_yaml(cfg).rstrip()}
```

</details>
"""


def _level(cfg: DictConfig) -> str:
    """The confidence level of every interval, 1 - alpha, as a percentage."""
    return f"{1 - cfg.stats.alpha:.0%}"


def rmse_section(cfg: DictConfig, tables: Tables, plots: Plots, rel: dict[Path, str]) -> str:
    summary, level = tables.summary.map(lambda v: _num(v, 3)), _level(cfg)
    rows = []
    for r in tables.intervals.to_dict("records"):
        row = {
            "regime": r["regime"],
            f"mean [{level} CI]": f"{_num(r['mean'])} {_ci(r['mean_low'], r['mean_high'])}",
            f"median [{level} CI]": f"{_num(r['median'])} {_ci(r['median_low'], r['median_high'])}",
        }
        for b in tables.baselines.itertuples():
            row[f"beats {b.model}"] = f"{r[f'beats_{b.model}']:.0%}"
        rows.append(row)
    described = "description" in tables.baselines
    baselines = pd.DataFrame(
        {
            "baseline": tables.baselines.model,
            "forecasts each test month as": tables.baselines.description if described else "",
            "RMSE": tables.baselines.rmse.map(lambda v: _num(v, 3)),
        }
    )
    return f"""## RMSE per regime

The write-up's table: the distribution of test RMSE over the repeats of each regime.

{_table(summary, index=True)}

Means and medians with bootstrap {level} intervals, and the share of repeats whose RMSE is below each baseline:

{_table(pd.DataFrame(rows))}

The baselines are scored on the same test months with the same walk-forward harness (each sees every actual
observation before the month it forecasts; the statistical models are refit every month):

{_table(baselines)}

![RMSE by regime]({rel[plots.boxplot]})
"""


def _evidence(v: dict) -> str:
    pair = f"`{v['a']}` - `{v['b']}`"
    if isinstance(v.get("missing"), str):
        return f"{pair}: `{v['missing']}` not in this study"
    if v["design"] == stats.IDENTICAL:
        return f"{pair}: identical RMSE in all {int(v['n_a'])} paired repeats, equivalent by construction"
    effect = f"d_z {_num(v['d_z'], sign=True)}" if v["design"] == stats.PAIRED else f"d {_num(v['d'], sign=True)}"
    text = (
        f"{pair} = {_diff_ci(v)} "
        f"({v['design']}, n={int(v['n_a'])}); {v['rank_test']} p={_p(v['rank_p_holm'])}, "
        f"{v['mean_test']} p={_p(v['mean_p_holm'])} (Holm); {effect}, Cliff's δ {_num(v['cliffs_delta'], sign=True)}"
    )
    if v["relation"] == "equal":
        text += f"; TOST p={_p(v['tost_p'])}"
    return f"{text}: {v['outcome']}"


def verdict_overview(verdicts: pd.DataFrame) -> pd.DataFrame:
    return verdicts.groupby("expectation", sort=True).agg(claim=("claim", "first"), verdict=("overall", "first"))


def verdict_section(cfg: DictConfig, tables: Tables) -> str:
    rows = []
    for number, group in tables.verdicts.groupby("expectation", sort=True):
        records = group.to_dict("records")
        rows.append(
            {
                "#": number,
                "expectation": records[0]["claim"],
                "tested on (a vs b)": "<br>".join(f"`{r['a']}` vs `{r['b']}`" for r in records),
                "evidence (a - b, RMSE)": "<br>".join(_evidence(r) for r in records),
                "verdict": records[0]["overall"],
            }
        )
    alpha, margin = cfg.stats.alpha, cfg.stats.equivalence_margin
    return f"""## The write-up's expectations

Each expectation is tested on the regime pairs that differ only in the setting it is about. A "better"
expectation is **supported** when both tests of the pair reject equality at alpha {alpha} after Holm's
correction over all pairs and the mean and median differences favour the expected regime, and
**contradicted** when they reject in favour of the other regime or when the two regimes give identical
RMSEs (the setting then cannot matter); anything else is **inconclusive**. The "alike" expectation is
supported when the two regimes give identical RMSEs repeat by repeat (equivalent by construction) or when
two one-sided tests (TOST) place the mean difference within ±{margin} RMSE, and contradicted when the tests
find a difference. With two pairs the verdict is the one they reach without conflict (one decisive pair and
one inconclusive pair still decide). Intervals are bootstrap {_level(cfg)} intervals of the mean
difference; d_z is the paired effect size (mean difference over the spread of the differences).

{_table(pd.DataFrame(rows))}
"""


def pairwise_section(cfg: DictConfig, tables: Tables) -> str:
    level = _level(cfg)
    rows = [
        {
            "a": r["a"],
            "b": r["b"],
            "design": r["design"],
            f"mean a - b [{level} CI]": _diff_ci(r),
            "rank test p (Holm)": _p(r["rank_p_holm"]),
            "t test p (Holm)": _p(r["mean_p_holm"]),
            "d_z": _num(r["d_z"], sign=True),
            "d": _num(r["d"], sign=True),
            "Cliff's δ": _num(r["cliffs_delta"], sign=True),
            "outcome": r["outcome"],
        }
        for r in tables.tests.to_dict("records")
    ]
    tested = int(tables.tests.rank_p.notna().sum())
    return f"""## Every pair of regimes

All {len(tables.tests)} pairs. Pairs whose repeats share seeds are **paired**: the Wilcoxon signed-rank test
(rank test) and the paired t test are run on the per-repeat differences, with Cohen's d_z. Pairs with
different seeds are **unpaired**: Mann-Whitney U and Welch's t, with Cohen's d and Cliff's δ. Pairs with
identical per-repeat RMSEs are **equivalent by construction** and are not tested. Each family of tests
({tested} tests) is corrected with Holm's method; an outcome names the lower regime only when both tests
reject and the mean and median differences agree in sign.

{_table(pd.DataFrame(rows))}
"""


def pairing_section(cfg: DictConfig, tables: Tables) -> str:
    paired = tables.tests[tables.tests.design == stats.PAIRED].sort_values("width_ratio", kind="stable")
    if paired.empty:
        return "## Why pairing matters\n\nNo pair of regimes shares seeds in this study, so there is nothing to pair.\n"
    level = _level(cfg)
    rows = [
        {
            "a - b": f"`{r['a']}` - `{r['b']}`",
            f"paired {level} CI": _ci(r["ci_low"], r["ci_high"], sign=True),
            "width": _num(r["ci_high"] - r["ci_low"]),
            f"unpaired {level} CI": _ci(r["unpaired_ci_low"], r["unpaired_ci_high"], sign=True),
            "width ": _num(r["unpaired_ci_high"] - r["unpaired_ci_low"]),
            "paired / unpaired": f"{r['width_ratio']:.0%}",
        }
        for r in paired.to_dict("records")
    ]
    ratio = paired.width_ratio
    if ratio.median() < PAIRING_PAYS:
        reading = (
            "Repeat *r* of both regimes starts from the same initial weights, and much of an initialisation's luck "
            "cancels in the difference: a difference the paired design resolves can be invisible to an unpaired "
            "comparison of the same repeats."
        )
    else:
        reading = (
            "For most pairs the shared initial weights buy little here: by the end of training a repeat's luck is "
            "mostly its own regime's, so the per-repeat differences vary about as much as the regimes themselves. "
            "Pairing pays where the luck is shared (the pairs at the top of the table) and costs nothing elsewhere."
        )
    return f"""## Why pairing matters: paired against unpaired intervals

The same data, two ways. The paired interval resamples repeats and keeps each repeat's two RMSEs
together; the unpaired one resamples the two regimes independently, as if their repeats had nothing in
common. Across these {len(paired)} pairs the paired interval is a median {ratio.median():.0%} as wide as the
unpaired one (from {ratio.min():.0%} to {ratio.max():.0%}), and narrower for {int((ratio < 1).sum())} of them.
{reading}

{_table(pd.DataFrame(rows))}
"""


def repeats_section(cfg: DictConfig, tables: Tables, plots: Plots, rel: dict[Path, str]) -> str:
    wide = tables.se.pivot(index="repeats", columns="regime", values="se_resampled")[tables.order]
    shown = wide.map(lambda v: _num(v, 3)).reset_index().astype({"repeats": str})
    margin, confidence = cfg.stats.equivalence_margin, 1 - cfg.stats.alpha
    sd = tables.summary.loc["std"]
    needed = {name: str(stats.repeats_for_halfwidth(sd[name], margin, confidence)) for name in tables.order}
    shown.loc[len(shown)] = {"repeats": f"repeats for ±{margin}", **needed}
    lines = []
    for n in (wide.index.min(), wide.index.max()):
        lo, hi = wide.loc[n].idxmin(), wide.loc[n].idxmax()
        lines.append(f"with {n} repeats it ranges from {wide.at[n, lo]:.2f} (`{lo}`) to {wide.at[n, hi]:.2f} (`{hi}`)")
    formula = tables.se.se_formula.where(tables.se.se_formula > 0)
    off = float(np.nanmax(np.abs(tables.se.se_resampled / formula - 1))) if formula.notna().any() else 0.0
    return f"""## How many repeats are enough?

The follow-up the write-up proposes: draw studies of n repeats (with replacement) from the pool of
{int(tables.summary.loc["count"].max())} repeats and measure how much their means vary. That spread is
the standard error of a regime's mean at n repeats; {lines[0]}; {lines[1]}. The resampled values stay
within {off:.0%} of sd/√n (both in `se_repeats.csv`), so the standard error halves only when the repeats
quadruple. The last row is the number of repeats a {confidence:.0%} interval of the mean needs to be no
wider than ±{margin} RMSE (normal approximation).

{_table(shown)}

![Standard error of the mean against repeats]({rel[plots.se]})
"""


def forecast_section(plots: Plots, rel: dict[Path, str]) -> str:
    return f"""## Forecasts of the median repeat

For each regime, the repeat with the median RMSE (the lower middle one for an even count), its one-step
forecast of each test month against the actual sales. The same data, one CSV per regime, is registered as a
DVC plot.

![Forecast against actual]({rel[plots.forecasts]})
"""


# --- other studies --------------------------------------------------------------------------------

_MD = MarkdownIt("commonmark", {"html": True}).enable("table")


def _is_local(src: str) -> bool:
    """A relative link to a file (not a URL, a data URI or an absolute path)."""
    return not (os.path.isabs(src) or "://" in src or src.startswith("data:"))


def study_section(fragment: Path, report_dir: Path) -> str:
    """A study's fragment as one ``##`` section: headings shifted, image links made relative to the report."""
    text = fragment.read_text(encoding="utf-8")
    tokens = _MD.parse(text)
    lines = text.splitlines()
    atx = [t for t in tokens if t.type == "heading_open" and t.markup.startswith("#")]
    if atx:
        shift = 2 - min(len(t.markup) for t in atx)
        for t in atx:
            line = lines[t.map[0]]
            level = len(t.markup)
            lines[t.map[0]] = "#" * min(6, level + shift) + line.lstrip()[level:]
    else:
        lines = [f"## {fragment.stem.replace('_', ' ').capitalize()}", "", *lines]
    text = "\n".join(lines)
    for src in {c.attrs["src"] for t in tokens for c in (t.children or []) if c.type == "image"}:
        if _is_local(src):
            target = os.path.relpath(fragment.parent / src, report_dir)
            text = text.replace(f"]({src}", f"]({Path(target).as_posix()}")
    return text.rstrip() + "\n"


def study_fragments(studies: Path) -> list[Path]:
    return sorted(studies.glob("*.md")) if studies.is_dir() else []


# --- assembling -----------------------------------------------------------------------------------


def markdown(cfg: DictConfig, tables: Tables, plots: Plots, data_sha256: str, studies: Path, report_md: Path) -> str:
    here = report_md.parent
    rel = {path: Path(os.path.relpath(path, here)).as_posix() for path in plots}
    sections = [
        f"# How should an LSTM's state be managed? State regimes compared on the {cfg.data.name} series\n\n"
        f"*Written by the `compare` stage (`dvc repro`) from `{cfg.paths.results}`; every figure is recomputed "
        "from the study's outputs, nothing is typed in.*\n",
        question(cfg, tables),
        setup(cfg, tables, data_sha256),
        rmse_section(cfg, tables, plots, rel),
        verdict_section(cfg, tables),
        pairwise_section(cfg, tables),
        pairing_section(cfg, tables),
        repeats_section(cfg, tables, plots, rel),
        forecast_section(plots, rel),
        *(study_section(fragment, here) for fragment in study_fragments(studies)),
    ]
    return "\n".join(sections)


STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; color: #1d1d1f; margin: 0; background: #fafafa; }
main { max-width: 1200px; margin: 0 auto; padding: 1rem 2rem 4rem; background: white; }
h1 { font-size: 1.7rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2.2rem; }
table { border-collapse: collapse; display: block; overflow-x: auto; font-size: 13px; margin: .8rem 0; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; vertical-align: top; }
th { background: #f3f3f3; } tr:nth-child(even) td { background: #fbfbfb; }
td.supported { background: #dff3e3 !important; font-weight: 600; }
td.contradicted { background: #f9dddd !important; font-weight: 600; }
td.inconclusive { background: #f1f1f1 !important; font-weight: 600; }
img { max-width: 100%; height: auto; } code { font-size: 90%; }
pre { background: #f5f5f5; padding: .8rem; overflow-x: auto; font-size: 12px; }
details { margin: 1rem 0; } summary { cursor: pointer; font-weight: 600; }
"""


def _data_uri(image: Path) -> str:
    if not image.is_file():
        raise FileNotFoundError(f"the report links {image}, which does not exist: rerun the stage that draws it.")
    kind = mimetypes.guess_type(image.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(image.read_bytes()).decode('ascii')}"


def to_html(text: str, base: Path) -> str:
    """Render the report's markdown, embedding each local image as base64 and marking verdict cells."""
    tokens = _MD.parse(text)
    for i, token in enumerate(tokens):
        if token.type == "td_open" and tokens[i + 1].content in VERDICT_WORDS:
            token.attrSet("class", tokens[i + 1].content)
        for child in token.children or []:
            if child.type == "image" and _is_local(child.attrs["src"]):
                child.attrSet("src", _data_uri(base / child.attrs["src"]))
    body = _MD.renderer.render(tokens, _MD.options, {})
    title = next((tokens[i + 1].content for i, t in enumerate(tokens) if t.tag == "h1"), "Report")
    return (
        f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n"
    )


def write(
    cfg: DictConfig, tables: Tables, plots: Plots, data_sha256: str, studies: Path, report_md: Path, report_html: Path
) -> None:
    text = markdown(cfg, tables, plots, data_sha256, studies, report_md)
    io.write_text(report_md, text)
    io.write_text(report_html, to_html(text, report_md.parent))

