import calendar
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from pipeline import data
from pipeline.errors import MissingInput
from pipeline.stages.fetch import packaged

SHAMPOO = packaged("shampoo.csv")
SHAMPOO_FORMAT = data.CsvFormat(
    date_column="Month", value_column="Sales", date_format="%Y-%m", date_prefix="190", frequency="M", header=True,
    delimiter=",", decimal=".", thousands=None, encoding="utf-8",
)
PARSE = {"fmt": SHAMPOO_FORMAT, "interval": 1, "min_length": 15}


def parse(raw: bytes) -> data.Series:
    return data.parse_series(raw, source="test.csv", **PARSE)


@pytest.fixture
def shampoo() -> np.ndarray:
    return parse(SHAMPOO).values


def test_shipped_series_has_36_months(shampoo):
    assert len(shampoo) == 36
    assert shampoo[0] == 266.0 and shampoo[-1] == 646.9


def test_persistence_rmse_matches_the_write_up(shampoo):
    actual = data.test_targets(shampoo, 12)
    assert round(float(data.rmse(data.persistence_forecast(shampoo, 12), actual)), 3) == 136.761


@pytest.mark.parametrize("interval", [1, 2, 12])
def test_difference_inverts(shampoo, interval):
    diffs = data.difference(shampoo, interval)
    assert len(diffs) == len(shampoo) - interval
    np.testing.assert_array_equal(data.invert_difference(shampoo[:interval], diffs, interval), shampoo[interval:])


def test_scale_inverts_and_spans_minus_one_to_one(shampoo):
    diffs = data.difference(shampoo)
    scaler = data.fit_scaler(diffs)
    scaled = data.scale(scaler, diffs)
    assert scaled.min() == -1.0 and scaled.max() == 1.0
    np.testing.assert_allclose(data.invert_scale(scaler, scaled), diffs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("values", [
    "shampoo", [3.0, 3.0, 3.0], [-1e-9, 2e-9, 0.0], [1e12, -3.5e11, 7.25], [0.1, 0.2, 0.30000000000000004],
])
@pytest.mark.parametrize("feature_range", [(-1.0, 1.0), (0.0, 1.0), (-3.0, 0.5)])
def test_scaler_gives_scikit_learns_bits(shampoo, values, feature_range):
    from sklearn.preprocessing import MinMaxScaler

    train = data.difference(shampoo)[:23] if values == "shampoo" else np.array(values)
    probe = np.concatenate([train, np.random.default_rng(0).normal(train.mean(), 1 + train.std(), 50)])
    theirs = MinMaxScaler(feature_range=feature_range).fit(train.reshape(-1, 1))
    mine = data.fit_scaler(train, feature_range)
    scaled = theirs.transform(probe.reshape(-1, 1)).ravel()
    np.testing.assert_array_equal(data.scale(mine, probe), scaled)
    inverted = theirs.inverse_transform(scaled.reshape(-1, 1)).ravel()
    np.testing.assert_array_equal(data.invert_scale(mine, scaled), inverted)


def test_scaler_round_trips_through_its_dict(shampoo):
    scaler = data.fit_scaler(data.difference(shampoo)[:23])
    rebuilt = data.scaler_from_dict(data.scaler_to_dict(scaler))
    np.testing.assert_array_equal(rebuilt.scale_, scaler.scale_)
    np.testing.assert_array_equal(rebuilt.min_, scaler.min_)


def test_frame_inverts():
    values = np.arange(10.0)
    x, y = data.frame(values)
    assert x.shape == (9, 1)
    np.testing.assert_array_equal(y[:-1], x[1:, 0])
    np.testing.assert_array_equal(data.unframe(x, y), values)


def test_split_gives_22_training_and_12_test_pairs(shampoo):
    x, y = data.frame(data.difference(shampoo))
    full = data.split_supervised(x, y, 12, None)
    last = data.split_supervised(x, y, 12, 12)
    assert (len(full.y_train), len(full.y_test), len(last.y_train)) == (22, 12, 12)
    np.testing.assert_array_equal(last.x_train, full.x_train[-12:])


def test_lag1_framing_is_the_old_lag1_arrays_bit_for_bit(shampoo):
    diffs = data.difference(shampoo)
    x, y = data.frame(diffs, 1)
    old_x, old_y = diffs[:-1].reshape(-1, 1), diffs[1:]  # the lag-1 framing as it was written before model.lag
    assert (x.shape, x.dtype, y.shape, y.dtype) == (old_x.shape, old_x.dtype, old_y.shape, old_y.dtype)
    assert x.tobytes() == old_x.tobytes() and y.tobytes() == old_y.tobytes()


def test_lag3_frames_the_three_previous_values_oldest_first():
    values = np.array([10.0, 11.0, 13.0, 16.0, 20.0, 25.0])
    x, y = data.frame(values, 3)
    np.testing.assert_array_equal(x, [[10, 11, 13], [11, 13, 16], [13, 16, 20]])
    np.testing.assert_array_equal(y, [16, 20, 25])  # the first three values are inputs only
    np.testing.assert_array_equal(data.unframe(x, y), values)


@pytest.mark.parametrize("lag", [1, 2, 3, 5])
def test_every_lag_tests_the_same_last_months_and_scales_on_the_same_training_differences(shampoo, lag):
    diffs = data.difference(shampoo)
    x, y = data.frame(diffs, lag)
    full = data.split_supervised(x, y, 12, None)
    np.testing.assert_array_equal(full.y_test, diffs[-12:])  # the last 12 months, whatever the lag
    np.testing.assert_array_equal(full.x_test[:, -1], diffs[-13:-1])  # each test row ends at the month before
    assert len(full.y_train) == 23 - lag  # a longer lag costs training pairs, not test months
    assert data.training_diff_span(len(diffs), 12, None, lag) == slice(0, 23)
    span = data.training_diff_span(len(diffs), 12, 12, lag)  # the last 12 pairs touch 12 + lag - 1 differences
    assert span == slice(11 - lag, 23)
    last = data.split_supervised(x, y, 12, 12)
    np.testing.assert_array_equal(last.x_train.ravel()[:1], diffs[span][:1])


def test_scaler_is_fitted_on_the_training_window_only(shampoo):
    diffs = data.difference(shampoo)
    span = data.training_diff_span(len(diffs), 12, None)
    assert (span.start, span.stop) == (0, 23)  # 22 pairs touch differences 0..22
    assert data.training_diff_span(len(diffs), 12, 12) == slice(10, 23)
    with pytest.raises(data.DataError, match="too few"):
        data.training_diff_span(len(diffs), 40, None)


def test_invert_forecasts_adds_the_previous_actual(shampoo):
    diffs = data.difference(shampoo)
    scaler = data.fit_scaler(diffs[:23])
    perfect = data.scale(scaler, diffs[-12:])
    forecasts = data.invert_forecasts(np.stack([perfect, perfect]), scaler, shampoo, 12, 1)
    np.testing.assert_allclose(forecasts, np.stack([shampoo[-12:]] * 2), rtol=0, atol=1e-9)
    zero_change = data.scale(scaler, np.zeros(12))
    np.testing.assert_allclose(
        data.invert_forecasts(zero_change, scaler, shampoo, 12, 1), data.persistence_forecast(shampoo, 12), atol=1e-9
    )


BAD_INPUTS = {
    "empty": (b"", "is empty"),
    "blank": (b"   \n", "is empty"),
    "wrong header": (b'"Date","Value"\n"1-01",1.0\n', "expected exactly"),
    "extra column": (b'"Month","Sales","x"\n"1-01",1.0,2\n', "expected exactly"),
    "no rows": (b'"Month","Sales"\n', "no rows"),
    "non-numeric": (SHAMPOO.replace(b"145.9", b"lots"), "line 3 \\('lots'\\)"),
    "nan": (SHAMPOO.replace(b"145.9", b"nan"), "finite number"),
    "inf": (SHAMPOO.replace(b"183.1", b"inf"), "finite number"),
    "empty value": (SHAMPOO.replace(b"183.1", b""), "finite number"),
    "duplicate month": (SHAMPOO.replace(b'"1-02"', b'"1-01"'), "duplicate period '1-01'"),
    "unordered months": (SHAMPOO.replace(b'"1-02"', b'"1-13"'), "does not parse"),
    "months out of order": (
        SHAMPOO.replace(b'"1-02"', b'"1-xx"').replace(b'"1-03"', b'"1-02"').replace(b'"1-xx"', b'"1-03"'),
        "'1-02' follows '1-03'",
    ),
    "too short": (b"\n".join(SHAMPOO.splitlines()[:12]) + b"\n", "at least 15 are needed"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_is_named(name):
    raw, message = BAD_INPUTS[name]
    with pytest.raises(data.DataError, match=message):
        parse(raw)


@pytest.mark.parametrize("frequency", sorted(data.PERIODS_PER_YEAR))
def test_the_period_ordinals_counted_without_pandas_are_pandas_own(frequency):
    import pandas as pd

    for year in sorted({*range(1, 10_000, 37), *range(1890, 2111), 9999}):
        for month in range(1, 13):
            last_day = calendar.monthrange(year, month)[1]  # both sides of every month's and quarter's boundary
            for when in (datetime(year, month, 1), datetime(year, month, last_day, 23, 59, 59, 999_999)):
                assert data.period_ordinal(when, frequency) == pd.Period(when, freq=frequency).ordinal, when


@pytest.mark.parametrize(("frequency", "date_format", "periods", "message"), [
    ("Q", "%Y-%m", ["2001-01", "2001-04", "2001-10"], "no row for 2001Q3 between line 3 .* and line 4"),
    ("Q", "%Y-%m", ["2001-01", "2001-02"], "'2001-01' and '2001-02' fall in the same 'Q' period"),
    ("Y", "%Y-%m", ["1999-12", "2000-01", "2002-01"], "no row for 2001 between line 3"),
    ("D", "%Y-%m-%d", ["2000-02-28", "2000-03-01"], "no row for 2000-02-29 between line 2"),  # pandas' count
])
def test_every_period_frequency_finds_gaps_and_doubles(frequency, date_format, periods, message):
    fmt = data.CsvFormat(date_column="when", value_column="x", date_format=date_format, date_prefix="",
                         frequency=frequency, header=True, delimiter=",", decimal=".", thousands=None, encoding="utf-8")
    raw = "when,x\n" + "".join(f"{period},1\n" for period in periods)
    with pytest.raises(data.DataError, match=message):
        data.parse_series(raw.encode(), source="test.csv", fmt=fmt, interval=1, min_length=1)


def test_missing_file_names_the_fix(tmp_path: Path):
    with pytest.raises(MissingInput, match="does not exist: run the fetch stage"):
        data.read_series(tmp_path / "nope.csv", **PARSE)


def test_min_series_length_covers_the_split():
    assert data.min_series_length(interval=1, test_size=12) == 15
    assert data.min_series_length(interval=1, test_size=12, lag=3) == 17  # the first 3 differences only input


def test_a_series_too_short_at_its_lag_gets_one_line_naming_the_fix(compose):
    from pipeline.stages import fetch

    cfg = compose("data.test_size=32")  # 36 months: 35 differences leave 32 test pairs and 1 training pair at lag 2
    assert len(fetch.parse(SHAMPOO, cfg.data, "shampoo.csv", lag=2).values) == 36
    with pytest.raises(data.DataError) as err:
        fetch.parse(SHAMPOO, cfg.data, "shampoo.csv", lag=3)
    assert str(err.value) == (
        "shampoo.csv has 36 rows but at least 37 are needed for the configured split (differencing interval + lag + "
        "test_size + at least one training pair): use a longer series or a smaller data.test_size.")
