"""Atomic, byte-stable file writing: nothing is ever left half-written.

Every output goes to a temporary file beside its target and is renamed into place only once it is
complete, so a crash keeps the previous version (or nothing) and never a truncated file; related files
(a report's markdown and HTML) are renamed into place together, only once all of them are complete. A
full disk or a read-only folder is a :class:`~pipeline.errors.WriteError` naming the file. Array
archives are written with fixed zip timestamps so the same arrays always give the same bytes, which
keeps DVC from rerunning downstream stages when nothing really changed.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the data stages write no table: they start without importing pandas
    import pandas as pd

from pipeline.errors import write_error

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@contextmanager
def atomic_paths(*paths: str | Path) -> Iterator[list[Path]]:
    """Temporary paths for files that belong together: all are renamed into place once the block succeeds,
    none if it fails (the previous versions stay, consistent with each other)."""
    temporaries: list[Path] = []
    try:
        for path in paths:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            os.close(fd)
            temporaries.append(Path(tmp))
        yield list(temporaries)
        for tmp, path in zip(temporaries, paths, strict=True):
            os.replace(tmp, path)
    except OSError as err:
        targets = {str(tmp): path for tmp, path in zip(temporaries, paths, strict=False)}
        raise write_error(targets.get(str(err.filename), err.filename or paths[0]), err) from err
    finally:
        for tmp in temporaries:
            tmp.unlink(missing_ok=True)


def write_together(files: Mapping[str | Path, bytes | str]) -> None:
    """Write several related files all-or-nothing (text as UTF-8): e.g. ``{report_md: md, report_html: html}``."""
    with atomic_paths(*files) as temporaries:
        for tmp, content in zip(temporaries, files.values(), strict=True):
            tmp.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    with atomic_paths(path) as (tmp,):
        yield tmp


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    # Python's shortest round-trip repr keeps every float exact when read back.
    write_text(path, frame.to_csv(index=False, float_format=None, lineterminator="\n"))


def save_arrays(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write a ``.npz`` archive readable by ``np.load`` whose bytes depend only on the arrays.

    Stored, not deflated: trained weights and losses are float noise that deflate shrinks by a fifth at forty
    times the cost (seconds per study, in every stage that saves models)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            archive.writestr(info, member.getvalue())
    write_bytes(path, buffer.getvalue())


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(Path(path), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}
