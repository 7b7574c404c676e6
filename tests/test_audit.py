"""The determinism audit on a tiny study: equal bits pass, a tampered result fails, bad input is named."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from pipeline import tracking
from pipeline.artifacts import paths
from pipeline.params import PROJECT_ROOT, compose_config
from pipeline.stages import evaluate
from pipeline.studies import echo
from pipeline.tools import audit

OVERRIDES = ["regime=stateful", "repeats=2", "model.epochs=2", "data.source=packaged", "resume.enabled=false"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A tiny study trained, evaluated and logged to its own store: (uri, root, logged runs)."""
    root = tmp_path_factory.mktemp("study")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        # The baselines' model fits take longer than this study's LSTMs and are not audited.
        mp.setattr(evaluate.baselines, "score", lambda *_: pd.DataFrame({"model": ["persistence"], "rmse": [1.0]}))
        cfg = compose_config(OVERRIDES)
        for stage in (*audit.STAGES, evaluate):
            results = stage.run(cfg, root)
        (root / "params.yaml").write_text(OmegaConf.to_yaml(cfg))
        summary = results.pivot(index="repeat", columns="regime", values="rmse").describe()
        p = paths(cfg, root)
        logged = tracking.log_study(cfg, root, results=results, summary=summary,
                                    baselines=pd.read_csv(p.baselines), files=[p.results], kind="repro")
    return uri, root, logged


@pytest.fixture
def store(study, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", study[0])
    monkeypatch.setattr(audit, "enable_determinism", lambda: None)  # in-process: keep TF's global switch off
    return MlflowClient(study[0])


@pytest.mark.slow
def test_auditing_a_logged_run_reproduces_every_bit_and_tags_it(study):
    uri, _, logged = study
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "CI": "true"}
    done = subprocess.run([sys.executable, "-m", "pipeline.tools.audit", logged.parent], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bit-identical: 2/2 repeats" in done.stdout
    tags = MlflowClient(uri).get_run(logged.children["stateful"]).data.tags
    assert tags["audit"] == "bit-identical: 2/2 repeats" and "audit.time" in tags


def test_a_results_file_is_audited_against_the_config_beside_it(study, store, capsys):
    _, root, logged = study
    assert audit.main([str(root / "reports" / "results.csv")]) == 0
    assert "bit-identical: 2/2 repeats" in capsys.readouterr().out
    assert store.get_run(logged.children["stateful"]).data.tags["audit"].startswith("bit-identical")


def test_a_result_off_by_one_bit_is_a_mismatch(study, store, tmp_path, capsys):
    _, root, _ = study
    results = pd.read_csv(root / "reports" / "results.csv")
    results.loc[1, "rmse"] = np.nextafter(results.loc[1, "rmse"], np.inf)  # the smallest change a float allows
    (tmp_path / "reports").mkdir()
    results.to_csv(tmp_path / "reports" / "results.csv", index=False)
    (tmp_path / "params.yaml").write_bytes((root / "params.yaml").read_bytes())

    assert audit.main([str(tmp_path / "reports" / "results.csv")]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH: 1/2 repeats differ" in out and "no tracked run recorded exactly this results file" in out


def test_compare_checks_bits_and_seeds():
    recorded = pd.DataFrame({"regime": "a", "repeat": [0, 1, 2], "seed": [7, 8, 9], "rmse": [1.0, 2.0, 3.0]})
    recomputed = recorded.copy()
    recomputed.loc[1, "rmse"] = np.nextafter(2.0, 3.0)
    recomputed.loc[2, "seed"] = 10
    table = audit.compare(recorded, recomputed)
    assert table.identical.tolist() == [True, False, False]
    assert audit.verdict(table) == "MISMATCH: 2/3 repeats differ"
    assert audit.verdict(audit.compare(recorded, recorded)) == "bit-identical: 3/3 repeats"


def test_what_cannot_be_audited_is_named(store, tmp_path, capsys):
    assert audit.main(["0123456789abcdef0123456789abcdef"]) == 2
    assert "cannot audit 0123456789abcdef0123456789abcdef" in capsys.readouterr().err
    pd.DataFrame({"regime": ["a"], "repeat": [0], "seed": [1], "rmse": [1.0]}).to_csv(tmp_path / "r.csv")
    assert audit.main([str(tmp_path / "r.csv")]) == 2
    assert "pass the study's config with --config" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ the other studies

ECHO = ["echo.repeats=2", "echo.epochs=2", "echo.units=4"]


@pytest.fixture(scope="module")
def echo_study(tmp_path_factory):
    """A tiny echo study run and logged to its own store: (uri, root, its results table, its run id)."""
    root = tmp_path_factory.mktemp("echo")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        cfg = compose_config(ECHO)
        echo.run(cfg, root)
        (root / "params.yaml").write_text(OmegaConf.to_yaml(cfg))
        run_id = tracking.log_other_study(cfg, root, "echo", kind="repro")
    return uri, root, paths(cfg, root).echo_results, run_id


@pytest.fixture
def echo_store(echo_study, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", echo_study[0])
    monkeypatch.setattr(audit, "enable_determinism", lambda: None)  # in-process: keep TF's global switch off


def test_a_study_results_table_is_audited_cell_by_cell(echo_study, echo_store, tmp_path, capsys):
    uri, root, results, run_id = echo_study
    assert audit.main([str(results)]) == 0
    assert "bit-identical: 2/2 repeats" in capsys.readouterr().out
    assert MlflowClient(uri).get_run(run_id).data.tags["audit"] == "bit-identical: 2/2 repeats"

    tampered = pd.read_csv(results)
    tampered.loc[1, "lstm_final_loss"] = np.nextafter(tampered.loc[1, "lstm_final_loss"], np.inf)
    copy = tmp_path / results.relative_to(root)
    copy.parent.mkdir(parents=True)
    tampered.to_csv(copy, index=False)
    (tmp_path / "params.yaml").write_bytes((root / "params.yaml").read_bytes())
    assert audit.main([str(copy)]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH: 1/2 repeats differ" in out and "lstm_final_loss: " in out


def test_a_re_run_that_crashes_is_reported_as_such_not_as_a_mismatch(echo_study, echo_store, monkeypatch, capsys):
    def crash(_):
        raise MemoryError("out of memory")

    monkeypatch.setattr(audit, "rerun_study", crash)
    assert audit.main([str(echo_study[2])]) == 2
    assert "could not re-run" in capsys.readouterr().err


@pytest.mark.slow
def test_auditing_a_study_run_by_its_id(echo_study, echo_store, capsys):
    assert audit.main([echo_study[3]]) == 0
    assert "bit-identical: 2/2 repeats" in capsys.readouterr().out


def test_compare_study_names_the_cells_that_differ():
    recorded = pd.DataFrame({"framing": ["a", "b"], "repeat": ["0", "0"], "seed": ["7", "7"],
                             "accuracy": ["1.0", "0.5"]})
    recomputed = recorded.assign(accuracy=["1.0", "0.75"])
    table = audit.compare_study(recorded, recomputed)
    assert table.identical.tolist() == [True, False] and table.differences[1] == "accuracy: 0.5 -> 0.75"
    assert audit.verdict(table) == "MISMATCH: 1/2 rows differ"
    with pytest.raises(ValueError, match="results table written by this version"):
        audit.compare_study(recorded, recomputed.drop(columns="accuracy"))


# ------------------------------------------------------------------------------------------- the panel

PANEL = ["panel=quick", "panel.repeats=2", "panel.baselines=none", "model.epochs=2", "regime=[stateful,stateless]",
         "engine.workers=1", "resume.enabled=false", "tracking.enabled=false"]


@pytest.mark.slow
def test_a_panel_results_table_is_audited_cell_by_cell(tmp_path, monkeypatch, capsys):
    from pipeline.stages import panel

    monkeypatch.setattr(audit, "enable_determinism", lambda: None)  # in-process: keep TF's global switch off
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    cfg = compose_config(PANEL)
    panel.run(cfg, tmp_path)
    (tmp_path / "params.yaml").write_text(OmegaConf.to_yaml(cfg))
    results = tmp_path / cfg.paths.panel_results
    assert audit.main([str(results)]) == 0
    assert "bit-identical: 24/24 repeats" in capsys.readouterr().out  # 2 series x 3 origins x 2 regimes x 2 seeds

    tampered = pd.read_csv(results)
    tampered.loc[5, "rmse"] = np.nextafter(tampered.loc[5, "rmse"], np.inf)
    tampered.to_csv(results, index=False)
    assert audit.main([str(results)]) == 1
    assert "MISMATCH: 1/24 repeats differ" in capsys.readouterr().out
