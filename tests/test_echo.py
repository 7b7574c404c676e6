import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.params import ConfigError, compose_config
from pipeline.seeds import repeat_seeds
from pipeline.studies import common, echo

WRITE_UP = [[3, 0, 1, 2, 3], [4, 0, 1, 2, 4]]


def test_pairs_are_one_hot_steps_and_their_successors():
    x, y = echo.pairs(WRITE_UP[0], 5)
    assert x.shape == (4, 1, 5) and y.shape == (4, 5)
    assert np.argmax(x[:, 0], axis=1).tolist() == [3, 0, 1, 2] and np.argmax(y, axis=1).tolist() == [0, 1, 2, 3]
    assert x.sum() == 4 and y.sum() == 4


@pytest.mark.parametrize(("sequences", "cap"), [
    (WRITE_UP, 7 / 8),  # input 2 is followed by 3 once and by 4 once
    ([[0, 1, 2], [3, 4, 0]], 1.0),  # no input has two successors
    ([[0, 1], [0, 2], [0, 3]], 1 / 3),
    ([[0, 1, 0, 2], [0, 1, 0, 1]], 5 / 6),  # 0 -> 1 three times, 0 -> 2 once; 1 -> 0 twice
])  # fmt: skip
def test_memoryless_cap_is_the_best_any_function_of_the_input_can_do(sequences, cap):
    assert echo.memoryless_cap(sequences) == pytest.approx(cap)


def test_only_the_last_steps_conflict_in_the_write_up():
    assert echo.conflicting(WRITE_UP).tolist() == [[False, False, False, True]] * 2


def test_summary_rates_over_seeds():
    solved = np.ones((3, 2, 4), dtype=bool)
    capped = solved.copy()
    capped[:, 1, 3] = False  # a memoryless model that always answers 3 after 2
    capped[2, 0, 0] = False  # ... and one seed that also misses a step
    s = echo.summarise({"lstm": solved, "control": capped}, {"lstm": np.ones(3), "control": np.arange(3.0)}, WRITE_UP)
    assert s["memoryless_cap"] == 7 / 8
    assert s["lstm"]["solved"]["count"] == 3 and s["lstm"]["above_cap"]["count"] == 3
    assert s["control"]["solved"]["count"] == 0 and s["control"]["at_cap"]["count"] == 2
    assert s["control"]["above_cap"]["count"] == 0 and s["control"]["conflicting_steps_right"]["count"] == 0
    assert s["control"]["final_loss"]["median"] == 1.0


def test_predictions_read_as_one_group_per_sequence():
    assert echo.encode(np.array([[0, 1, 2, 3], [0, 1, 2, 4]])) == "0123 0124"


def test_step_table_shows_share_right_and_the_modal_prediction():
    predicted = {"m": np.array([[[0, 1, 2, 3], [0, 1, 2, 3]], [[0, 1, 2, 3], [0, 1, 2, 4]]])}
    correct = {"m": predicted["m"] == np.array([[0, 1, 2, 3], [0, 1, 2, 4]])}
    table = echo.step_table(correct, predicted, WRITE_UP)
    last = table.iloc[-1]
    assert (last["step"], last["conflicting"], last["m: seeds right"]) == ("2 -> 4", "yes", "50.0%")


@pytest.mark.parametrize(("override", "message"), [
    ("echo.sequences=[[3,0,1,2,5]]", "only use symbols 0..4"),
    ("echo.sequences=[[3,0,1],[4,0,1,2]]", "one common length"),
    ("echo.epochs=0", r"echo\.epochs=0 \(int\) is invalid: expected an integer >= 1"),
])  # fmt: skip
def test_bad_config_is_refused_with_the_fix(override, message):
    with pytest.raises(ConfigError, match=message):
        echo.check(compose_config([override]).echo)


@pytest.mark.slow
def test_the_control_is_memoryless_and_the_lstm_is_not():
    """After the same symbol (2), the control outputs the same bits whatever came before; the LSTM does not."""
    data = [echo.pairs(s, 5) for s in WRITE_UP]
    outputs = {}
    for stateful in (True, False):
        common.seed_keras(3)
        model = echo.build(4, 5, stateful)
        echo.train(model, data, 1)
        outputs[stateful] = []
        for x, _ in data:
            outputs[stateful].append(model.predict(x, batch_size=1, verbose=0)[-1])
            common.reset_states(model)
    assert np.array_equal(outputs[False][0], outputs[False][1])
    assert not np.array_equal(outputs[True][0], outputs[True][1])


@pytest.mark.slow
def test_one_update_per_step_is_the_write_ups_one_epoch_fit_per_sequence():
    data = [echo.pairs(s, 5) for s in WRITE_UP]
    common.seed_keras(4)
    stepped = echo.build(4, 5, True)
    losses = echo.train(stepped, data, 2)
    common.seed_keras(4)
    fitted = echo.build(4, 5, True)
    fit_losses = []
    for _ in range(2):
        for x, y in data:
            fit_losses += fitted.fit(x, y, epochs=1, batch_size=1, shuffle=False, verbose=0).history["loss"]
            common.reset_states(fitted)
    for a, b in zip(stepped.get_weights(), fitted.get_weights(), strict=True):
        assert np.array_equal(a, b)
    assert losses == pytest.approx(np.asarray(fit_losses).reshape(2, 2).mean(axis=1), rel=1e-6)


@pytest.mark.slow
def test_run_writes_outputs_and_same_seed_gives_same_bits(compose, tmp_path: Path):
    cfg = compose("echo.repeats=2", "echo.epochs=2", "echo.units=4")
    results = echo.run(cfg, tmp_path)
    assert results.seed.tolist() == repeat_seeds(cfg.base_seed, 2).tolist()
    reports = tmp_path / "reports" / "studies"
    md = (reports / "echo.md").read_text()
    assert md.startswith("## ") and "(echo.png)" in md and (reports / "echo.png").is_file() and "87.5%" in md
    assert len(pd.read_csv(reports / "echo_results.csv")) == 2
    metrics = json.loads((reports / "echo_metrics.json").read_text())
    assert metrics["memoryless_cap"] == 7 / 8 and metrics["lstm"]["solved"]["n"] == 2
    again = echo.fit_one(int(results.seed[0]), cfg.echo, True)
    assert echo.encode(again[0]) == results.lstm_predictions[0] and again[1][-1] == results.lstm_final_loss[0]


def test_lstm_against_control_is_an_exact_mcnemar_test_on_the_seeds_where_they_differ():
    lstm = np.array([True] * 13 + [False] * 17)
    control = np.zeros(30, dtype=bool)
    test = echo.mcnemar_exact(lstm, control)
    assert (test["both"], test["first_only"], test["second_only"], test["neither"]) == (0, 13, 0, 17)
    assert test["pvalue"] == pytest.approx(2 * 0.5**13)  # exact binomial over the 13 discordant seeds
    assert echo.mcnemar_exact(lstm, lstm)["pvalue"] == pytest.approx(1.0)


def test_claims_get_verdicts_from_rates_over_seeds():
    solved = np.zeros((30, 2, 4), dtype=bool)
    solved[:, :, :3] = True
    solved[:, 1, 3] = True
    solved[:13] = True  # 13 seeds solve both
    capped = np.ones((30, 2, 4), dtype=bool)
    capped[:, 1, 3] = False
    s = echo.summarise({"lstm": solved, "control": capped}, {"lstm": np.ones(30), "control": np.ones(30)}, WRITE_UP)
    verdicts = echo.claims(s)["verdict"].tolist()
    assert verdicts == ["inconclusive", "inconclusive", "supported", "supported"]  # 13/30: CI across one half
    assert common.rate_verdict(common.rate([True] * 25 + [False] * 5)) == "supported"
    assert common.rate_verdict(common.rate([True] * 2 + [False] * 28)) == "contradicted"


def test_correct_steps_read_back_from_the_results_table():
    results = pd.DataFrame({"lstm_predictions": ["0123 0124", "0123 0123"], "control_predictions": ["0123 0123"] * 2})
    correct = echo.correct_from_results(results, WRITE_UP)
    assert correct["lstm"].reshape(2, -1).all(axis=1).tolist() == [True, False]
    assert correct["control"][:, 1, 3].tolist() == [False, False]
