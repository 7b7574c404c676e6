"""The series and its transforms: load and validate, difference, scale, frame, and exact inverses.

Pure numpy (pandas only for a period frequency other than monthly, quarterly or annual); no file here is written
and TensorFlow is never imported.

Index bookkeeping for a series ``x[0..n-1]`` differenced at ``interval`` k and framed at ``lag`` L:
``d[i] = x[i+k] - x[i]`` for ``i < m = n - k``; pair ``j`` (``0 <= j < m - L``) has the input row
``(d[j], ..., d[j+L-1])`` (oldest first, one time step of L features) and the target ``d[j+L]``, whose raw value is
``x[j+L+k]``. The first L differences are inputs only: no pair targets them, having no full row before them.
The last ``test_size`` pairs are the test rows; the pairs before them train (``m - L - test_size`` of them). The
test targets are the last ``test_size`` differences whatever L is, so every lag forecasts, and is scored on, the same
last ``test_size`` months (and persistence with them); a larger lag costs training pairs, not test months.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import BadInput, MissingInput


class DataError(BadInput):
    """The input series cannot be used; the message names the problem and the fix."""


@dataclass(frozen=True)
class Series:
    periods: tuple[str, ...]
    values: np.ndarray  # float64, finite


@dataclass(frozen=True)
class CsvFormat:
    """How a series file is written and what it must hold: the ``data.*`` keys of the same names."""

    date_column: str
    value_column: str
    date_format: str  # strptime format of date_prefix + period
    date_prefix: str
    frequency: str  # pandas period frequency: one row per period, none missing
    header: bool  # whether the first line names the columns
    delimiter: str
    decimal: str
    thousands: str | None
    encoding: str

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> CsvFormat:
        return cls(**{f.name: section[f.name] for f in fields(cls)})


FLOAT32_MAX = float(np.finfo(np.float32).max)  # the models train and forecast in float32
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_HTML = re.compile(rb"^\s*(<!doctype html|<html|<head|<body)", re.IGNORECASE)
PERIODS_PER_YEAR = {"M": 12, "Q": 4, "Y": 1}  # the pandas period frequencies whose ordinals are counted here


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_series(raw: bytes, *, source: str, fmt: CsvFormat, interval: int, min_length: int) -> Series:
    """Parse CSV bytes into a validated series, or raise :class:`DataError` saying what to fix.

    Line numbers in messages are lines of the file (blank lines and the header counted).
    """
    if not raw.strip():
        raise DataError(f"{source} is empty: expected a CSV with a '{fmt.date_column},{fmt.value_column}' header "
                        "and one row per period.")
    refuse_html(raw, source)
    rows = _rows(_decode(raw, source, fmt.encoding), source, fmt)
    if fmt.header:
        line, header = rows.pop(0) if rows else (1, [])
        _check_header(header, line, source, fmt)
    elif rows and len(rows[0][1]) == 2 and _number(rows[0][1][1], fmt) is None and not _period(rows[0][1][0], fmt):
        line, first = rows[0]
        raise DataError(f"{source} line {line} ({fmt.delimiter.join(first)!r}) is a header, not data: "
                        "set data.header=true.")
    if not rows:
        raise DataError(f"{source} has a header but no rows.")
    lines = [line for line, _ in rows]
    for line, fields_ in rows:
        if len(fields_) != 2:
            raise DataError(_field_count_error(source, line, fields_, fmt))
    periods = [period.strip() for _, (period, _) in rows]
    values = _values([value for _, (_, value) in rows], lines, source, fmt)
    _check_periods(periods, lines, source=source, fmt=fmt)
    if len(values) < min_length:
        raise DataError(
            f"{source} has {len(values)} rows but at least {min_length} are needed for the configured split "
            "(differencing interval + lag + test_size + at least one training pair): "
            "use a longer series or a smaller data.test_size."
        )
    _check_scale(values, lines, source, interval)
    return Series(periods=tuple(periods), values=values)


def refuse_html(raw: bytes, source: str) -> None:
    """Raise when ``raw`` is a web page (a repository's page of the file, a login page) rather than the file."""
    if _HTML.match(raw.removeprefix(b"\xef\xbb\xbf")):
        raise DataError(f"{source} is an HTML page, not a CSV: point data.url or data.path at the raw file "
                        "(on GitHub, the 'Raw' link).")


def _decode(raw: bytes, source: str, encoding: str) -> str:
    codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding  # a BOM is not part of the header
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(f"{source} line {line} is not valid {encoding} (byte {raw[err.start]:#04x}): set "
                        "data.encoding to the file's encoding, e.g. data.encoding=latin-1 or cp1252.") from None


def _rows(text: str, source: str, fmt: CsvFormat) -> list[tuple[int, list[str]]]:
    """(first file line, fields) of every non-blank row."""
    reader = csv.reader(StringIO(text, newline=""), delimiter=fmt.delimiter)
    rows, line = [], 1
    try:
        for fields_ in reader:
            if any(f.strip() for f in fields_):
                rows.append((line, fields_))
            line = reader.line_num + 1
    except csv.Error as err:
        raise DataError(f"{source} line {reader.line_num} is not readable CSV ({err}).") from None
    return rows


def _check_header(header: list[str], line: int, source: str, fmt: CsvFormat) -> None:
    columns = [c.strip() for c in header]
    expected = [fmt.date_column, fmt.value_column]
    if columns == expected:
        return
    looks_like_data = len(columns) == 2 and (_number(columns[1], fmt) is not None or _period(columns[0], fmt))
    if looks_like_data:
        raise DataError(
            f"{source} line {line} ({fmt.delimiter.join(header)!r}) is data, not a header: set data.header=false "
            f"(the columns are then data.date_column and data.value_column), or add the header line "
            f"'{fmt.delimiter.join(expected)}'."
        )
    hint = _delimiter_hint(header, fmt)
    raise DataError(
        f"{source} has header {columns}, expected exactly {expected}: "
        + (hint or "fix the file, or set data.date_column / data.value_column to the file's column names.")
    )


def _delimiter_hint(fields_: list[str], fmt: CsvFormat) -> str:
    joined = fmt.delimiter.join(fields_)
    for other in (";", "\t", "|", ","):
        if other != fmt.delimiter and other in joined and len(fields_) < 2:
            return f"the file seems to separate columns with {other!r}: set data.delimiter={other!r}."
    return ""


def _field_count_error(source: str, line: int, fields_: list[str], fmt: CsvFormat) -> str:
    text = fmt.delimiter.join(fields_)
    hint = _delimiter_hint(fields_, fmt)
    if not hint and len(fields_) > 2 and fmt.delimiter == "," and all(f.strip().isdigit() for f in fields_[1:]):
        hint = "values with a decimal comma need another delimiter: set data.delimiter=';' data.decimal=','."
    if not hint and len(fields_) < 2:
        hint = "remove notes and footers from the file, or fix the row."
    return (f"{source} line {line} ({text!r}) has {len(fields_)} field(s), expected 2 "
            f"({fmt.date_column}{fmt.delimiter}{fmt.value_column}): {hint or 'fix the row.'}")


def _number(text: str, fmt: CsvFormat) -> float | None:
    """``text`` as a number under the file's decimal mark and thousands separator; None when it is not one."""
    text = text.strip()
    if fmt.thousands:
        text = text.replace(fmt.thousands, "")
    if fmt.decimal != ".":
        if "." in text:
            return None
        text = text.replace(fmt.decimal, ".")
    return float(text) if _NUMBER.fullmatch(text) else None


def _values(texts: list[str], lines: list[int], source: str, fmt: CsvFormat) -> np.ndarray:
    numbers = [_number(t, fmt) for t in texts]
    bad = [i for i, v in enumerate(numbers) if v is None or not np.isfinite(v)]
    if bad:
        at = ", ".join(f"line {lines[i]} ({texts[i]!r})" for i in bad[:5])
        marks = any(mark in texts[i] for i in bad for mark in ",.")
        hint = ("; for a decimal comma set data.decimal=',' (and data.delimiter=';'), for thousands separators "
                "data.thousands=',' or '.'") if marks else ""
        raise DataError(
            f"{source}: '{fmt.value_column}' must be a finite number on every row; bad values at {at}{hint}."
        )
    return np.array(numbers, dtype=np.float64)


def _period(text: str, fmt: CsvFormat) -> datetime | None:
    try:
        return datetime.strptime(fmt.date_prefix + text.strip(), fmt.date_format)
    except ValueError:
        return None


def _check_periods(periods: list[str], lines: list[int], *, source: str, fmt: CsvFormat) -> None:
    seen: dict[str, int] = {}
    for period, line in zip(periods, lines, strict=True):
        if period in seen:
            raise DataError(f"{source}: duplicate period {period!r} at lines {seen[period]} and {line}; "
                            "every row must be a distinct period.")
        seen[period] = line
    parsed = []
    for period, line in zip(periods, lines, strict=True):
        when = _period(period, fmt)
        if when is None:
            raise DataError(
                f"{source} line {line}: period {period!r} does not parse as {fmt.date_format!r} after prefixing "
                f"{fmt.date_prefix!r}; set data.date_format and data.date_prefix to match the file."
            )
        parsed.append(when)
    ordinals = [period_ordinal(when, fmt.frequency) for when in parsed]
    for i in range(1, len(parsed)):
        if parsed[i] <= parsed[i - 1]:
            raise DataError(f"{source} line {lines[i]}: periods must increase, but {periods[i]!r} follows "
                            f"{periods[i - 1]!r}.")
    for i in range(1, len(parsed)):
        step = ordinals[i] - ordinals[i - 1]
        if step == 0:
            raise DataError(f"{source} lines {lines[i - 1]} and {lines[i]}: {periods[i - 1]!r} and {periods[i]!r} "
                            f"fall in the same {fmt.frequency!r} period; set data.frequency to the series' own.")
        if step > 1:
            import pandas as pd  # only to name the missing period

            missing = pd.Period(parsed[i - 1], freq=fmt.frequency) + 1
            more = f" and {step - 2} more" if step > 2 else ""
            raise DataError(
                f"{source}: no row for {missing}{more} between line {lines[i - 1]} ({periods[i - 1]!r}) and line "
                f"{lines[i]} ({periods[i]!r}) at data.frequency={fmt.frequency}: add the missing period, or set "
                "data.frequency to the series' own."
            )


def period_ordinal(when: datetime, frequency: str) -> int:
    """pandas' ``Period(when, freq=frequency).ordinal``, the periods since 1970's first one. Counted here for the
    frequencies in :data:`PERIODS_PER_YEAR` (``tests/test_data.py`` holds them to pandas'), since importing pandas
    would cost every stage that parses the series more than its work; pandas is asked for any other."""
    per_year = PERIODS_PER_YEAR.get(frequency)
    if per_year is None:
        import pandas as pd

        return pd.Period(when, freq=frequency).ordinal
    return (when.year - 1970) * per_year + (when.month - 1) * per_year // 12


def _check_scale(values: np.ndarray, lines: list[int], source: str, interval: int) -> None:
    """Values, their differences and the differences' span must fit the float32 the models compute in."""
    diffs = difference(values, interval)
    checks = (
        (np.abs(values), lambda i: f"line {lines[i]}'s value {values[i]:g}"),
        (np.abs(diffs), lambda i: f"the change from line {lines[i]} to line {lines[i + interval]} ({diffs[i]:g})"),
    )
    for magnitude, what in checks:
        i = int(np.argmax(magnitude))
        if magnitude[i] > FLOAT32_MAX / 2:  # the scaler maps the span max - min to 2
            raise DataError(
                f"{source}: {what(i)} overflows float32 (at most {FLOAT32_MAX / 2:.2g} after differencing and "
                "scaling), which the models compute in: rescale the series, e.g. into thousands or millions."
            )


def read_series(path: Path, **kwargs) -> Series:
    if not path.is_file():
        raise MissingInput(f"{path} does not exist: run the fetch stage first (dvc repro fetch) or check data.path.")
    return parse_series(path.read_bytes(), source=str(path), **kwargs)


def min_series_length(interval: int, test_size: int, lag: int = 1) -> int:
    """Rows needed for ``test_size`` test pairs plus at least one training pair at ``lag``."""
    return interval + lag + test_size + 1


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


def training_diff_span(n_diffs: int, test_size: int, train_rows: int | None, lag: int = 1) -> slice:
    """Indices of the differences that the training pairs at ``lag`` touch (inputs and targets).

    With every training pair it ends where the test targets begin, at ``n_diffs - test_size``, whatever the lag."""
    n_pairs = n_diffs - lag
    first_test = n_pairs - test_size
    first_train = 0 if train_rows is None else first_test - train_rows
    if first_test < 1 or first_train < 0:
        raise DataError(
            f"{n_diffs} differences leave {max(first_test, 0)} training pairs at lag {lag}, too few for "
            f"test_size={test_size} and train_rows={train_rows}: use a longer series or smaller sizes (or lag)."
        )
    return slice(first_train, first_test + lag)


@dataclass(frozen=True)
class MinMaxScaler:
    """scikit-learn's ``MinMaxScaler`` on one feature, fitted: the same float64 operations in the same order, so the
    same bits (``tests/test_data.py`` holds it to scikit-learn's). Written out because importing scikit-learn costs
    two seconds in every stage that scales, more than all the stage's work."""

    feature_range: tuple[float, float]
    data_min: float
    data_max: float

    @property
    def scale_(self) -> np.float64:
        data_range = np.float64(self.data_max) - np.float64(self.data_min)
        low, high = self.feature_range
        # a constant series: scikit-learn scales by 1 rather than divide by (almost) zero
        return np.float64(high - low) / (data_range if data_range >= 10 * np.finfo(np.float64).eps else 1.0)

    @property
    def min_(self) -> np.float64:
        return np.float64(self.feature_range[0]) - np.float64(self.data_min) * self.scale_


def fit_scaler(train_values: np.ndarray, feature_range: tuple[float, float] = (-1.0, 1.0)) -> MinMaxScaler:
    values = np.asarray(train_values, dtype=np.float64)
    return MinMaxScaler((float(feature_range[0]), float(feature_range[1])), float(values.min()), float(values.max()))


def scale(scaler: MinMaxScaler, values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).ravel() * scaler.scale_ + scaler.min_


def invert_scale(scaler: MinMaxScaler, values: np.ndarray) -> np.ndarray:
    return (np.asarray(values, dtype=np.float64).ravel() - scaler.min_) / scaler.scale_


def scaler_to_dict(scaler: MinMaxScaler) -> dict:
    return {"feature_range": list(scaler.feature_range), "data_min": scaler.data_min, "data_max": scaler.data_max}


def scaler_from_dict(state: dict) -> MinMaxScaler:
    return fit_scaler(np.array([state["data_min"], state["data_max"]]), tuple(state["feature_range"]))


# --- supervised framing -------------------------------------------------------------------------


@dataclass(frozen=True)
class Supervised:
    """Scaled pairs at a lag L: inputs (n, L), the L previous differences oldest first, and targets (n,), split
    into training and test rows."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def frame(values: np.ndarray, lag: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``j = 0 .. len(values) - lag - 1``: inputs ``values[j : j + lag]`` (rows, oldest first) and targets
    ``values[j + lag]``; the first ``lag`` values are inputs only (the module docstring has the indices)."""
    values = np.asarray(values, dtype=np.float64)
    return np.lib.stride_tricks.sliding_window_view(values[:-1], lag).copy(), values[lag:]


def unframe(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The values ``frame`` took apart: the first input row, then every target."""
    return np.concatenate([np.asarray(x)[0].reshape(-1), np.asarray(y).reshape(-1)])


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
