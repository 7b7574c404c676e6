"""The baselines stage: the classical forecasters scored on the study's test months, apart from the LSTMs."""

import pandas as pd
import pytest

from pipeline.analysis import baselines as models
from pipeline.artifacts import load_differenced, paths
from pipeline.errors import MissingInput
from pipeline.stages import baselines, difference, fetch


@pytest.fixture
def differenced(compose, tmp_path):
    cfg = compose("data.source=packaged", "baselines.arima_order=[1,1,0]")
    for stage in (fetch, difference):
        stage.run(cfg, tmp_path)
    return cfg, tmp_path


def test_it_writes_the_scores_of_the_differenced_series_raw_months(differenced):
    cfg, root = differenced
    p = paths(cfg, root)
    written = baselines.run(cfg, root)
    expected = models.score(load_differenced(p)["raw"], cfg.data.test_size, cfg.baselines, cfg.data.interval,
                            lag=cfg.model.lag)
    pd.testing.assert_frame_equal(written, expected, check_exact=True)
    spread = p.baselines.read_bytes()
    baselines.run(cfg, root, workers=1)  # the walks forward on one process: the same bytes
    assert p.baselines.read_bytes() == spread
    assert list(pd.read_csv(p.baselines).columns) == ["model", "rmse", "description", "fit"]


def test_it_needs_the_differenced_series_and_says_which_stage_makes_it(compose, tmp_path):
    cfg = compose("data.source=packaged")
    with pytest.raises(MissingInput, match="dvc repro difference"):
        baselines.run(cfg, tmp_path)
