"""The evaluate stage's resume: forecasts are made and cached one chunk of replicas at a time."""

import pandas as pd
import pytest
from test_train import CountingEngine, Interrupted, use

from pipeline.seeds import repeat_seeds
from pipeline.stages import evaluate, train


@pytest.mark.slow
def test_killed_forecasting_resumes_with_only_the_missing_chunks(prepared, monkeypatch, tmp_path):
    # The baselines are not what this is about, and their model fits cost more than the LSTMs here.
    fixed = pd.DataFrame({"model": ["persistence"], "rmse": [136.761]})
    monkeypatch.setattr(evaluate.baselines, "score", lambda *_: fixed)
    cfg, root = prepared("regime=stateful", "repeats=3")
    train.run(cfg, root)
    uninterrupted = evaluate.run(cfg, root)

    cfg.resume.enabled, cfg.resume.chunk_size, cfg.resume.cache = True, 2, str(tmp_path / "cache")
    use(monkeypatch, evaluate, CountingEngine(fail_at=1))
    with pytest.raises(Interrupted):
        evaluate.run(cfg, root)  # killed after the first chunk
    engine = use(monkeypatch, evaluate, CountingEngine())
    resumed = evaluate.run(cfg, root)
    assert engine.forecast_calls == [repeat_seeds(cfg.base_seed, 3).tolist()[2:]]
    pd.testing.assert_frame_equal(resumed, uninterrupted)  # the same bits as one uninterrupted run
