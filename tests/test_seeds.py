import numpy as np
import pytest

from pipeline.seeds import epoch_orders, repeat_seeds, stream_seed, stream_seeds


def _numpy_word(entropy: int, spawn_key: tuple[int, ...]) -> int:
    return int(np.random.SeedSequence(entropy, spawn_key=spawn_key).generate_state(1)[0])


def test_stream_seeds_are_numpys_seed_sequence_over_arrays():
    seeds = np.concatenate([[0, 1, 2**31, 2**32 - 1], np.random.default_rng(3).integers(0, 2**32, 500)])
    for stream, index in [(0, 0), (0, 2), (1, 0), (7, 2**32 - 1)]:
        expected = [_numpy_word(int(s), (stream, index)) >> 1 for s in seeds]
        np.testing.assert_array_equal(stream_seeds(seeds, stream, index), expected)
    with pytest.raises(ValueError, match="repeat seeds must lie in"):
        stream_seeds(np.array([2**32]), 0)


@pytest.mark.parametrize("base", [0, 7, 2**32 - 1, 2**32, 2**40 + 5, 2**70 + 3])
def test_repeat_seeds_are_numpys_seed_sequence_for_any_base_seed(base):
    np.testing.assert_array_equal(repeat_seeds(base, 40, first=3), [_numpy_word(base, (r,)) for r in range(3, 43)])


def test_repeat_seed_depends_on_base_seed_and_repeat_alone():
    ten = repeat_seeds(7, 10)
    np.testing.assert_array_equal(repeat_seeds(7, 3), ten[:3])
    np.testing.assert_array_equal(repeat_seeds(7, 4, first=6), ten[6:])
    assert len(set(ten.tolist())) == 10
    assert not set(repeat_seeds(8, 10).tolist()) & set(ten.tolist())


def test_streams_are_distinct_and_stable():
    assert stream_seed(5, 0) == stream_seed(5, 0)
    assert len({stream_seed(5, 0), stream_seed(5, 1), stream_seed(5, 0, 1), stream_seed(6, 0)}) == 4
    assert 0 <= stream_seed(2**32 - 1, 1) < 2**31


def test_epoch_orders_identity_or_fresh_permutations():
    np.testing.assert_array_equal(epoch_orders(1, 5, 3, shuffle=False), np.tile(np.arange(5), (3, 1)))
    orders = epoch_orders(1, 22, 50, shuffle=True)
    assert all(sorted(o) == list(range(22)) for o in orders)
    assert len({tuple(o) for o in orders}) == 50
    np.testing.assert_array_equal(orders, epoch_orders(1, 22, 50, shuffle=True))
    assert not np.array_equal(orders, epoch_orders(2, 22, 50, shuffle=True))
