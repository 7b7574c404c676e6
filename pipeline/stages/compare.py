"""Stage ``compare``: the regimes' RMSE distributions turned into verdicts, intervals and the study's report section.

Reads the evaluate stage's tables, writes the descriptive summary (the write-up's layout), a verdict on
every claim of the write-up (decided against ``stats.margin``, ``pipeline.analysis.decision``, on the
regime pairs that differ in exactly the factor a claim is about, ``pipeline.analysis.contrasts``), the
exploratory pairwise tests, the published-vs-reproduced table, DVC metrics and plots, and the shampoo study's
section of the report (``paths.shampoo_report``). The report stage puts that section together with the other
studies' as ``report.md`` / ``report.html``, so that this stage never depends on the other studies.
"""

from __future__ import annotations

from concurrent.futures import Executor, Future
from dataclasses import dataclass
from importlib import resources
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from pipeline import data, errors, io, processes
from pipeline.analysis import claims as claimlist
from pipeline.analysis import contrasts, decision, figures, report, stats
from pipeline.artifacts import Paths, paths
from pipeline.params import ConfigError, load_params, regimes

RESULTS_COLUMNS = ("regime", "repeat", "seed", "rmse")
FORECAST_COLUMNS = ("regime", "repeat", "step", "period", "actual", "forecast")


@dataclass(frozen=True)
class Comparison:
    """What the stage produced: its tables, and every file it wrote (for a tracker to log)."""

    tables: report.Tables
    section: Path  # the study's section of the report (markdown, its plots beside it)
    plots: tuple[Path, ...]
    files: tuple[Path, ...]


def read_table(path: Path, columns: tuple[str, ...], stage: str) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the {stage} stage first (dvc repro {stage}).")
    table = pd.read_csv(path)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing} (has {list(table.columns)}): rerun the {stage} stage.")
    return table


def samples(results: pd.DataFrame, order: list[str]) -> dict[str, stats.Sample]:
    """Each regime's RMSEs and seeds in repeat order."""
    by_regime = {name: group.sort_values("repeat") for name, group in results.groupby("regime", sort=False)}
    return {r: stats.Sample(by_regime[r].rmse.to_numpy(np.float64), by_regime[r].seed.to_numpy()) for r in order}


def describe(results: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """count, mean, std, min, quartiles and max of RMSE, one column per regime in ``order``."""
    wide = results.pivot(index="repeat", columns="regime", values="rmse")
    return wide[order].describe()


def intervals(pool: dict[str, stats.Sample], boot: stats.Bootstrap, baselines: pd.DataFrame) -> pd.DataFrame:
    """Per regime: mean with its bootstrap interval, median, 95th percentile with its order-statistic interval
    (tail), the share of repeats worse than persistence, and the share beating each baseline."""
    names = list(pool)
    rows = []
    persistence = baselines.set_index("model").rmse.get("persistence", np.nan)
    for name in names:
        values = pool[name].values
        rows.append({
            "regime": name, "mean": float(values.mean()), "median": float(np.median(values)),
            "p95": float(stats.quantile95(values)), "worse_than_persistence": float(np.mean(values > persistence)),
            **{f"beats_{b.model}": float(np.mean(values < b.rmse)) for b in baselines.itertuples()},
        })
    table = pd.DataFrame(rows)
    if len({len(s.values) for s in pool.values()}) == 1:  # one vectorized call for every regime
        groups = [np.vstack([pool[n].values for n in names])]
    else:
        groups = [pool[n].values[None] for n in names]
    lows, highs = zip(*(stats.bootstrap_cis(g, np.mean, boot, "mean") for g in groups), strict=True)
    table["mean_low"], table["mean_high"] = np.concatenate(lows), np.concatenate(highs)
    table["p95_low"], table["p95_high"] = zip(*(stats.quantile95_ci(pool[n].values, boot.confidence) for n in names),
                                              strict=True)
    return table


def train_pairs(raw_path: Path, cfg: DictConfig) -> int:
    """Training pairs in the full window: the differenced series' pairs at ``model.lag``, less the test pairs."""
    observations = len(pd.read_csv(raw_path))
    return observations - cfg.data.interval - cfg.model.lag - cfg.data.test_size


# --- claims ------------------------------------------------------------------------------------------


def _flip(t: decision.MarginTests) -> decision.MarginTests:
    return decision.MarginTests(-t.estimate, -t.high, -t.low, t.p_above, t.p_below, t.p_inside, t.margin)


def claim_pairs(pool: dict[str, stats.Sample], records: dict, n_train: int) -> pd.DataFrame:
    """One row per (claim, pair): the pair's design as it acts, and whether it may decide the claim."""
    rows = []
    for c in claimlist.ALL:
        for a, b in c.pairs:
            base = {"key": c.key, "source": c.source, "claim": c.text, "a": a, "b": b, "relation": c.relation,
                    "endpoint": c.endpoint}
            absent = [r for r in (a, b) if r not in pool]
            if absent:
                rows.append({**base, "kind": decision.NOT_RUN, "missing": " and ".join(absent), "usable": False})
                continue
            pd_ = contrasts.design(records[a], records[b], n_train)
            rows.append({**base, "kind": pd_.kind, "factors": ", ".join(pd_.factors), "implied": ", ".join(pd_.implied),
                         "note": pd_.note, "usable": contrasts.decides(c.factor, c.relation, pd_), "missing": ""})
    return pd.DataFrame(rows)


def _margin_tests(a: stats.Sample, b: stats.Sample, margin: float, alpha: float) -> decision.MarginTests:
    if stats.design(a, b) == stats.UNPAIRED:
        return decision.margin_tests_unpaired(a.values, b.values, margin, alpha)
    return decision.margin_tests(a.values - b.values, margin, alpha)


def mean_contrasts(pairs: pd.DataFrame, pool: dict[str, stats.Sample], margin: float, alpha: float) -> pd.DataFrame:
    """Margin tests of every run mean pair; Holm over the distinct usable pairs (the confirmatory family)."""
    rows = pairs[(pairs.endpoint == "mean") & (pairs.kind != decision.NOT_RUN)]
    canon = {frozenset((a, b)): (a, b) for a, b in zip(rows.a, rows.b, strict=True)}
    raw = {key: _margin_tests(pool[a], pool[b], margin, alpha) for key, (a, b) in canon.items()}  # once per pair
    family = sorted({frozenset((a, b)) for a, b in zip(rows.a[rows.usable], rows.b[rows.usable], strict=True)},
                    key=lambda k: list(canon).index(k))
    adjusted = dict(zip(family, decision.holm_family([raw[k] for k in family]), strict=True))
    out = []
    for row in rows.to_dict("records"):
        key = frozenset((row["a"], row["b"]))
        t = adjusted.get(key, raw[key]) if row["usable"] else raw[key]
        t = t if canon[key] == (row["a"], row["b"]) else _flip(t)
        out.append({"index": row["_index"], "tests": t, "in_family": key in adjusted})
    return pd.DataFrame(out, columns=["index", "tests", "in_family"]).set_index("index")


def pair_verdicts(pairs: pd.DataFrame, pool: dict[str, stats.Sample], margin: float, alpha: float) -> pd.DataFrame:
    """Every run mean pair's margin tests (Holm-adjusted where it is in the confirmatory family) and verdict."""
    means = mean_contrasts(pairs, pool, margin, alpha)
    rows = pairs.loc[means.index] if len(means) else pairs.iloc[:0]
    position = [decision.where(t, alpha) for t in means.tests]
    verdict = [decision.verdict(relation, w) if usable else ""
               for relation, w, usable in zip(rows.relation, position, rows.usable, strict=True)]
    return means.assign(position=position, verdict=verdict)


def _hodges_lehmann(pool: dict[str, stats.Sample], a: str, b: str, level: float, cache: dict) -> tuple:
    """HL shift of a - b, computed once per unordered pair (the shift of b - a is its mirror image)."""
    key = frozenset((a, b))
    if key not in cache:
        cache[key] = (a, stats.hodges_lehmann(pool[a].values - pool[b].values, level))
    first, (hl, low, high) = cache[key]
    return (hl, low, high) if first == a else (-hl, -high, -low)


def evaluate_claims(
    pairs: pd.DataFrame, pool: dict[str, stats.Sample], cfg: DictConfig, boot: stats.Bootstrap
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per claim pair with its evidence and verdict, one row per claim with its verdict)."""
    s = cfg.stats
    alpha, level, margin = s.alpha, 1 - s.alpha, s.margin
    pairs = pairs.assign(_index=np.arange(len(pairs))).set_index("_index", drop=False)
    means = pair_verdicts(pairs, pool, margin, alpha)
    family = max(1, len({frozenset((pairs.a[i], pairs.b[i])) for i in means.index[means.in_family.astype(bool)]}))
    spread_rows = pairs[(pairs.endpoint == "spread") & (pairs.kind != decision.NOT_RUN)]
    paired = np.array([stats.design(pool[a], pool[b]) != stats.UNPAIRED for a, b in zip(spread_rows.a, spread_rows.b,
                                                                                          strict=True)], dtype=bool)
    spread = {}
    if paired.any():  # one paired bootstrap for every paired ratio
        a = np.vstack([pool[r].values for r in spread_rows.a[paired]])
        b = np.vstack([pool[r].values for r in spread_rows.b[paired]])
        low, high = stats.sd_ratio_cis(a, b, boot, "spread")
        spread = dict(zip(spread_rows._index[paired], zip(stats.log_sd_ratio(a, b), low, high, strict=True),
                          strict=True))
    for row in spread_rows[~paired].to_dict("records"):  # different seeds: each regime resampled on its own
        x, y = pool[row["a"]].values, pool[row["b"]].values
        ci = stats.bootstrap_ci([x, y], stats.log_sd_ratio, boot, "spread|unpaired")
        spread[row["_index"]] = (float(stats.log_sd_ratio(x, y)), *ci)
    rows, hl_cache = [], {}
    for row in pairs.to_dict("records"):
        out = {k: v for k, v in row.items() if k != "_index"}
        if row["kind"] == decision.NOT_RUN:
            rows.append({**out, "verdict": decision.NOT_RUN})
            continue
        x, y = pool[row["a"]].values, pool[row["b"]].values
        if row["endpoint"] == "mean":
            t = means.at[row["_index"], "tests"]
            out.update(
                estimate=t.estimate, low=t.low, high=t.high, pct=100 * t.estimate / y.mean(),
                p_below=t.p_below, p_above=t.p_above, p_inside=t.p_inside,
                position=means.at[row["_index"], "position"], verdict=means.at[row["_index"], "verdict"],
                in_family=bool(means.at[row["_index"], "in_family"]),
                negligible=decision.negligible(t.low, t.high, margin), n=min(len(x), len(y)),
                position_95=decision.locate(t.low, t.high, margin), family=family,
            )
            if stats.design(pool[row["a"]], pool[row["b"]]) != stats.UNPAIRED:  # endpoints on the pairs
                d = x - y
                hl, hl_low, hl_high = _hodges_lehmann(pool, row["a"], row["b"], level, hl_cache)
                sd = float(d.std(ddof=1))
                out.update(
                    hl=hl, hl_low=hl_low, hl_high=hl_high, within_margin=float(np.mean(np.abs(d) < margin)),
                    diff_min=float(d.min()), diff_max=float(d.max()),
                    kurtosis=float(pd.Series(d).kurt()) if sd > 0 else 0.0, sd_diff=sd,
                    # at the family's Bonferroni level (Holm's first step), so that "needs n" means the verdict
                    # would settle even after the correction
                    needed=decision.repeats_needed(t.estimate, sd, margin,
                                                   alpha / family if out["in_family"] else alpha),
                )
        else:
            ratio, low, high = spread[row["_index"]]
            position = decision.locate(low, high, float(np.log1p(s.spread_margin)))
            out.update(estimate=float(np.exp(ratio)), low=float(np.exp(low)), high=float(np.exp(high)),
                       position=position, n=len(x),
                       verdict=decision.verdict(row["relation"], position) if row["usable"] else "")
        rows.append(out)
    evidence = pd.DataFrame(rows)
    prob = evidence[(evidence.endpoint == "mean") & (evidence.kind != decision.NOT_RUN)]
    if "hl" in prob:
        prob = prob[prob.hl.notna()]
    if len(prob):
        shares = np.vstack([stats.lower_share(pool[a].values, pool[b].values) for a, b in zip(prob.a, prob.b,
                                                                                                strict=True)])
        low, high = stats.bootstrap_cis(shares, np.mean, boot, "p_lower")
        evidence.loc[prob.index, "p_lower"] = shares.mean(axis=1)
        evidence.loc[prob.index, "p_lower_low"], evidence.loc[prob.index, "p_lower_high"] = low, high
    return evidence, claim_verdicts(evidence)


def claim_verdicts(evidence: pd.DataFrame) -> pd.DataFrame:
    """A claim's verdict from its usable pairs: the one they reach without conflict; for a claim about
    regimes as wholes (every pair must hold), contradicted when any pair is, supported when all are."""
    rows = []
    for key, group in evidence.groupby("key", sort=False):
        claim = next(c for c in claimlist.ALL if c.key == key)
        used = group[group.usable]
        if (group.kind == decision.NOT_RUN).all():
            verdict, basis = decision.NOT_RUN, "not run: " + ", ".join(sorted(set(group.missing) - {""}))
        elif used.empty:
            verdict, basis = decision.INCONCLUSIVE, "no pair in this study differs in that factor alone"
        elif claim.factor is None:
            v = list(used.verdict)
            verdict = (decision.CONTRADICTED if decision.CONTRADICTED in v
                       else decision.SUPPORTED if set(v) == {decision.SUPPORTED} else decision.INCONCLUSIVE)
            basis = "every pair"
        else:
            verdict = decision.combine(list(used.verdict))
            basis = ", ".join(f"{a} vs {b}" for a, b in zip(used.a, used.b, strict=True))
        rows.append({"key": key, "source": claim.source, "claim": claim.text, "endpoint": claim.endpoint,
                     "verdict": verdict, "basis": basis})
    return pd.DataFrame(rows)


def sensitivity(pairs: pd.DataFrame, pool: dict[str, stats.Sample], cfg: DictConfig,
                verdicts: pd.DataFrame) -> pd.DataFrame:
    """Each mean claim's verdict at ``stats.margin`` (``verdicts``) and at the margin times each factor of
    ``stats.margin_sensitivity``."""
    mean_pairs = pairs[pairs.endpoint == "mean"].assign(_index=lambda t: np.arange(len(t)))
    mean_pairs = mean_pairs.set_index("_index", drop=False)
    means = verdicts[verdicts.endpoint == "mean"].set_index("key").verdict
    table = {}
    for factor in sorted({1.0, *cfg.stats.margin_sensitivity}):
        margin = factor * cfg.stats.margin
        if factor == 1.0:
            table[margin] = means
            continue
        run = mean_pairs[mean_pairs.kind != decision.NOT_RUN]
        verdicts = pair_verdicts(mean_pairs, pool, margin, cfg.stats.alpha).verdict
        judged = mean_pairs.assign(verdict=decision.NOT_RUN)
        judged.loc[run.index, "verdict"] = verdicts.loc[run.index]
        table[margin] = claim_verdicts(judged).set_index("key").verdict
    return pd.DataFrame(table)


# --- published vs reproduced -------------------------------------------------------------------------


def published_figures(name: str) -> pd.DataFrame | None:
    """The write-up's own table for series ``name`` (``pipeline/resources/published_<name>.csv``), if any."""
    path = resources.files("pipeline.resources").joinpath(f"published_{name}.csv")
    return pd.read_csv(BytesIO(path.read_bytes())) if path.is_file() else None


def published_vs_reproduced(
    published: pd.DataFrame | None, pool: dict[str, stats.Sample], draws: int, seed: int
) -> pd.DataFrame:
    """Per published run: its mean and SD beside the pool's, and how often a study of as many repeats drawn
    from the pool is at least that far from the pool's mean (and SD)."""
    if published is None:
        return pd.DataFrame()
    rows = []
    for r in published.itertuples():
        if r.regime not in pool:
            rows.append({"regime": r.regime, "run": r.run, "repeats": r.repeats, "mean": r.mean, "std": r.std,
                         "missing": True})
            continue
        values = pool[r.regime].values
        studies = stats.resampled_studies(values, int(r.repeats), draws, stats.rng_for(seed, "published"))
        pool_mean, pool_sd = float(values.mean()), float(values.std(ddof=1))
        means, sds = studies.mean(axis=1), studies.std(axis=1, ddof=1)
        rows.append({
            "regime": r.regime, "run": r.run, "repeats": r.repeats, "mean": r.mean, "std": r.std,
            "pool_mean": pool_mean, "pool_std": pool_sd,
            "p_mean": float(np.mean(np.abs(means - pool_mean) >= abs(r.mean - pool_mean))),
            "p_std": float(np.mean(np.abs(sds - pool_sd) >= abs(r.std - pool_sd))), "missing": False,
        })
    return pd.DataFrame(rows)


def a_vs_a(published: pd.DataFrame | None, pool: dict[str, stats.Sample], draws: int, seed: int) -> dict:
    """Finding 1: how far apart two studies of 10 repeats of one regime land, drawn from the pool."""
    spec = claimlist.A_VS_A
    out = {k: spec[k] for k in ("key", "source", "text", "regime", "repeats", "claimed")}
    if spec["regime"] not in pool:
        return {**out, "verdict": decision.NOT_RUN}
    values = pool[spec["regime"]].values
    rng = stats.rng_for(seed, "a_vs_a")
    first, second = (stats.resampled_studies(values, spec["repeats"], draws, rng) for _ in range(2))
    gaps = {"mean": np.abs(first.mean(axis=1) - second.mean(axis=1)),
            "std": np.abs(first.std(axis=1, ddof=1) - second.std(axis=1, ddof=1))}
    runs = published[published.regime == spec["regime"]] if published is not None else pd.DataFrame()
    verdicts = []
    for what, gap in gaps.items():
        q = np.quantile(gap, [0.025, 0.25, 0.5, 0.75, 0.975])
        out[what] = dict(zip(("q025", "q25", "median", "q75", "q975"), map(float, q), strict=True))
        if len(runs) == 2:
            observed = float(abs(np.diff(runs[what].to_numpy())[0]))
            out[what].update(published=observed, p_published=float(np.mean(gap >= observed)))
        claimed = spec["claimed"]
        verdicts.append(decision.SUPPORTED if q[1] <= claimed <= q[3]
                        else decision.CONTRADICTED if not q[0] <= claimed <= q[4] else decision.INCONCLUSIVE)
    out["verdict"] = decision.combine(verdicts)
    return out


# --- the seed's SE follow-up, forecasts, metrics -----------------------------------------------------


def se_table(pool: dict[str, stats.Sample], cfg: DictConfig) -> pd.DataFrame:
    """Standard error of each regime's mean for study sizes up to its pool, resampled and by formula (the
    write-up's proposed follow-up; sd/sqrt(n) by construction). Regimes of one pool size share the draws."""
    rows = []
    by_size: dict[int, list[str]] = {}
    for name, sample in pool.items():
        by_size.setdefault(len(sample.values), []).append(name)
    for n_pool, names in by_size.items():
        sizes = [n for n in cfg.se_repeats if n <= n_pool] or [n_pool]
        rng = stats.rng_for(cfg.bootstrap_seed, "se")
        resampled = stats.se_by_repeats(np.vstack([pool[n].values for n in names]), sizes, cfg.se_draws, rng)
        for name, se_row in zip(names, resampled, strict=True):
            sd = float(np.std(pool[name].values, ddof=1))
            rows += [{"regime": name, "repeats": n, "se_resampled": float(se), "se_formula": sd / np.sqrt(n)}
                     for n, se in zip(sizes, se_row, strict=True)]
    order = {name: i for i, name in enumerate(pool)}
    return pd.DataFrame(rows).sort_values("regime", key=lambda r: r.map(order), kind="stable", ignore_index=True)


def median_forecasts(results: pd.DataFrame, forecasts: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Per-step forecasts of each regime's median repeat (the lower middle one when the count is even)."""
    frames = []
    for name in order:
        repeats = results[results.regime == name].sort_values(["rmse", "repeat"], kind="stable")
        chosen = repeats.iloc[(len(repeats) - 1) // 2]
        repeat, rmse = int(chosen["repeat"]), float(chosen["rmse"])
        steps = forecasts[(forecasts.regime == name) & (forecasts["repeat"] == repeat)].sort_values("step")
        if steps.empty:
            raise ValueError(f"{name!r} repeat {repeat} has no forecasts in the forecasts table: rerun evaluate.")
        frames.append(steps.assign(rmse=rmse)[[*FORECAST_COLUMNS, "rmse"]])
    return pd.concat(frames, ignore_index=True)


def metrics(summary: pd.DataFrame, baselines: pd.DataFrame, verdicts: pd.DataFrame) -> dict:
    out = {
        regime: {stat.replace("%", "pct"): float(summary.at[stat, regime]) for stat in summary.index}
        for regime in summary.columns
    }
    out["baselines"] = {row.model: float(row.rmse) for row in baselines.itertuples()}
    out["verdicts"] = dict(zip(verdicts.key, verdicts.verdict, strict=True))
    return out


def bootstrap_spec(cfg: DictConfig) -> stats.Bootstrap:
    alpha = cfg.alpha
    if not 0 < alpha < 1:
        raise ConfigError(f"stats.alpha must lie strictly between 0 and 1, got {alpha!r}: e.g. stats.alpha=0.05.")
    if cfg.bootstrap_method not in ("BCa", "percentile", "basic"):
        raise ConfigError(f"stats.bootstrap_method must be BCa, percentile or basic, got {cfg.bootstrap_method!r}.")
    for key in ("bootstrap_resamples", "se_draws"):
        if cfg[key] < 2:
            raise ConfigError(f"stats.{key} must be at least 2, got {cfg[key]!r}: e.g. stats.{key}=2000.")
    if not cfg.margin > 0 or not cfg.spread_margin > 0 or not all(f > 0 for f in cfg.margin_sensitivity):
        raise ConfigError("stats.margin, stats.spread_margin and every stats.margin_sensitivity factor must be > 0, "
                          f"got {cfg.margin!r}, {cfg.spread_margin!r}, {list(cfg.margin_sensitivity)!r}.")
    return stats.Bootstrap(cfg.bootstrap_resamples, cfg.bootstrap_seed, cfg.bootstrap_method, 1 - alpha)


def write_plot_data(directory: Path, table: pd.DataFrame, columns: list[str]) -> None:
    """One CSV per regime (what `dvc plots` draws), removing files of regimes no longer in the study."""
    names = list(dict.fromkeys(table.regime))
    for stale in set(directory.glob("*.csv")) - {directory / f"{n}.csv" for n in names}:
        stale.unlink()
    for name in names:
        io.write_csv(directory / f"{name}.csv", table.loc[table.regime == name, columns])


def run(cfg: DictConfig, root: Path, painter: Executor | None = None) -> Comparison:
    """The comparison of evaluate's tables, every file written. With ``painter`` (one worker) the plots are drawn
    there while this process computes: those of evaluate's tables from the start, the repeats plot once the claims'
    evidence is known; in between it computes the standard-error table, which needs numpy alone."""
    p = paths(cfg, root)
    results = read_table(p.results, RESULTS_COLUMNS, "evaluate")
    forecasts = read_table(p.forecasts, FORECAST_COLUMNS, "evaluate")
    baselines = read_table(p.baselines, ("model", "rmse"), "baselines")
    if not p.raw.is_file():
        raise FileNotFoundError(f"{p.raw} is missing: the report records its checksum; run the fetch stage.")
    order = list(dict.fromkeys(results.regime))
    records = {r.name: r for r in regimes(cfg)}
    unknown = [r for r in order if r not in records]
    if unknown:
        raise ValueError(f"{p.results} holds regimes {unknown} that the config does not select: "
                         "rerun evaluate, or select them (regime=[...]).")
    plots = report.Plots(boxplot=p.boxplot, se=p.se_plot, forecasts=p.forecast_plot)
    forecast_table = median_forecasts(results, forecasts, order)
    drawing = report.draw_evaluated(results, order, baselines, forecast_table, plots, painter.submit) if painter else []
    pool = samples(results, order)
    boot = bootstrap_spec(cfg.stats)
    se = painter.submit(se_table, pool, cfg.stats) if painter else None
    n_train = train_pairs(p.raw, cfg)
    groups = stats.twins(pool)
    pairs = claim_pairs(pool, records, n_train)
    evidence, verdicts = evaluate_claims(pairs, pool, cfg, boot)
    if painter:  # while the other tables are computed
        drawing.append(report.draw_compared(cfg, evidence, plots, painter.submit))
    published = published_figures(cfg.data.name)
    draws, seed = cfg.stats.se_draws, cfg.stats.bootstrap_seed
    tables = report.Tables(
        results=results,
        summary=describe(results, order),
        intervals=intervals(pool, boot, baselines),
        baselines=baselines,
        tests=stats.pairwise({g: pool[g] for g in groups}, boot, cfg.stats.alpha),
        twins=groups,
        factors=pd.DataFrame(contrasts.factor_table([records[r] for r in order], n_train)),
        evidence=evidence,
        verdicts=verdicts,
        sensitivity=sensitivity(pairs, pool, cfg, verdicts),
        published=published_vs_reproduced(published, pool, draws, seed),
        a_vs_a=a_vs_a(published, pool, draws, seed),
        se=se.result() if se else se_table(pool, cfg.stats),
        forecasts=forecast_table,
    )
    return write(cfg, p, tables, plots, painter, drawing)


def write(cfg: DictConfig, p: Paths, tables: report.Tables, plots: report.Plots, painter: Executor | None,
          drawing: list[Future]) -> Comparison:
    io.write_csv(p.summary, tables.summary.reset_index(names="statistic"))
    io.write_csv(p.intervals, tables.intervals)
    io.write_csv(p.tests, tables.tests)
    io.write_csv(p.verdicts, tables.evidence)
    io.write_csv(p.se_repeats, tables.se)
    io.write_json(p.metrics, metrics(tables.summary, tables.baselines, tables.verdicts))
    write_plot_data(p.se_data, tables.se, ["repeats", "se_resampled", "se_formula"])
    write_plot_data(p.forecast_data, tables.forecasts, ["step", "period", "actual", "forecast"])
    if painter is None:
        report.draw(cfg, tables, plots)
    report.write(cfg, tables, plots, data.file_sha256(p.raw), p.shampoo_report)
    for plot in drawing:
        plot.result()  # the painter's errors are this stage's
    print(tables.summary.to_string(float_format=lambda v: f"{v:.3f}"))
    print(tables.verdicts[["key", "claim", "verdict"]].to_string(index=False))
    return Comparison(tables=tables, section=p.shampoo_report, plots=tuple(plots), files=written(p))


def written(p: Paths) -> tuple[Path, ...]:
    """Every file this stage writes (what the track stage and a sweep log): tables, plots, plot data, section."""
    tables = (p.summary, p.intervals, p.tests, p.verdicts, p.se_repeats, p.metrics)
    plot_data = (*sorted(p.se_data.glob("*.csv")), *sorted(p.forecast_data.glob("*.csv")))
    return (*tables, p.boxplot, p.se_plot, p.forecast_plot, *plot_data, p.shampoo_report)


def main() -> None:
    # One worker, forked before scipy, statsmodels and matplotlib are imported, draws the plots while this process
    # computes the statistics: the plots take about a third of the stage. Its first task (which forks it) imports
    # matplotlib while this process reads the tables.
    with processes.forked_pool(1) as painter:
        painter.submit(figures.preload)
        run(load_params(), Path.cwd(), painter)


if __name__ == "__main__":
    errors.cli(main)
