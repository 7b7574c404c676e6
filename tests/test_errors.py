"""The catalogue of bad inputs and faults, as a user meets them: each is one line on stderr naming the problem
and the fix, with its documented exit code; the earlier good outputs survive and nothing is half-written."""

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from pipeline import errors, io, params, tracking
from pipeline.params import PROJECT_ROOT, compose_config, to_yaml
from pipeline.stages import difference, fetch

SHAMPOO = fetch.packaged("shampoo.csv")
LINES = SHAMPOO.decode().splitlines(keepends=True)  # line 1 the header, line i + 1 the month i
TINY = ("repeats=2", "model.epochs=2", "resume.enabled=false", "tracking.enabled=false")


def run_cli(main, monkeypatch, capsys, *argv: str) -> tuple[int, str]:
    """Run ``main`` under the entry points' wrapper: (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["prog", *argv])
    with pytest.raises(SystemExit) as stop:
        errors.cli(main)
    return stop.value.code, capsys.readouterr().err


def leftovers(root: Path) -> list[Path]:
    """Temporary files of an interrupted atomic write."""
    return [p for p in root.rglob(".*.tmp")]


@pytest.fixture(scope="module")
def base() -> DictConfig:
    return compose_config(TINY)  # composed once: Hydra takes a second or so per composition


def updated(cfg: DictConfig, updates: dict) -> DictConfig:
    cfg = cfg.copy()
    for key, value in updates.items():
        OmegaConf.update(cfg, key, value)
    return cfg


def user_file(path: Path, updates: dict | None = None) -> dict:
    return {"data.source": "file", "data.path": str(path), **(updates or {})}


@pytest.fixture
def project(tmp_path, monkeypatch, base):
    """A study folder holding a good fetched series, as the working directory; ``configure`` writes params.yaml."""
    monkeypatch.chdir(tmp_path)

    def configure(updates: dict) -> None:
        (tmp_path / "params.yaml").write_text(to_yaml(updated(base, updates)))

    configure({"data.source": "packaged"})
    fetch.run(OmegaConf.load(tmp_path / "params.yaml"), tmp_path)
    return tmp_path, configure


def lines_without(*numbers: int) -> bytes:
    return "".join(line for i, line in enumerate(LINES, 1) if i not in numbers).encode()


def replaced(old: str, new: str) -> bytes:
    return SHAMPOO.replace(old.encode(), new.encode())


SEMICOLONS = "".join(line.replace('"', "").replace(",", ";").replace(".", ",") for line in LINES).encode()
LATIN1 = SHAMPOO.replace(b'"Sales"', '"Salés"'.encode("latin-1"))

# name: (file bytes, extra overrides, the one line after "error: " ({src} is the file), exit code)
DATA_FAULTS = {
    "empty file": (b"", {}, "{src} is empty: expected a CSV with a 'Month,Sales' header and one row per period.", 2),
    "header only": (LINES[0].encode(), {}, "{src} has a header but no rows.", 2),
    "wrong header": (
        replaced('"Month","Sales"', "Date,Value"), {},
        "{src} has header ['Date', 'Value'], expected exactly ['Month', 'Sales']: fix the file, or set "
        "data.date_column / data.value_column to the file's column names.", 2,
    ),
    "no header line": (
        lines_without(1), {},
        "{src} line 1 ('1-01,266.0') is data, not a header: set data.header=false (the columns are then "
        "data.date_column and data.value_column), or add the header line 'Month,Sales'.", 2,
    ),
    "a header with header=false": (SHAMPOO, {"data.header": False}, "{src} line 1 ('Month,Sales') is a header, "
                                   "not data: set data.header=true.", 2),
    "non-numeric value": (
        replaced("145.9", "lots"), {},
        "{src}: 'Sales' must be a finite number on every row; bad values at line 3 ('lots').", 2,
    ),
    "NaN value": (replaced("183.1", "NaN"), {}, "{src}: 'Sales' must be a finite number on every row; bad values "
                  "at line 4 ('NaN').", 2),
    "a missing month": (
        lines_without(6), {},
        "{src}: no row for 1901-05 between line 5 ('1-04') and line 6 ('1-06') at data.frequency=M: add the "
        "missing period, or set data.frequency to the series' own.", 2,
    ),
    "duplicate month": (
        replaced('"1-02"', '"1-01"'), {},
        "{src}: duplicate period '1-01' at lines 2 and 3; every row must be a distinct period.", 2,
    ),
    "months out of order": (
        replaced('"1-02"', '"1-xx"').replace(b'"1-03"', b'"1-02"').replace(b'"1-xx"', b'"1-03"'), {},
        "{src} line 4: periods must increase, but '1-02' follows '1-03'.", 2,
    ),
    "unparseable month": (
        replaced('"1-07"', '"July"'), {},
        "{src} line 8: period 'July' does not parse as '%Y-%m' after prefixing '190'; set data.date_format and "
        "data.date_prefix to match the file.", 2,
    ),
    "too short for test_size": (
        SHAMPOO, {"data.test_size": 34},
        "{src} has 36 rows but at least 37 are needed for the configured split (differencing interval + lag + "
        "test_size + at least one training pair): use a longer series or a smaller data.test_size.", 2,
    ),
    "values overflowing float32": (
        replaced("266.0", "1e300"), {},
        "{src}: line 2's value 1e+300 overflows float32 (at most 1.7e+38 after differencing and scaling), which "
        "the models compute in: rescale the series, e.g. into thousands or millions.", 2,
    ),
    "an HTML page": (
        b"<!DOCTYPE html>\n<html><body>shampoo.csv</body></html>\n", {},
        "{src} is an HTML page, not a CSV: point data.url or data.path at the raw file (on GitHub, the 'Raw' "
        "link).", 2,
    ),
    "semicolons without data.delimiter": (
        SEMICOLONS, {},
        "{src} has header ['Month;Sales'], expected exactly ['Month', 'Sales']: the file seems to separate "
        "columns with ';': set data.delimiter=';'.", 2,
    ),
    "decimal commas without data.decimal": (
        SEMICOLONS, {"data.delimiter": ";"},
        "{src}: 'Sales' must be a finite number on every row; bad values at line 2 ('266,0'), line 3 ('145,9'), "
        "line 4 ('183,1'), line 5 ('119,3'), line 6 ('180,3'); for a decimal comma set data.decimal=',' (and "
        "data.delimiter=';'), for thousands separators data.thousands=',' or '.'.", 2,
    ),
    "decimal commas in a comma-separated file": (
        replaced('"1-01",266.0', '"1-01",266,0'), {},
        "{src} line 2 ('1-01,266,0') has 3 field(s), expected 2 (Month,Sales): values with a decimal comma "
        "need another delimiter: set data.delimiter=';' data.decimal=','.", 2,
    ),
    "thousands separators": (
        replaced("266.0", '"1,266.0"'), {},
        "{src}: 'Sales' must be a finite number on every row; bad values at line 2 ('1,266.0'); for a decimal "
        "comma set data.decimal=',' (and data.delimiter=';'), for thousands separators data.thousands=',' or "
        "'.'.", 2,
    ),
    "latin-1 bytes": (
        LATIN1, {"data.value_column": "Salés"},
        "{src} line 1 is not valid utf-8 (byte 0xe9): set data.encoding to the file's encoding, e.g. "
        "data.encoding=latin-1 or cp1252.", 2,
    ),
    "a footer after a blank line": (
        SHAMPOO + b"\nSales of shampoo over a three year period\n", {},
        "{src} line 39 ('Sales of shampoo over a three year period') has 1 field(s), expected 2 (Month,Sales): "
        "remove notes and footers from the file, or fix the row.", 2,
    ),
}


@pytest.mark.parametrize("name", DATA_FAULTS)
def test_a_bad_series_is_one_line_and_keeps_the_last_good_one(name, project, monkeypatch, capsys):
    root, configure = project
    raw_bytes, overrides, message, code = DATA_FAULTS[name]
    good = (root / "data/raw/series.csv").read_bytes()
    user = root / "mine.csv"
    user.write_bytes(raw_bytes)
    configure(user_file(user, {"data.sha256": None, **overrides}))
    assert run_cli(fetch.main, monkeypatch, capsys) == (code, f"error: {message.format(src=user)}\n")
    assert (root / "data/raw/series.csv").read_bytes() == good and not leftovers(root)


@pytest.mark.parametrize(
    ("raw_bytes", "updates"),
    [
        (SEMICOLONS, {"data.delimiter": ";", "data.decimal": ","}),
        (replaced("266.0", '"1,266.0"'), {"data.thousands": ","}),
        (LATIN1, {"data.value_column": "Salés", "data.encoding": "latin-1"}),
        (lines_without(1), {"data.header": False}),
    ],
    ids=["semicolons and decimal commas", "thousands separators", "latin-1", "no header"],
)
def test_the_format_options_read_what_the_hints_point_at(raw_bytes, updates, tmp_path, base):
    user = tmp_path / "mine.csv"
    user.write_bytes(raw_bytes)
    cfg = updated(base, user_file(user, {"data.sha256": None, **updates}))
    params.validate(cfg)
    series = fetch.run(cfg, tmp_path)
    assert len(series.values) == 36 and series.values[1] == 145.9 and series.periods[0] == "1-01"


def test_a_changed_file_against_the_pinned_checksum(project, monkeypatch, capsys):
    root, configure = project
    user = root / "mine.csv"
    user.write_bytes(replaced("266.0", "267.0"))
    configure(user_file(user))
    sha = fetch.data.sha256(user.read_bytes())
    pinned = compose_config().data.sha256
    assert run_cli(fetch.main, monkeypatch, capsys) == (2, (
        f"error: checksum mismatch for {user}: sha256 is {sha}, expected {pinned}; the file changed: restore it, "
        f"or pin the new bytes with data.sha256={sha} (data.sha256=null accepts any) if the change is intended.\n"))


def test_a_missing_file_and_a_missing_upstream_output(project, monkeypatch, capsys):
    root, configure = project
    configure(user_file(root / "absent.csv"))
    assert run_cli(fetch.main, monkeypatch, capsys) == (
        2, f"error: {root / 'absent.csv'} does not exist: point data.path at your CSV.\n")
    (root / "data/raw/series.csv").unlink()
    assert run_cli(difference.main, monkeypatch, capsys) == (
        2, f"error: {root / 'data/raw/series.csv'} does not exist: run the fetch stage first (dvc repro fetch).\n")
    (root / "params.yaml").unlink()
    assert run_cli(fetch.main, monkeypatch, capsys) == (
        2, "error: params.yaml not found: generate it from conf/ with `python -m pipeline.params`.\n")


# override: the one line after "error: "
CONFIG_FAULTS = {
    "regime.stateful.stateful=no": "regime.stateful.stateful='no' (str) is invalid: expected true or false; e.g. "
                                   "regime.stateful.stateful=false",
    'regime.stateful.batch_size="1"': "regime.stateful.batch_size='1' (str) is invalid: expected an integer; e.g. "
                                      "regime.stateful.batch_size=1",
    "regime.stateful.batch_size=2": "regime 'stateful': one-step forecasts feed one row at a time, so they need "
                                    "batch_size 1 (got 2); use forecast: batch for larger batches.",
    "model.learning_rate=abc": "model.learning_rate='abc' (str) is invalid: expected a number > 0; e.g. "
                               "model.learning_rate=0.001",
    "base_seed=abc": "base_seed='abc' (str) is invalid: expected an integer >= 0; e.g. base_seed=1",
    "base_seed=-5": "base_seed=-5 (int) is invalid: expected an integer >= 0; e.g. base_seed=1",
    "repeats=0": "repeats=0 (int) is invalid: expected an integer >= 1; e.g. repeats=10",
    "repeats=2.5": "repeats=2.5 (float) is invalid: expected an integer >= 1; e.g. repeats=10",
    "model.lag=0": "model.lag=0 (int) is invalid: expected an integer >= 1; e.g. model.lag=3",
    "+model.epoch=50": "unknown config key model.epoch=50: did you mean model.epochs? the keys under model are units, "
                       "epochs, learning_rate, lag",
    "model.epoch=50": "unknown config key model.epoch: did you mean model.epochs? the keys under model are units, "
                      "epochs, learning_rate, lag",
    "regime=statefull": "Could not find 'regime/statefull': the choices are noreset, reset_test, seed_train, "
                        "seed_train_no_resets, seed_train_resets, stateful, stateful_batch12, stateless, "
                        "stateless_batch12, stateless_shuffle",
    "study=foo": "study='foo' (str) is invalid: expected one of shampoo, panel, alphabet, echo, sine; e.g. "
                 "study=shampoo",
    "engine.name=fast": "engine.name='fast' is invalid: expected one of 'vectorized', 'keras'; e.g. "
                        "engine.name=vectorized",
    "data.frequency=monthly": "data.frequency='monthly' (str) is invalid (not a pandas period frequency (D, W, M, Q, "
                              "Y, ...)): expected a string; e.g. data.frequency=M",
    "data.delimiter=;": "the override data.delimiter=; does not parse (LexerNoViableAltException: data.delimiter=;): "
                        "quote a value that holds ; , [ ] = or spaces, e.g. data.delimiter=';'",
    "data.sha256=abc": "data.sha256='abc' (str) is invalid (string should match pattern '^[0-9a-f]{64}$'): expected "
                       "a string or null; e.g. data.sha256=null",
}


@pytest.mark.parametrize("override", CONFIG_FAULTS)
def test_a_bad_value_stops_composition_with_one_line(override, tmp_path, monkeypatch, capsys):
    written = tmp_path / "params.yaml"
    written.write_text("good: yes\n")
    monkeypatch.setattr(params, "PARAMS_FILE", written)
    assert run_cli(params.main, monkeypatch, capsys, override) == (2, f"error: {CONFIG_FAULTS[override]}\n")
    assert written.read_text() == "good: yes\n" and not leftovers(tmp_path)


def test_a_regime_file_without_its_package_line(tmp_path, monkeypatch, capsys):
    conf = tmp_path / "conf"
    subprocess.run(["cp", "-r", str(PROJECT_ROOT / "conf"), str(conf)], check=True)
    regime = conf / "regime" / "noreset.yaml"
    regime.write_text(regime.read_text().partition("\n")[2])
    monkeypatch.setattr(params, "CONF_DIR", conf)
    monkeypatch.setattr(params, "PARAMS_FILE", tmp_path / "params.yaml")
    assert run_cli(params.main, monkeypatch, capsys, "regime=noreset") == (2, (
        "error: regime.stateful holds a regime field, not a regime record: conf/regime/noreset.yaml lacks its "
        "first line `# @package regime.<file name>`; add it.\n"))
    assert not (tmp_path / "params.yaml").exists()


def test_a_hand_edited_params_yaml_is_refused_by_every_stage(project, monkeypatch, capsys):
    root, _ = project
    text = (root / "params.yaml").read_text()
    (root / "params.yaml").write_text(text.replace("  batch_size: 1\n", "  batch_size: '1'\n", 1))
    code, err = run_cli(fetch.main, monkeypatch, capsys)
    assert (code, err.count("\n")) == (2, 1) and "batch_size='1' (str) is invalid: expected an integer" in err


def test_a_dead_tracking_server_fails_within_seconds(monkeypatch, capsys, base):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    tracking.client.cache_clear()
    start = time.monotonic()
    code, err = run_cli(lambda: tracking.experiment_id(updated(base, {"tracking.enabled": True})), monkeypatch, capsys)
    assert time.monotonic() - start < 10 and code == 3
    assert err == ("error: the MLflow tracking server http://127.0.0.1:5999 is unreachable ([Errno 111] Connection "
                   "refused): start it, point MLFLOW_TRACKING_URI at one that runs, or run without tracking: "
                   "tracking.enabled=false.\n")


def test_a_broken_store_names_the_file_and_the_fix(tmp_path, monkeypatch, capsys):
    store = tmp_path / "mlflow.db"
    store.write_bytes(b"not a database " * 100)
    tracking.client.cache_clear()
    code, err = run_cli(lambda: tracking.client(f"sqlite:///{store}"), monkeypatch, capsys)
    assert code == 3 and err == (
        f"error: the MLflow store {store} cannot be opened ((sqlite3.DatabaseError) file is not a database): move it "
        f"aside (mv {store} {store}.broken) to start a new one, or run without tracking: tracking.enabled=false.\n")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_a_read_only_store_names_the_file_and_the_fix(tmp_path, monkeypatch, capsys):
    store = tmp_path / "mlflow.db"
    store.touch(mode=0o444)
    tracking.client.cache_clear()
    assert run_cli(lambda: tracking.client(f"sqlite:///{store}"), monkeypatch, capsys) == (3, (
        f"error: the MLflow store {store} is read-only: make it writable (chmod u+w {store}), point "
        "MLFLOW_TRACKING_URI at another store, or run without tracking: tracking.enabled=false.\n"))


def full_disk(monkeypatch, after: int = 0) -> None:
    """Every write after the first ``after`` ones fails as on a full disk."""
    real, calls = Path.write_bytes, []

    def write_bytes(self: Path, data: bytes) -> int:
        calls.append(self)
        if len(calls) > after:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)


def test_a_full_disk_names_the_file_and_keeps_the_last_good_one(project, monkeypatch, capsys):
    root, _ = project
    good = (root / "data/raw/series.csv").read_bytes()
    full_disk(monkeypatch)
    assert run_cli(fetch.main, monkeypatch, capsys) == (4, (
        f"error: cannot write {root / 'data/raw/series.csv'}: No space left on device; free space on that disk, "
        "then rerun.\n"))
    assert (root / "data/raw/series.csv").read_bytes() == good and not leftovers(root)


def test_related_files_are_written_all_or_nothing(tmp_path, monkeypatch):
    md, html = tmp_path / "report.md", tmp_path / "report.html"
    io.write_together({md: "# old", html: "<h1>old</h1>"})
    full_disk(monkeypatch, after=1)  # the markdown is written, the HTML is not
    with pytest.raises(errors.WriteError, match=f"cannot write {html}: No space left on device"):
        io.write_together({md: "# new", html: "<h1>new</h1>"})
    assert (md.read_text(), html.read_text()) == ("# old", "<h1>old</h1>") and not leftovers(tmp_path)


def test_debug_shows_the_traceback(project, monkeypatch, capsys):
    root, configure = project
    configure(user_file(root / "absent.csv"))
    with pytest.raises(errors.MissingInput):
        run_cli(fetch.main, monkeypatch, capsys, "--debug")
    monkeypatch.setenv("PIPELINE_DEBUG", "1")
    with pytest.raises(errors.MissingInput):
        run_cli(fetch.main, monkeypatch, capsys)


@pytest.mark.slow  # a real process: the interpreter and its imports
def test_the_command_line_prints_no_traceback_and_names_the_restore_under_dvc(project):
    root, configure = project
    configure(user_file(root / "absent.csv"))
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "DVC_STAGE": "fetch"}
    done = subprocess.run([sys.executable, "-m", "pipeline.stages.fetch"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stderr == (
        f"error: {root / 'absent.csv'} does not exist: point data.path at your CSV.\n"
        "under dvc repro: `dvc checkout fetch` restores the stage's last good outputs where DVC removed them "
        "(`git checkout -- reports` the committed reports).\n")


@pytest.mark.slow  # a real process: the interpreter and its imports
def test_a_sweep_with_a_dead_tracking_server_stops_before_its_jobs(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": "http://127.0.0.1:5999"}
    cmd = [sys.executable, "-m", "pipeline.tools.sweep", "-m", "regime=stateful,noreset", *TINY[:3],
           f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    done = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3 and done.stderr.splitlines()[-1] == (
        "error: the MLflow tracking server http://127.0.0.1:5999 is unreachable ([Errno 111] Connection refused): "
        "start it, point MLFLOW_TRACKING_URI at one that runs, or run without tracking: tracking.enabled=false.")
    assert not list((tmp_path / "sweep").glob("*/.hydra"))  # no job started
