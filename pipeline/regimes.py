"""A state regime is data: one frozen record per ``conf/regime/<name>.yaml``, read by every engine.

The fields say what happens to the LSTM's (h, c) state and to the data; engines never branch on a
regime's name, only on these fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from pipeline.errors import BadInput

Forecast = Literal["one_step", "batch"]


class RegimeError(BadInput):
    """A regime record is inconsistent; the message names the field and the fix."""


@dataclass(frozen=True)
class StateRegime:
    name: str
    stateful: bool  # carry (h, c) from one batch to the next, in training and in forecasting
    train_rows: int | None  # None: every training pair; n: only the last n pairs before the test rows
    batch_size: int
    shuffle: bool  # a fresh permutation of the training pairs every epoch, drawn from the repeat's seed
    reset_after_epoch: bool  # zero the state after each training epoch (stateful only)
    warm_start: bool  # run the training inputs through the model (no updates) before forecasting
    reset_after_prediction: bool  # zero the state after each prediction, warm-up included
    forecast: Forecast  # "one_step": walk forward one row at a time; "batch": all test rows in one batch

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise RegimeError(f"regime '{self.name}': batch_size must be >= 1, got {self.batch_size}.")
        if self.train_rows is not None and self.train_rows < 1:
            raise RegimeError(f"regime '{self.name}': train_rows must be null or >= 1, got {self.train_rows}.")
        if self.forecast not in ("one_step", "batch"):
            raise RegimeError(f"regime '{self.name}': forecast must be 'one_step' or 'batch', got {self.forecast!r}.")
        if self.forecast == "one_step" and self.batch_size != 1:
            raise RegimeError(
                f"regime '{self.name}': one-step forecasts feed one row at a time, so they need batch_size 1 "
                f"(got {self.batch_size}); use forecast: batch for larger batches."
            )
        if self.warm_start and self.forecast == "batch":
            raise RegimeError(f"regime '{self.name}': warm_start needs forecast: one_step.")

    def check_rows(self, n_train: int, n_test: int) -> None:
        """Raise when this regime cannot run on ``n_train`` training and ``n_test`` test pairs."""
        if self.stateful and n_train % self.batch_size:
            raise RegimeError(
                f"regime '{self.name}': a stateful LSTM needs batch_size to divide the {n_train} training rows, "
                f"but {self.batch_size} does not; pick a divisor of {n_train} or set train_rows."
            )
        if self.forecast == "batch" and self.batch_size != n_test:
            raise RegimeError(
                f"regime '{self.name}': forecast: batch predicts all {n_test} test rows in one batch, "
                f"so batch_size must be {n_test}, not {self.batch_size}."
            )

    @property
    def window(self) -> str:
        """Name of the training window whose data and scaler this regime uses."""
        return "all" if self.train_rows is None else f"last{self.train_rows}"


_FIELDS = {f.name for f in fields(StateRegime)} - {"name"}


def regime_from_mapping(name: str, record: Mapping[str, Any]) -> StateRegime:
    unknown = set(record) - _FIELDS
    missing = _FIELDS - set(record)
    if unknown or missing:
        raise RegimeError(
            f"regime '{name}': unknown fields {sorted(unknown)}, missing fields {sorted(missing)}; "
            f"a regime file sets exactly {sorted(_FIELDS)}."
        )
    return StateRegime(name=name, **dict(record))


def regimes_from_config(regime_group: Mapping[str, Mapping[str, Any]]) -> list[StateRegime]:
    """The regimes a config selects, in the order its defaults list names them."""
    if not regime_group:
        raise RegimeError("no regime selected: choose at least one, e.g. regime=stateful or regime=[stateful,noreset].")
    return [regime_from_mapping(name, record) for name, record in regime_group.items()]
