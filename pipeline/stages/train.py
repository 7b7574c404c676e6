"""Stage ``train``: train ``repeats`` replicas of every selected regime with the configured engine.

Repeat r of every regime gets the same seed (see ``pipeline.seeds``), so regimes are compared repeat
by repeat. Each regime's replicas are saved with their weights, final LSTM state and losses. Replicas
are trained in chunks of seeds, each cached as soon as it is done (``pipeline.resume``), so an
interrupted run trains only the chunks it had not finished.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from pipeline import io, progress, resume
from pipeline.artifacts import load_problem, model_spec, paths
from pipeline.engines import Engine, Problem, TrainedReplicas, make_engine
from pipeline.engines.base import ModelSpec, Progress
from pipeline.params import load_params, regimes
from pipeline.regimes import StateRegime
from pipeline.seeds import repeat_seeds


def train_in_chunks(
    engine: Engine, problem: Problem, regime: StateRegime, spec: ModelSpec, seeds: np.ndarray,
    cache: resume.ChunkCache, identity: str, done: Progress,
) -> TrainedReplicas:
    """``engine.train`` over ``seeds`` one chunk at a time, each chunk taken from ``cache`` or saved to it."""
    parts, reused = [], 0
    for part in cache.chunks(len(seeds)):
        chunk = seeds[part]
        trained, cached = cache.get_or_compute(
            "replicas", resume.replicas_key(identity, chunk), partial(engine.train, problem, regime, spec, chunk, done),
            TrainedReplicas.load, TrainedReplicas.save,
        )
        if cached:
            done(len(chunk))
            reused += len(chunk)
        parts.append(trained)
    if reused:
        print(f"train {regime.name}: {reused} of {len(seeds)} replicas taken from the resume cache ({cache.directory})")
    return resume.concat(parts)


def run(cfg: DictConfig, root: Path) -> dict[str, TrainedReplicas]:
    p = paths(cfg, root)
    engine = make_engine(cfg.engine)
    cache = resume.cache_from_config(cfg)
    seeds = repeat_seeds(cfg.base_seed, cfg.repeats)
    spec = model_spec(cfg)
    trained, times = {}, {}
    for regime in regimes(cfg):
        problem = load_problem(p, regime.window)
        regime.check_rows(len(problem.x_train), len(problem.x_test))
        identity = resume.replica_identity(cfg.engine, regime, spec, problem)
        start = time.time()
        with progress.bar(len(seeds), f"train {regime.name}") as bar:
            trained[regime.name] = train_in_chunks(engine, problem, regime, spec, seeds, cache, identity, bar.update)
        times[regime.name] = [start, time.time()]
        trained[regime.name].save(p.model(regime.name))
    io.write_json(p.train_times(), times)
    return trained


def main() -> None:
    run(load_params(), Path.cwd())


if __name__ == "__main__":
    main()
