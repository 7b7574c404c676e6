"""Initial weights of every replica, drawn from its own seed exactly as Keras's initializers draw them.

Both engines start from these arrays, so a replica's initial weights depend on its seed alone,
whichever engine trains it: glorot-uniform input and dense kernels, an orthogonal recurrent kernel,
zero biases with the forget gate's bias at one (Keras's ``unit_forget_bias``).

Keras 3 turns an integer seed ``s`` into the stateless seed ``[s mod (2**31 - 2), 0]`` (int32) and
draws with ``tf.random.stateless_*``; the functions here apply the same TensorFlow ops to a whole
stack of seeds in one compiled loop, so the result is bit for bit what
``keras.initializers.GlorotUniform(seed=s)`` / ``Orthogonal(seed=s)`` return, at a fraction of a
millisecond per replica instead of tens of milliseconds.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from pipeline.seeds import WEIGHTS_STREAM, stream_seeds

_INT32_MODULUS = np.iinfo(np.int32).max - 1  # Keras's backend/tensorflow/random.py `_cast_seed`


def stateless_seeds(seeds: np.ndarray) -> np.ndarray:
    """Keras's stateless seed pair for each integer seed: shape (R, 2), int32."""
    s = np.asarray(seeds, dtype=np.int64)
    if s.ndim != 1 or (s < 0).any():
        raise ValueError(f"seeds must be a 1-d array of non-negative integers, got shape {s.shape}.")
    return np.stack([s % _INT32_MODULUS, np.zeros_like(s)], axis=1).astype(np.int32)


def _glorot_uniform(shape: tuple[int, int], seed):
    import tensorflow as tf

    fan_in, fan_out = shape
    limit = math.sqrt(3.0 / max(1.0, (fan_in + fan_out) / 2.0))  # VarianceScaling(1, "fan_avg", "uniform")
    return tf.random.stateless_uniform(
        shape, seed=seed, minval=tf.cast(-limit, tf.float32), maxval=tf.cast(limit, tf.float32), dtype=tf.float32
    )


def _orthogonal(shape: tuple[int, int], seed):
    import tensorflow as tf

    rows, cols = shape
    a = tf.random.stateless_normal((max(rows, cols), min(rows, cols)), seed=seed, dtype=tf.float32)
    q, r = tf.linalg.qr(a)
    q = q * tf.sign(tf.linalg.diag_part(r))
    if rows < cols:
        q = tf.transpose(q)
    return tf.reshape(q, shape)  # Keras multiplies by gain 1.0: exact, so left out


@functools.cache
def _drawn(draws: tuple[tuple[str, tuple[int, int]], ...]):
    """One compiled loop over the replicas drawing every (initializer, shape) of ``draws`` from the replica's seeds
    (R, len(draws), 2): one loop for all of them, since each turn of it costs more than the draws themselves."""
    import tensorflow as tf

    initializers = {"glorot_uniform": _glorot_uniform, "orthogonal": _orthogonal}

    def draw(seeds):
        return tuple(initializers[name](shape, seeds[k]) for k, (name, shape) in enumerate(draws))

    signature = (tf.float32,) * len(draws)
    # Ten turns in flight hide each turn's fixed cost (~30% faster on one thread); turns do not share state.
    return tf.function(lambda seeds: tf.map_fn(draw, seeds, fn_output_signature=signature, parallel_iterations=10),
                       autograph=False)


def _draw(draws: list[tuple[str, tuple[int, int]]], seeds: np.ndarray) -> list[np.ndarray]:
    """Each of ``draws`` for every replica, replica r's k-th from its integer seed ``seeds[r, k]``: (R, *shape)."""
    pairs = np.stack([stateless_seeds(seeds[:, k]) for k in range(len(draws))], axis=1)
    return [t.numpy() for t in _drawn(tuple(draws))(pairs)]


def glorot_uniform(shape: tuple[int, int], seeds: np.ndarray) -> np.ndarray:
    """``keras.initializers.GlorotUniform(seed=s)(shape)`` for every ``s`` in ``seeds``: (R, *shape)."""
    return _draw([("glorot_uniform", tuple(shape))], np.asarray(seeds).reshape(-1, 1))[0]


def orthogonal(shape: tuple[int, int], seeds: np.ndarray) -> np.ndarray:
    """``keras.initializers.Orthogonal(seed=s)(shape)`` for every ``s`` in ``seeds``: (R, *shape)."""
    return _draw([("orthogonal", tuple(shape))], np.asarray(seeds).reshape(-1, 1))[0]


def initial_weights(seeds: np.ndarray, units: int, n_features: int = 1) -> dict[str, np.ndarray]:
    """Stacked float32 initial weights, one replica per seed (layout of ``TrainedReplicas.weights``)."""
    streams = np.stack([stream_seeds(np.asarray(seeds).reshape(-1), WEIGHTS_STREAM, i) for i in range(3)], axis=1)
    draws = [("glorot_uniform", (n_features, 4 * units)), ("orthogonal", (units, 4 * units)),
             ("glorot_uniform", (units, 1))]
    kernel, recurrent_kernel, dense_kernel = _draw(draws, streams)
    bias = np.zeros((len(streams), 4 * units), dtype=np.float32)
    bias[:, units : 2 * units] = 1.0
    return {
        "kernel": kernel,
        "recurrent_kernel": recurrent_kernel,
        "bias": bias,
        "dense_kernel": dense_kernel,
        "dense_bias": np.zeros((len(streams), 1), dtype=np.float32),
    }
