import numpy as np

from pipeline.seeds import epoch_orders, repeat_seeds, stream_seed


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
