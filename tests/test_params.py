import pytest
from omegaconf import OmegaConf

from pipeline.params import PARAMS_FILE, ConfigError, compose_config, load_params


def test_committed_params_yaml_is_what_conf_composes():
    committed = OmegaConf.to_container(OmegaConf.load(PARAMS_FILE), resolve=True)
    composed = OmegaConf.to_container(compose_config(), resolve=True)
    assert committed == composed, "params.yaml is stale: run `python -m pipeline.params` and commit it"


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("repeats=0", "repeats"),
        ("repeats=-3", "repeats"),
        ("model.epochs=0", "model.epochs"),
        ("model.units=0", "model.units"),
        ("data.test_size=0", "data.test_size"),
        ("repeats=2.5", "repeats"),
    ],
)
def test_out_of_range_values_are_named(override, key):
    with pytest.raises(ConfigError, match=rf"^{key}=\S+ \(\w+\) is invalid: expected an integer >= 1; e\.g\. {key}="):
        compose_config([override])


def test_load_params_rejects_unknown_keys_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"python -m pipeline\.params"):
        load_params(tmp_path / "params.yaml")
    cfg = load_params(PARAMS_FILE)
    with pytest.raises(Exception, match="repeat"):
        _ = cfg.repeat  # a typo is an error, not a silent default


def test_the_period_frequencies_taken_on_trust_are_pandas_own():
    import pandas as pd

    from pipeline.schema import PERIOD_FREQUENCIES

    for frequency in PERIOD_FREQUENCIES:
        pd.Period("2000-01-01", freq=frequency)  # raises for an alias pandas does not know
