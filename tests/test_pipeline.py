"""End to end, as a user runs it: `dvc repro compare` (the shampoo study) on a tiny configuration in a copy."""

import os
import shutil
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
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"],
    ):
        subprocess.run(cmd, cwd=root, check=True)
    return root


def run(project: Path, *args: str) -> str:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'test-mlflow.db'}",
        "CI": "true",
    }
    done = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def ran_stages(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


def test_dvc_repro_runs_the_study_then_only_what_changed(project):
    run(project, sys.executable, "-m", "pipeline.params", *TINY)
    first = run(project, "dvc", "repro", "compare")
    assert ran_stages(first) == ["fetch", "difference", "scale", "frame", "train", "evaluate", "compare"]

    results = pd.read_csv(project / "reports" / "results.csv")
    names = [r.name for r in regimes(compose_config(TINY))]
    assert list(dict.fromkeys(results.regime)) == names and len(names) == 10
    assert len(results) == 20 and results.groupby("regime").seed.nunique().eq(2).all()
    assert (project / "reports" / "metrics.json").is_file() and (project / "reports" / "boxplot.png").is_file()

    assert ran_stages(run(project, "dvc", "repro", "compare")) == []

    run(project, sys.executable, "-m", "pipeline.params", *TINY, "model.epochs=3")
    assert ran_stages(run(project, "dvc", "repro", "compare")) == ["train", "evaluate", "compare"]

    rerun = pd.read_csv(project / "reports" / "results.csv")
    run(project, sys.executable, "-m", "pipeline.params", *TINY)
    assert "train" in ran_stages(run(project, "dvc", "repro", "--no-run-cache", "compare"))  # recompute, don't restore
    pd.testing.assert_frame_equal(pd.read_csv(project / "reports" / "results.csv"), results)  # same seeds, same bits
    assert not rerun.rmse.equals(results.rmse)
