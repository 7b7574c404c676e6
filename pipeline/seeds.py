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
    """uint32 seeds for repeats ``first .. first + repeats - 1``: ``SeedSequence(base_seed, spawn_key=(r,))``'s
    first word."""
    return _first_words(_words(base_seed), [np.arange(first, first + repeats, dtype=np.uint32)])


def stream_seeds(seeds: np.ndarray, stream: int, index: int = 0) -> np.ndarray:
    """A 31-bit integer seed (int64) for one purpose (``stream``) of each repeat seed (each below 2**32);
    ``index`` tells tensors apart: ``SeedSequence(seed, spawn_key=(stream, index))``'s first word, halved."""
    seeds = np.asarray(seeds)
    if seeds.size and (seeds.min() < 0 or seeds.max() >= 2**32):
        raise ValueError("repeat seeds must lie in [0, 2**32): draw them with repeat_seeds.")
    words = _first_words([seeds.astype(np.uint32)], [np.uint32(stream), np.uint32(index)])
    return (words >> np.uint32(1)).astype(np.int64)


def stream_seed(seed: int, stream: int, index: int = 0) -> int:
    """``stream_seeds`` of one seed."""
    return int(stream_seeds(np.array([seed]), stream, index)[0])


# numpy's SeedSequence (a pool of four words; the hashing and mixing constants of numpy/random/bit_generator.pyx),
# written out over arrays: a Python SeedSequence per seed costs ~20 microseconds, and the engine draws three per
# replica. tests/test_seeds.py holds it to numpy's own on every kind of input it is given.
_POOL = 4
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R, _SHIFT = np.uint32(0xCA01F9DD), np.uint32(0x4973F715), np.uint32(16)


def _words(value: int) -> list[np.uint32]:
    """A non-negative integer's 32-bit words, lowest first (at least one), as SeedSequence splits its entropy."""
    if value < 0:
        raise ValueError(f"seeds must be non-negative integers, got {value}.")
    return [np.uint32(value >> shift & 0xFFFFFFFF) for shift in range(0, max(int(value).bit_length(), 1), 32)]


def _first_words(run: list, spawn_key: list) -> np.ndarray:
    """``SeedSequence(run, spawn_key=spawn_key).generate_state(1)[0]`` over the broadcast words (uint32 each)."""
    words = [np.asarray(w, np.uint32) for w in run]
    if spawn_key and len(words) < _POOL:  # numpy pads the run's entropy to the pool when a spawn key follows
        words += [np.uint32(0)] * (_POOL - len(words))
    words += [np.asarray(w, np.uint32) for w in spawn_key]
    shape = np.broadcast_shapes(*(np.shape(w) for w in words))
    constant = _INIT_A

    def hashmix(value: np.ndarray) -> np.ndarray:
        nonlocal constant
        value = np.broadcast_to(value, shape) ^ np.uint32(constant)
        constant = constant * _MULT_A & 0xFFFFFFFF
        value = value * np.uint32(constant)
        return value ^ (value >> _SHIFT)

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        result = _MIX_L * x - _MIX_R * y
        return result ^ (result >> _SHIFT)

    with np.errstate(over="ignore"):  # uint32 arithmetic wraps, as in numpy's C
        pool = [hashmix(words[i] if i < len(words) else np.uint32(0)) for i in range(_POOL)]
        for source in range(_POOL):
            for target in range(_POOL):
                if source != target:
                    pool[target] = mix(pool[target], hashmix(pool[source]))
        for source in words[_POOL:]:
            for target in range(_POOL):
                pool[target] = mix(pool[target], hashmix(source))
        value = (pool[0] ^ np.uint32(_INIT_B)) * np.uint32(_INIT_B * _MULT_B & 0xFFFFFFFF)
    return np.asarray(value ^ (value >> _SHIFT), np.uint32)


def epoch_orders(seed: int, n_rows: int, epochs: int, shuffle: bool) -> np.ndarray:
    """Row order for every epoch, shape (epochs, n_rows): the identity, or a fresh permutation each epoch."""
    if not shuffle:
        return np.broadcast_to(np.arange(n_rows), (epochs, n_rows))
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(SHUFFLE_STREAM,)))
    # One permuted() call draws exactly what a permutation() per epoch would, many times faster.
    return rng.permuted(np.tile(np.arange(n_rows), (epochs, 1)), axis=1)
