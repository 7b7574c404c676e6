"""The determinism audit on a tiny study: equal bits pass, a tampered result fails, bad input is named."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path

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
        cfg = compose_config(OVERRIDES)
        for stage in (*audit.STAGES, evaluate):
            results = stage.run(cfg, root)
        (root / "params.yaml").write_text(OmegaConf.to_yaml(cfg))
        summary = results.pivot(index="repeat", columns="regime", values="rmse").describe()
        p = paths(cfg, root)
        # The baselines' model fits take longer than this study's LSTMs and are not audited: persistence stands in.
        only_persistence = pd.DataFrame({"model": ["persistence"], "rmse": [1.0]})
        logged = tracking.log_study(cfg, root, results=results, summary=summary, baselines=only_persistence,
                                    files=[p.results], kind="repro")
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
         "engine.workers=1", "resume.enabled=false"]
ROWS = 24  # 2 series x 3 origins x 2 regimes x 2 seeds


@pytest.fixture(scope="module")
def panel_study(tmp_path_factory):
    """The quick panel at tiny sizes run as a sweep's job, logged to its own store: (uri, root, sweep run, panel run,
    series -> run)."""
    from pipeline.stages import panel

    root = tmp_path_factory.mktemp("panel")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        cfg = compose_config(PANEL)
        sweep = tracking.start_sweep(cfg, root, ["model.epochs=2"])
        panel.run(cfg, root, parent=sweep, label="model.epochs=2")
        tracking.finish(cfg, sweep)
        (root / "params.yaml").write_text(OmegaConf.to_yaml(cfg))
    client = MlflowClient(uri)
    (panel_run,) = [r for r in client.search_runs([client.get_run(sweep).info.experiment_id])
                    if r.data.tags.get("mlflow.parentRunId") == sweep]
    children = {r.data.tags["series"]: r.info.run_id for r in client.search_runs(
        [panel_run.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{panel_run.info.run_id}'")}
    return uri, root, sweep, panel_run.info.run_id, children


@pytest.fixture
def panel_store(panel_study, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", panel_study[0])
    monkeypatch.setattr(audit, "enable_determinism", lambda: None)  # in-process: keep TF's global switch off
    return MlflowClient(panel_study[0])


@pytest.mark.slow
def test_a_panel_results_table_is_audited_cell_by_cell(panel_study, panel_store, tmp_path, capsys):
    _, root, _, panel_run, _ = panel_study
    results = root / "data" / "panel" / "results.csv"
    assert audit.main([str(results)]) == 0
    assert f"bit-identical: {ROWS}/{ROWS} repeats" in capsys.readouterr().out
    assert panel_store.get_run(panel_run).data.tags["audit"] == f"bit-identical: {ROWS}/{ROWS} repeats"

    tampered = pd.read_csv(results)
    tampered.loc[5, "rmse"] = np.nextafter(tampered.loc[5, "rmse"], np.inf)
    copy = tmp_path / results.relative_to(root)
    copy.parent.mkdir(parents=True)
    tampered.to_csv(copy, index=False)
    (tmp_path / "params.yaml").write_bytes((root / "params.yaml").read_bytes())
    assert audit.main([str(copy)]) == 1
    assert f"MISMATCH: 1/{ROWS} repeats differ" in capsys.readouterr().out


@pytest.mark.slow
def test_a_panel_run_is_audited_by_its_id_and_so_is_a_sweep_of_panels(panel_study, panel_store, capsys):
    _, _, sweep, panel_run, children = panel_study
    cfg = compose_config()
    assert tracking.runs_to_audit(cfg, sweep) == [panel_run]  # a sweep's audit: each panel under it
    assert audit.main([panel_run]) == 0
    out = capsys.readouterr().out
    verdicts = len(panel_store.get_run(panel_run).data.metrics)
    outcome = f"bit-identical: {ROWS}/{ROWS} repeats, {verdicts}/{verdicts} verdict metrics"
    assert verdicts > 0 and f"audit of panel run {panel_run} (2 series):\n{outcome}\n" in out
    assert panel_store.get_run(panel_run).data.tags["audit"] == outcome
    for run in children.values():  # each series' run: its own series' outcome
        assert panel_store.get_run(run).data.tags["audit"] == f"bit-identical: {ROWS // 2}/{ROWS // 2} repeats"


@pytest.mark.slow
def test_a_series_run_is_re_run_alone_and_a_logged_score_one_ulp_off_is_named(panel_study, panel_store, monkeypatch,
                                                                              tmp_path, capsys):
    from pipeline.stages import panel

    trained = []
    run_panel = panel.run_panel
    monkeypatch.setattr(panel, "run_panel", lambda series, *a: trained.append([s.name for s in series])
                        or run_panel(series, *a))
    run = panel_study[4]["nhtemp"]
    logged = Path(panel_store.download_artifacts(run, "results.csv", str(tmp_path))).read_text()
    rows = pd.read_csv(io.StringIO(logged))
    rows.loc[7, "rmse"] = np.nextafter(rows.loc[7, "rmse"], -np.inf)  # the smallest change a float allows
    panel_store.log_text(run, rows.to_csv(index=False, lineterminator="\n"), "results.csv")
    try:
        assert audit.main([run]) == 1
    finally:
        panel_store.log_text(run, logged, "results.csv")
    out = capsys.readouterr().out
    assert trained == [["nhtemp"]]
    assert f"audit of run {run} (series 'nhtemp' of panel run {panel_study[3]}):" in out
    assert f"MISMATCH: 1/{ROWS // 2} repeats differ" in out
    origin, regime, repeat = rows.loc[7, ["origin", "regime", "repeat"]]
    assert re.search(rf"nhtemp +{origin} +{regime} +{repeat} .*rmse: {float(rows.loc[7, 'rmse'])!r} -> ", out), out
    assert panel_store.get_run(run).data.tags["audit"] == f"MISMATCH: 1/{ROWS // 2} repeats differ"


def test_a_panel_run_logged_without_its_series_files_is_named_with_the_fix(tmp_path, monkeypatch, capsys):
    """A panel logged by an older version: its series' runs hold results.csv, not series.yaml."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    store = MlflowClient(tracking.tracking_uri(cfg := compose_config(PANEL)))
    parent = store.create_run(tracking.experiment_id(cfg), tags={"study.kind": "panel"}).info.run_id
    store.log_text(parent, OmegaConf.to_yaml(cfg), "config.yaml")
    child = store.create_run(tracking.experiment_id(cfg), tags={"study.kind": "panel", "series": "shampoo",
                                                                "mlflow.parentRunId": parent}).info.run_id
    store.log_text(child, "series,origin\nshampoo,0\n", "results.csv")
    assert audit.main([child]) == 2
    err = capsys.readouterr().err
    assert f"run {child} (series 'shampoo' of panel run {parent}) has no series.yaml artifact" in err
    assert "dvc repro -f panel" in err and len([line for line in err.splitlines() if "audit" in line]) == 1


def test_verdict_metrics_are_compared_bit_for_bit():
    recorded = {"contrast_1.pooled": 0.25, "contrast_1.tau2": 0.5, "contrast_2.pooled": 1.0}
    recomputed = {**recorded, "contrast_1.tau2": np.nextafter(0.5, 1.0)}
    del recomputed["contrast_2.pooled"]
    table = audit.compare_metrics(recorded, recomputed)
    assert table.identical.tolist() == [True, False, False]
    rows = pd.DataFrame({"series": "s", "origin": 0, "regime": "a", "repeat": [0, 1], "identical": True})
    assert audit.verdict(rows, table) == "MISMATCH: 2/2 repeats identical, 2/3 verdict metrics differ"
    assert audit.verdict(rows, table[table.identical]) == "bit-identical: 2/2 repeats, 1/1 verdict metrics"
