"""The evaluate stage: it scores the forecasts the train stage saved, without TensorFlow."""

import subprocess
import sys

import numpy as np

from pipeline import data
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


def test_importing_it_loads_neither_tensorflow_nor_statsmodels():
    # statsmodels (two seconds' import) is the baselines stage's: scoring the regimes needs only numpy and pandas
    heavy = "{'tensorflow', 'sklearn', 'statsmodels'}"
    code = f"import sys, pipeline.stages.evaluate; print(sorted({heavy} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
