"""Stage ``difference``: make the series stationary by differencing at ``data.interval``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from pipeline import data, errors, io
from pipeline.artifacts import paths
from pipeline.errors import MissingInput
from pipeline.params import load_params
from pipeline.stages.fetch import parse


def run(cfg: DictConfig, root: Path) -> None:
    p = paths(cfg, root)
    if not p.raw.is_file():
        raise MissingInput(f"{p.raw} does not exist: run the fetch stage first (dvc repro fetch).")
    series = parse(p.raw.read_bytes(), cfg.data, str(p.raw), cfg.model.lag)
    io.save_arrays(
        p.differenced,
        {
            "periods": np.array(series.periods),
            "raw": series.values,
            "diff": data.difference(series.values, cfg.data.interval),
            "interval": np.array(cfg.data.interval),
        },
    )


def main() -> None:
    run(load_params(), Path.cwd())


if __name__ == "__main__":
    errors.cli(main)
