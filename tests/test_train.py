"""The train stage: each distinct procedure trained once, chunks cached, a killed run resumed bit for bit."""

from dataclasses import dataclass, field

import numpy as np
import pytest

from pipeline.artifacts import load_problem, model_spec, paths
from pipeline.engines.base import WEIGHT_NAMES, TrainedReplicas, forecast_each, train_each
from pipeline.engines.keras_engine import KerasEngine
from pipeline.engines.vectorized import VectorizedEngine
from pipeline.params import regimes
from pipeline.seeds import repeat_seeds
from pipeline.stages import train


class Interrupted(Exception):
    """Stands for the run being killed."""


@dataclass
class CountingEngine:
    """The Keras engine, recording the seeds of every call, and interrupted before call ``fail_at`` if set."""

    fail_at: int | None = None
    name: str = "keras"
    train_calls: list[list[int]] = field(default_factory=list)
    forecast_calls: list[list[int]] = field(default_factory=list)

    def train(self, problem, regime, model, seeds, progress):
        if len(self.train_calls) == self.fail_at:
            raise Interrupted
        self.train_calls.append([int(s) for s in seeds])
        return KerasEngine().train(problem, regime, model, seeds, progress)

    def train_many(self, jobs, progress, checkpoints=None):
        return train_each(self, jobs, progress)

    def forecast(self, trained, problem, regime):
        if len(self.forecast_calls) == self.fail_at:
            raise Interrupted
        self.forecast_calls.append([int(s) for s in trained.seeds])
        return KerasEngine().forecast(trained, problem, regime)

    def forecast_many(self, tasks):
        return forecast_each(self, tasks)


def use(monkeypatch, module, engine) -> object:
    monkeypatch.setattr(module, "make_engine", lambda _cfg: engine)
    return engine


def assert_same(a: TrainedReplicas, b: TrainedReplicas, what: str = "") -> None:
    for name in WEIGHT_NAMES:
        np.testing.assert_array_equal(a.weights[name], b.weights[name], err_msg=f"{what} {name}")
    for name in ("seeds", "state_h", "state_c", "losses"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=f"{what} {name}")


def test_each_procedure_is_trained_once_with_the_bits_of_each_regime_trained_alone(prepared, monkeypatch):
    cfg, root = prepared("repeats=3", "model.epochs=3", "engine.workers=1")
    calls = []
    engine = VectorizedEngine(workers=1)

    class Recording:
        name = "vectorized"

        def train_many(self, jobs, progress, checkpoints=None):
            calls.append([job.regime for job in jobs])
            return engine.train_many(jobs, progress, checkpoints)

        def forecast_many(self, tasks):
            return engine.forecast_many(tasks)

    use(monkeypatch, train, Recording())
    shared = train.run(cfg, root)
    assert len(calls) == 1 and len(calls[0]) == 5  # ten regimes, five training procedures, one call
    p, spec, seeds = paths(cfg, root), model_spec(cfg), repeat_seeds(cfg.base_seed, 3)
    for regime in regimes(cfg):
        alone = engine.train(load_problem(p, regime.window), regime, spec, seeds, lambda _: None)
        assert_same(shared[regime.name], alone, regime.name)
        assert_same(TrainedReplicas.load(p.model(regime.name)), alone, regime.name)  # models/<regime>.npz as before


@pytest.mark.slow
def test_a_killed_training_resumes_from_its_checkpoints_with_the_same_bits(prepared, monkeypatch, tmp_path):
    resumable = ("resume.enabled=true", f"resume.cache={tmp_path / 'cache'}", "engine.workers=1", "engine.segment_s=0")
    cfg, root = prepared("regime=[stateful,noreset]", "repeats=3", "model.epochs=8", *resumable)
    engine, updates = VectorizedEngine(workers=1, segment_s=0.0), []

    class KilledAfterThreeSegments:
        name = "vectorized"

        def train_many(self, jobs, progress, checkpoints=None):
            def counting(i, models):
                updates.append(models)
                if len(updates) == 3:
                    raise Interrupted
                progress(i, models)

            return engine.train_many(jobs, counting, checkpoints)

        def forecast_many(self, tasks):
            return engine.forecast_many(tasks)

    use(monkeypatch, train, KilledAfterThreeSegments())
    with pytest.raises(Interrupted):
        train.run(cfg, root)
    assert len(list((tmp_path / "cache" / "segments").rglob("*.npz"))) == 1  # one wide chunk, checkpointed
    use(monkeypatch, train, engine)
    resumed = train.run(cfg, root)
    assert not list((tmp_path / "cache" / "segments").rglob("*.npz"))  # finished: the chunk is cached instead
    cfg.resume.enabled = False
    uninterrupted = train.run(cfg, root)
    for name in ("stateful", "noreset"):
        assert_same(resumed[name], uninterrupted[name], name)


def test_more_repeats_reuse_the_chunks_already_trained(prepared, monkeypatch, tmp_path, capsys):
    resumable = ("resume.enabled=true", "resume.chunk_size=2", f"resume.cache={tmp_path / 'cache'}")
    cfg, root = prepared("regime=stateful", "repeats=2", *resumable)
    train.run(cfg, root)
    cfg.repeats = 3
    engine = use(monkeypatch, train, CountingEngine())
    trained = train.run(cfg, root)["stateful"]
    assert engine.train_calls == [repeat_seeds(cfg.base_seed, 3).tolist()[2:]]
    assert engine.forecast_calls == [repeat_seeds(cfg.base_seed, 3).tolist()[2:]]  # and only its forecasts made
    assert "train: 2 of 3 replicas taken from the resume cache" in capsys.readouterr().out
    assert len(trained) == 3
    again = use(monkeypatch, train, CountingEngine())
    assert_same(train.run(cfg, root)["stateful"], trained)
    assert again.train_calls == again.forecast_calls == []  # everything cached: nothing trained or forecast
