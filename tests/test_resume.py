"""The resume cache: fixed chunk boundaries, and keys that change exactly when a replica's bits could."""

from dataclasses import replace

import numpy as np
import pytest
from omegaconf import OmegaConf

from pipeline import resume
from pipeline.engines.base import ModelSpec, Problem, TrainedReplicas, training_procedure
from pipeline.params import compose_config, regimes

ENGINE = compose_config(["regime=stateful"]).engine


def problem(shift: float = 0.0) -> Problem:
    x = np.linspace(-1, 1, 23, dtype=np.float32).reshape(-1, 1) + np.float32(shift)
    return Problem(x[:-12], x[:-12, 0], x[-12:], x[-12:, 0])


def test_chunks_have_fixed_boundaries():
    cache = resume.ChunkCache(None, 4)
    assert list(cache.chunks(10)) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert list(cache.chunks(4)) == [slice(0, 4)]  # repeats=4 shares its chunk with repeats=10


def test_a_replica_key_changes_with_whatever_determines_its_bits():
    stateful = regimes(compose_config(["regime=stateful"]))[0]
    spec = ModelSpec(units=1, epochs=2, learning_rate=0.001)
    key = resume.replica_identity(ENGINE, stateful, spec, problem())
    assert key == resume.replica_identity(ENGINE, stateful, spec, problem())
    assert key == resume.replica_identity(ENGINE, replace(stateful, name="renamed"), spec, problem())
    changed = [
        resume.replica_identity(ENGINE, replace(stateful, reset_after_epoch=False), spec, problem()),
        resume.replica_identity(ENGINE, stateful, replace(spec, epochs=3), problem()),
        resume.replica_identity(ENGINE, stateful, replace(spec, learning_rate=0.01), problem()),
        resume.replica_identity(ENGINE, stateful, spec, problem(shift=1e-6)),
        resume.replica_identity(OmegaConf.merge(ENGINE, {"name": "other"}), stateful, spec, problem()),
    ]
    assert len({key, *changed}) == 1 + len(changed)
    seeds = np.array([1, 2], dtype=np.uint32)
    assert resume.replicas_key(key, seeds) != resume.replicas_key(key, seeds[::-1])


def replicas(seeds: list[int]) -> TrainedReplicas:
    n = len(seeds)
    return TrainedReplicas(np.array(seeds, dtype=np.uint32), {"kernel": np.arange(n * 4.0).reshape(n, 1, 4)},
                           np.zeros((n, 1, 1)), np.ones((n, 1, 1)), np.full((n, 2), 0.5))


def test_take_and_concat_are_inverse():
    whole = replicas([5, 6, 7])
    parts = [resume.take(whole, s) for s in resume.ChunkCache(None, 2).chunks(3)]
    assert [len(p) for p in parts] == [2, 1]
    joined = resume.concat(parts)
    np.testing.assert_array_equal(joined.seeds, whole.seeds)
    np.testing.assert_array_equal(joined.weights["kernel"], whole.weights["kernel"])
    np.testing.assert_array_equal(joined.losses, whole.losses)
    assert resume.forecasts_key("id", parts[0]) != resume.forecasts_key("id", parts[1])


def test_get_or_compute_saves_then_reuses_and_survives_a_corrupt_entry(tmp_path):
    cache, calls = resume.ChunkCache(tmp_path, 2), []

    def compute():
        calls.append(1)
        return np.arange(3.0)

    def fetch():
        return cache.get_or_compute("forecasts", "ab" * 32, compute, resume.load_forecasts, resume.save_forecasts)

    assert fetch()[1] is False and fetch()[1] is True and len(calls) == 1
    entry = next(tmp_path.rglob("*.npz"))
    entry.write_bytes(b"not an archive")
    value, cached = fetch()
    assert cached is False and len(calls) == 2 and np.array_equal(value, np.arange(3.0))
    assert fetch()[1] is True  # rewritten


def test_cache_location_and_size_come_from_the_config(monkeypatch, tmp_path):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    cfg = compose_config(["resume.chunk_size=3"])
    assert resume.cache_from_config(cfg) == resume.ChunkCache(tmp_path.resolve() / ".cache/replicas", 3)
    assert resume.cache_from_config(compose_config(["resume.enabled=false"])).directory is None
    with pytest.raises(ValueError, match=r"resume\.chunk_size=0 \(int\) is invalid: expected an integer >= 1"):
        resume.cache_from_config(compose_config(["resume.chunk_size=0"]))


def test_regimes_that_train_alike_share_a_training_identity_and_no_other():
    chosen = {r.name: r for r in regimes(compose_config())}
    spec = ModelSpec(units=1, epochs=2, learning_rate=0.001)

    def identity(name: str, data: Problem | None = None) -> str:
        data = data or problem()
        return resume.training_identity(ENGINE, training_procedure(chosen[name], len(data.x_train)), spec, data)

    assert identity("stateful") == identity("reset_test") == identity("seed_train") == identity("seed_train_resets")
    assert identity("noreset") == identity("seed_train_no_resets")
    assert len({identity(n) for n in ("stateful", "noreset", "stateless", "stateless_shuffle")}) == 4
    assert identity("stateful") != identity("stateful", problem(shift=1e-6))
    # forecasts still tell the sharing regimes apart
    assert resume.replica_identity(ENGINE, chosen["stateful"], spec, problem()) != resume.replica_identity(
        ENGINE, chosen["reset_test"], spec, problem())


def test_segment_checkpoints_round_trip_and_ignore_a_corrupt_file(tmp_path, capsys):
    store = resume.ChunkCache(tmp_path, 2).checkpoints()
    assert store.load("ab" * 32) is None
    store.save("ab" * 32, {"w": np.arange(4.0), "done": np.int64(3)})
    saved = store.load("ab" * 32)
    assert int(saved["done"]) == 3 and np.array_equal(saved["w"], np.arange(4.0))
    next(tmp_path.rglob("*.npz")).write_bytes(b"cut short by a kill")
    assert store.load("ab" * 32) is None and "ignoring unreadable checkpoint" in capsys.readouterr().out
    store.discard("ab" * 32)
    assert not list(tmp_path.rglob("*.npz"))
    assert resume.ChunkCache(None, 2).checkpoints() is None
