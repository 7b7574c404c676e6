"""The views a user opens, in headless Chromium: the MLflow UI over a real (tiny) study, its report, and the
page `dvc plots show` writes, offline (pipeline/tools/screenshots.py, scripts/screenshots)."""

import os
import subprocess
import sys

import pytest

from pipeline.params import PROJECT_ROOT
from pipeline.tools import screenshots

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser_ready() -> None:
    if screenshots.chromium() is None:
        pytest.skip("no Chromium to drive: apt-get install chromium (.ci/run installs it when it can)")
    pytest.importorskip("playwright", reason="the dev extra drives the browser: pip install -e '.[dev]'")


def test_the_mlflow_ui_the_report_and_dvc_plots_show_what_a_user_looks_for(browser_ready, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "CI": "true"}
    study = [sys.executable, "-m", "pipeline.tools.sweep", "experiment=quick", "repeats=3", "model.epochs=3",
             f"hydra.run.dir={tmp_path / 'run'}", f"resume.cache={tmp_path / 'cache'}"]
    subprocess.run(study, cwd=PROJECT_ROOT, env=env, check=True, capture_output=True, timeout=600)
    plots = [sys.executable, "-m", "dvc", "plots", "show", "-o", str(tmp_path / "plots")]
    subprocess.run(plots, cwd=PROJECT_ROOT, env=env, check=True, capture_output=True, timeout=300)

    views = screenshots.take(uri, "lstm-state-study", tmp_path / "run" / "reports" / "report.html",
                             tmp_path / "plots" / "index.html", tmp_path / "shots")

    assert views.missing == []
    seen = "\n".join(views.seen)
    assert "the experiment opens on its runs table (model training)" in seen
    for regime in ("stateful", "stateless", "noreset"):  # the children's rows, with their headline metrics
        assert f"runs table: {regime} shows rmse_mean" in seen and f"runs table: {regime} shows train_seconds" in seen
    assert "runs table: run shows rmse_mean/noreset" in seen  # and the parent's, per regime
    assert "report: it opens with the answer" in seen and "report: a table lists noreset, stateful, stateless" in seen
    assert "dvc plots, offline:" in seen
    shots = {p.name for p in (tmp_path / "shots").iterdir()}
    assert {"runs.png", "parent.png", "child.png", "child-histogram.png", "compare.png", "report.png",
            "dvc-plots.png"} <= shots
