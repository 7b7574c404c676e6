"""Progress bars for long runs, quiet in CI and when output is not a terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from tqdm import tqdm

# Whole models done (n may be fractional: bars move by epoch segments), the rate in models/s and the ETA.
_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} models [{elapsed}<{remaining}, {rate_fmt}]"


def enabled() -> bool:
    return os.environ.get("CI", "").lower() not in ("1", "true", "yes") and sys.stderr.isatty()


def bar(total: int, desc: str) -> tqdm:
    return tqdm(total=total, desc=desc, unit="model", disable=not enabled(), leave=False, dynamic_ncols=True)


@contextmanager
def board(totals: Mapping[str, float], overall: str) -> Iterator[Callable[[str, float], None]]:
    """A bar per group (``totals``: models each) under one for all of them, with rate and ETA, left on
    screen when done. Yields ``update(group, models)``; ``models`` may be a fraction of a model."""
    disable = not enabled()

    def make(total: float, desc: str, position: int) -> tqdm:
        return tqdm(total=total, desc=desc, unit="model", bar_format=_FORMAT, position=position, leave=True,
                    disable=disable, dynamic_ncols=True, smoothing=0.1)

    width = max(map(len, [overall, *totals]))
    everything = make(sum(totals.values()), overall.ljust(width), 0)
    bars = {name: make(total, name.ljust(width), i + 1) for i, (name, total) in enumerate(totals.items())}

    def update(group: str, models: float) -> None:
        bars[group].update(models)
        everything.update(models)

    try:
        yield update
    finally:
        for b in reversed([everything, *bars.values()]):
            b.close()
