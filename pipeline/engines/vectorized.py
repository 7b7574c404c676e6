"""The fast engine: thousands of replicas, of every training procedure of equal shapes, in one compiled program.

The replicas' weights are stacked (replica axis innermost, so every op runs over contiguous
replicas) and trained by one ``tf.function``: a graph loop over epochs, each epoch's batches one
XLA-compiled loop whose every op acts on all replicas together. A step is what a Keras 3
LSTM(units) -> Dense(1) ``fit`` does on one batch: the forward pass, the mean-squared-error loss,
its gradient (written out below, op for op what ``tf.GradientTape`` derives for the sum of the
replicas' losses; the sum's derivative with respect to each replica's loss is one, so no replica's
loss reaches another's weights) and Keras's Adam update. XLA fuses a step's ~65 ops into a few
kernels, so a narrow step costs its arithmetic rather than their dispatch (2.5 times faster at 512
replicas); its kernels round differently from TensorFlow's, which Keras runs on a CPU, so the two
engines agree within float rounding and in law, not in ulps.

``train_many`` takes every job (a training procedure over some seeds), groups the jobs of equal
shapes (at batch size 1, of any length: see ``_shape_key``), and cuts each group's replicas,
sorted by length, into chunks of at most ``chunk_size``: one compiled program per chunk, whatever mix of
procedures and data sets it holds (per-replica reset masks, row orders and lengths). Chunks run
in epoch segments of about ``segment_s`` seconds, each segment a task for one of ``workers``
processes (one pool per process, kept; TensorFlow on one thread each: tiny ops gain nothing from more
threads, and separate processes overlap the per-op overhead), so progress and checkpoints happen
between segments. A replica's result depends on its seed alone: every chunk is padded to a whole
number of SIMD packets, so each element goes through the same vectorized kernel path wherever it sits
(a ragged tail may take a scalar path that differs in the last bit)."""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import itertools
import json
import multiprocessing
import multiprocessing.util
import os
import signal
import sys
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from pipeline import processes
from pipeline.engines.base import (
    WEIGHT_NAMES,
    Checkpoints,
    JobProgress,
    ModelSpec,
    Problem,
    Progress,
    TrainedReplicas,
    TrainingJob,
    import_tensorflow,
)
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
    # tf.math's, not tf.nn's (the same functions): touching tf.nn loads TensorFlow's legacy Keras, a second
    i = tf.math.sigmoid(z0)
    f = tf.math.sigmoid(z1)
    g = tf.math.tanh(z2)
    c_new = f * c + i * g
    o = tf.math.sigmoid(z3)
    tanh_c = tf.math.tanh(c_new)
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


def step_size(iteration, learning_rate: float):
    """Keras 3's Adam step size for update ``iteration`` (0-based: ``optimizer.iterations`` before it), in float32:
    the learning rate times sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t), t = iteration + 1."""
    import tensorflow as tf

    step = tf.cast(iteration + 1, tf.float32)
    beta_1_power = tf.pow(tf.constant(BETA_1, tf.float32), step)
    beta_2_power = tf.pow(tf.constant(BETA_2, tf.float32), step)
    return tf.constant(learning_rate, tf.float32) * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)


def adam(w, m, v, grad, alpha, rate_1=1 - BETA_1, rate_2=1 - BETA_2):
    """Keras 3's ``Adam.update_step`` on stacked weights (elementwise, so each replica's own step), ``alpha`` its
    ``step_size``: one for every replica, or one per replica, (1, 1, R). Per-replica zeros for ``alpha`` and the
    moments' rates (otherwise 1 - beta) leave a replica's weights and moments exactly as they were."""
    import tensorflow as tf

    m = m + (grad - m) * rate_1
    v = v + (tf.square(grad) - v) * rate_2
    return w - (m * alpha) / (tf.sqrt(v) + EPSILON), m, v


def _step_sizes(learning_rate: float) -> np.ndarray:
    """``step_size`` of updates 0 .. ``SATURATED``, each computed as Keras computes it, on one scalar (TensorFlow's
    vectorized pow rounds some powers differently), on the CPU whatever the device trains. From update ``SATURATED``
    on, every step size is the learning rate, the table's last entry, so a program reads update t's at
    min(t, ``SATURATED``): one table, of one shape, serves a training of any length. A training program looks its
    step sizes up instead of computing each (nine scalar ops per step, about a tenth of a narrow step's ops); the
    table costs ~2 us per update once per process and learning rate (~0.04 s), by the single-threaded executor (see
    ``_executing``), in which the table's own loop is traced and run."""
    if learning_rate not in _STEP_SIZES:
        blocks = -(-(SATURATED + 1) // STEP_SIZE_BLOCK)
        with _executing("cpu"):
            table = _scalar_step_sizes(learning_rate)(np.int32(0), np.int32(blocks)).numpy()
        _STEP_SIZES[learning_rate] = table[: SATURATED + 1]
    return _STEP_SIZES[learning_rate]


_STEP_SIZES: dict[float, np.ndarray] = {}  # the process's tables, by learning rate
STEP_SIZE_BLOCK = 8  # step sizes per turn of the table's loop, each still computed on its own scalar
# From this update on (t = update + 1), beta_1 ** t and beta_2 ** t are below 2 ** -25, half a unit in the last
# place of 1, by a margin (64 more powers: 6%) that no rounding of pow bridges: 1 - beta ** t is exactly 1 in
# float32, and the step size exactly the learning rate (tests/test_vectorized.py checks it).
SATURATED = int(np.ceil(np.log(2.0**-25) / np.log(max(BETA_1, BETA_2)))) + 64


@functools.cache
def _scalar_step_sizes(learning_rate: float):
    import tensorflow as tf

    @tf.function(autograph=False, input_signature=[tf.TensorSpec((), tf.int32)] * 2)
    def table(first, blocks):
        def block(k, sizes):
            t = first + k * STEP_SIZE_BLOCK
            return k + 1, sizes.write(k, tf.stack([step_size(t + j, learning_rate) for j in range(STEP_SIZE_BLOCK)]))

        sizes = tf.TensorArray(tf.float32, size=blocks, element_shape=(STEP_SIZE_BLOCK,))
        return tf.while_loop(lambda k, _: k < blocks, block, (0, sizes), parallel_iterations=1)[1].concat()

    return table


@dataclass(frozen=True)
class _Plan:
    """What one compiled training program is specialised on: shapes and the model.

    Replicas of different training procedures and data sets with these in common share one program, and every
    program runs the same ops whatever its replicas: which replicas carry their state from batch to batch and which
    zero it after each epoch are per-replica masks applied with ``tf.where`` (a selection), each replica reads its
    own batches, takes its own step sizes and stops at its own number of batches. XLA decides which ops it fuses
    (and so where it contracts a multiply and an add into one rounding) from the program's ops, so a program that
    left out what its replicas do not need (a mask all of them agree on, a length all of them share) would round
    some of the same steps differently: one program for all keeps a replica's bits its seed's alone.
    """

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
def _train_program(plan: _Plan, executor: str):
    """A segment of training: ``epochs`` epochs from the given weights, Adam moments, state and update count, traced
    for ``executor`` (``_executing``). Each epoch's inputs are gathered (``_epoch_inputs``), then its batches run as
    one XLA-compiled loop (``_batch_loop``)."""
    import tensorflow as tf

    _quiet_retracing_warning()
    b, nb, u, n_in, r = plan.batch_size, plan.n_batches, plan.units, plan.n_in, plan.replicas
    weights, state = tf.TensorSpec((sum(_sizes(u, n_in)), 1, r), tf.float32), tf.TensorSpec((u, b, r), tf.float32)
    inputs, batches = _epoch_inputs(plan), _batch_loop(plan)

    @tf.function(
        autograph=False,  # every loop and branch is written out (tf.while_loop, Python on static values)
        input_signature=[
            weights, weights, weights,  # weights, Adam's first and second moments, flat
            state, state,  # h, c
            tf.TensorSpec((r,), tf.int32),  # updates applied so far (optimizer.iterations)
            tf.TensorSpec((None, n_in), tf.float32),  # training inputs, each data set followed by a zero row
            tf.TensorSpec((None,), tf.float32),  # training targets, likewise
            tf.TensorSpec((None, None, nb * b), plan.order_dtype),  # row order: (epochs or 1, R or 1, rows)
            tf.TensorSpec((nb, b), tf.float32),  # 1 for a real row, 0 for a padding row
            tf.TensorSpec((r,), tf.bool),  # carry: the replica's state goes on from batch to batch
            tf.TensorSpec((r,), tf.bool),  # reset: the replica's state is zeroed after each epoch
            tf.TensorSpec((), tf.int32),  # epochs in this segment
            tf.TensorSpec((r,), tf.int32),  # each replica's rows: data sets of different lengths share a program
            tf.TensorSpec((None,), tf.float32),  # Adam's step sizes, the last one that of every later update
        ]
    )
    def train(w, m, v, h, c, it, x_rows, y_rows, orders, mask, carry, reset, epochs, lengths, step_sizes):
        counts = tf.reduce_sum(mask, axis=1)  # real rows per batch: the loss divisor and the metric weight
        n_rows, steps = tf.cast(lengths, tf.float32), (lengths + b - 1) // b  # each replica's rows and batches

        def epoch(e, it, w, m, v, h, c, history):
            rows = tf.gather(orders, tf.math.floormod(e, tf.shape(orders)[0]))  # (R or 1, rows), one contiguous copy
            xs, ys, alphas = inputs(rows, it, x_rows, y_rows, step_sizes)
            it, w, m, v, h, c, total = batches(it, w, m, v, h, c, xs, ys, alphas, counts, mask, carry, reset, steps)
            return e + 1, it, w, m, v, h, c, history.write(e, tf.math.divide_no_nan(total, n_rows))

        loop = (0, it, w, m, v, h, c, tf.TensorArray(tf.float32, size=epochs))
        _, _, w, m, v, h, c, history = tf.while_loop(lambda e, *_: e < epochs, epoch, loop, parallel_iterations=1)
        return w, m, v, h, c, tf.transpose(history.stack())

    return train


def _epoch_inputs(plan: _Plan):
    """An epoch's batches for every replica, (nb, features, b, R), and Adam's step size of each replica's every
    update in it, (nb, R), gathered by XLA in one pass (TensorFlow's own gathers and broadcasts cost the wide step a
    sixth more). It only moves values, so what it is compiled for cannot touch a bit of the training. XLA compiles it
    for each shape of its inputs: the data sets' rows are padded to a power of two (``_bucketed``) to keep those few,
    and the step sizes are one table (``_step_sizes``)."""
    import tensorflow as tf

    b, nb, n_in, r = plan.batch_size, plan.n_batches, plan.n_in, plan.replicas

    @tf.function(jit_compile=True, autograph=False)
    def inputs(rows, it, x_rows, y_rows, step_sizes):
        rows = tf.cast(rows, tf.int32)
        xs, ys = (tf.broadcast_to(tf.transpose(tf.reshape(tf.gather(table, rows), (-1, nb, b, n)), (1, 3, 2, 0)),
                                  (nb, n, b, r)) for table, n in ((x_rows, n_in), (y_rows, 1)))
        # An epoch's batch k is the replica's update it + k (past its own batches a replica takes no step, and its
        # step size goes unused); past the table, every step size is its last (_step_sizes)
        return xs, ys, tf.gather(step_sizes, tf.minimum(tf.range(nb)[:, None] + it, tf.shape(step_sizes)[0] - 1))

    return inputs


def _bucketed(table: np.ndarray) -> np.ndarray:
    """``table`` with zero rows up to a power of two: rows no row order reads, and few shapes for XLA."""
    return np.pad(table, [(0, (1 << max(len(table) - 1, 0).bit_length()) - len(table))] + [(0, 0)] * (table.ndim - 1))


def _batch_loop(plan: _Plan):
    """One epoch's batches and the reset after it, compiled by XLA into fused kernels. Fused, a narrow step costs its
    arithmetic rather than the dispatch of its ~65 ops; XLA's kernels round differently from TensorFlow's (and so
    from Keras's) in the last bits."""
    import tensorflow as tf

    b, nb, u, n_in, r = plan.batch_size, plan.n_batches, plan.units, plan.n_in, plan.replicas

    @tf.function(jit_compile=True, autograph=False)
    def batches(it, w, m, v, h, c, xs, ys, alphas, counts, mask, carry, reset, steps):
        zeros = tf.zeros((u, b, r))
        carry, reset = tf.reshape(carry, (1, 1, r)), tf.reshape(reset, (1, 1, r))

        def batch(k, it, w, m, v, h, c, total):
            # A replica past its own batches keeps everything as it was and adds no loss: zero step size and moment
            # rates keep its weights and moments exactly (a selection of each, carried by the loop, cost the wide
            # step a third more), a selection its state.
            real = k < steps
            alpha, *rates = (tf.reshape(tf.where(real, rate, 0.0), (1, 1, r))
                             for rate in (tf.gather(alphas, k), 1 - BETA_1, 1 - BETA_2))
            h_in, c_in = tf.where(carry, h, zeros), tf.where(carry, c, zeros)  # a stateless layer starts at 0
            count = tf.gather(counts, k)
            losses, grad, h_new, c_new = loss_and_grads(
                w, tf.gather(xs, k), tf.gather(ys, k), h_in, c_in, tf.gather(mask, k), count, u, n_in, plan.ragged)
            w, m, v = adam(w, m, v, grad, alpha, *rates)
            kept = tf.reshape(tf.logical_not(real), (1, 1, r))
            return (k + 1, it + tf.cast(real, tf.int32), w, m, v, tf.where(kept, h, h_new), tf.where(kept, c, c_new),
                    total + losses * count * tf.cast(real, tf.float32))  # Keras's row-weighted Mean

        loop = (0, it, w, m, v, h, c, tf.zeros((r,)))
        _, it, w, m, v, h, c, total = tf.while_loop(lambda k, *_: k < nb, batch, loop, parallel_iterations=1)
        return it, w, m, v, tf.where(reset, zeros, h), tf.where(reset, zeros, c), total

    return batches


@functools.cache
def _forecast_program(stateful: bool, reset_after_prediction: bool, units: int, n_in: int, executor: str):
    import tensorflow as tf

    state = tf.TensorSpec((units, None, None), tf.float32)

    @tf.function(
        autograph=False,
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


def _shape_key(job: TrainingJob) -> tuple:
    """Jobs with equal keys can share one program (and one chunk): equal shapes, model and epochs; at batch
    size 1, data sets of any length (each replica's epoch is the longest one's number of steps, those past its own
    length idle: see ``_batch_loop``)."""
    b = job.regime.batch_size
    return None if b == 1 else len(job.problem.x_train), b, np.shape(job.problem.x_train)[1:], job.model


@dataclass
class _Chunk:
    """Replicas of one or more jobs of equal shapes, trained by one program, one epoch segment at a time.

    Lives in the parent process; each segment is a picklable task (``_Segment``) a worker runs.
    """

    plan: _Plan
    pieces: list[tuple[int, int, int]]  # (job index, first seed, end) of each job's share, in replica order
    seeds: np.ndarray  # (R,) of the real replicas; padding replicas repeat the first
    carry: np.ndarray  # (R padded,) bool
    reset: np.ndarray  # (R padded,) bool
    x_rows: np.ndarray  # every data set the chunk trains on, each with its zero row; zero rows to a power of 2 in all
    y_rows: np.ndarray
    offsets: np.ndarray | None  # (R padded,) first row of each replica's data set; None: one set, one order
    shuffled: np.ndarray  # (S,) padded indices of the replicas that draw a fresh row order every epoch
    shuffled_orders: np.ndarray | None  # (epochs, S, n) their orders, drawn once, padded with their zero rows
    n_rows: int  # the longest data set's
    lengths: np.ndarray  # (R padded,) int32, each replica's data set's rows
    epochs: int
    key: str  # names its checkpoints; "" keeps none
    done: int = 0  # epochs trained
    state: dict[str, np.ndarray] | None = None  # w, m, v, h, c after ``done`` epochs; None: not started
    losses: list[np.ndarray] = field(default_factory=list)  # (R padded, epochs) per segment
    segment: int = 1  # epochs in the next segment

    def orders(self, first: int, epochs: int) -> np.ndarray:
        """Row order of every replica over epochs ``first .. first + epochs - 1``, padded with each data set's
        zero row (index n): (1, 1, rows) when every replica reads one data set in order, else (epochs or 1, R, rows)."""
        rows = self.plan.n_batches * self.plan.batch_size
        identity = np.minimum(np.arange(rows), self.lengths[:, None])
        if self.offsets is None and self.shuffled_orders is None:
            return identity[None, :1].astype(np.int32)
        span = epochs if self.shuffled_orders is not None else 1
        orders = np.broadcast_to(identity, (span, len(self.carry), rows)).astype(self.plan.order_dtype)
        if self.shuffled_orders is not None:
            orders[:, self.shuffled, : self.n_rows] = self.shuffled_orders[first : first + epochs]
        if self.offsets is not None:
            orders += self.offsets.astype(self.plan.order_dtype)[None, :, None]
        return orders

    def task(self) -> _Segment:
        epochs = min(self.segment, self.epochs - self.done)
        mask = (np.arange(self.plan.n_batches * self.plan.batch_size) < self.n_rows).astype(np.float32)
        return _Segment(
            self.plan, self.state, _pad(self.seeds, self.plan.replicas), self.x_rows, self.y_rows,
            self.orders(self.done, epochs), mask.reshape(self.plan.n_batches, self.plan.batch_size),
            self.carry, self.reset, self.done * -(-self.lengths // self.plan.batch_size), epochs, self.lengths,
        )

    def advance(self, state: dict[str, np.ndarray], losses: np.ndarray, seconds: float, target_s: float) -> None:
        """Take a finished segment's result and size the next one to take about ``target_s`` seconds."""
        self.state, self.done = state, self.done + losses.shape[1]
        self.losses.append(losses)
        grown = self.segment * target_s / max(seconds, 1e-9)
        # A segment's seconds include its set-up (initial weights, compilation, handing over), so a short one
        # understates the rate: grow fast (each segment boundary costs a few ms), bounded against a lucky minute
        self.segment = int(np.clip(grown, 1, 32 * self.segment))

    def checkpoint(self) -> dict[str, np.ndarray]:
        self.losses = [np.concatenate(self.losses, axis=1)]  # once per segment, not all segments each time
        return {**self.state, "losses": self.losses[0], "done": np.int64(self.done)}

    def restore(self, saved: dict[str, np.ndarray]) -> None:
        self.done = int(saved["done"])
        self.state = {k: saved[k] for k in ("w", "m", "v", "h", "c")}
        self.losses = [saved["losses"]]


@dataclass(frozen=True)
class _Segment:
    """One segment of one chunk, as a worker runs it: picklable, TensorFlow-free."""

    plan: _Plan
    state: dict[str, np.ndarray] | None  # None: start from the seeds' initial weights
    seeds: np.ndarray  # padded
    x_rows: np.ndarray
    y_rows: np.ndarray
    orders: np.ndarray
    mask: np.ndarray
    carry: np.ndarray
    reset: np.ndarray
    iteration: np.ndarray  # (R padded,) int32, updates each replica has taken
    epochs: int
    lengths: np.ndarray  # (R padded,) int32, rows of each replica's data set


def _run_segment(segment: _Segment, device: str) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """Train one segment: the new state, its per-epoch losses (R padded, epochs), and its seconds of work."""
    import_tensorflow()  # before the initial weights' draws import it plainly, loading what a worker needs not
    plan, state = segment.plan, segment.state
    start = time.perf_counter()
    if state is None:
        # Procedures of one chunk share seeds, and a replica's initial weights depend on its seed alone.
        unique, inverse = np.unique(segment.seeds, return_inverse=True)
        w = np.ascontiguousarray(flatten(initial_weights(unique, plan.units, plan.n_in))[..., inverse])
        zeros = np.zeros((plan.units, plan.batch_size, plan.replicas), np.float32)
        state = {"w": w, "m": np.zeros_like(w), "v": np.zeros_like(w), "h": zeros, "c": zeros}
    with _executing(device) as executor:
        out = _train_program(plan, executor)(
            state["w"], state["m"], state["v"], state["h"], state["c"], segment.iteration, segment.x_rows,
            segment.y_rows, segment.orders, segment.mask, segment.carry, segment.reset, np.int32(segment.epochs),
            segment.lengths, _step_sizes(plan.learning_rate),
        )
    w, m, v, h, c, losses = (t.numpy() for t in out)
    return {"w": w, "m": m, "v": v, "h": h, "c": c}, losses, time.perf_counter() - start


@contextlib.contextmanager
def _executing(device: str) -> Iterator[str]:
    """Where and how the programs trace and run; yields the executor's name, part of a program's cache key. On the
    CPU, TensorFlow's single-threaded executor runs tiny ops (the epoch loop's, the forecasts') with less overhead
    than the default one (each worker runs one thread anyway), with the same results. It keeps loops as functional
    While ops (not lowered to Switch/Merge, which it cannot run), so it must be in force when a program is traced,
    as here."""
    tf = import_tensorflow()
    where = _tf_device(device)
    executor = "SINGLE_THREADED_EXECUTOR" if where == "/CPU:0" else ""
    with tf.device(where), tf.experimental.function_executor_type(executor):
        yield executor


def _tf_device(device: str) -> str:
    if device == "cpu":
        return "/CPU:0"
    if not _tensorflow_sees_gpu():
        if device == "gpu":
            raise RuntimeError("engine.device=gpu, but TensorFlow sees no GPU: install tensorflow[and-cuda] "
                               "(in place of tensorflow-cpu) on a GPU machine, or set engine.device=cpu.")
        return "/CPU:0"
    return "/GPU:0"


@functools.cache
def _tensorflow_sees_gpu() -> bool:
    tf = import_tensorflow()

    return bool(tf.config.list_physical_devices("GPU"))


def _gpu_hint() -> bool:
    """Whether a GPU may be present, without importing TensorFlow (which costs seconds): a CUDA driver's device."""
    return Path("/dev/nvidiactl").exists() or Path("/dev/dxg").exists()


def _checked(job: TrainingJob) -> TrainingJob:
    x = np.asarray(job.problem.x_train, np.float32).reshape(len(job.problem.x_train), -1)
    job.regime.check_rows(len(x), len(job.problem.x_test))
    problem = replace(job.problem, x_train=x, y_train=np.asarray(job.problem.y_train, np.float32).reshape(-1))
    return replace(job, problem=problem, seeds=np.asarray(job.seeds, dtype=np.uint32))


def _chunk(jobs: list[TrainingJob], replicas: list[tuple[int, int]]) -> _Chunk:
    """The chunk of ``replicas`` ((job index, seed index), consecutive per job) of equally shaped jobs."""
    pieces, start = [], 0
    for k in range(1, len(replicas) + 1):
        if k == len(replicas) or replicas[k][0] != replicas[start][0]:
            pieces.append((replicas[start][0], replicas[start][1], replicas[k - 1][1] + 1))
            start = k
    first = jobs[pieces[0][0]]
    b, model = first.regime.batch_size, first.model
    n_in, padded = first.problem.x_train.shape[1], _lanes(len(replicas))

    tables: dict[bytes, int] = {}  # each distinct data set's first row in the stacked tables
    xs, ys = [], []
    per_replica = {"seeds": [], "carry": [], "reset": [], "shuffle": [], "offset": [], "length": []}
    for j, a, z in pieces:
        job = jobs[j]
        data_key = job.problem.x_train.tobytes() + job.problem.y_train.tobytes()
        if data_key not in tables:
            tables[data_key] = sum(map(len, xs))
            xs += [job.problem.x_train, np.zeros((1, n_in), np.float32)]
            ys += [job.problem.y_train, np.zeros(1, np.float32)]
        count = z - a
        per_replica["seeds"].append(job.seeds[a:z])
        per_replica["carry"].append(np.full(count, job.regime.stateful))
        per_replica["reset"].append(np.full(count, job.regime.stateful and job.regime.reset_after_epoch))
        per_replica["shuffle"].append(np.full(count, job.regime.shuffle))
        per_replica["offset"].append(np.full(count, tables[data_key]))
        per_replica["length"].append(np.full(count, len(job.problem.x_train)))
    seeds = np.concatenate(per_replica["seeds"])
    carry, reset, shuffle, offsets, lengths = (_pad(np.concatenate(per_replica[k]), padded)
                                               for k in ("carry", "reset", "shuffle", "offset", "length"))
    n = int(lengths.max())
    shuffled = np.flatnonzero(shuffle)
    ordered = len(tables) == 1 and not len(shuffled)  # one order, shared by every replica
    order_dtype = "int32" if ordered else np.min_scalar_type(sum(map(len, xs)) - 1).name
    padded_seeds = _pad(seeds, padded)
    plan = _Plan(
        batch_size=b, n_batches=-(-n // b), ragged=n % b != 0, units=model.units, n_in=n_in,
        learning_rate=model.learning_rate, replicas=padded, order_dtype=order_dtype,
    )
    keys = [[jobs[j].key, a, z] for j, a, z in pieces]
    return _Chunk(
        plan=plan, pieces=pieces, seeds=seeds, carry=carry, reset=reset,
        x_rows=_bucketed(np.concatenate(xs)), y_rows=_bucketed(np.concatenate(ys)),
        offsets=None if len(tables) == 1 else offsets,
        shuffled=shuffled,
        shuffled_orders=np.stack([_padded_orders(int(padded_seeds[i]), int(lengths[i]), n, model.epochs)
                                  for i in shuffled], axis=1) if len(shuffled) else None,
        n_rows=n, lengths=lengths.astype(np.int32), epochs=model.epochs,
        key="" if any(not key for key, _, _ in keys) else hashlib.sha256(json.dumps(keys).encode()).hexdigest(),
    )


def _next_chunk(
    chunks: list[_Chunk], running: Sequence[_Chunk], compiled: Sequence[set[_Plan]], lane: int, queued: bool,
    free: Collection[int],
) -> _Chunk | None:
    """The idle chunk worker ``lane`` runs next (``compiled``: the programs each worker has; ``free``: the workers
    with nothing running), or None: compiling a program costs seconds, so a worker keeps to its own; failing
    those, it takes one that no worker has, even queued behind its running segment (so the panel's many programs
    and the study's small batch-12 one start early, none left to run alone at the end); and with nothing of its
    own running, any that no free worker has compiled (that one takes it, with no compiling). Of each kind, the
    one with the most replica-steps left, so that the longest is not left to finish alone while the others idle."""
    idle = [c for c in chunks if c.done < c.epochs and all(c is not r for r in running)]
    unclaimed = [c for c in idle if not any(c.plan in plans for plans in compiled)]
    own = [c for c in idle if c.plan in compiled[lane]]
    others = [] if queued else [c for c in idle if not any(c.plan in compiled[f] for f in free if f != lane)]
    return max(own or unclaimed or others,
               key=lambda c: (c.epochs - c.done) * c.plan.n_batches * c.plan.replicas, default=None)


def _padded_orders(seed: int, n_rows: int, longest: int, epochs: int) -> np.ndarray:
    """A shuffling replica's row orders (epochs, longest): its own ``n_rows`` shuffled, then its zero row."""
    orders = np.full((epochs, longest), n_rows, np.min_scalar_type(longest))
    orders[:, :n_rows] = epoch_orders(seed, n_rows, epochs, True)
    return orders


def _report(chunk: _Chunk, epochs: int, progress: JobProgress) -> None:
    for j, a, z in chunk.pieces:
        progress(j, (z - a) * epochs / chunk.epochs)


def _assemble(jobs: list[TrainingJob], chunks: list[_Chunk]) -> list[TrainedReplicas]:
    """Each job's replicas out of the chunks that trained them, in seed order."""
    parts: dict[int, list[tuple[int, dict[str, np.ndarray]]]] = {i: [] for i in range(len(jobs))}
    for chunk in chunks:
        state, losses, position = chunk.state, np.concatenate(chunk.losses, axis=1), 0
        for j, a, z in chunk.pieces:
            take = slice(position, position + z - a)
            position += z - a
            plan = chunk.plan
            carried = chunk.carry[take][None, None, :]  # a stateless layer keeps no state
            h, c = (np.where(carried, state[k][..., take], np.float32(0)) for k in ("h", "c"))
            parts[j].append((a, {
                **unflatten(state["w"][..., take], plan.units, plan.n_in),
                "state_h": np.ascontiguousarray(np.transpose(h, (2, 1, 0))),
                "state_c": np.ascontiguousarray(np.transpose(c, (2, 1, 0))),
                "losses": losses[take],
            }))
    trained = []
    for i, job in enumerate(jobs):
        pieces = [p for _, p in sorted(parts[i], key=lambda item: item[0])]
        merged = {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}
        trained.append(TrainedReplicas(
            seeds=job.seeds, weights={k: merged[k] for k in WEIGHT_NAMES},
            state_h=merged["state_h"], state_c=merged["state_c"], losses=merged["losses"],
        ))
    return trained


def _start_worker(client: int) -> None:
    processes.end_with(client)
    for warning in (signal.SIGUSR1, signal.SIGUSR2):  # Slurm's time-limit warnings are the job's to handle
        signal.signal(warning, signal.SIG_IGN)  # (it checkpoints or requeues; these workers end with it)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf = import_tensorflow()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    atexit.register(_exit_now)


def _exit_now() -> None:
    """A worker's last act: it ends only when its pool shuts down (its tasks done or dropped), and tearing down
    TensorFlow's interpreter state would take a second more of the caller's exit, with nothing to save."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


_POOL: dict[int, list[Executor]] = {}  # at most one: the process's workers, by their number


def _pool(workers: int) -> list[Executor]:
    """The process's workers, one single-process executor each (so that a chunk is sent to the worker that has its
    program), started on first use and kept, so workers keep their compiled programs."""
    if workers not in _POOL:
        for old in (e for lanes in _POOL.values() for e in lanes):  # another number was asked for: one set lives
            old.shutdown(cancel_futures=True)
        _POOL.clear()
        if multiprocessing.get_start_method(allow_none=True) not in multiprocessing.get_all_start_methods():
            # In a joblib (loky) worker, as a parallel sweep's job runs: a spawned child starts by setting its
            # parent's default start method, which it does not know; give this process a standard one.
            multiprocessing.set_start_method("spawn", force=True)
        # Workers fork from a server that has imported TensorFlow once (a second or two less of each worker's start,
        # and one import's CPU instead of one per worker); spawned where there is no fork server.
        forkserver = "forkserver" in multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if forkserver else "spawn")
        if forkserver:
            context.set_forkserver_preload(["pipeline.engines.preload"])
        _POOL[workers] = [ProcessPoolExecutor(1, mp_context=context, initializer=_start_worker,
                                              initargs=(os.getpid(),)) for _ in range(workers)]
        for lane in _POOL[workers]:
            # A process that multiprocessing started (a joblib worker running a sweep's job) joins its children
            # when it ends, before any atexit hook: end the workers first, or the join waits on them for ever.
            multiprocessing.util.Finalize(lane, _end_workers, args=(lane,), exitpriority=10)
    return _POOL[workers]


def _started(lanes: list[Executor]) -> list[Executor]:
    """``lanes`` with their processes starting: an executor starts its process on its first task, so a no-op
    each starts them now (their start-up, seconds of importing TensorFlow, overlaps the caller's preparations:
    on a thread, since the first waits for the fork server's import)."""
    def start() -> None:
        for lane in lanes:
            try:
                lane.submit(int)
            except RuntimeError:  # shut down meanwhile: the caller was interrupted
                return

    threading.Thread(target=start, daemon=True).start()
    return lanes


def _end_workers(pool: ProcessPoolExecutor) -> None:
    workers = list((pool._processes or {}).values())  # the executor has no public handle on its processes
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        worker.kill()  # they hold no work: whatever they trained is checkpointed or returned


class _InProcess(Executor):
    """Runs each task at once in this process: one worker needs no pool."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as err:  # handed to the caller through the future, as a pool would
            future.set_exception(err)
        return future


@dataclass(frozen=True)
class VectorizedEngine:
    name: str = "vectorized"
    chunk_size: int = 5000  # most replicas per compiled call: bounds memory; results do not depend on it
    workers: int = 0  # processes training chunks side by side; 0: one per CPU core, or one with a GPU
    device: str = "auto"  # auto: a GPU when TensorFlow sees one, else the CPU; cpu; gpu (an error without one)
    segment_s: float = 1.0  # seconds of work per epoch segment: how often progress moves and checkpoints are kept

    def __post_init__(self) -> None:
        if self.chunk_size < 1 or self.workers < 0 or self.segment_s < 0:
            raise ValueError(
                f"engine.chunk_size must be >= 1, engine.workers >= 0 and engine.segment_s >= 0, got "
                f"{self.chunk_size}, {self.workers} and {self.segment_s}; e.g. engine.chunk_size=5000 engine.workers=0."
            )
        if self.device not in ("auto", "cpu", "gpu"):
            raise ValueError(f"engine.device must be auto, cpu or gpu, got {self.device!r}.")

    def uses_gpu(self) -> bool:
        if self.device == "auto" and not _gpu_hint():
            return False
        return self.device != "cpu" and _tf_device(self.device) == "/GPU:0"

    def n_workers(self) -> int:
        return self.workers or (1 if self.uses_gpu() else len(os.sched_getaffinity(0)))

    def n_chunks(self, replicas: int, share: float = 1.0) -> int:
        """Fewest equal chunks of at most ``chunk_size`` that keep busy this group's ``share`` of the workers (its
        part of all the work: other groups keep the rest busy), none below ``MIN_PARALLEL_CHUNK`` replicas unless
        ``chunk_size`` asks for it (a small run stays in-process). Wider chunks cost less per replica."""
        workers = max(1, round(self.n_workers() * share))
        n = max(-(-replicas // self.chunk_size), min(workers, replicas // MIN_PARALLEL_CHUNK))
        return min(replicas, -(-n // workers) * workers) if n > 1 else 1

    def train(
        self, problem: Problem, regime: StateRegime, model: ModelSpec, seeds: np.ndarray, progress: Progress
    ) -> TrainedReplicas:
        return self.train_many([TrainingJob(problem, regime, model, seeds)], lambda _, done: progress(done))[0]

    def train_many(
        self, jobs: Sequence[TrainingJob], progress: JobProgress, checkpoints: Checkpoints | None = None
    ) -> list[TrainedReplicas]:
        jobs = [_checked(job) for job in jobs]
        if not jobs:
            return []
        layout = self._layout(jobs)
        workers = min(self.n_workers(), len(layout))
        device = "cpu" if not self.uses_gpu() else "gpu"
        lanes = [_InProcess()] if workers == 1 else _started(_pool(workers))
        chunks = [_chunk(jobs, replicas) for replicas in layout]  # while the workers import TensorFlow
        for chunk in chunks:
            saved = checkpoints.load(chunk.key) if checkpoints and chunk.key else None
            if saved is not None:
                chunk.restore(saved)
                _report(chunk, chunk.done, progress)
        running: dict[Future, tuple[_Chunk, int]] = {}  # each segment in flight: its chunk and worker
        compiled: list[set[_Plan]] = [set() for _ in lanes]  # the programs each worker has
        try:
            while True:
                # Each worker's running segment first, then one queued behind it, so that no worker waits while
                # this process saves a checkpoint.
                for depth, (lane, executor) in itertools.product((0, 1), enumerate(lanes)):
                    free = set(range(len(lanes))) - {at for _, at in running.values()}
                    if sum(at == lane for _, at in running.values()) == depth and (chunk := _next_chunk(
                            chunks, [c for c, _ in running.values()], compiled, lane, depth > 0, free)):
                        compiled[lane].add(chunk.plan)
                        running[executor.submit(_run_segment, chunk.task(), device)] = (chunk, lane)
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    chunk, _ = running.pop(future)
                    state, losses, seconds = future.result()
                    chunk.advance(state, losses, seconds, self.segment_s)
                    if checkpoints and chunk.key:
                        checkpoints.save(chunk.key, chunk.checkpoint())
                    _report(chunk, losses.shape[1], progress)
        except BaseException:
            for future in running:  # interrupted: queued segments are dropped, the checkpoints keep the work done
                future.cancel()
            raise
        trained = _assemble(jobs, chunks)
        for chunk in chunks:
            if checkpoints and chunk.key:
                checkpoints.discard(chunk.key)
        return trained

    def _layout(self, jobs: list[TrainingJob]) -> list[list[tuple[int, int]]]:
        """Every job's replicas, grouped by shape and cut into equal chunks, one wide program each: the (job, seed
        index) replicas of each chunk (cheap: ``_chunk`` builds them)."""
        groups: dict[tuple, list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault(_shape_key(job), []).append(i)
        rows = [len(job.problem.x_train) for job in jobs]
        steps = {key: sum(len(jobs[i].seeds) * -(-rows[i] // key[1]) for i in members)  # replica-steps per epoch
                 for key, members in groups.items()}
        layout = []
        for key, members in groups.items():
            replicas = [(i, s) for i in members for s in range(len(jobs[i].seeds))]
            n = self.n_chunks(len(replicas), share=steps[key] / sum(steps.values()))  # the group's part of the work
            # Neighbours in length share a chunk (little idling); of one length, in-order procedures first: a chunk
            # of in-order replicas of one data set reads one row order for all, not one each.
            replicas.sort(key=lambda r: (-rows[r[0]], jobs[r[0]].regime.shuffle, r[0], r[1]))
            layout += [[replicas[k] for k in part] for part in np.array_split(np.arange(len(replicas)), n)]
        return layout

    def forecast(self, trained: TrainedReplicas, problem: Problem, regime: StateRegime) -> np.ndarray:
        return self.forecast_many([(trained, problem, regime)])[0]

    def forecast_many(self, tasks: Sequence[tuple[TrainedReplicas, Problem, StateRegime]]) -> list[np.ndarray]:
        """Every task's forecasts, in the worker pool when this process has one (its workers have TensorFlow
        loaded and their programs traced: the process that trained need not import it), else here."""
        device = "gpu" if self.uses_gpu() else "cpu"
        lanes = next(iter(_POOL.values())) if _POOL else [_InProcess()]
        futures = [lanes[i % len(lanes)].submit(_run_forecast, _forecast_task(*task), device)
                   for i, task in enumerate(tasks)]
        return [future.result() for future in futures]


@dataclass(frozen=True)
class _Forecast:
    """One forecasting task, as a worker runs it: picklable, TensorFlow-free."""

    stateful: bool
    reset_after_prediction: bool
    units: int
    weights: np.ndarray  # flat, (n_params, 1, R padded)
    state_h: np.ndarray  # (units, B, R padded)
    state_c: np.ndarray
    calls: np.ndarray  # (calls, inputs, rows per call, 1)
    replicas: int  # real replicas
    n_test: int


def _forecast_task(trained: TrainedReplicas, problem: Problem, regime: StateRegime) -> _Forecast:
    x_train = np.asarray(problem.x_train, np.float32).reshape(len(problem.x_train), -1)
    x_test = np.asarray(problem.x_test, np.float32).reshape(len(problem.x_test), -1)
    regime.check_rows(len(x_train), len(x_test))
    if regime.forecast == "batch":
        calls = x_test[None]  # one call predicts every test row
    else:  # one row per call: the warm-up over the training inputs, then the test inputs
        calls = (np.concatenate([x_train, x_test]) if regime.warm_start else x_test)[:, None]
    r, n = len(trained), _lanes(len(trained))
    return _Forecast(
        stateful=regime.stateful, reset_after_prediction=regime.reset_after_prediction,
        units=trained.weights["recurrent_kernel"].shape[1],
        weights=flatten({k: _pad(v, n) for k, v in trained.weights.items()}),
        state_h=_state_in(trained.state_h, n), state_c=_state_in(trained.state_c, n),
        calls=np.ascontiguousarray(np.transpose(calls, (0, 2, 1))[..., None]), replicas=r, n_test=len(x_test),
    )


def _run_forecast(task: _Forecast, device: str) -> np.ndarray:
    """Scaled forecasts of the test rows, (R, n_test)."""
    with _executing(device) as executor:
        program = _forecast_program(task.stateful, task.reset_after_prediction, task.units, task.calls.shape[1],
                                    executor)
        out = program(task.weights, task.state_h, task.state_c, task.calls)
    return np.transpose(out.numpy()[..., : task.replicas], (2, 0, 1)).reshape(task.replicas, -1)[:, -task.n_test :]
