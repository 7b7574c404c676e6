"""End to end, as a user runs it: `make study`'s `dvc repro track` and `dvc repro --single-item report` (the shampoo
study, logged to MLflow, and its report) on a tiny configuration in a copy."""

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline.params import PROJECT_ROOT, compose_config, regimes

TINY = ["repeats=2", "model.epochs=2", "data.source=packaged", "resume.enabled=false"]
pytestmark = pytest.mark.slow


def project_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [f for f in listed if (PROJECT_ROOT / f).is_file()]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("project")
    for name in project_files():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / name, root / name)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=root, check=True)
    return root


def run(project: Path, *args: str, code: int = 0) -> str:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'test-mlflow.db'}",
        "CI": "true",
    }
    done = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == code, done.stdout + done.stderr
    return done.stdout + done.stderr


def studies_logged(project: Path) -> int:
    """Parent runs in the test's MLflow store: one per study the track stage logged."""
    with sqlite3.connect(project / "test-mlflow.db") as store:
        return store.execute("select count(*) from runs where run_uuid not in "
                             "(select run_uuid from tags where key = 'mlflow.parentRunId')").fetchone()[0]


def ran_stages(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


def test_dvc_repro_runs_the_study_then_only_what_changed(project):
    run(project, sys.executable, "-m", "pipeline.params", *TINY)
    first = run(project, "dvc", "repro", "track")
    # the baselines read no LSTM setting: their committed table stands, as on a fresh clone
    assert ran_stages(first) == ["fetch", "difference", "scale", "frame", "train", "evaluate", "compare", "track"]

    results = pd.read_csv(project / "reports" / "results.csv")
    names = [r.name for r in regimes(compose_config(TINY))]
    assert list(dict.fromkeys(results.regime)) == names and len(names) == 10
    assert len(results) == 20 and results.groupby("regime").seed.nunique().eq(2).all()
    assert (project / "reports" / "metrics.json").is_file() and (project / "reports" / "boxplot.png").is_file()

    assert ran_stages(run(project, "dvc", "repro", "track")) == []
    assert studies_logged(project) == 1
    (project / "mlflow.logged.json").unlink()  # a fresh clone: compare's outputs are committed, the receipt is not
    assert ran_stages(run(project, "dvc", "repro", "track")) == ["track"]
    assert studies_logged(project) == 2
    # the report: the other studies' committed sections as they are, never their stages (an hour)
    assert ran_stages(run(project, "dvc", "repro", "--single-item", "report")) == ["report"]
    assert "## Echo" in (project / "reports" / "report.md").read_text()

    run(project, sys.executable, "-m", "pipeline.params", *TINY, "model.epochs=3")
    assert ran_stages(run(project, "dvc", "repro", "compare")) == ["train", "evaluate", "compare"]
    before = (project / "reports" / "baselines.csv").read_text()
    run(project, sys.executable, "-m", "pipeline.params", *TINY, "model.epochs=3", "baselines.arima_order=[1,1,0]")
    assert ran_stages(run(project, "dvc", "repro", "compare")) == ["baselines", "compare"]  # no LSTM retrained
    assert "arima_1_1_0" in (project / "reports" / "baselines.csv").read_text() and "arima_1_1_0" not in before
    run(project, sys.executable, "-m", "pipeline.params", *TINY, "model.epochs=3")
    assert ran_stages(run(project, "dvc", "repro", "compare")) == ["baselines", "compare"]

    rerun = pd.read_csv(project / "reports" / "results.csv")
    run(project, sys.executable, "-m", "pipeline.params", *TINY)
    assert "train" in ran_stages(run(project, "dvc", "repro", "--no-run-cache", "compare"))  # recompute, don't restore
    pd.testing.assert_frame_equal(pd.read_csv(project / "reports" / "results.csv"), results)  # same seeds, same bits
    assert not rerun.rmse.equals(results.rmse)


def test_your_own_series_reruns_fetch_when_edited_and_a_bad_one_keeps_the_last_good(project):
    mine = project / "mine.csv"
    mine.write_bytes((project / "pipeline/resources/shampoo.csv").read_bytes())
    run(project, sys.executable, "-m", "pipeline.params", *TINY, "data.source=file", f"data.path={mine}",
        "data.sha256=null")
    run(project, "dvc", "repro", "fetch")
    assert ran_stages(run(project, "dvc", "repro", "fetch")) == []
    mine.write_bytes(mine.read_bytes().replace(b"266.0", b"267.0"))
    assert ran_stages(run(project, "dvc", "repro", "fetch")) == ["fetch"]
    good = (project / "data/raw/series.csv").read_bytes()
    assert b"267.0" in good

    mine.write_bytes(mine.read_bytes().replace(b"145.9", b"lots"))
    failed = run(project, "dvc", "repro", "fetch", code=255)
    assert f"error: {mine}: 'Sales' must be a finite number on every row; bad values at line 3 ('lots').\n" in failed
    assert "exited with 2" in failed and "Traceback" not in failed
    assert (project / "data/raw/series.csv").read_bytes() == good  # the last good series is kept
    run(project, sys.executable, "-m", "pipeline.params", *TINY)
