"""``python -m pipeline.audit <mlflow-run-id | results.csv>``: is a finished study reproducible bit for bit?

Re-runs the study from its recorded config and seeds, in a temporary folder, with TensorFlow's op
determinism on and the resume cache off (every replica is trained again), and compares every repeat's
RMSE with the recorded one, bit for bit.

- An MLflow run id: a regime's run, or a study's parent run (each of its regimes is audited). The
  config is the run's ``config.yaml`` artifact; the RMSEs are its ``rmse`` metric, one per step.
- A results file (``reports/results.csv``, or a sweep job's): its config is the ``.hydra/config.yaml``
  or ``params.yaml`` found in its folder or the nearest parent (or ``--config``).

The outcome is logged as tags (``audit``, ``audit.time``) on the audited runs (for a results file: the
runs that recorded exactly its bytes). Exit status: 0 all identical, 1 a mismatch, 2 nothing to audit.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from pipeline import difference, evaluate, fetch, frame, scale, tracking, train
from pipeline.artifacts import paths
from pipeline.params import compose_config, validate
from pipeline.provenance import file_sha256

STAGES = (fetch, difference, scale, frame, train)  # then the evaluate stage's scoring: the results table


@dataclass(frozen=True)
class Recorded:
    """What a study recorded: its config and, per regime and repeat, the seed and every RMSE value logged."""

    source: str
    config: DictConfig
    table: pd.DataFrame  # regime, repeat, seed, rmse: one row per recorded value


def enable_determinism() -> None:
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


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


def bits(values: pd.Series) -> np.ndarray:
    return values.to_numpy(np.float64).view(np.uint64)


def compare(recorded: pd.DataFrame, recomputed: pd.DataFrame) -> pd.DataFrame:
    """One row per recorded value: its seed and RMSE against the recomputed ones, and whether all bits agree."""
    table = recorded.merge(recomputed, on=["regime", "repeat"], how="left", suffixes=("", "_recomputed"))
    table["identical"] = (bits(table.rmse) == bits(table.rmse_recomputed)) & (table.seed == table.seed_recomputed)
    return table[["regime", "repeat", "seed", "seed_recomputed", "rmse", "rmse_recomputed", "identical"]]


def verdict(table: pd.DataFrame) -> str:
    differ = table.loc[~table.identical, ["regime", "repeat"]].drop_duplicates()
    total = len(table[["regime", "repeat"]].drop_duplicates())
    if differ.empty:
        return f"bit-identical: {total}/{total} repeats"
    return f"MISMATCH: {len(differ)}/{total} repeats differ"


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


def from_results_file(path: Path, config: Path | None) -> Recorded:
    table = pd.read_csv(path)
    missing = {"regime", "repeat", "seed", "rmse"} - set(table.columns)
    if missing:
        raise ValueError(f"{path} lacks columns {sorted(missing)}: give an evaluate stage's results table.")
    source = config_for(path, config)
    print(f"audit: {path} with the config {source}")
    return Recorded(str(path), OmegaConf.load(source), table[["regime", "repeat", "seed", "rmse"]])


def from_runs(cfg: DictConfig, run_id: str) -> list[tuple[str, Recorded]]:
    recorded = []
    for child in tracking.runs_to_audit(cfg, run_id):
        run = tracking.recorded_run(cfg, child)
        rows = [
            {"regime": run.regime, "repeat": repeat, "seed": run.seeds[repeat], "rmse": value}
            for repeat, values in sorted(run.rmse.items()) for value in values
        ]
        recorded.append((child, Recorded(f"run {child}", run.config, pd.DataFrame(rows))))
    return recorded


def log_outcome(cfg: DictConfig, run_ids: Sequence[str], outcome: str) -> None:
    if not cfg.tracking.enabled:
        return
    if not run_ids:
        print("audit: no tracked run recorded exactly this results file, so the outcome is logged nowhere")
        return
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    for run_id in run_ids:
        tracking.set_tags(cfg, run_id, {"audit": outcome, "audit.time": stamp})
    print(f"audit: outcome logged on run(s) {', '.join(run_ids)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.audit", description=__doc__.splitlines()[0])
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
        table = compare(recorded.table, rerun(recorded))
        outcome = verdict(table)
        failed |= not table.identical.all()
        print(f"\naudit of {recorded.source}:")
        print(table.to_string(index=False, float_format=lambda v: repr(float(v))))
        print(outcome)
        logged = [run_id] if run_id else tracking_runs_of(cfg, target)
        log_outcome(cfg, logged, outcome)
    return 1 if failed else 0


def tracking_runs_of(cfg: DictConfig, results: Path) -> list[str]:
    """Runs that recorded a results file with exactly these bytes (none for an edited file)."""
    if not cfg.tracking.enabled:
        return []
    return tracking.runs_with_results(cfg, file_sha256(results))


if __name__ == "__main__":
    sys.exit(main())
