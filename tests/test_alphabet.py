import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.params import ConfigError, compose_config
from pipeline.seeds import repeat_seeds
from pipeline.studies import alphabet, common

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ALL_FRAMINGS = list(compose_config().alphabet.framings)


def framing(**overrides) -> alphabet.Framing:
    fields = {"name": "f", "layout": "features", "window": 1, "samples": None, "units": 4, "epochs": 3,
              "batch_size": 1, "shuffle": False, "stateful": False, "note": ""}
    return alphabet.Framing(**{**fields, **overrides})


def tiny(compose, keep=("naive", "stateful", "variable_length"), repeats=2, epochs=2):
    """The real config with only ``keep`` framings, each trained for ``epochs``."""
    drop = [f"~alphabet.framings.{name}" for name in ALL_FRAMINGS if name not in keep]
    shrink = [f"alphabet.framings.{name}.epochs={epochs}" for name in keep]
    samples = ["alphabet.framings.variable_length.samples=40"] if "variable_length" in keep else []
    return compose(f"alphabet.repeats={repeats}", *drop, *shrink, *samples)


def test_default_config_holds_the_write_ups_framings_and_settings():
    cfg = compose_config().alphabet
    fs = {f.name: f for f in alphabet.check(cfg)}
    assert {"naive", "feature_window", "timestep_window", "within_batch", "stateful", "variable_length"} <= set(fs)
    assert (fs["naive"].units, fs["naive"].epochs, fs["naive"].batch_size) == (32, 500, 1)
    assert fs["within_batch"].batch_size == len(LETTERS) - 1 and not fs["within_batch"].shuffle
    assert fs["stateful"].stateful and fs["variable_length"].samples == 1000 and fs["variable_length"].window == 5


def test_windows_are_consecutive_letters_and_their_successor():
    codes, targets = alphabet.windows(26, 3)
    assert codes.shape == (23, 3)
    assert codes[0].tolist() == [0, 1, 2] and targets[0] == 3
    assert codes[-1].tolist() == [22, 23, 24] and targets[-1] == 25


@pytest.mark.parametrize(("layout", "shape"), [("features", (23, 1, 3)), ("timesteps", (23, 3, 1))])
def test_window_layouts_put_letters_on_features_or_steps(layout, shape):
    x, y, targets = alphabet.framed(framing(layout=layout, window=3), 26, seed=0)
    assert x.shape == shape and y.shape == (23, 26)
    assert np.allclose(x.reshape(23, 3)[1], np.array([1, 2, 3]) / 26)
    assert np.array_equal(np.argmax(y, axis=1), targets) and targets[1] == 4


def test_random_runs_are_consecutive_within_the_alphabet():
    runs, targets = alphabet.random_runs(26, 5, 3000, np.random.default_rng(0))
    lengths = [len(r) for r in runs]
    assert set(lengths) == {1, 2, 3, 4, 5}
    for run, target in zip(runs, targets, strict=True):
        assert np.array_equal(np.diff(run), np.ones(len(run) - 1)) and run[0] >= 0
        assert target == run[-1] + 1 <= 25


def test_left_padding_never_reads_as_the_first_letter():
    padded = alphabet.left_pad([np.array([0, 1]), np.array([0])], 5)
    assert padded.tolist() == [[0, 0, 0, 1, 2], [0, 0, 0, 0, 1]]


def test_padded_data_is_drawn_from_the_seed_alone():
    f = framing(layout="padded", window=5, samples=50)
    a, b, c = (alphabet.framed(f, 26, seed) for seed in (3, 3, 4))
    assert a[0].shape == (50, 5, 1) and np.array_equal(a[0], b[0]) and np.array_equal(a[2], b[2])
    assert not np.array_equal(a[0], c[0])


def test_feed_back_feeds_each_prediction_in_as_the_next_input():
    def successor(code: int) -> np.ndarray:
        return np.eye(26)[(code + 1) % 26]

    assert alphabet.feed_back(successor, 24, 3) == [25, 0, 1]


def test_summary_counts_perfect_seeds_replays_and_reader_level_runs():
    fs = [framing(name="s", stateful=True)]
    results = pd.DataFrame({
        "framing": ["s"] * 4,
        "accuracy": [1.0, 1.0, 0.36, 0.5],
        "generated": [LETTERS[1:], LETTERS[1:], "B" * 25, LETTERS[1:]],
        "cold_start": ["BCDEF", "LMNOP", "BBBBB", "CDEFG"],
    })
    s = alphabet.summarise(results, fs, LETTERS, "K")["s"]
    assert s["perfect"]["count"] == 2 and s["generates_alphabet"]["count"] == 3
    assert s["cold_start_correct"]["count"] == 1 and s["cold_start_replays"]["count"] == 2
    assert s["at_or_below_readers"]["count"] == 1 and s["accuracy"]["median"] == 0.75


def test_shuffle_pairs_are_framings_that_differ_in_shuffling_alone():
    a, b = framing(name="a", batch_size=25), framing(name="b", batch_size=25, shuffle=True, note="control")
    other = framing(name="c", batch_size=5, shuffle=True)
    assert alphabet.shuffle_pairs([a, b, other]) == [(a, b)]
    results = pd.DataFrame({"framing": ["a", "a", "b", "b"], "repeat": [0, 1, 0, 1], "accuracy": [1, 0.5, 1, 0.25]})
    effect = alphabet.shuffle_effects(results, [a, b])["a vs b"]
    assert effect["same_accuracy"]["count"] == 1 and effect["max_abs_difference"] == 0.25


@pytest.mark.parametrize(("override", "message"), [
    ("alphabet.framings.stateful.shuffle=true", "set shuffle: false"),
    ("alphabet.framings.stateful.window=3", "feeds one letter per step"),
    ("alphabet.framings.variable_length.samples=null", "samples must be set for layout padded"),
    ("alphabet.framings.naive.layout=diagonal", r"layout='diagonal' \(str\) is invalid: expected one of features"),
    ("alphabet.cold_start=A", "cold_start must be one letter of"),
    ("alphabet.cold_start=Z", "cold_start must be one letter of"),
    ("alphabet.cold_start=KL", r"cold_start='KL' \(str\) is invalid \(string should have at most 1 character"),
    ("~alphabet.framings.naive.note", r"config key alphabet\.framings\.naive\.note is missing"),
    ("+alphabet.framings.naive.dropout=0.2", r"unknown config key alphabet\.framings\.naive\.dropout=0\.2"),
    ("alphabet.framings.naive.epochs=0", r"naive\.epochs=0 \(int\) is invalid: expected an integer >= 1"),
])  # fmt: skip
def test_bad_config_is_refused_with_the_fix(override, message):
    with pytest.raises(ConfigError, match=message):
        alphabet.check(compose_config([override]).alphabet)


@pytest.mark.slow
@pytest.mark.parametrize(
    "f", [framing(shuffle=True, epochs=2), framing(stateful=True, epochs=2)], ids=["shuffled", "stateful"]
)
def test_same_seed_same_bits(f):
    assert alphabet.fit_one(f, 7, LETTERS, "K", 5) == alphabet.fit_one(f, 7, LETTERS, "K", 5)


@pytest.mark.slow
@pytest.mark.parametrize(
    "f", [framing(batch_size=5), framing(batch_size=25, layout="timesteps", window=1), framing(stateful=True)],
    ids=["batches", "one_batch", "stateful"],
)
def test_one_update_per_batch_is_fit_bit_for_bit_when_unshuffled(f):
    x, y, _ = alphabet.framed(f, len(LETTERS), 7)
    common.seed_keras(7)
    stepped = alphabet.build(f, x.shape[1:], len(LETTERS))
    losses = alphabet.train(stepped, f, x, y, 7)
    common.seed_keras(7)
    fitted = alphabet.build(f, x.shape[1:], len(LETTERS))
    fit_losses = []
    for _ in range(f.epochs):  # the write-up's way for a stateful model, and the same updates for any other
        fit_losses += fitted.fit(x, y, epochs=1, batch_size=f.batch_size, shuffle=False, verbose=0).history["loss"]
        common.reset_states(fitted)
    for a, b in zip(stepped.get_weights(), fitted.get_weights(), strict=True):
        assert np.array_equal(a, b)
    assert losses == pytest.approx(fit_losses, rel=1e-6)


def test_a_shuffled_framing_draws_its_row_orders_from_the_seed():
    seen = []

    class Recorder:
        def train_on_batch(self, x, y):
            seen.append(np.argmax(y, axis=-1).tolist())
            return 0.0

    f = framing(shuffle=True, batch_size=25, epochs=2)
    x, y, _ = alphabet.framed(f, len(LETTERS), 7)
    alphabet.train(Recorder(), f, x, y, 7)
    first, seen[:] = list(seen), []
    alphabet.train(Recorder(), f, x, y, 7)
    assert seen == first and sorted(first[0]) == list(range(1, 26)) and first[0] != first[1]
    alphabet.train(Recorder(), f, x, y, 8)
    assert seen[2:] != first


@pytest.mark.slow
def test_run_writes_a_self_contained_section_and_one_row_per_seed(compose, tmp_path: Path):
    cfg = tiny(compose)
    results = alphabet.run(cfg, tmp_path)
    seeds = repeat_seeds(cfg.base_seed, 2).tolist()
    assert results.groupby("framing").seed.apply(list).to_dict() == {
        "naive": seeds, "stateful": seeds, "variable_length": seeds}
    assert results.groupby("framing").final_loss.nunique().eq(2).all()  # the seed matters
    reports = tmp_path / "reports" / "studies"
    md = (reports / "alphabet.md").read_text()
    assert md.startswith("## ") and "![" in md and "(alphabet.png)" in md and (reports / "alphabet.png").is_file()
    stateful = pd.read_csv(reports / "alphabet_results.csv").query("framing == 'stateful'")
    assert stateful.generated.str.len().eq(25).all() and stateful.cold_start.str.len().eq(5).all()
    assert set(stateful.generated.str.cat()) <= set(LETTERS)
    metrics = json.loads((reports / "alphabet_metrics.json").read_text())
    assert metrics["framings"]["stateful"]["perfect"]["n"] == 2
    assert "generates_alphabet" in metrics["framings"]["stateful"]


def test_framings_are_compared_on_the_letters_every_framing_predicts():
    one, three = framing(name="one"), framing(name="three", window=3)
    assert alphabet.target_codes(one, 26) - alphabet.target_codes(three, 26) == {1, 2}  # B and C
    seed = 7
    # one predicts B..Z, missing only C; three predicts D..Z, missing D
    one_pred = "B" + "B" + LETTERS[3:]
    three_pred = "E" + LETTERS[4:]
    results = pd.DataFrame({"framing": ["one", "three"], "repeat": [0, 0], "seed": [seed, seed],
                            "predicted": [one_pred, three_pred]})
    acc = alphabet.common_accuracy(results, [one, three], LETTERS)
    assert acc.at[0, "one"] == 1.0 and acc.at[0, "three"] == pytest.approx(22 / 23)  # C is not a common letter
    assert alphabet.common_accuracy(results.drop(columns="predicted"), [one, three], LETTERS) is None
    lift = alphabet.paired_lift(pd.DataFrame({"a": [0.9, 0.95, 1.0], "b": [0.8, 0.8, 0.85]}), "a", "b")
    assert lift["ci_low"] > 0 and lift["mean"] == pytest.approx(0.4 / 3)
