"""``python -m pipeline.tools.audit <mlflow-run-id | results.csv>``: is a finished study reproducible bit for bit?

Re-runs the study from its recorded config and seeds, in a temporary folder, with TensorFlow's op
determinism on and the resume cache off (every replica is trained again), and compares every recorded
value with the recomputed one, bit for bit: for the shampoo study every repeat's RMSE and seed; for the
other write-ups' studies (``pipeline.studies``) every cell of their results table (one row per seed); for a
panel (its ``paths.panel_results``) every cell of every series, origin, regime and repeat.

- An MLflow run id: a regime's run, another study's run, or a parent run (a ``dvc repro``'s or a sweep's:
  each run under it is audited). The config is the run's ``config.yaml`` artifact; the recorded values
  are its ``rmse`` metric (one per step), or for another study its results table artifact.
- A panel's run id (a sweep of panels: each panel's run under it): the panel is re-run from its ``config.yaml``
  and its series' runs' ``series.yaml`` (each series file as the panel read it, not today's ``conf/series``), and
  every cell of each series' ``results.csv`` and every verdict metric of the panel's run is compared; a series'
  run id re-runs that series alone. Each series' run is tagged with its own series' outcome.
- A results file (``reports/results.csv``, ``reports/studies/echo_results.csv``, or a sweep job's): its
  config is the ``.hydra/config.yaml`` or ``params.yaml`` found in its folder or the nearest parent (or
  ``--config``); which study it belongs to is read from that config's ``paths``.

The outcome is logged as tags (``audit``, ``audit.time``) on the audited runs (for a results file: the
runs that recorded exactly its bytes). Exit status: 0 all identical, 1 a mismatch, 2 nothing audited
(a bad target, or the re-run itself failed: the message says why).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from pipeline import errors, studies, tracking
from pipeline.artifacts import paths
from pipeline.params import compose_config, validate
from pipeline.provenance import file_sha256
from pipeline.stages import difference, evaluate, fetch, frame, panel, scale, train
from pipeline.studies import common

STAGES = (fetch, difference, scale, frame, train)  # then the evaluate stage's scoring: the results table


@dataclass(frozen=True)
class Recorded:
    """What a study recorded: its config and, per regime and repeat, the seed and every RMSE value logged."""

    source: str
    config: DictConfig
    table: pd.DataFrame  # regime, repeat, seed, rmse: one row per recorded value


@dataclass(frozen=True)
class RecordedStudy:
    """What one of the other studies recorded: its name, config and results table, every cell as written."""

    source: str
    name: str
    config: DictConfig
    table: pd.DataFrame  # read as text: equal text is equal bits (floats are written as shortest round-trip)


@dataclass(frozen=True)
class RecordedPanel:
    """What a panel's run, or one of its series' runs, recorded: the panel's config as logged, each series' file
    as read (YAML) and results table (every cell as written), each series' run, and the panel's verdicts as
    logged (None for one series' run: the verdicts pool every series)."""

    source: str
    config: DictConfig
    specs: dict[str, str]
    table: pd.DataFrame  # read as text, the series in the panel's order
    runs: dict[str, str]  # series -> the run that recorded it
    metrics: dict[str, float] | None


def enable_determinism() -> None:
    common.enable_op_determinism()


def rerun(recorded: Recorded) -> pd.DataFrame:
    """The recorded study run again, from scratch: its regimes, repeats and config, nothing cached."""
    cfg = recorded.config.copy()
    regimes = list(dict.fromkeys(recorded.table.regime))
    missing = [r for r in regimes if r not in cfg.regime]
    if missing:
        raise ValueError(f"{recorded.source}: regimes {missing} are not in the recorded config; cannot re-run them.")
    cfg.regime = {name: cfg.regime[name] for name in regimes}
    cfg.repeats = int(recorded.table.repeat.max()) + 1
    cfg.resume.enabled = False
    validate(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        for stage in STAGES:
            stage.run(cfg, Path(tmp))
        results, _ = evaluate.score_regimes(cfg, paths(cfg, Path(tmp)))
    return results


def read_as_text(path: Path | str) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def rerun_study(recorded: RecordedStudy) -> pd.DataFrame:
    """Another study (or a panel) run again from its recorded config, in a temporary folder, nothing cached; its
    results table as text."""
    cfg = recorded.config.copy()
    with tempfile.TemporaryDirectory() as tmp:
        if recorded.name == "panel":
            cfg.resume.enabled, cfg.tracking.enabled = False, False
            panel.run(cfg, Path(tmp))
            return read_as_text(Path(tmp) / cfg.paths.panel_results)
        studies.load(recorded.name).run(cfg, Path(tmp))
        return read_as_text(getattr(paths(cfg, Path(tmp)), f"{recorded.name}_results"))


def as_text(results: pd.DataFrame) -> pd.DataFrame:
    """A table as a panel series' run logs it (``tracking.log_panel``), read back as text."""
    return read_as_text(io.StringIO(tracking.csv_text(results)))


def rerun_panel(recorded: RecordedPanel) -> tuple[pd.DataFrame, dict[str, float] | None]:
    """The recorded series run again from the panel's logged config and their logged series files, nothing cached:
    their results table as text; for a whole panel the whole stage, and its verdicts (``panel.metrics_of``)."""
    cfg = recorded.config.copy()
    cfg.resume.enabled, cfg.tracking.enabled = False, False
    cfg.panel.series = list(recorded.specs)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "series"
        folder.mkdir()
        for name, spec in recorded.specs.items():
            (folder / f"{name}.yaml").write_text(spec, encoding="utf-8")
        if recorded.metrics is None:  # one series' run: that series alone
            outcome, _ = panel.results_of(cfg, panel.load_panel(cfg, folder))
            return as_text(outcome.results), None
        whole = panel.run(cfg, Path(tmp), folder)
        return as_text(whole.results), panel.metrics_of(whole.pooled)


def compare_metrics(recorded: dict[str, float], recomputed: dict[str, float]) -> pd.DataFrame:
    """One row per metric either side has: both values and whether their bits agree (a missing one never does)."""
    names = list(dict.fromkeys([*recorded, *recomputed]))
    table = pd.DataFrame({"metric": names, "recorded": [recorded.get(n, np.nan) for n in names],
                          "recomputed": [recomputed.get(n, np.nan) for n in names]})
    both = table.recorded.notna() & table.recomputed.notna()
    return table.assign(identical=both & (bits(table.recorded) == bits(table.recomputed)))


def compare_study(recorded: pd.DataFrame, recomputed: pd.DataFrame) -> pd.DataFrame:
    """Row by row: the recorded row's key columns, the cells that differ (recorded -> recomputed), identical."""
    if list(recorded.columns) != list(recomputed.columns) or len(recorded) != len(recomputed):
        raise ValueError(f"the re-run's results table has {len(recomputed)} rows and columns "
                         f"{list(recomputed.columns)}, the recorded one {len(recorded)} rows and "
                         f"{list(recorded.columns)}: audit a results table written by this version of the study.")
    keys = [c for c in ("series", "origin", "regime", "framing", "repeat", "seed") if c in recorded.columns]
    same = recorded.to_numpy() == recomputed.to_numpy()
    differing = [
        "; ".join(f"{col}: {a} -> {b}" for col, a, b, eq in zip(recorded.columns, old, new, row, strict=True) if not eq)
        for old, new, row in zip(recorded.to_numpy(), recomputed.to_numpy(), same, strict=True)
    ]
    return recorded[keys].assign(differences=differing, identical=same.all(axis=1))


def bits(values: pd.Series) -> np.ndarray:
    return values.to_numpy(np.float64).view(np.uint64)


def compare(recorded: pd.DataFrame, recomputed: pd.DataFrame) -> pd.DataFrame:
    """One row per recorded value: its seed and RMSE against the recomputed ones, and whether all bits agree."""
    table = recorded.merge(recomputed, on=["regime", "repeat"], how="left", suffixes=("", "_recomputed"))
    table["identical"] = (bits(table.rmse) == bits(table.rmse_recomputed)) & (table.seed == table.seed_recomputed)
    return table[["regime", "repeat", "seed", "seed_recomputed", "rmse", "rmse_recomputed", "identical"]]


def verdict(table: pd.DataFrame, metrics: pd.DataFrame | None = None) -> str:
    """``bit-identical: n/n repeats`` or ``MISMATCH: k/n repeats differ`` (rows, for a table with framings); a
    panel's run adds its verdict metrics (``bit-identical: n/n repeats, m/m verdict metrics``)."""
    key = [c for c in ("series", "origin", "regime", "framing", "repeat") if c in table.columns]
    unit = "rows" if "framing" in key else "repeats"  # a framing's row is one of several models per repeat
    counts = [(len(table.loc[~table.identical, key].drop_duplicates()), len(table[key].drop_duplicates()), unit)]
    if metrics is not None:
        counts.append((int((~metrics.identical).sum()), len(metrics), "verdict metrics"))
    same = all(differ == 0 for differ, _, _ in counts)
    parts = [f"{differ if differ else total}/{total} {what}{' differ' if differ else '' if same else ' identical'}"
             for differ, total, what in counts]
    return ("bit-identical: " if same else "MISMATCH: ") + ", ".join(parts)


# ------------------------------------------------------------------------------------------- inputs


def config_for(results: Path, explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    for folder in [results.parent, *results.parent.parents]:
        for candidate in (folder / ".hydra" / "config.yaml", folder / "params.yaml"):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(
        f"no .hydra/config.yaml or params.yaml beside {results} or above it: pass the study's config with --config."
    )


def study_of(path: Path, config: DictConfig, config_path: Path) -> str | None:
    """Which other study (or the panel) wrote the results table ``path`` under this config; None for the shampoo
    study's."""
    root = config_path.parent.parent if config_path.parent.name == ".hydra" else config_path.parent
    if (root / config.paths.panel_results).resolve() == path.resolve():
        return "panel"
    for name in studies.NAMES:
        if (root / config.paths[f"{name}_results"]).resolve() == path.resolve():
            return name
    return None


def from_results_file(path: Path, config: Path | None) -> Recorded | RecordedStudy:
    source = config_for(path, config)
    cfg = OmegaConf.load(source)
    print(f"audit: {path} with the config {source}")
    name = study_of(path, cfg, source)
    if name is not None:
        return RecordedStudy(str(path), name, cfg, read_as_text(path))
    table = pd.read_csv(path)
    missing = {"regime", "repeat", "seed", "rmse"} - set(table.columns)
    if missing:
        raise ValueError(f"{path} lacks columns {sorted(missing)}: give an evaluate stage's results table, or a "
                         f"study's ({', '.join(f'paths.{n}_results' for n in studies.NAMES)}) beside its config.")
    return Recorded(str(path), cfg, table[["regime", "repeat", "seed", "rmse"]])


Audited = Recorded | RecordedStudy | RecordedPanel


def from_runs(cfg: DictConfig, run_id: str) -> list[tuple[str, Audited]]:
    recorded: list[tuple[str, Audited]] = []
    for child in tracking.runs_to_audit(cfg, run_id):
        found = tracking.recorded_run(cfg, child)
        if isinstance(found, tracking.RecordedPanelRun):
            recorded.append((child, panel_of(found)))
            continue
        if isinstance(found, tracking.RecordedStudyRun):
            table = read_as_text(found.results)
            recorded.append((child, RecordedStudy(f"run {child}", found.study, found.config, table)))
            continue
        rows = [
            {"regime": found.regime, "repeat": repeat, "seed": found.seeds[repeat], "rmse": value}
            for repeat, values in sorted(found.rmse.items()) for value in values
        ]
        recorded.append((child, Recorded(f"run {child}", found.config, pd.DataFrame(rows))))
    return recorded


def panel_of(found: tracking.RecordedPanelRun) -> RecordedPanel:
    if found.metrics is None:
        (name,) = found.specs
        source = f"run {found.run_id} (series '{name}' of panel run {found.panel_run})"
    else:
        source = f"panel run {found.run_id} ({len(found.specs)} series)"
    table = pd.concat([read_as_text(io.StringIO(text)) for text in found.results.values()], ignore_index=True)
    return RecordedPanel(source, found.config, found.specs, table, found.runs, found.metrics)


def audit_one(recorded: Audited) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The recorded values against the re-run's, one row per recorded row, with column ``identical``; and for a
    panel's run its verdict metrics likewise (None for anything else)."""
    if isinstance(recorded, RecordedPanel):
        results, metrics = rerun_panel(recorded)
        verdicts = None if recorded.metrics is None else compare_metrics(recorded.metrics, metrics or {})
        return compare_study(recorded.table, results), verdicts
    if isinstance(recorded, RecordedStudy):
        return compare_study(recorded.table, rerun_study(recorded)), None
    return compare(recorded.table, rerun(recorded)), None


def show(table: pd.DataFrame, metrics: pd.DataFrame | None) -> None:
    """The compared rows (of a panel's thousands only those that differ) and the verdict metrics that differ."""
    parts = [table[~table.identical] if "series" in table.columns else table]
    if metrics is not None:
        parts.append(metrics[~metrics.identical])
    for part in parts:
        if len(part):
            print(part.to_string(index=False, float_format=lambda v: repr(float(v))))


def log_outcome(cfg: DictConfig, outcomes: Mapping[str, str]) -> None:
    """Tag each run (id -> its outcome) with its audit's outcome and time."""
    if not cfg.tracking.enabled:
        return
    if not outcomes:
        print("audit: no tracked run recorded exactly this results file, so the outcome is logged nowhere")
        return
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    for run_id, outcome in outcomes.items():
        tracking.set_tags(cfg, run_id, {"audit": outcome, "audit.time": stamp})
    print(f"audit: outcome logged on run(s) {', '.join(outcomes)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.tools.audit", description=__doc__.splitlines()[0])
    parser.add_argument("target", help="an MLflow run id, or a results.csv written by the evaluate stage")
    parser.add_argument("--config", type=Path, help="the study's config, for a results file found apart from it")
    args = parser.parse_args(argv)
    cfg = compose_config()  # where the tracking store is
    target = Path(args.target)
    try:
        audits = [(None, from_results_file(target, args.config))] if target.is_file() else from_runs(cfg, args.target)
    except Exception as err:  # a bad id, a missing config, a malformed table: say which and stop
        print(f"audit: cannot audit {args.target}: {err}", file=sys.stderr)
        return 2
    enable_determinism()
    failed = False
    for run_id, recorded in audits:
        try:
            table, metrics = audit_one(recorded)
        except Exception as err:  # the re-run crashed: nothing was compared, which is not a mismatch
            print(f"audit: could not re-run {recorded.source}: {type(err).__name__}: {err}", file=sys.stderr)
            return 2
        outcome = verdict(table, metrics)
        failed |= not (table.identical.all() and (metrics is None or metrics.identical.all()))
        print(f"\naudit of {recorded.source}:")
        show(table, metrics)
        print(outcome)
        outcomes = {run: outcome for run in ([run_id] if run_id else tracking_runs_of(cfg, target))}
        if isinstance(recorded, RecordedPanel):  # each series' run gets its own series' outcome
            outcomes |= {run: verdict(table[table.series == name]) for name, run in recorded.runs.items()
                         if run not in outcomes}
        log_outcome(cfg, outcomes)
    return 1 if failed else 0


def tracking_runs_of(cfg: DictConfig, results: Path) -> list[str]:
    """Runs that recorded a results file with exactly these bytes (none for an edited file)."""
    if not cfg.tracking.enabled:
        return []
    return tracking.runs_with_results(cfg, file_sha256(results))


if __name__ == "__main__":
    errors.cli(main)
