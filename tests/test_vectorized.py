from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import numpy as np
import pytest

from pipeline.artifacts import load_problem, paths
from pipeline.engines import make_engine
from pipeline.engines import vectorized as vec
from pipeline.engines.base import WEIGHT_NAMES, ModelSpec, Problem, TrainingJob, training_procedure
from pipeline.engines.keras_engine import KerasEngine
from pipeline.params import regimes
from pipeline.regimes import RegimeError, StateRegime
from pipeline.seeds import repeat_seeds

TOL = 1e-4


def no_progress(_: int) -> None:
    pass


def chunks_of(engine: vec.VectorizedEngine, jobs: list[TrainingJob]) -> list:
    return [vec._chunk(jobs, replicas) for replicas in engine._layout(jobs)]


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
        w, m, v = vec.adam(w, m, v, tf.constant(g), vec.step_size(tf.constant(step), 0.003))
        np.testing.assert_array_equal(w.numpy(), variable.numpy())


def test_the_step_size_table_is_each_step_size_computed_alone_and_the_learning_rate_past_its_end():
    import tensorflow as tf

    table = vec._step_sizes(0.003)
    alone = [*range(40), *range(vec.SATURATED - 40, vec.SATURATED + 41), 10**5, 10**7]
    expected = [vec.step_size(tf.constant(t), 0.003).numpy() for t in alone]
    np.testing.assert_array_equal(table[np.minimum(alone, len(table) - 1)], expected)
    assert len(table) == vec.SATURATED + 1 and table[-1] == np.float32(0.003) != table[-100]


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
    counted, engine = [], vec.VectorizedEngine(chunk_size=50, workers=2)
    assert len(chunks_of(engine, [TrainingJob(problem, reg, model, seeds)])) == 4
    pooled = engine.train(problem, reg, model, seeds, counted.append)
    assert sum(counted) == pytest.approx(200)  # models' worth of epochs, segment by segment
    assert_same(pooled, vec.VectorizedEngine(workers=1).train(problem, reg, model, seeds, no_progress))


def test_chunks_keep_every_worker_busy_and_respect_the_cap():
    engine = vec.VectorizedEngine(chunk_size=300, workers=2)
    assert [engine.n_chunks(n) for n in (1, 2, 127, 128, 600, 601, 1000)] == [1, 1, 1, 2, 2, 4, 4]
    assert vec.VectorizedEngine(chunk_size=10, workers=1).n_chunks(25) == 3


def test_groups_share_the_workers_by_their_work():
    problem, model = synthetic_problem(24), ModelSpec(units=1, epochs=3, learning_rate=0.01)
    seeds = repeat_seeds(4, 600)
    jobs = [TrainingJob(problem, regime(batch_size=1), model, seeds),  # most of the work: split over both workers
            TrainingJob(problem, regime(batch_size=12, forecast="batch"), model, seeds)]  # 2 batches an epoch: 1 chunk
    chunks = chunks_of(vec.VectorizedEngine(workers=2), jobs)
    assert sorted(c.plan.batch_size for c in chunks) == [1, 1, 12]


def test_in_order_procedures_share_a_chunk_so_that_it_reads_one_row_order():
    problem, model = synthetic_problem(24), ModelSpec(units=1, epochs=3, learning_rate=0.01)
    seeds = repeat_seeds(4, 300)
    procedures = [regime(stateful=False, shuffle=True), regime(stateful=True),
                  regime(stateful=False, shuffle=True, reset_after_epoch=False), regime(stateful=False)]
    jobs = [TrainingJob(problem, reg, model, seeds) for reg in procedures]
    chunks = chunks_of(vec.VectorizedEngine(workers=2), jobs)
    assert [sorted(j for j, _, _ in c.pieces) for c in chunks] == [[1, 3], [0, 2]]
    assert chunks[0].orders(0, 1).shape == (1, 1, 24) and chunks[1].orders(0, 1).shape == (1, 608, 24)


def chunks_of_three_lengths() -> tuple[list, dict]:
    """Three one-chunk jobs of 10, 40 and 20 rows: the chunks, and each by its rows."""
    model = ModelSpec(units=1, epochs=3, learning_rate=0.01)
    jobs = [TrainingJob(synthetic_problem(n, seed=n), regime(batch_size=1), model, repeat_seeds(4, 64))
            for n in (10, 40, 20)]
    chunks = chunks_of(vec.VectorizedEngine(workers=3, chunk_size=64), jobs)
    return chunks, {c.n_rows: c for c in chunks}


def test_a_free_worker_takes_the_chunk_with_the_most_work_left():
    chunks, by_rows = chunks_of_three_lengths()
    assert vec._next_chunk(chunks, [], [set()], 0, False, ()) is by_rows[40]
    assert vec._next_chunk(chunks, [by_rows[40]], [set()], 0, False, ()) is by_rows[20]  # the 40-row chunk is running
    by_rows[20].done = 2  # one epoch of 20 rows left: less than three of 10
    assert vec._next_chunk(chunks, [by_rows[40]], [set()], 0, False, ()) is by_rows[10]
    for c in chunks:
        c.done = c.epochs
    assert vec._next_chunk(chunks, [], [set()], 0, False, ()) is None


def test_a_worker_keeps_to_the_programs_it_has_compiled():
    chunks, by_rows = chunks_of_three_lengths()
    compiled = [{by_rows[10].plan}, {by_rows[40].plan}]
    assert vec._next_chunk(chunks, [], compiled, 0, False, ()) is by_rows[10]  # though the 40-row chunk has more work
    # With its own running, the worker queues one that no worker has, not one another worker has compiled
    assert vec._next_chunk(chunks, [by_rows[10]], compiled, 0, True, ()) is by_rows[20]
    compiled[1].add(by_rows[20].plan)
    assert vec._next_chunk(chunks, [by_rows[10]], compiled, 0, True, ()) is None
    assert vec._next_chunk(chunks, [by_rows[10]], compiled, 0, False, ()) is by_rows[40]  # an idle worker takes any
    # but not a program a free worker has: that one takes it, with no compiling
    assert vec._next_chunk(chunks, [by_rows[10]], compiled, 0, False, {0, 1}) is None


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


@pytest.mark.slow
def test_matches_keras_at_lag_3_on_the_framed_study(prepared):
    cfg, root = prepared("model.lag=3", "regime=[seed_train]")  # state carried across batches, then warmed up
    reg = regimes(cfg)[0]
    problem = load_problem(paths(cfg, root), reg.window)
    assert problem.x_train.shape == (20, 3) and problem.x_test.shape == (12, 3)  # 35 differences, 32 pairs
    model, seeds = ModelSpec(units=2, epochs=3, learning_rate=0.01), repeat_seeds(2, 2)
    ref = KerasEngine().train(problem, reg, model, seeds, no_progress)
    got = vec.VectorizedEngine(workers=1).train(problem, reg, model, seeds, no_progress)
    assert got.weights["kernel"].shape == (2, 3, 8)  # one row of input weights per lag
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


def other_data(problem: Problem) -> Problem:
    return dataclasses.replace(problem, x_train=problem.x_train[::-1].copy(), y_train=problem.y_train[::-1].copy())


# Procedures of one shape (22 rows, batch 1): they differ in resets, row orders and data, not in code.
SAME_SHAPE = [
    dict(),
    dict(reset_after_epoch=False),
    dict(stateful=False, reset_after_epoch=False),
    dict(stateful=False, reset_after_epoch=False, shuffle=True),
    dict(shuffle=True, reset_after_epoch=False),
]


def test_procedures_of_equal_shapes_train_in_one_program_with_the_bits_of_each_alone():
    problem, model = synthetic_problem(), ModelSpec(units=1, epochs=4, learning_rate=0.01)
    jobs = [TrainingJob(problem, regime(**f), model, repeat_seeds(3, 5 + i)) for i, f in enumerate(SAME_SHAPE)]
    jobs.append(TrainingJob(other_data(problem), regime(), model, repeat_seeds(4, 3)))
    engine = vec.VectorizedEngine(workers=1, segment_s=0.0)  # one epoch per segment
    (chunk,) = chunks_of(engine, jobs)
    assert chunk.offsets is not None and chunk.carry.any() and not chunk.carry.all()
    done: dict[int, float] = {}
    together = engine.train_many(jobs, lambda i, models: done.__setitem__(i, done.get(i, 0) + models))
    assert done == pytest.approx({i: len(job.seeds) for i, job in enumerate(jobs)})
    for job, got in zip(jobs, together, strict=True):
        alone = vec.VectorizedEngine(workers=1).train(job.problem, job.regime, model, job.seeds, no_progress)
        assert_same(got, alone)


@pytest.mark.parametrize("n_in", [1, 3])
def test_data_sets_of_different_lengths_train_in_one_program_with_the_weights_of_each_alone(n_in):
    model = ModelSpec(units=2, epochs=5, learning_rate=0.01)
    jobs = [TrainingJob(synthetic_problem(n, n_in=n_in, seed=n), regime(**f), model, repeat_seeds(3, n))
            for n in (9, 22, 17) for f in SAME_SHAPE]
    engine = vec.VectorizedEngine(workers=1, segment_s=0.0)  # one epoch per segment: the update counts carry over
    (chunk,) = chunks_of(engine, jobs)
    assert set(chunk.lengths) == {9, 22, 17} and chunk.plan.n_batches == 22
    together = engine.train_many(jobs, lambda *_: None)
    for job, got in zip(jobs, together, strict=True):
        alone = vec.VectorizedEngine(workers=1).train(job.problem, job.regime, model, job.seeds, no_progress)
        for name in WEIGHT_NAMES:
            np.testing.assert_array_equal(got.weights[name], alone.weights[name])
        np.testing.assert_array_equal(got.state_h, alone.state_h)
        np.testing.assert_array_equal(got.state_c, alone.state_c)
        # An epoch's losses are summed in other groups than in a shorter set's own program: rounding only.
        np.testing.assert_allclose(got.losses, alone.losses, rtol=0, atol=1e-7)
        forecast = engine.forecast(got, job.problem, job.regime)
        np.testing.assert_array_equal(forecast, engine.forecast(alone, job.problem, job.regime))


def test_training_procedures_group_the_study_regimes_into_five(compose):
    cfg = compose()
    groups = {}
    for reg in regimes(cfg):
        rows = 12 if reg.train_rows == 12 else 22
        groups.setdefault(training_procedure(reg, rows), []).append(reg.name)
    assert sorted(groups.values()) == sorted([
        ["stateful", "reset_test", "seed_train", "seed_train_resets"], ["stateless"], ["stateless_shuffle"],
        ["stateful_batch12", "stateless_batch12"], ["noreset", "seed_train_no_resets"],
    ])


class Interrupted(Exception):
    """Stands for the run being killed."""


@dataclass
class MemoryCheckpoints:
    saved: dict = field(default_factory=dict)

    def load(self, key):
        return self.saved.get(key)

    def save(self, key, arrays):
        self.saved[key] = {k: np.copy(v) for k, v in arrays.items()}

    def discard(self, key):
        self.saved.pop(key, None)


def test_a_killed_training_carries_on_from_its_last_segment_with_the_same_bits(monkeypatch):
    problem, model = synthetic_problem(), ModelSpec(units=1, epochs=6, learning_rate=0.01)
    jobs = [TrainingJob(problem, regime(shuffle=True), model, repeat_seeds(5, 4), key="job")]
    engine, checkpoints = vec.VectorizedEngine(workers=1, segment_s=0.0), MemoryCheckpoints()
    updates = []

    def killed_after_two_segments(i, models):
        updates.append(models)
        if len(updates) == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        engine.train_many(jobs, killed_after_two_segments, checkpoints)
    (saved,) = checkpoints.saved.values()
    assert int(saved["done"]) == 2

    trained_epochs = []
    run_segment = vec._run_segment

    def counted(segment, device):
        trained_epochs.append(segment.epochs)
        return run_segment(segment, device)

    monkeypatch.setattr(vec, "_run_segment", counted)
    resumed = engine.train_many(jobs, lambda *_: None, checkpoints)[0]
    assert sum(trained_epochs) == 4 and not checkpoints.saved  # only the rest, and nothing left behind
    assert_same(resumed, vec.VectorizedEngine(workers=1).train(problem, jobs[0].regime, model, jobs[0].seeds,
                                                               no_progress))


def test_the_device_setting_is_checked_and_cpu_runs_anywhere():
    with pytest.raises(ValueError, match=r"engine\.device must be auto, cpu or gpu"):
        vec.VectorizedEngine(device="tpu")
    problem, model, seeds = synthetic_problem(), ModelSpec(1, 2, 0.01), repeat_seeds(2, 3)
    cpu = vec.VectorizedEngine(workers=1, device="cpu")
    assert not cpu.uses_gpu()
    trained = cpu.train(problem, regime(), model, seeds, no_progress)
    if not vec.VectorizedEngine(device="auto").uses_gpu():  # auto on a machine without a GPU is the CPU, bit for bit
        assert_same(vec.VectorizedEngine(workers=1, device="auto").train(problem, regime(), model, seeds, no_progress),
                    trained)
        with pytest.raises(RuntimeError, match=r"engine\.device=gpu, but TensorFlow sees no GPU"):
            vec.VectorizedEngine(workers=1, device="gpu").train(problem, regime(), model, seeds, no_progress)


ORPHAN = """
import os, sys, psutil
from pipeline.engines import vectorized as vec
from pipeline.engines.base import ModelSpec
from pipeline.seeds import repeat_seeds
sys.path.insert(0, sys.argv[1])
from test_vectorized import regime, synthetic_problem

if __name__ == "__main__":
    engine = vec.VectorizedEngine(workers=2)
    model = ModelSpec(1, 1, 0.01)
    engine.train(synthetic_problem(), regime(), model, repeat_seeds(1, 128), lambda _: None)
    print(" ".join(str(p.pid) for p in psutil.Process().children(recursive=True)), flush=True)
    engine.train(synthetic_problem(), regime(), ModelSpec(1, 10**6, 0.01), repeat_seeds(1, 128), lambda _: None)
"""


@pytest.mark.slow
def test_killing_the_parent_with_sigkill_leaves_no_worker_or_resource_tracker(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import psutil

    script = tmp_path / "orphan.py"
    script.write_text(ORPHAN)
    parent = subprocess.Popen([sys.executable, str(script), str(Path(__file__).parent)], stdout=subprocess.PIPE,
                              text=True)
    children = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(children) >= 2  # the two workers (and the resource tracker)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                                              for p in children):
        time.sleep(0.2)
    alive = [p for p in children if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert not alive, f"processes left behind by a killed parent: {alive}"


LEAN = """
import sys
from pipeline.engines import vectorized as vec
from pipeline.engines.base import ModelSpec
from pipeline.seeds import repeat_seeds
sys.path.insert(0, sys.argv[1])
from test_vectorized import regime, synthetic_problem

engine, problem = vec.VectorizedEngine(workers=1), synthetic_problem()
trained = engine.train(problem, regime(), ModelSpec(1, 2, 0.01), repeat_seeds(1, 4), lambda _: None)
engine.forecast(trained, problem, regime())
print(sorted(name for name in ("tensorflow.python.keras", "keras") if name in sys.modules))
"""


def test_training_and_forecasting_load_no_keras():
    # TensorFlow's legacy Keras comes with its tf.nn namespace: a second of every worker's start-up.
    import subprocess
    import sys
    from pathlib import Path

    run = subprocess.run([sys.executable, "-c", LEAN, str(Path(__file__).parent)], capture_output=True, text=True,
                         check=True)
    assert run.stdout.splitlines()[-1] == "[]"
