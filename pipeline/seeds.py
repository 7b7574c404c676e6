"""Seeds as a paired design: repeat r's seed depends on the base seed and r alone.

So repeat r of every regime starts from the same initial weights (common random numbers), and
regimes can be compared repeat by repeat. Independent streams for the initial weights and for the
shuffling order are spawned from each repeat's seed, never shared.
"""

from __future__ import annotations

import numpy as np

WEIGHTS_STREAM = 0
SHUFFLE_STREAM = 1


def repeat_seeds(base_seed: int, repeats: int, first: int = 0) -> np.ndarray:
    """uint32 seeds for repeats ``first .. first + repeats - 1``."""
    return np.array(
        [np.random.SeedSequence(base_seed, spawn_key=(r,)).generate_state(1)[0] for r in range(first, first + repeats)],
        dtype=np.uint32,
    )


def stream_seed(seed: int, stream: int, index: int = 0) -> int:
    """A 31-bit integer seed for one purpose (``stream``) of one repeat; ``index`` tells tensors apart."""
    return int(np.random.SeedSequence(int(seed), spawn_key=(stream, index)).generate_state(1)[0] >> 1)


def epoch_orders(seed: int, n_rows: int, epochs: int, shuffle: bool) -> np.ndarray:
    """Row order for every epoch, shape (epochs, n_rows): the identity, or a fresh permutation each epoch."""
    if not shuffle:
        return np.broadcast_to(np.arange(n_rows), (epochs, n_rows))
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(SHUFFLE_STREAM,)))
    # One permuted() call draws exactly what a permutation() per epoch would, many times faster.
    return rng.permuted(np.tile(np.arange(n_rows), (epochs, 1)), axis=1)
