"""MLflow tracking against real stores: a SQLite file in tmp_path, two parallel writers, and an `mlflow server`."""

import json
import multiprocessing
import os
import socket
import urllib.parse
import urllib.request
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from pipeline import io, series, tracking
from pipeline.artifacts import paths
from pipeline.params import ConfigError, compose_config
from pipeline.provenance import file_sha256
from pipeline.seeds import repeat_seeds
from pipeline.stages import fetch

REGIMES = ("stateful", "noreset")
OVERRIDES = ("regime=[stateful,noreset]", "repeats=3", "model.epochs=2", "data.source=packaged")


def finished_study(root: Path, shift: float = 0.0):
    """A study folder as the compare stage leaves it (made-up RMSEs, the real data file): cfg and log_study's inputs."""
    cfg = compose_config(list(OVERRIDES))
    fetch.run(cfg, root)
    seeds = repeat_seeds(cfg.base_seed, cfg.repeats).astype(np.int64)
    rng = np.random.default_rng(3)
    results = pd.concat(
        [pd.DataFrame({"regime": r, "repeat": range(3), "seed": seeds, "rmse": 100 + shift + rng.random(3) * 10})
         for r in REGIMES],
        ignore_index=True,
    )
    p = paths(cfg, root)
    io.write_csv(p.results, results)
    baselines = pd.DataFrame({"model": ["persistence"], "rmse": [136.761]})
    io.write_csv(p.baselines, baselines)
    summary = results.pivot(index="repeat", columns="regime", values="rmse")[list(REGIMES)].describe()
    inputs = {"results": results, "summary": summary, "baselines": baselines, "files": [p.results, p.baselines]}
    return cfg, inputs


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def runs(uri: str) -> list:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("lstm-state-study")
    return client.search_runs([experiment.experiment_id], max_results=1000)


def verdicts_table() -> pd.DataFrame:
    """Two claims as compare's verdicts table holds them: one decided, one whose regimes were not run."""
    return pd.DataFrame([
        {"key": "E4", "source": "expectation 4", "endpoint": "mean",
         "claim": "Resetting state after each training epoch improves test RMSE",
         "verdict": "supported", "basis": "seed_train vs seed_train_no_resets"},
        {"key": "E1", "source": "expectation 1", "claim": "A stateful LSTM outperforms a stateless one",
         "endpoint": "mean", "verdict": "not run", "basis": "not run: stateless"},
    ])


def test_a_study_is_a_parent_run_with_one_child_per_regime(store, tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "sunny-pads")
    cfg, inputs = finished_study(tmp_path / "study")
    trained = {"stateful": [1_700_000_000.0, 1_700_000_012.5], "noreset": [1_700_000_012.5, 1_700_000_020.0]}
    io.write_json(paths(cfg, tmp_path / "study").train_times(), trained)
    logged = tracking.log_study(cfg, tmp_path / "study", kind="repro", verdicts=verdicts_table(), **inputs)

    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("lstm-state-study")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI's model-training view
    parent = client.get_run(logged.parent)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["study.kind"] == "repro" and parent.data.tags["dvc.experiment"] == "sunny-pads"
    assert parent.data.params["regimes"] == "stateful,noreset" and parent.data.params["model.epochs"] == "2"
    assert not any(k.startswith(("regime.", "echo.", "alphabet.", "sine.", "paths.echo")) for k in parent.data.params)
    assert parent.data.tags["verdict.E4"] == "supported" and parent.data.tags["verdict.E1"] == "not run"
    assert "| E4 | Resetting state" in parent.data.tags["mlflow.note.content"]
    assert parent.info.start_time == 1_700_000_000_000  # the study began when training did
    assert parent.data.metrics["train_seconds"] == 20.0
    assert {a.path for a in client.list_artifacts(logged.parent, "reports")} == {
        "reports/results.csv", "reports/baselines.csv"}
    assert set(logged.children) == set(REGIMES)
    results = inputs["results"]
    for regime, run_id in logged.children.items():
        run = client.get_run(run_id)
        rows = results[results.regime == regime]
        worse = float((rows.rmse > 136.761).mean())
        for stat, value in (("rmse_mean", rows.rmse.mean()), ("rmse_median", rows.rmse.median()),
                            ("rmse_sd", rows.rmse.std()), ("share_worse_than_persistence", worse)):
            assert run.data.metrics[stat] == pytest.approx(value)
            assert parent.data.metrics[f"{stat}/{regime}"] == pytest.approx(value)  # compared across studies
        assert run.data.tags["mlflow.parentRunId"] == logged.parent
        assert run.data.params["regime.name"] == regime and run.data.params["model.epochs"] == "2"
        assert "regime.stateful.stateful" not in run.data.params  # each child holds its own regime only
        assert not any(k.startswith(("echo.", "paths.sine")) for k in run.data.params)  # no other study's settings
        history = sorted(client.get_metric_history(run_id, "rmse_by_repeat"), key=lambda m: m.step)
        assert [m.step for m in history] == [0, 1, 2]
        np.testing.assert_array_equal([m.value for m in history], rows.rmse.to_numpy())  # exact, bit for bit
        assert len(client.get_metric_history(run_id, "rmse_mean")) == 1  # a headline number, not a series
        assert run.data.metrics["baseline_persistence"] == 136.761
        start, end = trained[regime]
        assert run.data.metrics["train_seconds"] == end - start
        assert (run.info.start_time, run.info.end_time) == (start * 1000, end * 1000)  # duration = training
        tags = run.data.tags
        assert tracking.seeds_from_tags(tags) == rows.seed.tolist()
        assert tags["base_seed"] == "1" and tags["engine"] == cfg.engine.name and tags["regime"] == regime
        assert tags["data.sha256"] == cfg.data.sha256
        assert tags["results.sha256"] == file_sha256(tmp_path / "study" / cfg.paths.results)
        assert tags["versions.tensorflow"].startswith("2.") and tags["versions.mlflow"].startswith("3.")
        assert len(tags.get("git.commit", "0" * 40)) == 40
        logged_rows = pd.read_csv(client.download_artifacts(run_id, "results.csv", str(tmp_path)))
        pd.testing.assert_frame_equal(logged_rows, rows.reset_index(drop=True))
        assert {"config.yaml", "results.csv", "rmse_histogram.png"} <= {a.path for a in client.list_artifacts(run_id)}
        config = Path(client.download_artifacts(run_id, "config.yaml", str(tmp_path))).read_text()
        assert "noreset:" in config and "epochs: 2" in config


def test_a_sweep_jobs_summary_lands_on_the_sweeps_parent_under_its_label(store, tmp_path):
    cfg, inputs = finished_study(tmp_path / "job")
    sweep = tracking.start_sweep(cfg, tmp_path, ["repeats=3,30"])
    tracking.log_study(cfg, tmp_path / "job", kind="sweep", parent=sweep, label="regime=[stateful,noreset],repeats=3",
                       verdicts=verdicts_table(), **inputs)
    parent = MlflowClient(store).get_run(sweep)
    mean = inputs["results"].query("regime == 'noreset'").rmse.mean()
    assert parent.data.metrics["rmse_mean/noreset regime:stateful noreset repeats:3"] == pytest.approx(mean)
    assert parent.data.tags["verdict.E4 regime:stateful noreset repeats:3"] == "supported"


def test_an_experiment_made_before_the_kind_tag_gets_it(store):
    cfg = compose_config(list(OVERRIDES))
    made = MlflowClient(store).create_experiment("lstm-state-study")
    assert tracking.experiment_id(cfg) == made
    assert MlflowClient(store).get_experiment(made).tags["mlflow.experimentKind"] == "custom_model_development"


def test_tracking_off_logs_nothing(store, tmp_path):
    cfg, inputs = finished_study(tmp_path)
    cfg.tracking.enabled = False
    assert tracking.log_study(cfg, tmp_path, kind="repro", **inputs) is None
    assert not (Path(store.removeprefix("sqlite:///"))).exists()


def test_the_store_defaults_to_sqlite_under_the_project_and_refuses_file_stores(monkeypatch, tmp_path):
    cfg = compose_config([])
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    from pipeline.params import PROJECT_ROOT

    assert tracking.tracking_uri(cfg) == f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))  # a queued experiment logs to its parent repository's store
    assert tracking.tracking_uri(cfg) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "./mlruns")
    with pytest.raises(ConfigError, match="sqlite:///"):
        tracking.tracking_uri(cfg)


def test_seeds_split_over_tags_that_fit_mlflow_limits():
    seeds = [4_000_000_000 - i for i in range(1234)]
    tags = tracking.seed_tags(seeds)
    assert list(tags) == ["seeds.0-499", "seeds.500-999", "seeds.1000-1233"]
    assert max(len(v) for v in tags.values()) <= 8000
    assert tracking.seeds_from_tags({**tags, "seedless": "x"}) == seeds


def test_flatten_writes_values_as_yaml_would():
    flat = tracking.flatten({"a": {"b": 1, "c": None, "d": [5, 1, 0]}, "e": True, "f": "text", "g": 0.001})
    assert flat == {"a.b": "1", "a.c": "null", "a.d": "[5, 1, 0]", "e": "true", "f": "text", "g": "0.001"}


def _log_three_studies(uri: str, root: str, shift: float) -> list[str]:
    os.environ["MLFLOW_TRACKING_URI"] = uri
    parents = []
    for i in range(3):
        cfg, inputs = finished_study(Path(root) / str(i), shift)
        parents.append(tracking.log_study(cfg, Path(root) / str(i), kind="repro", **inputs).parent)
    return parents


def test_two_jobs_logging_in_parallel_to_one_new_store(tmp_path):
    """Both start on a store that does not exist yet: creating it is the race the file lock settles."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        jobs = [pool.apply_async(_log_three_studies, (uri, str(tmp_path / f"job{j}"), 50.0 * j)) for j in range(2)]
        parents = [p for job in jobs for p in job.get(timeout=240)]
    logged = runs(uri)
    assert len(MlflowClient(uri).search_experiments()) == 2  # Default and ours: created once
    assert len(set(parents)) == 6 and len(logged) == 6 * (1 + len(REGIMES))
    assert all(run.info.status == "FINISHED" for run in logged)
    children = [run for run in logged if "regime" in run.data.tags]
    assert all(len(MlflowClient(uri).get_metric_history(run.info.run_id, "rmse_by_repeat")) == 3 for run in children)
    assert {run.data.tags["mlflow.parentRunId"] for run in children} == set(parents)


def rest(base: str, path: str, payload: dict | None = None, **query: str) -> dict:
    url = f"{base}/api/2.0/mlflow/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def server(tmp_path):
    with tracking.serve(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "server.log",
                        artifacts=tmp_path / "server-artifacts") as base:
        yield base


@pytest.mark.slow
def test_runs_logged_through_a_server_are_found_by_its_rest_api(server, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    cfg, inputs = finished_study(tmp_path / "study")
    logged = tracking.log_study(cfg, tmp_path / "study", kind="repro", **inputs)

    experiment = rest(server, "experiments/get-by-name", experiment_name="lstm-state-study")["experiment"]
    found = rest(server, "runs/search", {"experiment_ids": [experiment["experiment_id"]],
                                         "filter": "tags.regime = 'noreset'"})["runs"]
    assert [r["info"]["run_id"] for r in found] == [logged.children["noreset"]]
    tags = {t["key"]: t["value"] for t in found[0]["data"]["tags"]}
    assert tags["mlflow.parentRunId"] == logged.parent
    history = rest(server, "metrics/get-history", run_id=logged.children["noreset"],
                   metric_key=tracking.PER_REPEAT)["metrics"]
    expected = inputs["results"].query("regime == 'noreset'").rmse.tolist()
    assert [m["value"] for m in sorted(history, key=lambda m: m["step"])] == expected
    artifacts = rest(server, "artifacts/list", run_id=logged.children["noreset"])["files"]
    assert {"config.yaml", "results.csv"} <= {a["path"] for a in artifacts}


def test_numbers_keeps_the_numeric_leaves_under_dotted_names():
    tree = {"cap": 0.75, "lstm": {"solved": {"count": 3, "share": 0.5}, "ok": True, "note": "x"}, "gap": None}
    assert tracking.numbers(tree) == {"cap": 0.75, "lstm.solved.count": 3.0, "lstm.solved.share": 0.5}


def test_another_study_is_one_run_with_its_seeds_metrics_and_tables(store, tmp_path):
    cfg = compose_config(["echo.repeats=3"])
    p = paths(cfg, tmp_path)
    seeds = repeat_seeds(cfg.base_seed, 3).astype(np.int64)
    io.write_csv(p.echo_results, pd.DataFrame({"repeat": range(3), "seed": seeds, "lstm_accuracy": [1.0, 0.75, 1.0]}))
    io.write_json(p.echo_metrics, {"base_seed": 1, "memoryless_cap": 0.75, "lstm": {"solved": {"share": 2 / 3}}})

    run_id = tracking.log_other_study(cfg, tmp_path, "echo", kind="repro")

    client = MlflowClient(store)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["study"] == "echo"
    assert tracking.seeds_from_tags(run.data.tags) == seeds.tolist()
    assert run.data.tags["results.sha256"] == file_sha256(p.echo_results)
    assert run.data.metrics["lstm.solved.share"] == 2 / 3 and run.data.metrics["memoryless_cap"] == 0.75
    assert run.data.params["echo.epochs"] == str(cfg.echo.epochs) and run.data.params["base_seed"] == "1"
    assert {a.path for a in client.list_artifacts(run_id)} == {"config.yaml", "echo_results.csv", "echo_metrics.json"}
    recorded = tracking.recorded_run(cfg, run_id)  # what the audit reads back
    assert isinstance(recorded, tracking.RecordedStudyRun) and recorded.study == "echo"
    assert recorded.results.getvalue() == p.echo_results.read_text()
    assert tracking.runs_to_audit(cfg, run_id) == [run_id]
    assert tracking.runs_with_results(cfg, file_sha256(p.echo_results)) == [run_id]


def test_a_panel_is_a_parent_run_with_its_verdicts_and_one_child_per_series(store, compose, tmp_path):
    cfg = compose("panel=quick")
    rng = np.random.default_rng(0)
    results = pd.DataFrame([
        {"series": name, "origin": origin, "regime": regime, "repeat": r, "seed": 100 + r, "rmse": 1.0,
         "relative_rmse": rng.uniform(0.9, 1.1), "mase": 1.0}
        for name in ("shampoo", "nhtemp") for origin in (0, 1) for regime in ("stateful", "stateless") for r in (0, 1)
    ])
    table = tmp_path / "reports" / "panel" / "results.csv"
    io.write_csv(table, results)
    specs = {name: asdict(series.read_spec(name)) for name in ("shampoo", "nhtemp")}
    logged = tracking.log_panel(cfg, tmp_path, results=results, metrics={"contrast_1.pooled": -0.01},
                                files=[table], specs=specs)
    client = MlflowClient(store)
    parent = client.get_run(logged.parent)
    assert parent.info.status == "FINISHED" and parent.data.tags["study.kind"] == "panel"
    assert parent.data.metrics == {"contrast_1.pooled": -0.01}
    assert {a.path for a in client.list_artifacts(logged.parent, "reports/panel")} == {"reports/panel/results.csv"}
    assert set(logged.children) == {"shampoo", "nhtemp"}
    for name, run_id in logged.children.items():
        run = client.get_run(run_id)
        rows = results[results.series == name]
        assert run.data.tags["mlflow.parentRunId"] == logged.parent and run.data.tags["series"] == name
        assert tracking.seeds_from_tags(run.data.tags) == [100, 101]
        assert run.data.metrics["relative_rmse_stateful"] == pytest.approx(
            rows[rows.regime == "stateful"].relative_rmse.mean())
        logged_rows = pd.read_csv(client.download_artifacts(run_id, "results.csv", str(tmp_path)))
        pd.testing.assert_frame_equal(logged_rows, rows.reset_index(drop=True), check_dtype=False)
        spec = Path(client.download_artifacts(run_id, tracking.SERIES_SPEC, str(tmp_path)))  # what the audit reads
        (tmp_path / f"{name}.yaml").write_bytes(spec.read_bytes())
        assert series.read_spec(name, tmp_path) == series.read_spec(name)
        assert run.data.params["series.test_size"] == "12"


def test_a_store_that_fails_is_one_line_naming_it_and_the_fix_and_never_its_password():
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import ErrorCode
    from sqlalchemy.exc import OperationalError

    uri = "postgresql://mlflow:s3cret@db.example:5433/mlflow"
    assert tracking.masked(uri) == "postgresql://mlflow:***@db.example:5433/mlflow"
    assert tracking.masked("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    refused = OperationalError("SELECT 1", {}, Exception('connection to "db.example" failed: refused\nIs it running?'))
    assert tracking.store_failure(uri, refused) == (
        'the tracking database postgresql://mlflow:***@db.example:5433/mlflow refused the connection (connection to '
        '"db.example" failed: refused): start it (scripts/tracking-server up) or fix MLFLOW_TRACKING_URI, then run '
        "again.")
    unauthenticated = MlflowException("401 != 200", error_code=ErrorCode.Value("UNAUTHENTICATED"))
    assert "refused this client's credentials (HTTP 401)" in tracking.store_failure("http://h:1", unauthenticated)
    missing = MlflowException("no such run", error_code=ErrorCode.Value("RESOURCE_DOES_NOT_EXIST"))
    assert tracking.store_failure("http://h:1", missing) is None  # an answer, not a failure of the store
    assert tracking.store_failure("http://h:1", ValueError("Connection refused")) is None  # not the store's


def test_a_server_that_does_not_answer_is_one_line_naming_it(compose, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    tracking.client.cache_clear()
    try:
        expected = rf"^the MLflow tracking server http://127.0.0.1:{port} is unreachable \(.*\): start it"
        with pytest.raises(tracking.TrackingError, match=expected):
            tracking.experiment_id(compose())
    finally:
        tracking.client.cache_clear()
