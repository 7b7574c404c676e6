"""The train stage: replicas trained in chunks, each cached at once, so a killed run resumes where it stopped."""

from dataclasses import dataclass, field

import numpy as np
import pytest

from pipeline.engines.base import WEIGHT_NAMES
from pipeline.engines.keras_engine import KerasEngine
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

    def forecast(self, trained, problem, regime):
        if len(self.forecast_calls) == self.fail_at:
            raise Interrupted
        self.forecast_calls.append([int(s) for s in trained.seeds])
        return KerasEngine().forecast(trained, problem, regime)


def use(monkeypatch, module, engine: CountingEngine) -> CountingEngine:
    monkeypatch.setattr(module, "make_engine", lambda _cfg: engine)
    return engine


@pytest.mark.slow
def test_a_killed_training_resumes_with_only_the_missing_chunks(prepared, monkeypatch, tmp_path, capsys):
    resumable = ("resume.enabled=true", "resume.chunk_size=2", f"resume.cache={tmp_path / 'cache'}")
    cfg, root = prepared("regime=stateful", "repeats=3", *resumable)
    seeds = repeat_seeds(cfg.base_seed, 3).tolist()

    use(monkeypatch, train, CountingEngine(fail_at=1))
    with pytest.raises(Interrupted):
        train.run(cfg, root)  # killed after the first chunk
    assert len(list((tmp_path / "cache" / "replicas").rglob("*.npz"))) == 1
    engine = use(monkeypatch, train, CountingEngine())
    resumed = train.run(cfg, root)["stateful"]
    assert engine.train_calls == [seeds[2:]]  # only the chunk it had not finished
    assert "train stateful: 2 of 3 replicas taken from the resume cache" in capsys.readouterr().out

    cfg.resume.enabled = False
    fresh = use(monkeypatch, train, CountingEngine())
    uninterrupted = train.run(cfg, root)["stateful"]
    assert fresh.train_calls == [seeds[0:2], seeds[2:]]
    np.testing.assert_array_equal(resumed.seeds, uninterrupted.seeds)
    for name in WEIGHT_NAMES:
        np.testing.assert_array_equal(resumed.weights[name], uninterrupted.weights[name])
    np.testing.assert_array_equal(resumed.state_h, uninterrupted.state_h)
    np.testing.assert_array_equal(resumed.losses, uninterrupted.losses)


def test_more_repeats_reuse_the_chunks_already_trained(prepared, monkeypatch, tmp_path):
    resumable = ("resume.enabled=true", "resume.chunk_size=2", f"resume.cache={tmp_path / 'cache'}")
    cfg, root = prepared("regime=stateful", "repeats=2", *resumable)
    train.run(cfg, root)
    cfg.repeats = 3
    engine = use(monkeypatch, train, CountingEngine())
    trained = train.run(cfg, root)["stateful"]
    assert engine.train_calls == [repeat_seeds(cfg.base_seed, 3).tolist()[2:]]
    assert len(trained) == 3

