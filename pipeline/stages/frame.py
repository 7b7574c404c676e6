"""Stage ``frame``: turn each scaled window into supervised pairs at ``model.lag`` split into train and test.

Each input row holds the ``model.lag`` scaled differences before its target, oldest first (one time step of that
many features); the test rows are the last ``data.test_size`` pairs at every lag (``pipeline.data``'s indices)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from pipeline import data, errors, io
from pipeline.artifacts import paths
from pipeline.params import load_params
from pipeline.stages.scale import windows


def frame_window(scaled: np.ndarray, test_size: int, train_rows: int | None, lag: int) -> data.Supervised:
    """One window's scaled differences as pairs at ``lag``, split into its training rows and the test rows."""
    x, y = data.frame(scaled, lag)
    return data.split_supervised(x, y, test_size, train_rows)


def run(cfg: DictConfig, root: Path) -> None:
    p = paths(cfg, root)
    for window, train_rows in windows(cfg).items():
        scaled = io.load_arrays(p.scaled(window))["scaled"]
        supervised = frame_window(scaled, cfg.data.test_size, train_rows, cfg.model.lag)
        io.save_arrays(p.supervised(window), asdict(supervised))


def main() -> None:
    run(load_params(), Path.cwd())


if __name__ == "__main__":
    errors.cli(main)
