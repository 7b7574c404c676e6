"""Progress bars for long runs, quiet in CI and when output is not a terminal."""

from __future__ import annotations

import os
import sys

from tqdm import tqdm


def enabled() -> bool:
    return os.environ.get("CI", "").lower() not in ("1", "true", "yes") and sys.stderr.isatty()


def bar(total: int, desc: str) -> tqdm:
    return tqdm(total=total, desc=desc, unit="model", disable=not enabled(), leave=False, dynamic_ncols=True)
