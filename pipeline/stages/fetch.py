"""Stage ``fetch``: obtain the series, check its bytes and schema, and write it to ``paths.raw``.

The public URL is tried first (with a timeout); without network, the copy shipped inside the
package is used; ``data.source=file`` reads ``data.path`` (a dependency of the stage in ``dvc.yaml``,
so editing the file reruns it). Either way the bytes must match the pinned sha256 (unless null) and
parse as a valid series; a failure leaves the previous ``paths.raw`` in place (it is written only once
valid, and ``dvc.yaml`` marks it ``persist`` so that DVC does not delete it first).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from omegaconf import DictConfig

from pipeline import data, errors, io
from pipeline.artifacts import paths
from pipeline.errors import MissingInput
from pipeline.params import load_params


def download(url: str, timeout_s: float) -> bytes | None:
    """The URL's bytes, or None when it cannot be reached."""
    import urllib.error
    import urllib.request  # here: the difference stage parses with this module and downloads nothing

    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.read()
    except (urllib.error.URLError, TimeoutError, OSError):
        return None


def packaged(name: str) -> bytes:
    return resources.files("pipeline.resources").joinpath(name).read_bytes()


def check_sha256(raw: bytes, expected: str | None, source: str) -> None:
    if expected is not None and data.sha256(raw) != expected:
        raise data.DataError(
            f"checksum mismatch for {source}: sha256 is {data.sha256(raw)}, expected {expected}; "
            f"the file changed: restore it, or pin the new bytes with data.sha256={data.sha256(raw)} "
            "(data.sha256=null accepts any) if the change is intended."
        )


def obtain(cfg: DictConfig) -> tuple[bytes, str]:
    """Bytes of the series and where they came from, checked against ``data.sha256``."""
    source = cfg.source
    if source == "file":
        path = Path(cfg.path)
        if not path.is_file():
            raise MissingInput(f"{path} does not exist: point data.path at your CSV.")
        raw, origin = path.read_bytes(), str(path)
    elif source in ("auto", "url"):
        raw, origin = download(cfg.url, cfg.timeout_s), cfg.url
        if raw is None and source == "url":
            raise data.DataError(f"could not download {cfg.url}: check the network, or use data.source=auto.")
        if raw is not None and source == "url":
            data.refuse_html(raw, cfg.url)
        if raw is not None and source == "auto" and cfg.sha256 is not None and data.sha256(raw) != cfg.sha256:
            print(f"fetch: {cfg.url} does not match the pinned sha256; using the packaged copy")
            raw = None
        if raw is None:
            raw, origin = packaged(cfg.packaged), f"packaged copy ({cfg.packaged})"
    elif source == "packaged":
        raw, origin = packaged(cfg.packaged), f"packaged copy ({cfg.packaged})"
    else:
        raise data.DataError(f"data.source must be one of auto, url, packaged, file; got {source!r}.")
    check_sha256(raw, cfg.sha256, origin)
    return raw, origin


def parse(raw: bytes, cfg: DictConfig, source: str, lag: int = 1) -> data.Series:
    """The series under the ``data`` block ``cfg``, long enough for its split at ``lag`` (``model.lag``)."""
    return data.parse_series(
        raw, source=source, fmt=data.CsvFormat.from_config(cfg), interval=cfg.interval,
        min_length=data.min_series_length(cfg.interval, cfg.test_size, lag),
    )


def run(cfg: DictConfig, root: Path) -> data.Series:
    raw, origin = obtain(cfg.data)
    series = parse(raw, cfg.data, origin, cfg.model.lag)
    io.write_bytes(paths(cfg, root).raw, raw)
    print(f"fetch: {len(series.values)} rows from {origin}, sha256 {data.sha256(raw)[:12]}")
    return series


def main() -> None:
    run(load_params(), Path.cwd())


if __name__ == "__main__":
    errors.cli(main)
