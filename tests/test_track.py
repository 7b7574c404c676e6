"""The track stage on a made-up study compared by the compare stage (conftest's ``evaluated``), logged to a real
SQLite MLflow store in tmp_path."""

from io import BytesIO
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from pipeline import io
from pipeline.analysis import claims, histogram
from pipeline.artifacts import paths
from pipeline.errors import MissingInput
from pipeline.params import regimes
from pipeline.stages import compare, track


def test_each_verdict_is_paired_with_its_claims_text():
    table = track.claim_verdicts({"verdicts": {"E1": "supported", "S1": "inconclusive"}})
    text = {c.key: c.text for c in claims.ALL}
    assert table.to_dict("records") == [{"key": "E1", "claim": text["E1"], "verdict": "supported"},
                                        {"key": "S1", "claim": text["S1"], "verdict": "inconclusive"}]


def test_a_study_not_yet_compared_names_the_stage_to_run(evaluated):
    cfg, root = evaluated(4)
    with pytest.raises(MissingInput, match=r"dvc repro compare"):
        track.run(cfg, root)
    assert not paths(cfg, root).tracked.exists()  # no receipt for what was not logged


def test_without_tracking_the_receipt_says_so_and_no_store_is_made(evaluated, tmp_path, monkeypatch):
    store = tmp_path / "store.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    cfg, root = evaluated(4, "tracking.enabled=false")
    compare.run(cfg, root)
    assert track.run(cfg, root) == {"logged": False, "why": "tracking.enabled=false"}
    assert io.read_json(paths(cfg, root).tracked) == {"logged": False, "why": "tracking.enabled=false"}
    assert not store.exists()


@pytest.mark.slow  # MLflow's imports and a store: seconds
def test_the_stage_logs_the_study_and_leaves_a_receipt_alike_on_every_run(evaluated, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    cfg, root = evaluated(6)
    compare.run(cfg, root)
    OmegaConf.save(cfg, root / "params.yaml")
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(root)
    track.main()

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(cfg.tracking.experiment).experiment_id
    (parent,) = [r for r in client.search_runs([experiment]) if "mlflow.parentRunId" not in r.data.tags]
    verdicts = io.read_json(paths(cfg, root).metrics)["verdicts"]
    assert parent.info.status == "FINISHED"
    assert {k: parent.data.tags[f"verdict.{k}"] for k in verdicts} == verdicts
    assert "| E1 |" in parent.data.tags["mlflow.note.content"]
    assert "reports/shampoo.md" in {a.path for a in client.list_artifacts(parent.info.run_id, "reports")}
    children = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(c.data.tags["regime"] for c in children) == sorted(r.name for r in regimes(cfg))
    assert all(c.info.status == "FINISHED" and len(client.get_metric_history(c.info.run_id, "rmse_by_repeat")) == 6
               for c in children)

    # each histogram was drawn by the second process, to the bytes MLflow's log_figure writes of the same figure
    results, baselines = pd.read_csv(paths(cfg, root).results), pd.read_csv(paths(cfg, root).baselines)
    for child in children:
        regime = child.data.tags["regime"]
        logged = client.download_artifacts(child.info.run_id, histogram.FILE, str(tmp_path))
        rows = results[results.regime == regime].sort_values("repeat")
        expected = BytesIO()
        histogram.rmse_histogram(rows.rmse, baselines, histogram.title(regime, len(rows))).savefig(expected,
                                                                                                  format="png")
        assert Path(logged).read_bytes() == expected.getvalue(), regime

    receipt = paths(cfg, root).tracked.read_bytes()
    assert io.read_json(paths(cfg, root).tracked)["regimes"] == [r.name for r in regimes(cfg)]
    track.main()  # logged again (dvc repro -f track): a second study run, the same receipt, so dvc.lock stays
    parents = [r for r in client.search_runs([experiment]) if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.status for r in parents] == ["FINISHED", "FINISHED"]
    assert paths(cfg, root).tracked.read_bytes() == receipt
