"""Stage ``train``: train ``repeats`` replicas of every selected regime with the configured engine.

Repeat r of every regime gets the same seed (see ``pipeline.seeds``), so regimes are compared repeat
by repeat. Each regime's replicas are saved with their weights, final LSTM state and losses.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from pipeline import progress
from pipeline.artifacts import load_problem, model_spec, paths
from pipeline.engines import TrainedReplicas, make_engine
from pipeline.params import load_params, regimes
from pipeline.seeds import repeat_seeds


def run(cfg: DictConfig, root: Path) -> dict[str, TrainedReplicas]:
    p = paths(cfg, root)
    engine = make_engine(cfg.engine)
    seeds = repeat_seeds(cfg.base_seed, cfg.repeats)
    spec = model_spec(cfg)
    trained = {}
    for regime in regimes(cfg):
        problem = load_problem(p, regime.window)
        regime.check_rows(len(problem.x_train), len(problem.x_test))
        with progress.bar(len(seeds), f"train {regime.name}") as bar:
            trained[regime.name] = engine.train(problem, regime, spec, seeds, bar.update)
        trained[regime.name].save(p.model(regime.name))
    return trained


def main() -> None:
    run(load_params(), Path.cwd())


if __name__ == "__main__":
    main()
