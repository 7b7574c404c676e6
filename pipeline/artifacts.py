"""Where each stage's outputs live and how the next stage reads them back.

All paths come from ``cfg.paths`` (relative to ``root``: the project for ``dvc repro``, a job's
own directory for a sweep), so no path is written twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from pipeline import data, io
from pipeline.engines.base import ModelSpec, Problem
from pipeline.errors import MissingInput


@dataclass(frozen=True)
class Paths:
    root: Path
    cfg: DictConfig

    def __getattr__(self, key: str) -> Path:
        return self.root / self.cfg[key]

    def scaled(self, window: str) -> Path:
        return self.root / self.cfg.scaled / f"{window}.npz"

    def scaler(self, window: str) -> Path:
        return self.root / self.cfg.scaled / f"{window}.scaler.json"

    def supervised(self, window: str) -> Path:
        return self.root / self.cfg.supervised / f"{window}.npz"

    def model(self, regime: str) -> Path:
        return self.root / self.cfg.models / f"{regime}.npz"

    def scaled_forecasts(self, regime: str) -> Path:
        """The regime's walk-forward forecasts of the test rows, scaled (R, n_test), and the seeds of its repeats."""
        return self.root / self.cfg.models / f"{regime}.forecasts.npz"

    def train_times(self) -> Path:
        """Each regime's training [start, end] (seconds since the epoch): what tracking logs as its duration."""
        return self.root / self.cfg.models / "train_times.json"


def paths(cfg: DictConfig, root: Path) -> Paths:
    return Paths(Path(root), cfg.paths)


def model_spec(cfg: DictConfig) -> ModelSpec:
    return ModelSpec(units=cfg.model.units, epochs=cfg.model.epochs, learning_rate=float(cfg.model.learning_rate))


def load_differenced(p: Paths) -> dict[str, np.ndarray]:
    if not p.differenced.is_file():
        raise MissingInput(f"{p.differenced} is missing: run the difference stage (dvc repro difference).")
    return io.load_arrays(p.differenced)


def load_scaler(p: Paths, window: str) -> data.MinMaxScaler:
    return data.scaler_from_dict(io.read_json(p.scaler(window)))


def load_problem(p: Paths, window: str) -> Problem:
    path = p.supervised(window)
    if not path.is_file():
        raise MissingInput(f"{path} is missing: run the frame stage (dvc repro frame).")
    return to_problem(io.load_arrays(path))


def to_problem(arrays: Mapping[str, np.ndarray]) -> Problem:
    """A framed window's arrays (``asdict`` of a ``data.Supervised``, or its archive) as the engines' float32 input."""
    return Problem(**{k: np.asarray(arrays[k]).astype(np.float32) for k in ("x_train", "y_train", "x_test", "y_test")})
