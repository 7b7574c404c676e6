"""Stage ``scale``: fit a [-1, 1] min-max scaler on the training rows only and scale the differences.

Each training window the selected regimes use (every training pair, or the last n) gets its own
scaler, fitted on the differences its training pairs at ``model.lag`` touch (inputs and targets), and saved beside
its scaled values. With every training pair that is every difference before the test targets, at any lag.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from pipeline import data, errors, io
from pipeline.artifacts import load_differenced, paths
from pipeline.params import load_params, regimes
from pipeline.regimes import StateRegime


def windows_of(selected: Iterable[StateRegime]) -> dict[str, int | None]:
    """Training windows of ``selected`` regimes: name -> number of last training pairs (None: all)."""
    return {regime.window: regime.train_rows for regime in selected}


def windows(cfg: DictConfig) -> dict[str, int | None]:
    return windows_of(regimes(cfg))


def scale_window(
    diffs: np.ndarray, test_size: int, train_rows: int | None, lag: int
) -> tuple[np.ndarray, data.MinMaxScaler]:
    """Every difference scaled by a scaler fitted on the ones this window's training pairs touch, and the scaler."""
    span = data.training_diff_span(len(diffs), test_size, train_rows, lag)
    scaler = data.fit_scaler(diffs[span])
    return data.scale(scaler, diffs), scaler


def run(cfg: DictConfig, root: Path) -> None:
    p = paths(cfg, root)
    diffs = load_differenced(p)["diff"]
    for window, train_rows in windows(cfg).items():
        scaled, scaler = scale_window(diffs, cfg.data.test_size, train_rows, cfg.model.lag)
        io.save_arrays(p.scaled(window), {"scaled": scaled})
        io.write_json(p.scaler(window), data.scaler_to_dict(scaler))


def main() -> None:
    run(load_params(), Path.cwd())


if __name__ == "__main__":
    errors.cli(main)
