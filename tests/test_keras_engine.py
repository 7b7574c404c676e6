"""The reference engine: seeds, determinism and the equivalences the write-up's procedure implies."""

import numpy as np
import pytest
from conftest import TINY

from pipeline import data
from pipeline.artifacts import load_problem, model_spec, paths
from pipeline.engines.base import WEIGHT_NAMES, TrainedReplicas
from pipeline.engines.init import initial_weights
from pipeline.engines.keras_engine import KerasEngine
from pipeline.params import regimes
from pipeline.seeds import repeat_seeds
from pipeline.stages import evaluate, train

ENGINE = KerasEngine()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Every regime trained for 3 epochs, 2 repeats, with the Keras engine: (cfg, root, results)."""
    from pipeline.params import compose_config
    from pipeline.stages import difference, fetch, frame, scale

    root = tmp_path_factory.mktemp("study")
    cfg = compose_config([*TINY, "model.epochs=3", "data.source=packaged", "engine=keras"])
    for stage in (fetch, difference, scale, frame, train):
        stage.run(cfg, root)
    return cfg, root, evaluate.run(cfg, root)


def rmse_of(results, regime):
    return results.loc[results.regime == regime, "rmse"].to_numpy()


def test_results_hold_every_regime_and_the_shared_seeds(study):
    cfg, _, results = study
    assert list(results.columns) == ["regime", "repeat", "seed", "rmse"]
    assert list(dict.fromkeys(results.regime)) == [r.name for r in regimes(cfg)]
    seeds = repeat_seeds(cfg.base_seed, cfg.repeats).astype(np.int64)
    for _, group in results.groupby("regime"):
        np.testing.assert_array_equal(group.seed.to_numpy(), seeds)
    assert np.isfinite(results.rmse).all()


@pytest.mark.parametrize(
    ("left", "right"), [("stateful_batch12", "stateless_batch12"), ("reset_test", "seed_train_resets")]
)
def test_regimes_identical_by_construction_give_identical_rmse(study, left, right):
    _, _, results = study
    np.testing.assert_array_equal(rmse_of(results, left), rmse_of(results, right))


def test_warm_up_changes_only_the_forecasts(study):
    cfg, root, results = study
    p = paths(cfg, root)
    plain, warmed = TrainedReplicas.load(p.model("stateful")), TrainedReplicas.load(p.model("seed_train"))
    for name in WEIGHT_NAMES:  # same seeds, same training procedure: same weights
        np.testing.assert_array_equal(plain.weights[name], warmed.weights[name])
    assert not np.array_equal(rmse_of(results, "stateful"), rmse_of(results, "seed_train"))


def test_final_state_is_zero_after_a_reset_and_carried_without(study):
    cfg, root, _ = study
    p = paths(cfg, root)
    assert not TrainedReplicas.load(p.model("stateful")).state_h.any()
    carried = TrainedReplicas.load(p.model("noreset"))
    assert carried.state_h.shape == (2, 1, 1) and np.all(carried.state_h != 0)
    assert TrainedReplicas.load(p.model("stateful_batch12")).state_c.shape == (2, 12, 1)


def test_training_starts_from_the_seeded_initial_weights(study):
    cfg, root, _ = study
    trained = TrainedReplicas.load(paths(cfg, root).model("stateless"))
    start = initial_weights(trained.seeds, cfg.model.units)
    assert trained.losses.shape == (2, 3)
    # Adam moves a weight by about the learning rate per step at most: 3 epochs x 22 batches of one row.
    assert np.abs(trained.weights["kernel"] - start["kernel"]).max() < 3 * 22 * cfg.model.learning_rate
    assert not np.array_equal(trained.weights["kernel"], start["kernel"])
    # Stateless on one time step: the state is zero when the recurrent kernel is used, so it never learns.
    np.testing.assert_array_equal(trained.weights["recurrent_kernel"], start["recurrent_kernel"])


def test_same_config_and_seeds_give_identical_bits(study, prepared):
    _, _, results = study
    cfg, root = prepared("repeats=2", "model.epochs=3", "engine=keras", "regime=[noreset,stateless_shuffle]")
    train.run(cfg, root)
    again = evaluate.run(cfg, root)
    for regime in ("noreset", "stateless_shuffle"):
        np.testing.assert_array_equal(rmse_of(again, regime), rmse_of(results, regime))


def test_shuffle_changes_training_but_not_the_initial_weights(study):
    cfg, root, _ = study
    p = paths(cfg, root)
    ordered, shuffled = TrainedReplicas.load(p.model("stateless")), TrainedReplicas.load(p.model("stateless_shuffle"))
    assert ordered.losses[:, 0].tolist() != shuffled.losses[:, 0].tolist()


def test_forecast_one_step_walks_the_test_rows(prepared):
    cfg, root = prepared("regime=stateless", "model.epochs=1", "repeats=1")
    regime = regimes(cfg)[0]
    problem = load_problem(paths(cfg, root), regime.window)
    trained = ENGINE.train(problem, regime, model_spec(cfg), repeat_seeds(1, 1), lambda n: None)
    forecasts = ENGINE.forecast(trained, problem, regime)
    assert forecasts.shape == (1, 12) and np.isfinite(forecasts).all()
    assert data.rmse(forecasts, problem.y_test).shape == (1,)
