"""The engine interface and the records that cross it. No TensorFlow here: stages import this freely."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from pipeline import io
from pipeline.regimes import StateRegime

WEIGHT_NAMES = ("kernel", "recurrent_kernel", "bias", "dense_kernel", "dense_bias")


@dataclass(frozen=True)
class ModelSpec:
    units: int
    epochs: int
    learning_rate: float


@dataclass(frozen=True)
class Problem:
    """Scaled lag-1 pairs for one training window: inputs (n, 1) float32, targets (n,) float32."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class TrainedReplicas:
    """R trained models of one regime, every array with a leading replica axis.

    ``weights`` follows Keras's LSTM + Dense layout: kernel (R, 1, 4u), recurrent_kernel (R, u, 4u),
    bias (R, 4u) in i, f, c, o gate order, dense_kernel (R, u, 1), dense_bias (R, 1).
    ``state_h``/``state_c`` (R, batch, u) are the LSTM state when training ended: regimes that never
    reset carry it into the forecasts. ``losses`` (R, epochs) is each epoch's mean training loss.
    """

    seeds: np.ndarray
    weights: dict[str, np.ndarray]
    state_h: np.ndarray
    state_c: np.ndarray
    losses: np.ndarray

    def __len__(self) -> int:
        return len(self.seeds)

    def save(self, path: Path | str) -> None:
        arrays = {f"weights.{k}": v for k, v in self.weights.items()}
        arrays.update(seeds=self.seeds, state_h=self.state_h, state_c=self.state_c, losses=self.losses)
        io.save_arrays(path, arrays)

    @classmethod
    def load(cls, path: Path | str) -> TrainedReplicas:
        arrays = io.load_arrays(path)
        weights = {k.removeprefix("weights."): v for k, v in arrays.items() if k.startswith("weights.")}
        return cls(arrays["seeds"], weights, arrays["state_h"], arrays["state_c"], arrays["losses"])


Progress = Callable[[int], None]  # called with the number of replicas just finished


class Engine(Protocol):
    name: str

    def train(
        self, problem: Problem, regime: StateRegime, model: ModelSpec, seeds: np.ndarray, progress: Progress
    ) -> TrainedReplicas:
        """Train one replica per seed, each from its own initial weights (see ``engines.init``)."""

    def forecast(self, trained: TrainedReplicas, problem: Problem, regime: StateRegime) -> np.ndarray:
        """Walk-forward forecasts of the test targets, scaled, shape (R, n_test)."""
