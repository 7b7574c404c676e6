from pathlib import Path

import numpy as np
import pytest

from pipeline.params import ConfigError
from pipeline.studies import common


def test_rate_counts_successes_with_a_wilson_interval():
    r = common.rate([True, True, False, True])
    assert (r["count"], r["n"], r["share"]) == (3, 4, 0.75)
    assert r["ci_low"] == pytest.approx(0.3006, abs=1e-4) and r["ci_high"] == pytest.approx(0.9544, abs=1e-4)
    none = common.rate([False] * 10)
    assert none["share"] == 0.0 and none["ci_low"] == 0.0 and none["ci_high"] == pytest.approx(0.2775, abs=1e-4)


def test_describe_gives_quartiles_over_seeds():
    d = common.describe([0.0, 0.25, 0.5, 0.75, 1.0])
    assert (d["min"], d["q25"], d["median"], d["q75"], d["max"], d["mean"]) == (0.0, 0.25, 0.5, 0.75, 1.0, 0.5)


def test_rate_text_reads_as_count_share_and_interval():
    assert common.rate_text(common.rate([True, False])) == "1/2 (50.0%, 95% CI 9.5%-90.5%)"


def test_image_links_by_path_relative_to_the_fragment():
    md = Path("/r/reports/studies/echo.md")
    assert common.image(md, Path("/r/reports/studies/echo.png"), "alt") == "![alt](echo.png)"
    assert common.image(md, Path("/r/reports/echo.png"), "alt") == "![alt](../echo.png)"


def test_positive_ints_names_the_key_and_the_fix():
    with pytest.raises(ConfigError, match=r"echo\.epochs must be a positive integer, got 0"):
        common.positive_ints({"epochs": 0}, ["epochs"], "echo")
    with pytest.raises(ConfigError, match=r"echo\.units"):
        common.positive_ints({"units": True}, ["units"], "echo")


def test_data_rng_depends_on_the_seed_alone():
    a, b, c = (common.data_rng(s).normal(size=4) for s in (5, 5, 6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def _stateful_model(batch: int):
    import keras

    inputs = keras.Input(batch_shape=(batch, 1, 1))
    lstm = keras.layers.LSTM(3, stateful=True)
    return keras.Model(inputs, keras.layers.Dense(1)(lstm(inputs))), lstm


def test_reset_states_zeroes_every_stateful_layer():
    common.seed_keras(0)
    model, lstm = _stateful_model(2)
    model.predict(np.ones((2, 1, 1), np.float32), batch_size=2, verbose=0)
    assert np.any(np.asarray(lstm.states[0]) != 0)
    common.reset_states(model)
    assert all(np.all(np.asarray(s) == 0) for s in lstm.states)


def test_check_batch_refuses_a_batch_the_model_was_not_built_for():
    model, _ = _stateful_model(4)
    common.check_batch(model, 8, 4)
    with pytest.raises(common.StudyError, match="built for batch size 4 but was called with 2"):
        common.check_batch(model, 8, 2)
    with pytest.raises(common.StudyError, match="10 rows do not split into whole batches of 4"):
        common.check_batch(model, 10, 4)


def test_a_study_stage_trains_under_op_determinism_as_the_audit_does(monkeypatch, tmp_path):
    from pipeline import tracking
    from pipeline.tools import audit

    calls = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(common, "load_params", lambda: "cfg")
    monkeypatch.setattr(common, "enable_op_determinism", lambda: calls.append("determinism"))
    monkeypatch.setattr(tracking, "log_other_study", lambda cfg, root, name, kind, **_: calls.append(f"log {name}"))
    common.stage_main("echo", lambda cfg, root: calls.append(f"run {cfg} in {root}"))
    assert calls == ["determinism", f"run cfg in {tmp_path}", "log echo"]
    audit.enable_determinism()  # the audit throws the same switch
    assert calls[-1] == "determinism"
