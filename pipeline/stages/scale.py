"""Stage ``scale``: fit a [-1, 1] MinMaxScaler on the training rows only and scale the differences.

Each training window the selected regimes use (every training pair, or the last n) gets its own
scaler, fitted on the differences its training pairs touch, and saved beside its scaled values.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from pipeline import data, errors, io
from pipeline.artifacts import load_differenced, paths
from pipeline.params import load_params, regimes


def windows(cfg: DictConfig) -> dict[str, int | None]:
    """Training windows of the selected regimes: name -> number of last training pairs (None: all)."""
    return {regime.window: regime.train_rows for regime in regimes(cfg)}


def run(cfg: DictConfig, root: Path) -> None:
    p = paths(cfg, root)
    diffs = load_differenced(p)["diff"]
    for window, train_rows in windows(cfg).items():
        span = data.training_diff_span(len(diffs), cfg.data.test_size, train_rows)
        scaler = data.fit_scaler(diffs[span])
        io.save_arrays(p.scaled(window), {"scaled": data.scale(scaler, diffs)})
        io.write_json(p.scaler(window), data.scaler_to_dict(scaler))


def main() -> None:
    run(load_params(), Path.cwd())


if __name__ == "__main__":
    errors.cli(main)
