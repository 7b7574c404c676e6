"""The panel: the shampoo study's numbers at shampoo's last origin, and per-series caching."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline import panel as panel_lib
from pipeline import series
from pipeline.stages import evaluate, train
from pipeline.stages import panel as panel_stage

# Regimes covering both training windows, batch forecasts, warm starts and resets after prediction (and one
# expectation's clean pair, 5a, for the panel's answers).
REGIMES = "regime=[stateful_batch12,stateful,seed_train,seed_train_resets]"
QUICK = ("panel=quick", "panel.repeats=2", "panel.baselines=none", "tracking.enabled=false", "engine.workers=1")


@pytest.mark.slow
@pytest.mark.parametrize("lag", [1, 3])  # at lag 3 too: the same stage functions frame both, on the same months
def test_shampoo_at_its_last_origin_is_the_shampoo_study_bit_for_bit(prepared, lag):
    cfg, root = prepared(REGIMES, *QUICK, f"model.lag={lag}")
    train.run(cfg, root)
    study = evaluate.run(cfg, root)
    shampoo = series.load("shampoo", min_train_pairs=12, lag=lag)
    chosen = panel_stage.setting(cfg)
    from pipeline.engines import make_engine
    from pipeline.resume import cache_from_config

    ours = panel_lib.series_results(shampoo, chosen, make_engine(cfg.engine), cache_from_config(cfg)).results
    ours = ours[ours.origin == 0]  # the last origin: the whole series, as the shampoo study has it
    for name, rows in study.groupby("regime"):
        mine = ours[ours.regime == name]
        assert np.array_equal(mine.seed.to_numpy(), rows.seed.to_numpy())
        assert mine.rmse.to_numpy().tobytes() == rows.rmse.to_numpy().tobytes(), name
    persistence = 136.761
    assert ours.relative_rmse.to_numpy() == pytest.approx(ours.rmse.to_numpy() / persistence, rel=1e-5)


def user_series(folder: Path, name: str, values: np.ndarray) -> None:
    csv = folder / f"{name}.csv"
    csv.write_text("Year,Value\n" + "".join(f"{1900 + i},{float(v)!r}\n" for i, v in enumerate(values)))
    (folder / f"{name}.yaml").write_text(yaml.safe_dump({
        "source": {"kind": "file", "path": str(csv), "date_column": "Year", "value_column": "Value",
                   "date_format": "%Y", "date_prefix": ""},
        "frequency": "annual", "season": 1, "test_size": 12, "origins": 2, "origin_step": 6}))


@pytest.mark.slow
def test_a_changed_series_is_the_only_one_recomputed(compose, tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    folder = tmp_path / "series"
    folder.mkdir()
    for name in ("one", "two"):
        user_series(folder, name, 50 + rng.normal(size=40).cumsum())
    cfg = compose(REGIMES, *QUICK, "panel.series=[one,two]", "resume.enabled=true",
                  f"resume.cache={tmp_path / 'cache'}")
    compute = panel_lib.score_series

    def killed_at_two(ps, *args):
        if ps.name == "two":
            raise KeyboardInterrupt
        return compute(ps, *args)

    monkeypatch.setattr(panel_lib, "score_series", killed_at_two)
    with pytest.raises(KeyboardInterrupt):
        panel_stage.run(cfg, tmp_path, folder)
    monkeypatch.setattr(panel_lib, "score_series", compute)
    first = panel_stage.run(cfg, tmp_path, folder)
    assert first.computed == ["two"]  # "one" finished before the interruption and was kept
    again = panel_stage.run(cfg, tmp_path, folder)
    assert again.computed == []
    pd.testing.assert_frame_equal(again.results, first.results)
    user_series(folder, "two", 50 + rng.normal(size=40).cumsum())  # new values for "two" alone
    changed = panel_stage.run(cfg, tmp_path, folder)
    assert changed.computed == ["two"]
    pd.testing.assert_frame_equal(changed.results[changed.results.series == "one"],
                                  first.results[first.results.series == "one"])
    assert not changed.results[changed.results.series == "two"].rmse.equals(
        first.results[first.results.series == "two"].rmse.reset_index(drop=True))
    for name in ("report.md", "report.html", "pooled.csv", "heatmap.png", "forest_5a.png"):
        assert (tmp_path / cfg.paths.panel / name).is_file()
    assert (tmp_path / cfg.paths.panel_results).is_file()


def test_a_bad_series_stops_the_panel_before_anything_trains(compose, tmp_path):
    folder = tmp_path / "series"
    shutil.copytree(series.SERIES_DIR, folder)
    cfg = compose(*QUICK, "panel.series=[shampoo,nhtemp,missing]")
    with pytest.raises(series.SeriesError, match="unknown series 'missing'"):
        panel_stage.run(cfg, tmp_path, folder)
    assert not (tmp_path / cfg.paths.panel).exists()
