"""Stage ``baselines``: persistence and the classical forecasters (``pipeline.analysis.baselines``), scored by RMSE
on the test months the LSTMs forecast.

They read the series and their own settings, nothing the LSTMs train on, so they are a stage of their own: retraining
the LSTMs (another regime, more epochs, a fresh clone) never refits them. The default ARIMA's monthly refits take
about as long as all the other baselines together, so the walks forward run on ``WORKERS`` processes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from pipeline import errors, io
from pipeline.analysis import baselines
from pipeline.artifacts import load_differenced, paths
from pipeline.params import load_params

WORKERS = 2


def run(cfg: DictConfig, root: Path, workers: int = WORKERS) -> pd.DataFrame:
    p = paths(cfg, root)
    raw = load_differenced(p)["raw"]
    scored = baselines.score(raw, cfg.data.test_size, cfg.baselines, cfg.data.interval, lag=cfg.model.lag,
                             workers=workers)
    io.write_csv(p.baselines, scored)
    return scored


def main() -> None:
    run(load_params(), Path.cwd())


if __name__ == "__main__":
    errors.cli(main)
