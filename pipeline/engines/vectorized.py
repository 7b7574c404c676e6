"""The fast engine: every replica of a regime trained at once, in one compiled TensorFlow program.

The replicas' weights are stacked (replica axis innermost, so every op runs over contiguous
replicas) and trained by one ``tf.function``: a graph loop over epochs and batches whose every op
acts on all replicas together. A step is what a Keras 3
LSTM(units) -> Dense(1) ``fit`` does on one batch, with the same TensorFlow kernels: the forward
pass, the mean-squared-error loss, its gradient (written out below, op for op what
``tf.GradientTape`` derives for the sum of the replicas' losses; the sum's derivative with respect
to each replica's loss is one, so no replica's loss reaches another's weights) and Keras's Adam
update. Plain graph, no XLA, as Keras runs on a CPU.

Replicas are trained in chunks of at most ``chunk_size``, side by side in ``workers`` processes
whose TensorFlow runtimes run on one thread each (tiny ops gain nothing from more threads; separate
processes overlap the per-op overhead that dominates at a thousand replicas). A replica's result
depends on its seed alone: every chunk is padded to a whole number of SIMD packets, so each element
goes through the same vectorized kernel path wherever it sits (a ragged tail takes a scalar path that
differs in the last bit, which is also why this engine and Keras, which feeds the kernels one
element at a time, differ in ulps).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from pipeline.engines.base import WEIGHT_NAMES, ModelSpec, Problem, Progress, TrainedReplicas
from pipeline.engines.init import initial_weights
from pipeline.regimes import StateRegime
from pipeline.seeds import epoch_orders

LANES = 16  # replicas per chunk are padded to a multiple of the widest SIMD packet (AVX-512 floats)
MIN_PARALLEL_CHUNK = 64  # fewer replicas per worker than this do not pay for a worker's start-up

# Keras 3 Adam defaults (keras.optimizers.Adam): the same Python floats, so the same float32 constants.
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7


def weight_shapes(units: int, n_in: int) -> dict[str, tuple[int, ...]]:
    """Per-replica shape of each weight, in Keras's order (``WEIGHT_NAMES``)."""
    shapes = {
        "kernel": (n_in, 4 * units),
        "recurrent_kernel": (units, 4 * units),
        "bias": (4 * units,),
        "dense_kernel": (units, 1),
        "dense_bias": (1,),
    }
    return {name: shapes[name] for name in WEIGHT_NAMES}


def _sizes(units: int, n_in: int) -> list[int]:
    return [int(np.prod(s)) for s in weight_shapes(units, n_in).values()]


# Inside the programs the replica axis is last, so that every op runs over contiguous replicas:
# weights are (n_params, 1, R), one row per scalar weight in Keras's row-major order; activations
# and states are (features, batch, R).


def flatten(weights: dict[str, np.ndarray]) -> np.ndarray:
    """Stacked Keras-layout weights (R, ...) as one (n_params, 1, R) float32 array."""
    n = len(weights[WEIGHT_NAMES[0]])
    flat = np.concatenate([np.asarray(weights[k], np.float32).reshape(n, -1) for k in WEIGHT_NAMES], axis=1)
    return np.ascontiguousarray(flat.T[:, None, :])


def unflatten(flat: np.ndarray, units: int, n_in: int) -> dict[str, np.ndarray]:
    """Inverse of ``flatten``."""
    shapes = weight_shapes(units, n_in)
    rows = np.split(flat[:, 0, :].T, np.cumsum(_sizes(units, n_in))[:-1], axis=1)
    return {k: np.ascontiguousarray(p).reshape(len(p), *shapes[k]) for k, p in zip(shapes, rows, strict=True)}


def _dot(a, w, n_out: int):
    """Per-replica ``a @ w``: a (k, B, R|1) activations, w (k * n_out, 1, R) a row-major (k, n_out) weight."""
    import tensorflow as tf

    if a.shape[0] == 1:
        return a * w
    return tf.add_n([a[j : j + 1] * w[j * n_out : (j + 1) * n_out] for j in range(a.shape[0])])


def _dot_grad_w(a, grad, b: int):
    """Gradient of ``_dot(a, w)`` with respect to w: per row of a, its product with grad summed over the batch."""
    import tensorflow as tf

    rows = [a * grad] if a.shape[0] == 1 else [a[j : j + 1] * grad for j in range(a.shape[0])]
    rows = rows if b == 1 else [tf.reduce_sum(row, axis=1, keepdims=True) for row in rows]
    return rows[0] if len(rows) == 1 else tf.concat(rows, axis=0)


def _dot_grad_a(grad, w):
    """Gradient of ``_dot(a, w)`` with respect to a, for w's (k, 1) shape: grad (1, B, R) times each row."""
    return grad * w


def split(w, units: int, n_in: int):
    """(n_params, 1, R) weights as rows: kernel, recurrent kernel, bias, dense kernel, dense bias."""
    import tensorflow as tf

    return tf.split(w, _sizes(units, n_in), axis=0)


def cell(parts, x, h, c):
    """One LSTM step and the Dense head, as Keras's LSTMCell (implementation 2) and Dense compute them.

    x (n_in, B, R|1), h and c (units, B, R). Returns the prediction (1, B, R), the new state and the
    activations the backward pass needs.
    """
    import tensorflow as tf

    kernel, recurrent, bias, dense_kernel, dense_bias = parts
    units = h.shape[0]
    z = _dot(x, kernel, 4 * units)
    z = z + _dot(h, recurrent, 4 * units)
    z = z + bias
    z0, z1, z2, z3 = tf.split(z, 4, axis=0)
    i = tf.nn.sigmoid(z0)
    f = tf.nn.sigmoid(z1)
    g = tf.nn.tanh(z2)
    c_new = f * c + i * g
    o = tf.nn.sigmoid(z3)
    tanh_c = tf.nn.tanh(c_new)
    h_new = o * tanh_c
    y = _dot(h_new, dense_kernel, 1) + dense_bias
    return y, h_new, c_new, (i, f, g, o, tanh_c)


def loss_and_grads(w, x, y, h, c, mask, count, units: int, n_in: int, ragged: bool):
    """Each replica's batch loss (Keras's "mse": summed over the batch rows, divided by ``count``),
    its gradient and the new state.

    ``mask`` (B,) zeroes the padding rows of a partial batch (used when ``ragged``); ``count`` is the
    number of real rows. The gradient is, op for op, what ``tf.GradientTape`` derives for the sum of
    the replicas' losses.
    """
    import tensorflow as tf

    b, r = x.shape[1], h.shape[2]
    parts = split(w, units, n_in)
    y_hat, h_new, c_new, (i, f, g, o, tanh_c) = cell(parts, x, h, c)
    error = y - y_hat
    values = tf.reshape(tf.square(error), (b, r))  # the mean over Dense's one output is the value itself
    if ragged:
        values = values * mask[:, None]
    losses = tf.math.divide_no_nan(tf.reshape(values, (r,)) if b == 1 else tf.reduce_sum(values, axis=0), count)

    # d loss / d y_hat: 1 / count through the sum, times 2 * error (Square), negated (Sub)
    d_values = tf.math.divide_no_nan(tf.constant(1.0), count)
    if ragged:
        d_values = d_values * mask[:, None]
    d_y = -(d_values * (error * 2.0))
    d_dense_bias = d_y if b == 1 else tf.reduce_sum(d_y, axis=1, keepdims=True)
    d_dense_kernel = _dot_grad_w(h_new, d_y, b)
    d_h = _dot_grad_a(d_y, parts[3])
    d_c = tf.raw_ops.TanhGrad(y=tanh_c, dy=d_h * o)
    d_z = tf.concat(
        [
            tf.raw_ops.SigmoidGrad(y=i, dy=d_c * g),
            tf.raw_ops.SigmoidGrad(y=f, dy=d_c * c),
            tf.raw_ops.TanhGrad(y=g, dy=d_c * i),
            tf.raw_ops.SigmoidGrad(y=o, dy=d_h * tanh_c),
        ],
        axis=0,
    )
    d_bias = d_z if b == 1 else tf.reduce_sum(d_z, axis=1, keepdims=True)
    grads = [_dot_grad_w(x, d_z, b), _dot_grad_w(h, d_z, b), d_bias, d_dense_kernel, d_dense_bias]
    return losses, tf.concat(grads, axis=0), h_new, c_new


def adam(w, m, v, grad, iteration, learning_rate: float):
    """Keras 3's ``Adam.update_step`` on stacked weights (elementwise, so each replica's own step).

    ``iteration`` counts the updates already applied (Keras's ``optimizer.iterations``).
    """
    import tensorflow as tf

    step = tf.cast(iteration + 1, tf.float32)
    beta_1_power = tf.pow(tf.constant(BETA_1, tf.float32), step)
    beta_2_power = tf.pow(tf.constant(BETA_2, tf.float32), step)
    alpha = tf.constant(learning_rate, tf.float32) * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
    m = m + (grad - m) * (1 - BETA_1)
    v = v + (tf.square(grad) - v) * (1 - BETA_2)
    return w - (m * alpha) / (tf.sqrt(v) + EPSILON), m, v


@dataclass(frozen=True)
class _Plan:
    """What one compiled training loop is specialised on: regime fields, data and chunk shapes."""

    stateful: bool
    reset_after_epoch: bool
    batch_size: int
    n_batches: int
    ragged: bool  # the last batch is partial (stateless only): its padding rows are masked out
    units: int
    n_in: int
    learning_rate: float
    replicas: int  # static, so that the graph optimizer folds every shape computation away
    order_dtype: str  # of the row orders


@functools.cache
def _quiet_retracing_warning() -> None:
    """Each plan is compiled once on purpose; TensorFlow counts every plan's first trace as a retrace."""
    import tensorflow as tf

    tf.get_logger().addFilter(lambda record: "triggered tf.function retracing" not in record.getMessage())


@functools.cache
def _train_program(plan: _Plan):
    import tensorflow as tf

    _quiet_retracing_warning()
    b, nb, u, n_in, r = plan.batch_size, plan.n_batches, plan.units, plan.n_in, plan.replicas

    @tf.function(
        input_signature=[
            tf.TensorSpec((sum(_sizes(u, n_in)), 1, r), tf.float32),  # initial weights, flat
            tf.TensorSpec((None, n_in), tf.float32),  # training inputs, then one zero row for padding
            tf.TensorSpec((None,), tf.float32),  # training targets, likewise
            tf.TensorSpec((None, None, nb * b), plan.order_dtype),  # row order: (R or 1, epochs or 1, rows)
            tf.TensorSpec((nb, b), tf.float32),  # 1 for a real row, 0 for a padding row
            tf.TensorSpec((), tf.int32),  # epochs
        ]
    )
    def train(w, x_rows, y_rows, orders, mask, epochs):
        zeros = tf.zeros((u, b, r))
        counts = tf.reduce_sum(mask, axis=1)  # real rows per batch: the loss divisor and the metric weight
        n_rows = tf.reduce_sum(counts)

        def epoch(e, it, w, m, v, h, c, history):
            rows = tf.cast(tf.gather(orders, tf.math.floormod(e, tf.shape(orders)[1]), axis=1), tf.int32)
            xs = tf.transpose(tf.reshape(tf.gather(x_rows, rows), (-1, nb, b, n_in)), (1, 3, 2, 0))
            ys = tf.transpose(tf.reshape(tf.gather(y_rows, rows), (-1, nb, b, 1)), (1, 3, 2, 0))

            def batch(k, it, w, m, v, h, c, total):
                if not plan.stateful:  # Keras starts a stateless layer from zeros on every batch
                    h, c = zeros, zeros
                losses, grad, h, c = loss_and_grads(w, xs[k], ys[k], h, c, mask[k], counts[k], u, n_in, plan.ragged)
                w, m, v = adam(w, m, v, grad, it, plan.learning_rate)
                return k + 1, it + 1, w, m, v, h, c, total + losses * counts[k]  # Keras's loss Mean, row-weighted

            loop = (0, it, w, m, v, h, c, tf.zeros((r,)))
            _, it, w, m, v, h, c, total = tf.while_loop(lambda k, *_: k < nb, batch, loop, parallel_iterations=1)
            if plan.reset_after_epoch:
                h, c = zeros, zeros
            return e + 1, it, w, m, v, h, c, history.write(e, tf.math.divide_no_nan(total, n_rows))

        loop = (0, 0, w, tf.zeros_like(w), tf.zeros_like(w), zeros, zeros, tf.TensorArray(tf.float32, size=epochs))
        _, _, w, _, _, h, c, history = tf.while_loop(lambda e, *_: e < epochs, epoch, loop, parallel_iterations=1)
        if not plan.stateful:  # a stateless layer keeps no state
            h, c = zeros, zeros
        return w, h, c, tf.transpose(history.stack())

    return train


@functools.cache
def _forecast_program(stateful: bool, reset_after_prediction: bool, units: int, n_in: int):
    import tensorflow as tf

    state = tf.TensorSpec((units, None, None), tf.float32)

    @tf.function(
        input_signature=[
            tf.TensorSpec((sum(_sizes(units, n_in)), 1, None), tf.float32),
            state,
            state,
            tf.TensorSpec((None, n_in, None, 1), tf.float32),  # calls: (calls, inputs, rows per call, 1)
        ]
    )
    def forecast(w, h, c, calls):
        parts = split(w, units, n_in)

        def call(k, h, c, out):
            if not stateful:
                h, c = tf.zeros_like(h), tf.zeros_like(c)
            y_hat, h, c, _ = cell(parts, calls[k], h, c)
            if reset_after_prediction:
                h, c = tf.zeros_like(h), tf.zeros_like(c)
            return k + 1, h, c, out.write(k, y_hat[0])

        n = tf.shape(calls)[0]
        _, _, _, out = tf.while_loop(lambda k, *_: k < n, call, (0, h, c, tf.TensorArray(tf.float32, size=n)))
        return out.stack()  # (calls, rows per call, R)

    return forecast


def _pad(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` with its first row repeated up to ``n`` rows."""
    return np.concatenate([a, np.repeat(a[:1], n - len(a), axis=0)]) if n > len(a) else a


def _lanes(n: int) -> int:
    return -(-n // LANES) * LANES


def _state_in(state: np.ndarray, n: int) -> np.ndarray:
    """(R, B, units) -> padded (units, B, n)."""
    return np.ascontiguousarray(np.transpose(_pad(np.asarray(state, np.float32), n), (2, 1, 0)))


def _state_out(state, r: int) -> np.ndarray:
    """(units, B, n) -> (R, B, units), padding dropped."""
    return np.ascontiguousarray(np.transpose(state.numpy()[..., :r], (2, 1, 0)))


@dataclass(frozen=True)
class _Job:
    """What a worker needs to train any chunk of one regime's seeds: picklable, TensorFlow-free."""

    x_train: np.ndarray
    y_train: np.ndarray
    regime: StateRegime
    model: ModelSpec

    def plan(self, replicas: int) -> _Plan:
        n, b = len(self.x_train), self.regime.batch_size
        return _Plan(
            stateful=self.regime.stateful,
            reset_after_epoch=self.regime.stateful and self.regime.reset_after_epoch,
            batch_size=b,
            n_batches=-(-n // b),
            ragged=n % b != 0,
            units=self.model.units,
            n_in=self.x_train.shape[1],
            learning_rate=self.model.learning_rate,
            replicas=replicas,
            order_dtype=np.min_scalar_type(n).name if self.regime.shuffle else "int32",
        )

    def orders(self, seeds: np.ndarray, padded_rows: int) -> np.ndarray:
        """Row order per replica and epoch, padded to whole batches with the index ``n`` of a zero row.

        Shape (R, epochs, rows) when shuffling, else (1, 1, rows): one order for every replica and epoch.
        Stored in the narrowest unsigned type that holds ``n``: it is the bulk of a chunk's memory.
        """
        n = len(self.x_train)
        if not self.regime.shuffle:
            return np.minimum(np.arange(padded_rows), n).astype(np.int32)[None, None]
        orders = np.full((len(seeds), self.model.epochs, padded_rows), n, dtype=np.min_scalar_type(n))
        for r, seed in enumerate(seeds):
            orders[r, :, :n] = epoch_orders(int(seed), n, self.model.epochs, True)
        return orders


def _train_chunk(job: _Job, seeds: np.ndarray) -> dict[str, np.ndarray]:
    r, n_in = len(seeds), job.x_train.shape[1]
    padded = _pad(seeds, _lanes(r))  # padding replicas repeat the first: real, finite models
    plan = job.plan(len(padded))
    rows = plan.n_batches * plan.batch_size
    w, h, c, losses = _train_program(plan)(
        flatten(initial_weights(padded, plan.units, n_in)),
        np.concatenate([job.x_train, np.zeros((1, n_in), np.float32)]),
        np.append(job.y_train, np.float32(0)),
        job.orders(padded, rows),
        (np.arange(rows) < len(job.x_train)).astype(np.float32).reshape(plan.n_batches, plan.batch_size),
        np.int32(job.model.epochs),
    )
    weights = unflatten(w.numpy()[..., :r], plan.units, n_in)
    return {**weights, "state_h": _state_out(h, r), "state_c": _state_out(c, r), "losses": losses.numpy()[:r]}


def _start_worker() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


@functools.cache
def _pool(workers: int) -> Executor:
    """One pool per worker count for the life of the process, so workers keep their compiled programs."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker)


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


@dataclass(frozen=True)
class VectorizedEngine:
    name: str = "vectorized"
    chunk_size: int = 5000  # most replicas per compiled call: bounds memory; results do not depend on it
    workers: int = 0  # processes training chunks side by side; 0: one per CPU core, or one with a GPU

    def __post_init__(self) -> None:
        if self.chunk_size < 1 or self.workers < 0:
            raise ValueError(
                f"engine.chunk_size must be >= 1 and engine.workers >= 0, got {self.chunk_size} and {self.workers}; "
                "e.g. engine.chunk_size=1000 engine.workers=0."
            )

    def n_workers(self) -> int:
        return self.workers or (1 if _has_gpu() else len(os.sched_getaffinity(0)))

    def n_chunks(self, replicas: int) -> int:
        """Fewest equal chunks of at most ``chunk_size`` that keep every worker busy, none below
        ``MIN_PARALLEL_CHUNK`` replicas unless ``chunk_size`` asks for it (a small run stays in-process)."""
        workers = self.n_workers()
        n = max(-(-replicas // self.chunk_size), min(workers, replicas // MIN_PARALLEL_CHUNK))
        return min(replicas, -(-n // workers) * workers) if n > 1 else 1

    def train(
        self, problem: Problem, regime: StateRegime, model: ModelSpec, seeds: np.ndarray, progress: Progress
    ) -> TrainedReplicas:
        x = np.asarray(problem.x_train, np.float32).reshape(len(problem.x_train), -1)
        regime.check_rows(len(x), len(problem.x_test))
        job = _Job(x, np.asarray(problem.y_train, np.float32).reshape(-1), regime, model)
        seeds = np.asarray(seeds, dtype=np.uint32)
        chunks = np.array_split(seeds, self.n_chunks(len(seeds)))
        workers = min(self.n_workers(), len(chunks))
        parts = []
        if workers == 1:
            for chunk in chunks:
                parts.append(_train_chunk(job, chunk))
                progress(len(chunk))
        else:
            futures = [_pool(workers).submit(_train_chunk, job, chunk) for chunk in chunks]
            for chunk, future in zip(chunks, futures, strict=True):
                parts.append(future.result())
                progress(len(chunk))
        merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return TrainedReplicas(
            seeds=seeds,
            weights={k: merged[k] for k in WEIGHT_NAMES},
            state_h=merged["state_h"],
            state_c=merged["state_c"],
            losses=merged["losses"],
        )

    def forecast(self, trained: TrainedReplicas, problem: Problem, regime: StateRegime) -> np.ndarray:
        x_train = np.asarray(problem.x_train, np.float32).reshape(len(problem.x_train), -1)
        x_test = np.asarray(problem.x_test, np.float32).reshape(len(problem.x_test), -1)
        regime.check_rows(len(x_train), len(x_test))
        if regime.forecast == "batch":
            calls = x_test[None]  # one call predicts every test row
        else:  # one row per call: the warm-up over the training inputs, then the test inputs
            calls = (np.concatenate([x_train, x_test]) if regime.warm_start else x_test)[:, None]
        r, units = len(trained), trained.weights["recurrent_kernel"].shape[1]
        n = _lanes(r)
        weights = {k: _pad(v, n) for k, v in trained.weights.items()}
        out = _forecast_program(regime.stateful, regime.reset_after_prediction, units, x_train.shape[1])(
            flatten(weights),
            _state_in(trained.state_h, n),
            _state_in(trained.state_c, n),
            np.ascontiguousarray(np.transpose(calls, (0, 2, 1))[..., None]),
        )
        return np.transpose(out.numpy()[..., :r], (2, 0, 1)).reshape(r, -1)[:, -len(x_test) :]
