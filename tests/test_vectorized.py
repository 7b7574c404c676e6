from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipeline.artifacts import load_problem, paths
from pipeline.engines import make_engine
from pipeline.engines import vectorized as vec
from pipeline.engines.base import WEIGHT_NAMES, ModelSpec, Problem
from pipeline.engines.keras_engine import KerasEngine
from pipeline.params import regimes
from pipeline.regimes import RegimeError, StateRegime
from pipeline.seeds import repeat_seeds

TOL = 1e-4


def no_progress(_: int) -> None:
    pass


def synthetic_problem(n_train: int = 22, n_test: int = 12, n_in: int = 1, seed: int = 0) -> Problem:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n_train + n_test, n_in)).astype(np.float32)
    y = np.tanh(x.sum(axis=1)).astype(np.float32)
    return Problem(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def regime(**fields) -> StateRegime:
    base = dict(
        name="custom", stateful=True, train_rows=None, batch_size=1, shuffle=False, reset_after_epoch=True,
        warm_start=False, reset_after_prediction=False, forecast="one_step",
    )
    return StateRegime(**{**base, **fields})


def assert_same(a, b) -> None:
    for name in WEIGHT_NAMES:
        np.testing.assert_array_equal(a.weights[name], b.weights[name], err_msg=name)
    for name in ("state_h", "state_c", "losses", "seeds"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def assert_close(got, ref, tol: float = TOL) -> None:
    for name in WEIGHT_NAMES:
        np.testing.assert_allclose(got.weights[name], ref.weights[name], rtol=0, atol=tol, err_msg=name)
    for name in ("state_h", "state_c", "losses"):
        np.testing.assert_allclose(getattr(got, name), getattr(ref, name), rtol=0, atol=tol, err_msg=name)


def test_weights_round_trip_through_the_replica_last_layout():
    rng = np.random.default_rng(1)
    shapes = vec.weight_shapes(units=3, n_in=2)
    weights = {k: rng.normal(size=(5, *s)).astype(np.float32) for k, s in shapes.items()}
    flat = vec.flatten(weights)
    assert flat.shape == (sum(int(np.prod(s)) for s in shapes.values()), 1, 5)
    back = vec.unflatten(flat, units=3, n_in=2)
    for k in shapes:
        np.testing.assert_array_equal(back[k], weights[k])


@pytest.mark.parametrize(
    ("units", "n_in", "batch", "ragged", "shared_x"),
    [(1, 1, 1, False, True), (1, 1, 12, False, True), (1, 1, 5, True, False), (3, 2, 4, True, False)],
)
def test_written_out_gradient_is_what_autodiff_gives_bit_for_bit(units, n_in, batch, ragged, shared_x):
    import tensorflow as tf

    rng = np.random.default_rng(2)
    r = 16
    n_params = sum(int(np.prod(s)) for s in vec.weight_shapes(units, n_in).values())

    def t(*shape):
        return tf.constant(rng.normal(size=shape).astype(np.float32))

    w, h, c = t(n_params, 1, r), t(units, batch, r), t(units, batch, r)
    x, y = t(n_in, batch, 1 if shared_x else r), t(1, batch, 1 if shared_x else r)
    mask = tf.constant((np.arange(batch) < batch - 1 if ragged else np.ones(batch)).astype(np.float32))
    count = tf.reduce_sum(mask)
    losses, grad, _, _ = vec.loss_and_grads(w, x, y, h, c, mask, count, units, n_in, ragged)
    with tf.GradientTape() as tape:
        tape.watch(w)
        y_hat = vec.cell(vec.split(w, units, n_in), x, h, c)[0]
        values = tf.reduce_mean(tf.square(y - y_hat), axis=0) * (mask[:, None] if ragged else 1.0)
        expected = tf.math.divide_no_nan(tf.reduce_sum(values, axis=0), count)
        total = tf.reduce_sum(expected)
    np.testing.assert_array_equal(grad.numpy(), tape.gradient(total, w).numpy())
    np.testing.assert_array_equal(losses.numpy(), expected.numpy())


def test_adam_is_keras_adam_bit_for_bit():
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(3)
    w0 = rng.normal(size=(14, 1, 32)).astype(np.float32)
    grads = [rng.normal(size=w0.shape).astype(np.float32) * 10.0 ** -k for k in range(4)]
    variable = tf.Variable(w0)
    optimizer = keras.optimizers.Adam(learning_rate=0.003)
    w, m, v = tf.constant(w0), tf.zeros_like(w0), tf.zeros_like(w0)
    for step, g in enumerate(grads):
        optimizer.apply([tf.constant(g)], [variable])
        w, m, v = vec.adam(w, m, v, tf.constant(g), tf.constant(step), 0.003)
        np.testing.assert_array_equal(w.numpy(), variable.numpy())


BATCH = dict(forecast="batch", batch_size=12)


@pytest.mark.parametrize(
    ("n_train", "fields"),
    [
        (22, dict(stateful=False, shuffle=True, reset_after_epoch=False)),
        (22, dict(stateful=True, shuffle=True, reset_after_epoch=False, warm_start=True)),
        (24, dict(stateful=True, **BATCH)),
        (29, dict(stateful=False, reset_after_epoch=False, **BATCH)),  # a partial last batch
    ],
)
def test_a_replica_does_not_depend_on_its_chunk_mates(n_train, fields):
    problem, reg = synthetic_problem(n_train=n_train), regime(**fields)
    model, seeds = ModelSpec(units=1, epochs=4, learning_rate=0.01), repeat_seeds(3, 21)
    whole = vec.VectorizedEngine(chunk_size=21, workers=1).train(problem, reg, model, seeds, no_progress)
    chunked = vec.VectorizedEngine(chunk_size=8, workers=1).train(problem, reg, model, seeds, no_progress)
    assert_same(whole, chunked)
    alone = vec.VectorizedEngine(workers=1).train(problem, reg, model, seeds[17:18], no_progress)
    for name in WEIGHT_NAMES:
        np.testing.assert_array_equal(alone.weights[name][0], whole.weights[name][17])
    np.testing.assert_array_equal(alone.losses[0], whole.losses[17])
    forecasts = vec.VectorizedEngine().forecast(whole, problem, reg)
    np.testing.assert_array_equal(vec.VectorizedEngine().forecast(alone, problem, reg)[0], forecasts[17])


def test_same_config_and_seeds_give_the_same_bits():
    problem, model, seeds = synthetic_problem(), ModelSpec(units=2, epochs=3, learning_rate=0.01), repeat_seeds(5, 9)
    reg = regime(stateful=False, shuffle=True, reset_after_epoch=False)
    engine = vec.VectorizedEngine(chunk_size=4, workers=1)
    first = engine.train(problem, reg, model, seeds, no_progress)
    assert_same(first, engine.train(problem, reg, model, seeds, no_progress))
    assert len({first.weights["kernel"][i].tobytes() for i in range(9)}) == 9  # every replica its own model
    assert np.isfinite(first.losses).all() and first.losses.shape == (9, 3)


@pytest.mark.slow
def test_worker_processes_give_the_same_bits_as_one_process():
    problem, model, seeds = synthetic_problem(), ModelSpec(units=1, epochs=3, learning_rate=0.01), repeat_seeds(4, 200)
    reg = regime(stateful=False, shuffle=True, reset_after_epoch=False)
    counted = []
    pooled = vec.VectorizedEngine(chunk_size=50, workers=2).train(problem, reg, model, seeds, counted.append)
    assert counted == [50, 50, 50, 50]
    assert_same(pooled, vec.VectorizedEngine(workers=1).train(problem, reg, model, seeds, no_progress))


def test_chunks_keep_every_worker_busy_and_respect_the_cap():
    engine = vec.VectorizedEngine(chunk_size=300, workers=2)
    assert [engine.n_chunks(n) for n in (1, 2, 127, 128, 600, 601, 1000)] == [1, 1, 1, 2, 2, 4, 4]
    assert vec.VectorizedEngine(chunk_size=10, workers=1).n_chunks(25) == 3


def test_bad_settings_and_rows_are_refused():
    with pytest.raises(ValueError, match="chunk_size"):
        vec.VectorizedEngine(chunk_size=0)
    with pytest.raises(RegimeError, match="divide"):
        vec.VectorizedEngine(workers=1).train(
            synthetic_problem(), regime(**BATCH), ModelSpec(1, 1, 0.001), repeat_seeds(1, 1), no_progress
        )


def test_engine_is_chosen_by_config(compose):
    engine = make_engine(compose("engine=vectorized", "engine.chunk_size=64").engine)
    assert isinstance(engine, vec.VectorizedEngine)
    assert (engine.name, engine.chunk_size) == ("vectorized", 64)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("units", "n_in", "n_train", "fields"),
    [
        (3, 1, 22, dict(stateful=True, reset_after_epoch=False, warm_start=True)),
        (1, 1, 29, dict(stateful=False, reset_after_epoch=False, **BATCH)),  # Keras's partial last batch
    ],
)
def test_matches_keras_beyond_the_study_shapes(units, n_in, n_train, fields):
    problem, reg = synthetic_problem(n_train=n_train, n_in=n_in), regime(**fields)
    model, seeds = ModelSpec(units=units, epochs=3, learning_rate=0.01), repeat_seeds(6, 2)
    ref = KerasEngine().train(problem, reg, model, seeds, no_progress)
    got = vec.VectorizedEngine(workers=1).train(problem, reg, model, seeds, no_progress)
    assert_close(got, ref)
    np.testing.assert_allclose(
        vec.VectorizedEngine().forecast(got, problem, reg), KerasEngine().forecast(ref, problem, reg), atol=TOL
    )


# Training reads only these fields (KerasEngine.train and the regime's data window): regimes that
# agree on them train the same models, so Keras, at minutes per model, trains each group once.
TRAINING_FIELDS = ("stateful", "train_rows", "batch_size", "shuffle", "reset_after_epoch")


@pytest.mark.slow
def test_parity_with_keras_for_every_regime(prepared):
    cfg, root = prepared("model.epochs=100")
    p, model, seeds = paths(cfg, root), ModelSpec(1, 100, float(cfg.model.learning_rate)), repeat_seeds(1, 2)
    keras_trained = {}
    for reg in regimes(cfg):
        problem = load_problem(p, reg.window)
        key = tuple(getattr(reg, f) for f in TRAINING_FIELDS)
        if key not in keras_trained:
            keras_trained[key] = KerasEngine().train(problem, reg, model, seeds, no_progress)
        ref = keras_trained[key]
        got = vec.VectorizedEngine(workers=1).train(problem, reg, model, seeds, no_progress)
        assert_close(got, ref)
        np.testing.assert_allclose(
            vec.VectorizedEngine().forecast(got, problem, reg),
            KerasEngine().forecast(ref, problem, reg),
            rtol=0,
            atol=TOL,
            err_msg=reg.name,
        )
    assert len(keras_trained) == 6


def test_forecast_follows_the_state_fields():
    """Without training, forecasts still differ exactly where the regime fields say they should."""
    problem, seeds = synthetic_problem(), repeat_seeds(8, 3)
    model = ModelSpec(units=1, epochs=1, learning_rate=0.0)
    trained = vec.VectorizedEngine(workers=1).train(problem, regime(), model, seeds, no_progress)
    carried = dataclasses.replace(trained, state_h=trained.state_h + 0.5, state_c=trained.state_c + 0.5)
    engine = vec.VectorizedEngine()
    base = engine.forecast(carried, problem, regime())
    assert not np.array_equal(base, engine.forecast(trained, problem, regime()))  # carried state is used
    stateless = regime(stateful=False, reset_after_epoch=False)
    np.testing.assert_array_equal(
        engine.forecast(carried, problem, stateless), engine.forecast(trained, problem, stateless)
    )
    reset = regime(reset_after_prediction=True)
    first = engine.forecast(carried, problem, reset)[:, :1]
    np.testing.assert_array_equal(first, base[:, :1])  # the first prediction still sees the carried state
    np.testing.assert_array_equal(
        engine.forecast(carried, problem, reset)[:, 1:], engine.forecast(trained, problem, reset)[:, 1:]
    )
    warm = regime(warm_start=True)
    assert not np.array_equal(engine.forecast(carried, problem, warm), base)
