"""The engine interface and the records that cross it. No TensorFlow here: stages import this freely."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Protocol

import numpy as np

from pipeline import io
from pipeline.regimes import StateRegime

WEIGHT_NAMES = ("kernel", "recurrent_kernel", "bias", "dense_kernel", "dense_bias")

# TensorFlow's import ends by importing this Keras module eagerly (and with it all of Keras and scikit-learn:
# about 4 s of a 7.5 s import). Engines that write their programs in TensorFlow itself never use it.
_EAGER_KERAS = "keras.src.optimizers"
# Its public namespaces (tf.data, tf.compat, tf.distribute, tf.__internal__, ...) are generated modules that import
# about half of TensorFlow's Python modules (a third of the import's time) whether or not a program touches them.
_NAMESPACES = "tensorflow._api.v2."


class _LazyNamespaces(importlib.abc.MetaPathFinder):
    """Finds TensorFlow's namespace modules as usual, but loads each (the standard library's ``LazyLoader``) only
    when first touched: ``tf.math.tanh`` works as before, and the namespaces nothing touches cost nothing."""

    def __init__(self, root: Path) -> None:
        api = root / "_api" / "v2"
        self.shadowed = tuple(sorted(p.parent.name for p in api.glob("*/__init__.py")
                                     if (root / p.parent.name / "__init__.py").is_file()))

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None):
        if not name.startswith(_NAMESPACES):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = importlib.util.LazyLoader(_UnderPackages(spec.loader, self.shadowed))
        return spec


class _UnderPackages(importlib.abc.Loader):
    """Loads a namespace as TensorFlow's own import would have. Two of them, tf.distribute and tf.lite, share their
    name with a real package (of generated kernels and protos) that their modules import as ``import
    tensorflow.distribute.<...> as x``, which reads ``tf.distribute``: while a namespace loads, the real packages
    hold those names, as they did during TensorFlow's import, and the namespaces get them back after."""

    def __init__(self, loader: importlib.abc.Loader, shadowed: tuple[str, ...]) -> None:
        self.loader, self.shadowed = loader, shadowed

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        tensorflow = sys.modules["tensorflow"]
        namespaces = {name: vars(tensorflow).get(name) for name in self.shadowed}
        for name in self.shadowed:
            setattr(tensorflow, name, importlib.import_module(f"tensorflow.{name}"))
        try:
            self.loader.exec_module(module)
        finally:
            for name, namespace in namespaces.items():
                if namespace is not None:  # (None: TensorFlow's import is still running, and binds it later)
                    setattr(tensorflow, name, namespace)


def import_tensorflow() -> ModuleType:
    """TensorFlow, imported (if it is not yet) without the Keras it loads eagerly and with its namespaces loaded when
    first touched; ``import keras`` later still works as usual. Call it before the first ``import tensorflow`` of a
    process that trains without Keras."""
    if "tensorflow" not in sys.modules and _EAGER_KERAS not in sys.modules:
        sys.modules[_EAGER_KERAS] = None  # TensorFlow catches the ImportError this raises and goes on
        lazy = _LazyNamespaces(Path(importlib.util.find_spec("tensorflow").origin).parent)
        sys.meta_path.insert(0, lazy)
        try:
            import tensorflow
        finally:
            sys.meta_path.remove(lazy)
            del sys.modules[_EAGER_KERAS]
    import tensorflow

    return tensorflow


@dataclass(frozen=True)
class ModelSpec:
    units: int
    epochs: int
    learning_rate: float


@dataclass(frozen=True)
class Problem:
    """Scaled pairs for one training window: inputs (n, lag) float32, each row the ``lag`` previous differences
    oldest first (fed as one time step of ``lag`` features), targets (n,) float32."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class TrainedReplicas:
    """R trained models of one regime, every array with a leading replica axis.

    ``weights`` follows Keras's LSTM + Dense layout: kernel (R, lag, 4u), recurrent_kernel (R, u, 4u),
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


Progress = Callable[[float], None]  # called with the models' worth of work just done (epochs / model.epochs)
JobProgress = Callable[[int, float], None]  # the same, for the job at that index of a ``train_many`` call


def training_procedure(regime: StateRegime, n_train: int) -> StateRegime:
    """The regime reduced to what training reads, so that regimes training identically get one record.

    Training reads whether the state carries from batch to batch, the batch size, shuffling and the
    reset after each epoch; warming up, resetting between predictions and the forecast's batching are
    read by forecasting alone. A stateful regime whose one batch per epoch always starts from a zeroed
    state trains exactly as a stateless one (same ops on the same zeros), so it is recorded as one.
    """
    carries = regime.stateful and not (regime.reset_after_epoch and n_train <= regime.batch_size)
    return replace(
        regime, name="training", stateful=carries, reset_after_epoch=carries and regime.reset_after_epoch,
        warm_start=False, reset_after_prediction=False, forecast="one_step" if regime.batch_size == 1 else "batch",
    )


@dataclass(frozen=True)
class TrainingJob:
    """One training procedure over some seeds; ``key`` names its checkpoints ("" keeps none)."""

    problem: Problem
    regime: StateRegime
    model: ModelSpec
    seeds: np.ndarray
    key: str = ""


class Checkpoints(Protocol):
    """Where an engine keeps the state of unfinished work between epoch segments (``pipeline.resume``)."""

    def load(self, key: str) -> dict[str, np.ndarray] | None: ...

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> None: ...

    def discard(self, key: str) -> None: ...


ForecastTask = tuple[TrainedReplicas, Problem, StateRegime]


class Engine(Protocol):
    name: str

    def train(
        self, problem: Problem, regime: StateRegime, model: ModelSpec, seeds: np.ndarray, progress: Progress
    ) -> TrainedReplicas:
        """Train one replica per seed, each from its own initial weights (see ``engines.init``)."""

    def train_many(
        self, jobs: Sequence[TrainingJob], progress: JobProgress, checkpoints: Checkpoints | None = None
    ) -> list[TrainedReplicas]:
        """``train`` for every job, in whatever order and packing the engine likes; the same bits as one by one."""

    def forecast(self, trained: TrainedReplicas, problem: Problem, regime: StateRegime) -> np.ndarray:
        """Walk-forward forecasts of the test targets, scaled, shape (R, n_test)."""

    def forecast_many(self, tasks: Sequence[ForecastTask]) -> list[np.ndarray]:
        """``forecast`` for every task, wherever the engine likes; the same bits as one by one."""


def train_each(engine: Engine, jobs: Sequence[TrainingJob], progress: JobProgress) -> list[TrainedReplicas]:
    """``train_many`` for an engine that trains one job at a time (no checkpoints between epochs)."""
    return [
        engine.train(job.problem, job.regime, job.model, job.seeds, lambda done, i=i: progress(i, done))
        for i, job in enumerate(jobs)
    ]


def forecast_each(engine: Engine, tasks: Sequence[ForecastTask]) -> list[np.ndarray]:
    """``forecast_many`` for an engine that forecasts one task at a time."""
    return [engine.forecast(*task) for task in tasks]
