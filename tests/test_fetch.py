import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import data
from pipeline.errors import MissingInput
from pipeline.params import PROJECT_ROOT
from pipeline.stages import fetch


def test_packaged_copy_matches_the_pinned_checksum(compose, tmp_path: Path):
    cfg = compose("data.source=packaged")
    series = fetch.run(cfg, tmp_path)
    assert len(series.values) == 36
    assert data.file_sha256(tmp_path / cfg.paths.raw) == cfg.data.sha256


def test_auto_falls_back_to_the_packaged_copy_without_network(compose, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(fetch, "download", lambda url, timeout_s: calls.append((url, timeout_s)))
    cfg = compose("data.source=auto")
    raw, origin = fetch.obtain(cfg.data)
    assert calls == [(cfg.data.url, cfg.data.timeout_s)]
    assert origin.startswith("packaged copy") and raw == fetch.packaged("shampoo.csv")


def test_auto_prefers_the_url_when_its_bytes_match(compose, monkeypatch):
    monkeypatch.setattr(fetch, "download", lambda url, timeout_s: fetch.packaged("shampoo.csv"))
    _, origin = fetch.obtain(compose("data.source=auto").data)
    assert origin.startswith("https://")


def test_auto_refuses_changed_upstream_bytes(compose, monkeypatch, capsys):
    monkeypatch.setattr(fetch, "download", lambda url, timeout_s: b"tampered")
    _, origin = fetch.obtain(compose("data.source=auto").data)
    assert origin.startswith("packaged copy")
    assert "does not match the pinned sha256" in capsys.readouterr().out


def test_url_only_without_network_is_an_error(compose, monkeypatch):
    monkeypatch.setattr(fetch, "download", lambda url, timeout_s: None)
    with pytest.raises(data.DataError, match="could not download"):
        fetch.obtain(compose("data.source=url").data)


def test_download_gives_none_when_unreachable():
    assert fetch.download("http://127.0.0.1:9/series.csv", timeout_s=1) is None


def test_checksum_mismatch_names_both_hashes(compose, tmp_path):
    user = tmp_path / "mine.csv"
    user.write_bytes(fetch.packaged("shampoo.csv").replace(b"266.0", b"267.0"))
    cfg = compose("data.source=file", f"data.path={user}")
    with pytest.raises(data.DataError, match=f"checksum mismatch.*expected {cfg.data.sha256}"):
        fetch.obtain(cfg.data)


def test_user_csv_with_own_columns_and_no_checksum(compose, tmp_path):
    user = tmp_path / "widgets.csv"
    rows = "\n".join(f"2020-{m:02d},{100 + 3 * m + (m % 4)}" for m in range(1, 13))
    rows += "\n" + "\n".join(f"2021-{m:02d},{140 + 2 * m}" for m in range(1, 13))
    user.write_text("period,units\n" + rows + "\n")
    cfg = compose(
        "data.source=file",
        f"data.path={user}",
        "data.sha256=null",
        "data.date_column=period",
        "data.value_column=units",
        "data.date_prefix=''",
        "data.test_size=6",
    )
    series = fetch.run(cfg, tmp_path / "study")
    assert len(series.values) == 24
    assert (tmp_path / "study" / cfg.paths.raw).read_bytes() == user.read_bytes()


def test_missing_user_file(compose, tmp_path):
    cfg = compose("data.source=file", f"data.path={tmp_path / 'absent.csv'}", "data.sha256=null")
    with pytest.raises(MissingInput, match="does not exist"):
        fetch.obtain(cfg.data)


def test_invalid_file_leaves_no_output(compose, tmp_path):
    user = tmp_path / "bad.csv"
    user.write_bytes(fetch.packaged("shampoo.csv").replace(b"266.0", b"NaN"))
    cfg = compose("data.source=file", f"data.path={user}", "data.sha256=null")
    with pytest.raises(data.DataError, match="finite number"):
        fetch.run(cfg, tmp_path / "study")
    assert not (tmp_path / "study" / cfg.paths.raw).exists()


def test_the_light_stages_parse_the_series_without_pandas():
    # each of them would start slower than all its work by importing pandas (or worse)
    code = "\n".join([
        "import sys",
        "from pipeline.params import load_params",
        "from pipeline.stages import difference, fetch, frame",
        "cfg = load_params()",
        "fetch.parse(fetch.packaged(cfg.data.packaged), cfg.data, 'shampoo', cfg.model.lag)",
        "print(sorted({'pandas', 'scipy', 'sklearn', 'statsmodels', 'tensorflow'} & set(sys.modules)))",
    ])
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
