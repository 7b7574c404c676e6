import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.params import ConfigError, compose_config
from pipeline.seeds import repeat_seeds
from pipeline.studies import sine

SHORT = ("sine.points=200", "sine.epochs=3", "sine.units=4")


def test_noisy_sine_is_the_clean_wave_plus_noise_of_the_given_sd():
    x, y = sine.noisy_sine(100_000, 0.01, 0.1, np.random.default_rng(0))
    assert x.shape == (100_000, 1, 1) and y.shape == (100_000, 1)
    assert np.allclose(y[:, 0], np.sin(np.arange(100_000) * 0.01), atol=1e-6)
    assert np.std(x[:, 0, 0] - y[:, 0]) == pytest.approx(0.1, abs=0.002)


def test_noise_comes_from_the_seed():
    a, b, c = (sine.noisy_sine(50, 0.01, 0.1, np.random.default_rng(s))[0] for s in (1, 1, 2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_first_difference_is_the_first_epoch_that_differs_in_any_bit():
    a = np.array([0.5, 0.25, 0.125], dtype=np.float32)
    assert sine.first_difference(a, a.copy()) == 0
    b = a.copy()
    b[2] = np.nextafter(b[2], np.float32(1))
    assert sine.first_difference(a, b) == 3


def test_compare_flags_equality_and_where_the_reset_case_departs():
    y = np.array([[0.0], [1.0], [0.0], [1.0]], np.float32)
    x = (y + 0.5).reshape(4, 1, 1)  # shaped as the model's input, not as its targets
    losses = {"loop": np.array([3.0, 2.0, 1.0]), "single": np.array([3.0, 2.0, 1.0]),
              "loop_reset": np.array([3.0, 2.5, 1.5])}
    predictions = {"loop": y + 1, "single": y + 1, "loop_reset": y + 2, sine.FROM_ZERO: y + 0.25}
    row = sine.compare(5, x, y, losses, predictions)
    assert row["losses_identical"] and row["predictions_identical"] and row["max_loss_difference"] == 0
    assert row["reset_first_differing_epoch"] == 2 and row["reset_max_prediction_difference"] == 1.0
    assert row["rmse_loop"] == 1.0 and row["rmse_loop_reset"] == 2.0 and row["final_loss_loop_reset"] == 1.5
    assert row["rmse_input"] == 0.5 and row["rmse_loop_reset_from_zero"] == 0.25


def test_summary_reports_equality_and_breakage_as_rates():
    results = pd.DataFrame({
        "losses_identical": [True, True, True], "predictions_identical": [True, True, False],
        "max_loss_difference": [0.0, 0.0, 0.0], "max_prediction_difference": [0.0, 0.0, 1e-3],
        "reset_first_differing_epoch": [2, 2, 0],
        **{f"final_loss_{c}": [0.1, 0.2, 0.3] for c in ("loop", "single")},
        "final_loss_loop_reset": [0.2, 0.4, 0.3],
        **{f"rmse_{c}": [0.1, 0.1, 0.1] for c in ("loop", "single", "input", sine.FROM_ZERO)},
        "rmse_loop_reset": [0.2, 0.15, 0.3],
    })  # fmt: skip
    s = sine.summarise(results)
    assert s["loop_equals_single"]["count"] == 2 and s["reset_breaks_equality"]["count"] == 2
    assert s["reset_first_differing_epoch"]["max"] == 2 and s["max_prediction_difference"] == 1e-3
    assert s["reset_minus_loop_final_loss"]["median"] == pytest.approx(0.1)
    assert s["reset_minus_loop_rmse"]["median"] == pytest.approx(0.1) and s["rmse_to_clean_sine"]["input"]["max"] == 0.1
    assert sine.paired_text(s["reset_minus_loop_rmse"], "RMSE").startswith("higher RMSE (median paired difference 0.1")


@pytest.mark.parametrize(("override", "message"), [
    ("sine.points=250", "multiple of sine.batch_size"),
    ("sine.noise_sd=0", r"sine\.noise_sd=0 \(int\) is invalid: expected a number > 0"),
    ("sine.epochs=0", r"sine\.epochs=0 \(int\) is invalid: expected an integer >= 1"),
])  # fmt: skip
def test_bad_config_is_refused_with_the_fix(override, message):
    with pytest.raises(ConfigError, match=message):
        sine.check(compose_config([override]).sine)


@pytest.mark.slow
def test_loop_of_one_epoch_fits_equals_one_fit_bit_for_bit_and_a_reset_breaks_it():
    section = compose_config(list(SHORT)).sine
    _, _, losses, predictions = sine.train_cases(11, section)
    assert losses["loop"].shape == (3,)
    assert np.array_equal(losses["loop"], losses["single"])
    assert np.array_equal(predictions["loop"], predictions["single"])
    assert sine.first_difference(losses["loop"], losses["loop_reset"]) == 2
    assert not np.array_equal(predictions["loop"], predictions["loop_reset"])
    assert not np.array_equal(predictions["loop_reset"], predictions[sine.FROM_ZERO])


@pytest.mark.slow
def test_run_writes_outputs_with_every_seed_recorded(compose, tmp_path: Path):
    cfg = compose("sine.repeats=2", *SHORT[:1], "sine.epochs=2", "sine.units=4")
    results = sine.run(cfg, tmp_path)
    assert results.seed.tolist() == repeat_seeds(cfg.base_seed, 2).tolist()
    assert results.losses_identical.all() and results.predictions_identical.all()
    reports = tmp_path / "reports" / "studies"
    md = (reports / "sine.md").read_text()
    assert md.startswith("## ") and "(sine.png)" in md and (reports / "sine.png").is_file()
    assert "2/2 (100.0%" in md
    assert json.loads((reports / "sine_metrics.json").read_text())["loop_equals_single"]["count"] == 2
    assert pd.read_csv(reports / "sine_results.csv").reset_first_differing_epoch.tolist() == [2, 2]
