"""The evaluate stage: it scores the forecasts the train stage saved, without TensorFlow."""

import subprocess
import sys

import numpy as np

from pipeline import data, io
from pipeline.artifacts import load_differenced, load_problem, load_scaler, paths
from pipeline.engines.vectorized import VectorizedEngine
from pipeline.params import regimes
from pipeline.stages import evaluate, train


def test_scores_are_those_of_forecasting_the_trained_models_anew(prepared):
    cfg, root = prepared("regime=[stateful,seed_train_no_resets]", "repeats=3", "model.epochs=3", "engine.workers=1")
    trained = train.run(cfg, root)
    results = evaluate.run(cfg, root)
    p, engine = paths(cfg, root), VectorizedEngine(workers=1)
    raw, test_size = load_differenced(p)["raw"], cfg.data.test_size
    for regime in regimes(cfg):
        scaled = engine.forecast(trained[regime.name], load_problem(p, regime.window), regime)
        forecasts = data.invert_forecasts(scaled, load_scaler(p, regime.window), raw, test_size, cfg.data.interval)
        expected = data.rmse(forecasts, data.test_targets(raw, test_size))
        np.testing.assert_array_equal(results.loc[results.regime == regime.name, "rmse"], expected)


def test_the_baselines_scored_by_a_forked_process_meanwhile_are_the_same_bytes(prepared):
    cfg, root = prepared("regime=[stateful]", "baselines.arima_order=[1,1,0]")
    p = paths(cfg, root)
    forecasts = np.random.default_rng(0).uniform(-1, 1, (cfg.repeats, cfg.data.test_size))  # as train saves them
    io.save_arrays(p.scaled_forecasts("stateful"), {"forecasts": forecasts, "seeds": np.arange(cfg.repeats)})
    evaluate.run(cfg, root)
    alone = [path.read_bytes() for path in (p.results, p.forecasts, p.baselines)]
    with evaluate.processes.forked_pool(1) as pool:  # as main() scores them
        evaluate.run(cfg, root, pool)
    assert [path.read_bytes() for path in (p.results, p.forecasts, p.baselines)] == alone


def test_importing_it_loads_neither_tensorflow_nor_statsmodels():
    # statsmodels is the baselines' process's to import (two seconds): this one scores the regimes meanwhile
    heavy = "{'tensorflow', 'sklearn', 'statsmodels'}"
    code = f"import sys, pipeline.stages.evaluate; print(sorted({heavy} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
