"""The series and its transforms: load and validate, difference, scale, frame, and exact inverses.

Pure numpy/pandas/scikit-learn; no file here is written and TensorFlow is never imported.

Index bookkeeping for a series ``x[0..n-1]`` differenced at ``interval`` k and framed at lag 1:
``d[i] = x[i+k] - x[i]``, pair ``j`` is ``(d[j], d[j+1])`` and its target is the raw value
``x[j+1+k]``. The last ``test_size`` pairs are the test rows; the pairs before them train.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # imported where a scaler is made: the stages that need none start faster
    from sklearn.preprocessing import MinMaxScaler


class DataError(ValueError):
    """The input series cannot be used; the message names the problem and the fix."""


@dataclass(frozen=True)
class Series:
    periods: tuple[str, ...]
    values: np.ndarray  # float64, finite


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_series(
    raw: bytes,
    *,
    source: str,
    date_column: str,
    value_column: str,
    date_format: str,
    date_prefix: str,
    min_length: int,
) -> Series:
    """Parse CSV bytes into a validated series, or raise :class:`DataError` saying what to fix."""
    if not raw.strip():
        raise DataError(f"{source} is empty: expected a CSV with a '{date_column},{value_column}' header and rows.")
    try:
        frame = pd.read_csv(pd.io.common.BytesIO(raw), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{source} is not a readable CSV ({exc}).") from exc
    columns = [str(c).strip() for c in frame.columns]
    if columns[:2] != [date_column, value_column] or len(columns) != 2:
        raise DataError(
            f"{source} has header {columns}, expected exactly ['{date_column}', '{value_column}']: "
            "fix the file, or set data.date_column / data.value_column to the file's column names."
        )
    if frame.empty:
        raise DataError(f"{source} has a header but no rows.")
    periods = frame.iloc[:, 0].str.strip()
    values = pd.to_numeric(frame.iloc[:, 1].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        rows = ", ".join(f"row {i + 2} ({frame.iloc[i, 1]!r})" for i in bad[:5])
        raise DataError(f"{source}: '{value_column}' must be a finite number on every row; bad values at {rows}.")
    _check_periods(periods, source=source, date_format=date_format, date_prefix=date_prefix)
    if len(values) < min_length:
        raise DataError(
            f"{source} has {len(values)} rows but at least {min_length} are needed for the configured split "
            "(differencing interval + lag + test_size + at least one training pair): "
            "use a longer series or a smaller data.test_size."
        )
    return Series(periods=tuple(periods), values=values)


def _check_periods(periods: pd.Series, *, source: str, date_format: str, date_prefix: str) -> None:
    duplicated = periods[periods.duplicated()]
    if not duplicated.empty:
        raise DataError(f"{source}: duplicate period {duplicated.iloc[0]!r}; every row must be a distinct period.")
    parsed = []
    for period in periods:
        try:
            parsed.append(datetime.strptime(date_prefix + period, date_format))
        except ValueError:
            raise DataError(
                f"{source}: period {period!r} does not parse as {date_format!r} after prefixing {date_prefix!r}; "
                "set data.date_format and data.date_prefix to match the file."
            ) from None
    labels = list(periods)
    for i in range(1, len(parsed)):
        if parsed[i] <= parsed[i - 1]:
            raise DataError(f"{source}: periods must increase, but {labels[i]!r} follows {labels[i - 1]!r}.")


def read_series(path: Path, **kwargs) -> Series:
    if not path.is_file():
        raise DataError(f"{path} does not exist: run the fetch stage first (dvc repro fetch) or check data.path.")
    return parse_series(path.read_bytes(), source=str(path), **kwargs)


def min_series_length(interval: int, test_size: int) -> int:
    """Rows needed for ``test_size`` test pairs plus at least one training pair."""
    return interval + 1 + test_size + 1


# --- differencing -------------------------------------------------------------------------------


def difference(values: np.ndarray, interval: int = 1) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[interval:] - values[:-interval]


def invert_difference(history: np.ndarray, diffs: np.ndarray, interval: int = 1) -> np.ndarray:
    """Rebuild ``x[interval:]`` from ``d`` and the first ``interval`` raw values in ``history``."""
    out = np.empty(len(diffs) + interval, dtype=np.float64)
    out[:interval] = np.asarray(history, dtype=np.float64)[:interval]
    for i, step in enumerate(np.asarray(diffs, dtype=np.float64)):
        out[i + interval] = out[i] + step
    return out[interval:]


# --- scaling ------------------------------------------------------------------------------------


def training_diff_span(n_diffs: int, test_size: int, train_rows: int | None) -> slice:
    """Indices of the differences that the training pairs touch (inputs and targets)."""
    n_pairs = n_diffs - 1
    first_test = n_pairs - test_size
    first_train = 0 if train_rows is None else first_test - train_rows
    if first_test < 1 or first_train < 0:
        raise DataError(
            f"{n_diffs} differences leave {max(first_test, 0)} training pairs, too few for test_size={test_size} "
            f"and train_rows={train_rows}: use a longer series or smaller sizes."
        )
    return slice(first_train, first_test + 1)


def fit_scaler(train_values: np.ndarray, feature_range: tuple[float, float] = (-1.0, 1.0)) -> MinMaxScaler:
    from sklearn.preprocessing import MinMaxScaler

    return MinMaxScaler(feature_range=feature_range).fit(np.asarray(train_values, dtype=np.float64).reshape(-1, 1))


def scale(scaler: MinMaxScaler, values: np.ndarray) -> np.ndarray:
    return scaler.transform(np.asarray(values, dtype=np.float64).reshape(-1, 1)).ravel()


def invert_scale(scaler: MinMaxScaler, values: np.ndarray) -> np.ndarray:
    return scaler.inverse_transform(np.asarray(values, dtype=np.float64).reshape(-1, 1)).ravel()


def scaler_to_dict(scaler: MinMaxScaler) -> dict:
    return {
        "feature_range": [float(v) for v in scaler.feature_range],
        "data_min": float(scaler.data_min_[0]),
        "data_max": float(scaler.data_max_[0]),
    }


def scaler_from_dict(state: dict) -> MinMaxScaler:
    """Rebuild a fitted scaler; refitting on its own min and max reproduces it bit for bit."""
    return fit_scaler(np.array([state["data_min"], state["data_max"]]), tuple(state["feature_range"]))


# --- supervised framing -------------------------------------------------------------------------


@dataclass(frozen=True)
class Supervised:
    """Scaled lag-1 pairs: inputs (n, 1) and targets (n,), split into training and test rows."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def frame_lag1(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, dtype=np.float64)
    return values[:-1].reshape(-1, 1), values[1:]


def unframe_lag1(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(x).reshape(-1)[:1], np.asarray(y).reshape(-1)])


def split_supervised(x: np.ndarray, y: np.ndarray, test_size: int, train_rows: int | None) -> Supervised:
    first_test = len(y) - test_size
    first_train = 0 if train_rows is None else first_test - train_rows
    return Supervised(x[first_train:first_test], y[first_train:first_test], x[first_test:], y[first_test:])


# --- walk-forward scoring -----------------------------------------------------------------------


def test_targets(raw: np.ndarray, test_size: int) -> np.ndarray:
    return np.asarray(raw, dtype=np.float64)[-test_size:]


def invert_forecasts(
    scaled: np.ndarray, scaler: MinMaxScaler, raw: np.ndarray, test_size: int, interval: int
) -> np.ndarray:
    """Map scaled differenced forecasts, shape (..., test_size), back to raw values.

    Step i forecasts raw ``x[t]`` with ``t = n - test_size + i``; its difference is added to the
    actual observation ``x[t - interval]``, which walk-forward validation has seen by then.
    """
    scaled = np.asarray(scaled, dtype=np.float64)
    diffs = invert_scale(scaler, scaled.reshape(-1)).reshape(scaled.shape)
    raw = np.asarray(raw, dtype=np.float64)
    previous = raw[len(raw) - test_size - interval : len(raw) - interval]
    return diffs + previous


def rmse(forecasts: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Root mean squared error over the last axis."""
    errors = np.asarray(forecasts, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    return np.sqrt(np.mean(errors**2, axis=-1))


def persistence_forecast(raw: np.ndarray, test_size: int) -> np.ndarray:
    """Each test month forecast as the month before it."""
    raw = np.asarray(raw, dtype=np.float64)
    return raw[len(raw) - test_size - 1 : len(raw) - 1]


def file_sha256(path: Path) -> str:
    return sha256(Path(path).read_bytes())
