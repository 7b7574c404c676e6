"""Acting factors derived from the regime records (pipeline.analysis.contrasts), on the real regime files."""

import pytest

from pipeline.analysis import contrasts
from pipeline.params import regimes
from pipeline.regimes import StateRegime

TRAIN_PAIRS = 22


@pytest.fixture(scope="module")
def records():
    from pipeline.params import compose_config

    return {r.name: r for r in regimes(compose_config(["repeats=2"]))}


def design(records, a, b) -> contrasts.PairDesign:
    return contrasts.design(records[a], records[b], TRAIN_PAIRS)


def test_a_compound_contrast_is_detected_although_the_records_differ_in_one_field(records):
    a, b = records["stateful"], records["noreset"]
    assert [f for f in StateRegime.__dataclass_fields__ if getattr(a, f) != getattr(b, f)] == [
        "name", "reset_after_epoch"]
    d = design(records, "stateful", "noreset")
    assert d.kind == contrasts.COMPOUND and not d.usable
    assert d.factors == ("resets in training", "test starts from")


def test_clean_contrasts_differ_in_exactly_one_acting_factor(records):
    assert design(records, "seed_train", "seed_train_no_resets").factors == ("resets in training",)
    assert design(records, "seed_train", "stateful").factors == ("test starts from",)
    assert design(records, "stateful", "reset_test").factors == ("between predictions",)
    assert design(records, "stateless", "stateless_shuffle").factors == ("shuffle",)
    stateful = design(records, "stateful", "stateless")
    assert stateful.kind == contrasts.CLEAN and stateful.factors == ("carries state",)
    assert stateful.implied == ("resets in training", "between predictions")
    assert design(records, "seed_train", "seed_train_resets").kind == contrasts.COMPOUND  # warm-up undone too


def test_twins_and_null_contrasts_are_named_with_a_reason(records):
    batch = design(records, "stateful_batch12", "stateless_batch12")
    assert batch.kind == contrasts.TWINS and "never passes state" in batch.note
    warm = design(records, "reset_test", "seed_train_resets")
    assert warm.kind == contrasts.TWINS and "undoes the warm-up" in warm.note
    null = design(records, "seed_train_no_resets", "noreset")
    assert null.kind == contrasts.NULL and null.factors == ("test starts from",) and "warm-up rebuilds" in null.note


def test_a_new_regime_gets_its_factors_from_its_record():
    one_batch = StateRegime("one_batch", stateful=True, train_rows=12, batch_size=12, shuffle=True,
                            reset_after_epoch=False, warm_start=False, reset_after_prediction=False, forecast="batch")
    f = contrasts.acting_factors(one_batch, TRAIN_PAIRS)
    assert f.carries_state and f.training_resets == "never" and f.test_start == contrasts.END_OF_TRAINING
    assert f.between_predictions == "reset" and f.shuffle is False  # one batch cannot be reordered in effect
    assert f.window == "last 12 rows, batch 12"
