"""Stage ``track``: the shampoo study logged to MLflow, from what evaluate and compare wrote.

One parent run with the study's summary, verdicts and files, one child run per regime with every repeat's RMSE
and its histogram (``pipeline.tracking.log_study``). A stage of its own, after compare, for two reasons:
- a fresh clone has compare's outputs committed, so DVC skips compare; this stage's receipt
  (``paths.tracked``) is git-ignored, so every clone runs it once and its MLflow store holds the study;
- the comparison's numbers never wait on MLflow's imports and writes.

The receipt names what was logged (experiment, results checksum, regimes), nothing that differs between clones
or runs, so ``dvc.lock`` stays as committed. DVC reruns the stage when the results, compare's outputs or the
config change; ``dvc repro -f track`` logs the study again (e.g. to the store MLFLOW_TRACKING_URI now names).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from pipeline import errors, io, processes
from pipeline.analysis import claims as claimlist
from pipeline.analysis import histogram
from pipeline.artifacts import paths
from pipeline.params import load_params
from pipeline.provenance import file_sha256
from pipeline.stages import compare


def claim_verdicts(metrics: dict) -> pd.DataFrame:
    """compare's verdict on each claim (its metrics file holds them by key), with the claim's text."""
    text = {c.key: c.text for c in claimlist.ALL}
    return pd.DataFrame([{"key": key, "claim": text[key], "verdict": verdict}
                         for key, verdict in metrics["verdicts"].items()], columns=["key", "claim", "verdict"])


def receipt(cfg: DictConfig, results: pd.DataFrame, results_file: Path) -> dict:
    """What this stage logged, in terms that are the same on every clone."""
    if not cfg.tracking.enabled:
        return {"logged": False, "why": "tracking.enabled=false"}
    return {"logged": True, "experiment": cfg.tracking.experiment, "results.sha256": file_sha256(results_file),
            "regimes": list(dict.fromkeys(results.regime))}


def run(cfg: DictConfig, root: Path) -> dict:
    p = paths(cfg, root)
    results = compare.read_table(p.results, compare.RESULTS_COLUMNS, "evaluate")
    baselines = compare.read_table(p.baselines, ("model", "rmse"), "baselines")
    files = compare.written(p)
    absent = [str(f) for f in files if not f.is_file()]
    if absent:
        raise errors.MissingInput(f"{absent[0]} is missing: run the compare stage first (dvc repro compare).")
    if cfg.tracking.enabled:
        # A second process, forked before MLflow is imported, draws the regimes' histograms while this one imports
        # MLflow and opens the runs: the two take about as long.
        with tempfile.TemporaryDirectory() as folder, processes.forked_pool(1) as painter:
            drawn = painter.submit(histogram.draw_files, results, baselines, Path(folder))
            from pipeline import tracking  # mlflow is imported only where a run is logged

            runs = tracking.log_study(cfg, root, results=results, baselines=baselines, files=files, kind="repro",
                                      summary=compare.describe(results, list(dict.fromkeys(results.regime))),
                                      verdicts=claim_verdicts(io.read_json(p.metrics)),
                                      histograms=lambda regime: drawn.result()[regime])
        print(f"logged the study to MLflow: parent run {runs.parent}, {len(runs.children)} regime runs")
    done = receipt(cfg, results, p.results)
    io.write_json(p.tracked, done)
    return done


def main() -> None:
    run(load_params(), Path.cwd())


if __name__ == "__main__":
    errors.cli(main)
