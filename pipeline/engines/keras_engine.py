"""The reference engine: one Keras 3 model per replica, trained the way the write-up trains.

A stateful LSTM with a static batch size, fit one epoch per ``fit`` call, with explicit per-layer
state resets between epochs (Keras 3 has no ``Model.reset_states``). Slow, and the yardstick every
faster engine is held against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.engines.base import (
    WEIGHT_NAMES,
    Checkpoints,
    ForecastTask,
    JobProgress,
    ModelSpec,
    Problem,
    Progress,
    TrainedReplicas,
    TrainingJob,
    forecast_each,
    train_each,
)
from pipeline.engines.init import initial_weights
from pipeline.regimes import StateRegime
from pipeline.seeds import epoch_orders


def build_model(batch_size: int, units: int, stateful: bool, n_features: int):
    """LSTM(units) -> Dense(1) on inputs of one time step and ``n_features`` features (the lags), batch size fixed."""
    import keras
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # one model per replica retraces by design; the warning is noise here
    inputs = keras.Input(batch_shape=(batch_size, 1, n_features))
    lstm = keras.layers.LSTM(units, stateful=stateful)
    outputs = keras.layers.Dense(1)(lstm(inputs))
    return keras.Model(inputs, outputs), lstm


def _as_steps(x: np.ndarray) -> np.ndarray:
    """Input rows (n, features) as (n, 1 time step, features)."""
    x = np.asarray(x, dtype=np.float32)
    return x.reshape(len(x), 1, -1)


@dataclass(frozen=True)
class KerasEngine:
    name: str = "keras"

    def train(
        self, problem: Problem, regime: StateRegime, model: ModelSpec, seeds: np.ndarray, progress: Progress
    ) -> TrainedReplicas:
        import keras

        x, y = _as_steps(problem.x_train), np.asarray(problem.y_train, dtype=np.float32).reshape(-1, 1)
        regime.check_rows(len(x), len(problem.x_test))
        start = initial_weights(seeds, model.units, x.shape[2])
        out = {name: [] for name in WEIGHT_NAMES}
        state_h, state_c, losses = [], [], []
        for r, seed in enumerate(seeds):
            net, lstm = build_model(regime.batch_size, model.units, regime.stateful, x.shape[2])
            net.set_weights([start[name][r] for name in WEIGHT_NAMES])
            net.compile(optimizer=keras.optimizers.Adam(learning_rate=model.learning_rate), loss="mse")
            epoch_losses = []
            for order in epoch_orders(int(seed), len(x), model.epochs, regime.shuffle):
                history = net.fit(x[order], y[order], epochs=1, batch_size=regime.batch_size, shuffle=False, verbose=0)
                epoch_losses.append(history.history["loss"][0])
                if regime.stateful and regime.reset_after_epoch:
                    lstm.reset_state()
            for name, value in zip(WEIGHT_NAMES, net.get_weights(), strict=True):
                out[name].append(value)
            h, c = _state(lstm, regime.batch_size, model.units)
            state_h.append(h)
            state_c.append(c)
            losses.append(epoch_losses)
            progress(1.0)
        return TrainedReplicas(
            seeds=np.asarray(seeds, dtype=np.uint32),
            weights={name: np.stack(v) for name, v in out.items()},
            state_h=np.stack(state_h),
            state_c=np.stack(state_c),
            losses=np.asarray(losses, dtype=np.float32),
        )

    def train_many(
        self, jobs: Sequence[TrainingJob], progress: JobProgress, checkpoints: Checkpoints | None = None
    ) -> list[TrainedReplicas]:
        return train_each(self, jobs, progress)  # minutes per model: the resume cache's chunks are its checkpoints

    def forecast_many(self, tasks: Sequence[ForecastTask]) -> list[np.ndarray]:
        return forecast_each(self, tasks)

    def forecast(self, trained: TrainedReplicas, problem: Problem, regime: StateRegime) -> np.ndarray:
        x_train, x_test = _as_steps(problem.x_train), _as_steps(problem.x_test)
        regime.check_rows(len(x_train), len(x_test))
        units = trained.weights["recurrent_kernel"].shape[1]
        batch = regime.batch_size if regime.forecast == "batch" else 1
        forecasts = np.empty((len(trained), len(x_test)), dtype=np.float32)
        for r in range(len(trained)):
            net, lstm = build_model(batch, units, regime.stateful, x_test.shape[2])
            net.set_weights([trained.weights[name][r] for name in WEIGHT_NAMES])
            if regime.stateful:
                lstm.states[0].assign(trained.state_h[r])
                lstm.states[1].assign(trained.state_c[r])

            def step(rows: np.ndarray, lstm=lstm, net=net) -> np.ndarray:
                yhat = np.asarray(net.predict_on_batch(rows)).reshape(-1)
                if regime.stateful and regime.reset_after_prediction:
                    lstm.reset_state()
                return yhat

            if regime.warm_start:
                for row in x_train:
                    step(row[None])
            if regime.forecast == "batch":
                forecasts[r] = step(x_test)
            else:
                forecasts[r] = [step(row[None])[0] for row in x_test]
        return forecasts


def _state(lstm, batch_size: int, units: int) -> tuple[np.ndarray, np.ndarray]:
    if not lstm.stateful:  # a stateless layer starts every batch from zeros
        zeros = np.zeros((batch_size, units), dtype=np.float32)
        return zeros, zeros.copy()
    h, c = (np.asarray(s.numpy(), dtype=np.float32) for s in lstm.states)
    return h, c
