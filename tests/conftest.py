"""Shared fixtures: tiny configs composed through Hydra's compose API, and study folders in tmp_path."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import DictConfig

from pipeline.params import compose_config

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Tests train afresh: the resume cache (on by default, shared under the project) would answer a repeated run.
TINY = ("repeats=2", "model.epochs=2", "resume.enabled=false")


@pytest.fixture
def compose() -> Callable[..., DictConfig]:
    """Compose the real config with overrides; tiny (2 repeats, 2 epochs) unless overridden."""

    def _compose(*overrides: str) -> DictConfig:
        return compose_config([*TINY, *overrides])

    return _compose


@pytest.fixture
def prepared(compose, tmp_path: Path) -> Callable[..., tuple[DictConfig, Path]]:
    """A study folder with the data stages run: returns (cfg, root) ready for train/evaluate."""
    from pipeline.stages import difference, fetch, frame, scale

    def _prepared(*overrides: str) -> tuple[DictConfig, Path]:
        cfg = compose("data.source=packaged", *overrides)
        for stage in (fetch, difference, scale, frame):
            stage.run(cfg, tmp_path)
        return cfg, tmp_path

    return _prepared


# Known effects for the made-up study: RMSE scale of each regime relative to `stateful`. The batch-12 pair
# and reset_test / seed_train_resets share forecasts, as the real regimes do by construction.
EFFECTS = {
    "stateful": 1.0,
    "stateless": 0.8,
    "stateless_shuffle": 0.9,
    "stateful_batch12": 1.1,
    "stateless_batch12": 1.1,
    "reset_test": 1.0,
    "noreset": 1.5,
    "seed_train": 1.0,
    "seed_train_resets": 1.0,
    "seed_train_no_resets": 1.2,
}
SHARED = {"stateless_batch12": "stateful_batch12", "seed_train_resets": "reset_test"}


def made_up_forecasts(actual: np.ndarray, repeats: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Forecasts (repeats, months) per regime: errors shared by repeat across regimes, scaled per regime."""
    shared = rng.normal(0.0, 60.0, size=(repeats, len(actual)))
    forecasts = {}
    for name, scale in EFFECTS.items():
        if name in SHARED:
            forecasts[name] = forecasts[SHARED[name]]
        else:
            forecasts[name] = actual + scale * shared + rng.normal(0.0, 3.0, size=shared.shape)
    return forecasts


@pytest.fixture
def evaluated(compose, tmp_path: Path) -> Callable[..., tuple[DictConfig, Path]]:
    """A study folder holding made-up evaluate outputs with the known ``EFFECTS`` (no training): for compare.

    Repeat r's forecast errors share one draw across regimes (as a shared initialisation would make them),
    scaled per regime, plus a little independent noise: a paired design with correlated repeats.
    """
    from pipeline import data, io
    from pipeline.artifacts import paths
    from pipeline.seeds import repeat_seeds
    from pipeline.stages import fetch

    def _evaluated(repeats: int = 16, *overrides: str) -> tuple[DictConfig, Path]:
        quick = ("stats.bootstrap_resamples=300", "stats.se_draws=300")
        cfg = compose("data.source=packaged", f"repeats={repeats}", *quick, *overrides)
        p = paths(cfg, tmp_path)
        actual = data.test_targets(fetch.run(cfg, tmp_path).values, cfg.data.test_size)
        seeds = repeat_seeds(cfg.base_seed, repeats).astype(np.int64)
        months = [f"3-{m:02d}" for m in range(1, len(actual) + 1)]
        results, steps = [], []
        for name, values in made_up_forecasts(actual, repeats, np.random.default_rng(7)).items():
            rmse = data.rmse(values, actual)
            results.append(pd.DataFrame({"regime": name, "repeat": range(repeats), "seed": seeds, "rmse": rmse}))
            for r in range(repeats):
                step = {"regime": name, "repeat": r, "step": range(len(actual)), "period": months}
                steps.append(pd.DataFrame({**step, "actual": actual, "forecast": values[r]}))
        io.write_csv(p.results, pd.concat(results, ignore_index=True))
        io.write_csv(p.forecasts, pd.concat(steps, ignore_index=True))
        baselines = {"model": ["persistence", "far_off"], "rmse": [136.761, 1e4], "description": ["a", "b"]}
        io.write_csv(p.baselines, pd.DataFrame(baselines))
        return cfg, tmp_path

    return _evaluated
