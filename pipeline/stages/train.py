"""Stage ``train``: train ``repeats`` replicas of every distinct training procedure the selected regimes use,
and forecast the test rows with every regime.

Regimes that differ only in how they forecast (warm-up, resets between predictions) train identically
(``engines.base.training_procedure``), so each procedure is trained once and its replicas saved under
every regime that uses it. Repeat r of every regime gets the same seed (see ``pipeline.seeds``), so
regimes are compared repeat by repeat. Each regime's replicas are saved with their weights, final LSTM
state and losses. Replicas are trained in chunks of seeds, each cached as soon as it is done, with
checkpoints every epoch segment in between (``pipeline.resume``), so an interrupted run redoes seconds.
Each regime's scaled walk-forward forecasts are made here too, by the processes that trained (which
have TensorFlow loaded), and saved beside its models; ``evaluate`` scores them without TensorFlow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from pipeline import errors, io, progress, resume
from pipeline.artifacts import load_problem, model_spec, paths
from pipeline.engines import Engine, Problem, TrainedReplicas, make_engine
from pipeline.engines.base import ForecastTask, ModelSpec, TrainingJob, training_procedure
from pipeline.params import load_params, regimes
from pipeline.regimes import StateRegime
from pipeline.seeds import repeat_seeds


@dataclass
class Procedure:
    """One distinct training procedure and the regimes that use it."""

    record: StateRegime
    problem: Problem
    regimes: list[str] = field(default_factory=list)
    name: str = ""  # its line on the progress board, shared with other procedures (a panel's series); "": its own

    @property
    def label(self) -> str:
        return self.name or "train " + " = ".join(self.regimes)


def procedure_of(
    engine_cfg: DictConfig, regime: StateRegime, problem: Problem, spec: ModelSpec
) -> tuple[str, StateRegime]:
    """The training identity (``resume.training_identity``) and procedure record of ``regime`` on ``problem``."""
    regime.check_rows(len(problem.x_train), len(problem.x_test))
    record = training_procedure(regime, len(problem.x_train))
    return resume.training_identity(engine_cfg, record, spec, problem), record


def procedures(cfg: DictConfig, root: Path, spec: ModelSpec) -> dict[str, Procedure]:
    """The selected regimes grouped by training identity, in config order."""
    p, grouped = paths(cfg, root), {}
    for regime in regimes(cfg):
        problem = load_problem(p, regime.window)
        identity, record = procedure_of(cfg.engine, regime, problem, spec)
        grouped.setdefault(identity, Procedure(record, problem)).regimes.append(regime.name)
    return grouped


def train_procedures(
    engine: Engine, groups: dict[str, Procedure], spec: ModelSpec, seeds: np.ndarray, cache: resume.ChunkCache
) -> dict[str, TrainedReplicas]:
    """Every procedure's replicas: chunks found in ``cache`` are taken, the rest trained in one ``train_many``
    call (the engine packs them as it likes, keeping checkpoints between epoch segments) and cached."""
    found: dict[tuple[str, int], TrainedReplicas] = {}
    jobs, places, parts = [], [], list(cache.chunks(len(seeds)))
    for identity, group in groups.items():
        for k, part in enumerate(parts):
            key = resume.replicas_key(identity, seeds[part])
            hit = cache.lookup("replicas", key, TrainedReplicas.load)
            if hit is not None:
                found[identity, k] = hit
            else:
                jobs.append(TrainingJob(group.problem, group.record, spec, seeds[part], key))
                places.append((identity, k))
    reused = sum(len(t) for t in found.values())
    if reused:
        print(f"train: {reused} of {len(seeds) * len(groups)} replicas taken from the resume cache ({cache.directory})")
    totals: dict[str, float] = {}
    for group in groups.values():
        totals[group.label] = totals.get(group.label, 0.0) + len(seeds)
    with progress.board(totals, f"train {len(groups)} procedures") as update:
        for (identity, _), trained in found.items():
            update(groups[identity].label, len(trained))
        labels = [groups[identity].label for identity, _ in places]
        results = engine.train_many(jobs, lambda i, done: update(labels[i], done), cache.checkpoints())
    for job, place, trained in zip(jobs, places, results, strict=True):
        cache.store("replicas", job.key, trained, TrainedReplicas.save)
        found[place] = trained
    return {identity: resume.concat([found[identity, k] for k in range(len(parts))]) for identity in groups}


def forecast_all(
    engine: Engine, requests: list[tuple[ForecastTask, str]], cache: resume.ChunkCache
) -> list[np.ndarray]:
    """The scaled forecasts of every (task, replica identity) request: chunks of replicas found in ``cache`` are
    taken, the rest forecast in one ``forecast_many`` call (seconds in all) and cached."""
    parts: list[list[np.ndarray | None]] = []  # each request's chunks, in order; None until forecast
    tasks, places = [], []
    for i, ((trained, problem, regime), identity) in enumerate(requests):
        parts.append([])
        for part in cache.chunks(len(trained)):
            chunk = resume.take(trained, part)
            key = resume.forecasts_key(identity, chunk)
            hit = cache.lookup("forecasts", key, resume.load_forecasts)
            if hit is None:
                tasks.append((chunk, problem, regime))
                places.append((i, len(parts[i]), key))
            parts[i].append(hit)
    for (i, k, key), scaled in zip(places, engine.forecast_many(tasks), strict=True):
        cache.store("forecasts", key, scaled, resume.save_forecasts)
        parts[i][k] = scaled
    return [np.concatenate(chunks) for chunks in parts]


def run(cfg: DictConfig, root: Path) -> dict[str, TrainedReplicas]:
    p, spec, engine, cache = paths(cfg, root), model_spec(cfg), make_engine(cfg.engine), resume.cache_from_config(cfg)
    groups = procedures(cfg, root, spec)
    start = time.time()
    trained = train_procedures(engine, groups, spec, repeat_seeds(cfg.base_seed, cfg.repeats), cache)
    span = [start, time.time()]  # the procedures train together, in one call: each regime is logged with its span
    by_regime = {name: trained[identity] for identity, group in groups.items() for name in group.regimes}
    requests = []
    for regime in regimes(cfg):
        problem = load_problem(p, regime.window)
        identity = resume.replica_identity(cfg.engine, regime, spec, problem)
        requests.append(((by_regime[regime.name], problem, regime), identity))
    forecasts = forecast_all(engine, requests, cache)
    for regime, scaled in zip(regimes(cfg), forecasts, strict=True):
        by_regime[regime.name].save(p.model(regime.name))
        io.save_arrays(p.scaled_forecasts(regime.name), {"forecasts": scaled, "seeds": by_regime[regime.name].seeds})
    io.write_json(p.train_times(), {name: span for name in by_regime})
    return {regime.name: by_regime[regime.name] for regime in regimes(cfg)}


def main() -> None:
    run(load_params(), Path.cwd())


if __name__ == "__main__":
    errors.cli(main)
