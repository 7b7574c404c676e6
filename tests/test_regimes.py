import pytest

from pipeline.params import CONF_DIR, ConfigError, regimes
from pipeline.regimes import RegimeError, StateRegime, regime_from_mapping

# The write-up's ten regimes: stateful, train_rows, batch, shuffle, reset after epoch, warm, reset after prediction,
# forecast. Stateless regimes have no state to reset; their reset fields are false.
WRITE_UP = {
    "stateful": (True, None, 1, False, True, False, False, "one_step"),
    "stateless": (False, None, 1, False, False, False, False, "one_step"),
    "stateless_shuffle": (False, None, 1, True, False, False, False, "one_step"),
    "stateful_batch12": (True, 12, 12, False, True, False, False, "batch"),
    "stateless_batch12": (False, 12, 12, False, False, False, False, "batch"),
    "reset_test": (True, None, 1, False, True, False, True, "one_step"),
    "noreset": (True, None, 1, False, False, False, False, "one_step"),
    "seed_train": (True, None, 1, False, True, True, False, "one_step"),
    "seed_train_resets": (True, None, 1, False, True, True, True, "one_step"),
    "seed_train_no_resets": (True, None, 1, False, False, True, False, "one_step"),
}


def test_default_config_holds_the_ten_regimes_of_the_write_up(compose):
    got = {r.name: r for r in regimes(compose())}
    assert list(got) == list(WRITE_UP)
    for name, fields in WRITE_UP.items():
        assert got[name] == StateRegime(name, *fields)


def test_each_regime_file_is_packaged_under_its_own_name():
    for path in sorted((CONF_DIR / "regime").glob("*.yaml")):
        assert path.read_text().splitlines()[0] == f"# @package regime.{path.stem}"


def test_one_regime_can_be_selected(compose):
    assert [r.name for r in regimes(compose("regime=noreset"))] == ["noreset"]
    assert [r.name for r in regimes(compose("regime=[noreset,stateless]"))] == ["noreset", "stateless"]


def test_unknown_regime_name_lists_the_choices(compose):
    with pytest.raises(ConfigError, match=r"^Could not find 'regime/statefull': the choices are noreset, reset_test"):
        compose("regime=statefull")


def test_batch_must_divide_training_rows_for_stateful():
    regime = StateRegime("odd", True, None, 5, False, True, False, False, "batch")
    with pytest.raises(RegimeError, match="batch_size to divide the 22 training rows, but 5 does not"):
        regime.check_rows(22, 5)
    StateRegime("odd", False, None, 5, False, False, False, False, "batch").check_rows(5, 5)  # stateless: fine


def test_batch_forecast_needs_a_batch_of_test_rows():
    with pytest.raises(RegimeError, match="batch_size must be 12"):
        StateRegime("b", True, 6, 6, False, True, False, False, "batch").check_rows(6, 12)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"train_rows": 0}, "train_rows must be null or >= 1"),
        ({"forecast": "sideways"}, "forecast must be"),
        ({"batch_size": 2}, "one-step forecasts feed one row at a time"),
    ],
)
def test_inconsistent_records_are_rejected(fields, message):
    record = dict(zip(StateRegime.__dataclass_fields__, ("x", *WRITE_UP["stateful"]), strict=True))
    record.update(fields)
    with pytest.raises(RegimeError, match=message):
        StateRegime(**record)


def test_unknown_and_missing_fields_are_named():
    with pytest.raises(RegimeError, match=r"unknown fields \['stateful_'\], missing fields \['stateful'\]"):
        regime_from_mapping(
            "typo",
            {
                "stateful_": True,
                "train_rows": None,
                "batch_size": 1,
                "shuffle": False,
                "reset_after_epoch": True,
                "warm_start": False,
                "reset_after_prediction": False,
                "forecast": "one_step",
            },
        )


def test_window_names():
    assert StateRegime("a", *WRITE_UP["stateful"]).window == "all"
    assert StateRegime("b", *WRITE_UP["stateful_batch12"]).window == "last12"
