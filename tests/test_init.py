from __future__ import annotations

import numpy as np
import pytest

from pipeline.engines import init
from pipeline.seeds import WEIGHTS_STREAM, repeat_seeds, stream_seed

# Small, large and wrap-around seeds: Keras reduces seeds modulo 2**31 - 2 before drawing.
SEEDS = np.array([0, 1, 12345, 2**31 - 3, 2**31 - 2, 2**31 - 1, 2**32 - 1], dtype=np.int64)


@pytest.mark.parametrize("shape", [(1, 4), (2, 12), (3, 1)])
def test_glorot_uniform_is_keras_bit_for_bit(shape):
    import keras

    batched = init.glorot_uniform(shape, SEEDS)
    for seed, got in zip(SEEDS, batched, strict=True):
        expected = np.asarray(keras.initializers.GlorotUniform(seed=int(seed))(shape))
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("shape", [(1, 4), (3, 12), (5, 2)])
def test_orthogonal_is_keras_bit_for_bit(shape):
    import keras

    batched = init.orthogonal(shape, SEEDS)
    for seed, got in zip(SEEDS, batched, strict=True):
        expected = np.asarray(keras.initializers.Orthogonal(seed=int(seed))(shape))
        np.testing.assert_array_equal(got, expected)


def test_initial_weights_layout_and_per_seed_streams():
    import keras

    seeds = repeat_seeds(7, 3)
    w = init.initial_weights(seeds, units=2)
    assert {k: v.shape for k, v in w.items()} == {
        "kernel": (3, 1, 8),
        "recurrent_kernel": (3, 2, 8),
        "bias": (3, 8),
        "dense_kernel": (3, 2, 1),
        "dense_bias": (3, 1),
    }
    assert all(v.dtype == np.float32 for v in w.values())
    np.testing.assert_array_equal(w["bias"], np.tile([0, 0, 1, 1, 0, 0, 0, 0], (3, 1)))
    np.testing.assert_array_equal(w["dense_bias"], 0)
    # replica 1's recurrent kernel comes from its own seed's second weight stream
    s = stream_seed(int(seeds[1]), WEIGHTS_STREAM, 1)
    np.testing.assert_array_equal(w["recurrent_kernel"][1], keras.initializers.Orthogonal(seed=s)((2, 8)))


def test_a_replica_depends_on_its_own_seed_only():
    seeds = repeat_seeds(1, 6)
    alone = init.initial_weights(seeds[4:5], units=1)
    together = init.initial_weights(seeds, units=1)
    for name, value in alone.items():
        np.testing.assert_array_equal(value[0], together[name][4])
    assert not np.array_equal(together["kernel"][0], together["kernel"][1])


def test_bad_seeds_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        init.stateless_seeds(np.array([-1]))
