"""The typed schema of the composed config: one strict pydantic model per config group.

Every entry point validates what it composed or read (``pipeline.params``, the sweep entry, each stage's
``load_params``, which ``dvc exp run`` goes through too) against :class:`Config`: a value of the wrong
type (``"1"`` for an integer, ``no`` for a boolean), out of range, or under a key the schema does not
know fails at once with one line naming the key, the value, the expected type and an example. Values
live in ``conf/`` only; the schema holds types, ranges and examples.

Adding a key: add a field to its group's model below (type, range, ``examples=[...]``), set its value
in ``conf/``, run ``python -m pipeline.params``. A new group: a new model and a field of ``Config``.
The regime records are typed by :class:`pipeline.regimes.StateRegime` itself, the one regime definition.
"""

from __future__ import annotations

import codecs
import difflib
import json
from collections.abc import Mapping
from dataclasses import fields
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import annotated_types
import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, ValidationError, create_model, field_validator
from pydantic.fields import FieldInfo

from pipeline import studies
from pipeline.errors import ConfigError
from pipeline.regimes import StateRegime

PERIOD_FREQUENCIES = frozenset(("D", "W", "M", "Q", "Y", "h"))  # pandas period aliases, checked by a test

Positive = Annotated[int, Field(ge=1)]
Char = Annotated[str, Field(min_length=1, max_length=1)]
Text = Annotated[str, Field(min_length=1)]


class Group(BaseModel):
    """A config group: strict types (no "1" for 1, no "no" for false), no unknown keys, read-only."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Model(Group):
    units: Positive = Field(examples=[1])
    epochs: Positive = Field(examples=[1000])
    learning_rate: float = Field(gt=0, examples=[0.001])
    lag: Positive = Field(examples=[3])  # inputs per pair: the previous differences


class Data(Group):
    name: Text = Field(examples=["shampoo"])
    url: str = Field(pattern=r"^https?://", examples=["https://example.org/series.csv"])
    packaged: Text = Field(examples=["shampoo.csv"])
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = Field(examples=[None])
    timeout_s: float = Field(gt=0, examples=[5])
    source: Literal["auto", "url", "packaged", "file"]
    path: Text = Field(examples=["/abs/my.csv"])
    date_column: Text = Field(examples=["Month"])
    value_column: Text = Field(examples=["Sales"])
    date_format: Text = Field(examples=["%Y-%m"])
    date_prefix: str = Field(examples=["''"])
    frequency: Text = Field(examples=["M"])
    header: bool
    delimiter: Char = Field(examples=[";"])
    decimal: Char = Field(examples=[","])
    thousands: Char | None = Field(examples=["."])
    encoding: Text = Field(examples=["latin-1"])
    interval: Positive = Field(examples=[1])
    test_size: Positive = Field(examples=[12])

    @field_validator("frequency")
    @classmethod
    def _known_frequency(cls, value: str) -> str:
        if value in PERIOD_FREQUENCIES:  # known good: asking pandas costs every stage half a second's import
            return value
        import pandas as pd

        try:
            pd.Period("2000-01-01", freq=value)
        except ValueError:
            raise ValueError("not a pandas period frequency (D, W, M, Q, Y, ...)") from None
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError("not a text encoding Python knows (utf-8, latin-1, cp1252, ...)") from None
        return value


# A regime file's record: StateRegime's fields and types (the one regime definition), its name being the key.
RegimeRecord = create_model(
    "RegimeRecord", __base__=Group,
    **{f.name: (get_type_hints(StateRegime)[f.name], ...) for f in fields(StateRegime) if f.name != "name"},
)


class Baselines(Group):
    season: Positive = Field(examples=[12])
    arima_order: list[Annotated[int, Field(ge=0)]] = Field(min_length=3, max_length=3, examples=[[5, 1, 0]])
    ets_trend: Literal["add", "mul"] | None


class Stats(Group):
    alpha: float = Field(gt=0, lt=1, examples=[0.05])
    bootstrap_resamples: int = Field(ge=2, examples=[2000])
    bootstrap_method: Literal["BCa", "percentile", "basic"]
    bootstrap_seed: int = Field(ge=0, examples=[0])
    margin: float = Field(gt=0, examples=[1.0])
    margin_sensitivity: list[Annotated[float, Field(gt=0)]] = Field(min_length=1, examples=[[0.5, 2.0]])
    spread_margin: float = Field(gt=0, examples=[0.1])
    se_repeats: list[Positive] = Field(min_length=1, examples=[[5, 10, 100]])
    se_draws: int = Field(ge=2, examples=[2000])


StudyName = Literal[studies.NAMES]  # type: ignore[valid-type]


class Report(Group):
    studies: list[StudyName] = Field(examples=[["alphabet", "echo"]])  # in the order of their sections


class Resume(Group):
    enabled: bool
    chunk_size: Positive = Field(examples=[100])
    cache: Text = Field(examples=[".cache/replicas"])


class Paths(Group):
    """Every output path, relative to the project root (dvc repro) or to a sweep job's folder."""

    raw: Text
    differenced: Text
    scaled: Text
    supervised: Text
    models: Text
    results: Text
    forecasts: Text
    baselines: Text
    summary: Text
    metrics: Text
    boxplot: Text
    tests: Text
    verdicts: Text
    intervals: Text
    se_repeats: Text
    se_plot: Text
    forecast_plot: Text
    se_data: Text
    forecast_data: Text
    shampoo_report: Text
    tracked: Text
    report_md: Text
    report_html: Text
    alphabet_report: Text
    alphabet_plot: Text
    alphabet_results: Text
    alphabet_metrics: Text
    echo_report: Text
    echo_plot: Text
    echo_results: Text
    echo_metrics: Text
    sine_report: Text
    sine_plot: Text
    sine_results: Text
    sine_metrics: Text
    panel: Text
    panel_results: Text


class VectorizedEngine(Group):
    target: Literal["pipeline.engines.vectorized.VectorizedEngine"] = Field(alias="_target_")
    name: Literal["vectorized"]
    chunk_size: Positive = Field(examples=[5000])
    workers: int = Field(ge=0, examples=[0])
    device: Literal["auto", "cpu", "gpu"]
    segment_s: float = Field(ge=0, examples=[1.0])


class KerasEngine(Group):
    target: Literal["pipeline.engines.keras_engine.KerasEngine"] = Field(alias="_target_")
    name: Literal["keras"]


Engine = Annotated[Union[VectorizedEngine, KerasEngine], Discriminator("name")]  # noqa: UP007 (a tagged union)


class Tracking(Group):
    enabled: bool
    experiment: Text = Field(examples=["lstm-state-study"])
    store: Text = Field(examples=["mlflow.db"])


class Framing(Group):
    layout: Literal["features", "timesteps", "padded"]
    window: Positive = Field(examples=[3])
    samples: Positive | None = Field(examples=[1000])
    units: Positive = Field(examples=[32])
    epochs: Positive = Field(examples=[500])
    batch_size: Positive = Field(examples=[1])
    shuffle: bool
    stateful: bool
    note: str = Field(examples=["'what this framing tests'"])


class Alphabet(Group):
    repeats: Positive = Field(examples=[30])
    letters: str = Field(min_length=3, examples=["ABCDEFGHIJKLMNOPQRSTUVWXYZ"])
    cold_start: Char = Field(examples=["K"])
    cold_start_steps: Positive = Field(examples=[5])
    framings: dict[str, Framing] = Field(min_length=1)


class Echo(Group):
    repeats: Positive = Field(examples=[30])
    sequences: list[list[Annotated[int, Field(ge=0)]]] = Field(min_length=1, examples=[[[3, 0, 1, 2, 3]]])
    symbols: Positive = Field(examples=[5])
    units: Positive = Field(examples=[20])
    epochs: Positive = Field(examples=[250])


class Sine(Group):
    repeats: Positive = Field(examples=[30])
    points: Positive = Field(examples=[1000])
    step: float = Field(gt=0, examples=[0.01])
    noise_sd: float = Field(gt=0, examples=[0.1])
    units: Positive = Field(examples=[10])
    batch_size: Positive = Field(examples=[100])
    epochs: Positive = Field(examples=[70])
    learning_rate: float = Field(gt=0, examples=[1.0])
    rho: float = Field(gt=0, le=1, examples=[0.95])


class Panel(Group):
    """A panel of series (conf/panel/): which series (files in conf/series/), repeats, margin, baselines."""

    name: Text = Field(examples=["default"])
    series: list[Text] = Field(min_length=1, examples=[["shampoo", "nhtemp"]])
    repeats: int = Field(ge=2, examples=[100])  # intervals over repeats need a spread
    margin: float = Field(ge=0, examples=[0.01])  # a share of persistence RMSE
    baselines: Literal["none", "once", "all"]  # statistical baselines: none, those fitted once, or also the refits


class Config(Group):
    repeats: Positive = Field(examples=[10])
    base_seed: int = Field(ge=0, examples=[1])
    study: Literal[("shampoo", "panel", *studies.NAMES)]  # type: ignore[valid-type]
    model: Model
    baselines: Baselines
    stats: Stats
    report: Report
    resume: Resume
    paths: Paths
    data: Data
    regime: dict[str, RegimeRecord] = Field(min_length=1)  # type: ignore[valid-type]
    regimes: list[Text]  # derived from regime (conf/config.yaml), one column in `dvc exp show`
    engine: Engine
    tracking: Tracking
    alphabet: Alphabet
    echo: Echo
    sine: Sine
    panel: Panel


def validate(config: Mapping[str, Any]) -> None:
    """Raise one :class:`ConfigError` line for the first problem in a resolved config (and count the rest)."""
    try:
        Config.model_validate(config)
    except ValidationError as err:
        raise ConfigError(describe(err, Config)) from None


def describe(err: ValidationError, model: type, prefix: str = "") -> str:
    """The first of ``err``'s problems as one line: key, value, expected type, an example; plus how many more."""
    problems = err.errors()
    first = problems[0]
    loc, value, kind = first["loc"], first.get("input"), first["type"]
    if kind == "union_tag_invalid":  # the value is the whole group: name its tag
        key = ".".join([*([prefix] if prefix else []), *map(str, loc), first["ctx"]["discriminator"].strip("'")])
        tags = first["ctx"]["expected_tags"]
        example = tags.split(", ")[0].strip("'")
        return f"{key}={first['ctx']['tag']!r} is invalid: expected one of {tags}; e.g. {key}={example}"
    more = f" ({len(problems) - 1} more problem{'s' * (len(problems) > 2)} after this one)" if len(problems) > 1 else ""
    if kind == "extra_forbidden":
        return f"{unknown_key('.'.join(map(str, loc)), model, value)}{more}"
    key, info, annotation = _locate(model, loc, prefix)
    expected = _expected(annotation, info)
    example = f"; e.g. {key}={_override(_example(annotation, info))}"
    if kind == "missing":
        return f"config key {key} is missing: expected {expected}{example}{more}"
    reason = first["msg"][0].lower() + first["msg"][1:]
    if kind.startswith("value_error"):
        reason = str(first["ctx"]["error"])
    plain = kind.endswith(("_type", "_parsing")) or kind.startswith(("greater", "less", "literal"))
    said = "" if plain else f" ({reason})"  # the expected type says it all
    return f"{key}={value!r} ({type(value).__name__}) is invalid{said}: expected {expected}{example}{more}"


def unknown_key(key: str, model: type | None = None, value: Any = None) -> str:
    """A key the schema does not have, with the closest known one and the keys beside it."""
    model = model or Config
    parent, _, name = key.rpartition(".")
    known = _keys_at(model, tuple(parent.split(".")) if parent else ())
    close = difflib.get_close_matches(name, known, n=1)
    given = f"{key}={_override(value)}" if value is not None else key
    hint = f"did you mean {parent + '.' if parent else ''}{close[0]}? " if close else ""
    where = f"under {parent}" if parent else "at the top level"
    return f"unknown config key {given}: {hint}the keys {where} are {', '.join(known) or 'none'}"


def _locate(model: type, loc: tuple, prefix: str) -> tuple[str, FieldInfo | None, Any]:
    """The dotted key, field info and annotation that a pydantic error location points at."""
    parts, info, annotation = ([prefix] if prefix else []), None, model
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part) or next(
                (f for f in annotation.model_fields.values() if f.alias == part), None
            )
            parts.append(str(part))
            if field is None:
                return ".".join(parts), None, None
            info, annotation = field, field.annotation
            continue
        union = [a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        if get_origin(annotation) is Union and union:  # a tagged union: the location names the tag
            annotation = next((a for a in union if part in get_args(a.model_fields["name"].annotation)), None)
            continue
        parts.append(f"[{part}]" if isinstance(part, int) else str(part))
        args = get_args(annotation)
        annotation, info = (args[-1] if args else None), None
    return ".".join(parts).replace(".[", "["), info, annotation


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _keys_at(model: type, loc: tuple) -> list[str]:
    *_, annotation = _locate(model, loc, "")
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or name for name, f in annotation.model_fields.items()]
    return []


def _constraints(metadata: list) -> str:
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    limits = [f"{word} {getattr(m, name)}" for m in metadata for name, word in words.items()
              if isinstance(m, annotated_types.BaseMetadata) and hasattr(m, name)]
    return " and ".join(limits)


def _expected(annotation: Any, info: FieldInfo | None = None) -> str:
    metadata = list(info.metadata) if info else []
    while get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        metadata += [m for e in extra for m in getattr(e, "metadata", [e])]
    limits = _constraints(metadata)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(_override(a) for a in args)
    if origin is Union:
        others = [a for a in args if a is not type(None)]
        tagged = [a for a in others if isinstance(a, type) and issubclass(a, BaseModel)]
        if tagged:
            names = " or ".join(str(get_args(a.model_fields["name"].annotation)[0]) for a in tagged)
            return f"a mapping whose name is {names}"
        return " or ".join(_expected(a) for a in others) + (" or null" if type(None) in args else "")
    if origin is list:
        return f"a list, each {_expected(args[0])}"
    if origin is dict or annotation is dict:
        return "a mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a mapping with keys " + ", ".join(f.alias or n for n, f in annotation.model_fields.items())
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return f"{names.get(annotation, getattr(annotation, '__name__', str(annotation)))} {limits}".strip()


def _example(annotation: Any, info: FieldInfo | None) -> Any:
    if info is not None and info.examples:
        return info.examples[0]
    annotation = _unwrap(annotation)
    if annotation is bool:
        return False
    if get_origin(annotation) is Literal:
        return get_args(annotation)[0]
    if get_origin(annotation) is Union:
        return _example(next(a for a in get_args(annotation) if a is not type(None)), None)
    return {int: 1, float: 0.5, str: "text"}.get(annotation, "...")


def _override(value: Any) -> str:
    """A value as a Hydra override writes it: strings quoted only when they would read as something else."""
    if isinstance(value, str):
        try:
            plain = bool(value) and value.isprintable() and yaml.safe_load(value) == value
        except yaml.YAMLError:
            plain = False
        return value if plain or value.startswith("'") else repr(value)
    return json.dumps(value)
