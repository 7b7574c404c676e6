"""The Hydra sweep entry: its stages, its labels, the A-vs-A preset, and real multiruns on both launchers."""

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import setup_globals
from mlflow import MlflowClient
from omegaconf import OmegaConf

from pipeline import params
from pipeline.params import CONF_DIR, PROJECT_ROOT
from pipeline.stages import baselines, compare, report
from pipeline.tools import audit, sweep

TINY = ("repeats=2", "model.epochs=2", "data.source=packaged")


def test_jobs_run_the_core_stages_of_dvc_yaml_in_order():
    stages = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"]
    core = [m[1] for s in stages.values() if (m := re.fullmatch(r"python -m pipeline\.stages\.(\w+)", s["cmd"]))]
    core = core[: core.index("report") + 1]  # the shampoo study's stages; the panel is a study of its own
    core.remove("track")  # a job logs itself under its sweep's run, once its report is there to log too
    assert [m.__name__.removeprefix("pipeline.stages.") for m in (*sweep.STAGES, compare, report)] == core
    # the audit re-runs those the results table comes from, up to the evaluate stage's scoring: not the baselines
    assert tuple(s for s in sweep.STAGES[:-1] if s is not baselines) == audit.STAGES


def test_a_job_is_labelled_by_the_values_its_sweep_varies(tmp_path):
    multirun = {"hydra": {"overrides": {"task": ["regime=stateful,noreset", "repeats=2", "experiment=a_vs_a"]},
                          "sweeper": {"params": {"base_seed": "1,2"}}}}
    OmegaConf.save(multirun, tmp_path / "multirun.yaml")
    keys = sweep.swept_keys(tmp_path)
    assert keys == {"regime", "base_seed"}
    assert sweep.job_label(["regime=noreset", "repeats=2", "experiment=a_vs_a", "base_seed=2"], keys) == (
        "regime=noreset,base_seed=2")


def test_what_a_job_prints_goes_to_its_log_line_by_line(caplog):
    caplog.set_level(logging.INFO, logger="pipeline")
    stream = sweep.LogLines(logging.getLogger("pipeline"))
    print("fetch: 36 rows\ntrain", file=stream, end="")
    print(" stateful", file=stream)
    stream.write("unfinished")
    stream.end()
    assert [r.getMessage() for r in caplog.records] == ["fetch: 36 rows", "train stateful", "unfinished"]


@pytest.fixture
def entry():
    """What ``lstm-state <args>`` prints: the installed console script, run as a user runs it (in a process of
    its own, so Hydra's logging set-up never outlives the call)."""

    def run(*args: str, comp_line: str = "") -> str:
        env = {**os.environ, "COMP_LINE": comp_line, "COMP_POINT": str(len(comp_line))} if comp_line else None
        done = subprocess.run([str(Path(sys.executable).parent / "lstm-state"), *args], cwd=PROJECT_ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    return run


def test_help_names_the_config_groups_and_presets(entry):
    text = entry("--help")
    assert "experiment: a_vs_a, ci, quick, seed" in text and "engine: keras, vectorized" in text
    assert "lstm-state experiment=quick" in text and "repeats=1000" in text
    assert "repeats=5 " in entry("--help", "experiment=quick")  # the settings shown are the composed ones


def test_shell_completion_offers_groups_options_and_keys(entry):
    assert "experiment=quick" in entry("-sc", "query=bash", comp_line="lstm-state experiment=").split()
    assert "model.epochs=" in entry("-sc", "query=bash", comp_line="lstm-state model.").split()
    assert "complete -o nospace -o default -F hydra_bash_completion lstm-state" in entry("-sc", "install=bash")


def test_the_console_scripts_point_at_real_entry_points():
    import importlib
    import tomllib

    scripts = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["lstm-state"] == "pipeline.tools.sweep:main"
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function))


def hydra_config(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def test_the_a_vs_a_preset_sweeps_two_base_seeds_of_one_regime():
    cfg = hydra_config("experiment=a_vs_a")
    assert list(cfg.regime) == ["stateful"] and cfg.repeats == 10
    assert cfg.hydra.sweeper.params.base_seed == "1,2"


def test_the_quick_preset_is_small_everywhere_and_params_says_so(tmp_path, monkeypatch, capsys):
    cfg = hydra_config("experiment=quick")
    assert list(cfg.regime) == ["stateful", "stateless", "noreset"] and cfg.repeats == 5 and cfg.model.epochs == 20
    assert cfg.alphabet.repeats == cfg.echo.repeats == cfg.sine.repeats == 1
    default = hydra_config().alphabet.framings
    assert set(cfg.alphabet.framings) == set(default)  # a framing added later is shrunk too, or this fails
    assert all(f.epochs < default[name].epochs for name, f in cfg.alphabet.framings.items())
    monkeypatch.setattr(params, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(params, "PARAMS_FILE", tmp_path / "params.yaml")
    params.main(["experiment=quick"])
    assert capsys.readouterr().out.strip() == (
        "wrote params.yaml: 3 regimes (stateful, stateless, noreset) x 5 repeats x 20 epochs = 15 models")


def test_the_local_parallel_launcher_is_the_default():
    launcher = hydra_config().hydra.launcher
    assert launcher._target_.endswith("JoblibLauncher") and launcher.backend == "loky"
    assert hydra_config().hydra.callbacks.study._target_ == "pipeline.tools.sweep.SweepCallback"


def test_runs_and_sweeps_started_in_the_same_second_get_folders_of_their_own():
    setup_globals()  # Hydra's ${now:} resolver, as a run registers it
    folders = [(c.run.dir, c.sweep.dir) for c in (hydra_config().hydra for _ in range(2))]
    (run_a, sweep_a), (run_b, sweep_b) = folders
    assert run_a != run_b and sweep_a != sweep_b
    assert run_a.rsplit("/", 1)[1].split("-")[3] == str(os.getpid())  # time, then the process, then a random part


def run_sweep(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "CI": "true"}
    cmd = [sys.executable, "-m", "pipeline.tools.sweep", "-m", *TINY, f"hydra.sweep.dir={tmp_path / 'sweep'}",
           f"resume.cache={tmp_path / 'cache'}", *overrides]
    done = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def sweep_runs(tmp_path: Path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    found = client.search_runs([client.get_experiment_by_name("lstm-state-study").experiment_id])
    parents = [r for r in found if "regime" not in r.data.tags]
    return client, parents, [r for r in found if "regime" in r.data.tags]


@pytest.mark.slow
def test_a_parallel_multirun_keeps_jobs_apart_and_logs_them_under_one_parent(tmp_path):
    run_sweep(tmp_path, "regime=stateful,noreset", "hydra.launcher.n_jobs=2")

    jobs = sorted(p.parent for p in (tmp_path / "sweep").glob("*/.hydra"))
    assert [j.name.split("_")[0] for j in jobs] == ["0", "1"]
    for job, regime in zip(jobs, ["stateful", "noreset"], strict=True):
        assert set(pd.read_csv(job / "reports" / "results.csv").regime) == {regime}  # its own outputs only
    table = pd.read_csv(tmp_path / "sweep" / "results.csv")
    assert list(table.job.unique()) == ["regime=stateful", "regime=noreset"] and len(table) == 4
    assert len(pd.read_csv(tmp_path / "sweep" / "tests.csv")) == 1

    client, parents, children = sweep_runs(tmp_path)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert parents[0].data.tags["sweep.dir"] == str((tmp_path / "sweep").resolve())
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    assert sorted(c.data.tags["sweep.job"] for c in children) == ["regime=noreset", "regime=stateful"]
    assert all(len(client.get_metric_history(c.info.run_id, "rmse_by_repeat")) == 2 for c in children)
    assert all("rmse_mean/stateful regime:stateful" in p.data.metrics for p in parents)  # each job's summary
    for job in jobs:  # what the job printed, in its own log
        log = (job / "sweep.log").read_text()
        assert "fetch: 36 rows" in log and "Resetting state after each training epoch" in log
    logged = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"results.csv", "summary.csv", "tests.csv", "jobs"} <= logged


@pytest.mark.slow
def test_the_cluster_launcher_when_its_extra_is_installed(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[cluster]'")
    slurm = hydra_config("hydra/launcher=slurm").hydra.launcher
    assert slurm._target_.endswith("SlurmLauncher") and slurm.submitit_folder.endswith(".submitit/%j")
    # The same plugin's local executor runs the jobs as subprocesses, as Slurm would on its nodes.
    run_sweep(tmp_path, "hydra/launcher=submitit_local", "regime=stateful")
    assert len(pd.read_csv(tmp_path / "sweep" / "results.csv")) == 2
    _, parents, children = sweep_runs(tmp_path)
    assert len(parents) == 1 and len(children) == 1


@pytest.mark.slow
def test_a_sweep_over_another_studys_repeats_is_summed_up_logged_and_audited(tmp_path):
    run_sweep(tmp_path, "study=echo", "echo.repeats=1,2", "echo.epochs=2", "echo.units=4")

    results = pd.read_csv(tmp_path / "sweep" / "results.csv")
    assert results.job.tolist() == ["echo.repeats=1", "echo.repeats=2", "echo.repeats=2"]
    assert results.seed[0] == results.seed[1] != results.seed[2]  # repeat 0 of every job shares its seed
    summary = pd.read_csv(tmp_path / "sweep" / "summary.csv")
    assert summary.job.tolist() == ["echo.repeats=1", "echo.repeats=2"] and summary["lstm.solved.n"].tolist() == [1, 2]

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    found = client.search_runs([client.get_experiment_by_name("lstm-state-study").experiment_id])
    parent = next(r for r in found if r.data.tags.get("study.kind") == "sweep" and "study" not in r.data.tags)
    jobs = [r for r in found if r.data.tags.get("study") == "echo"]
    assert sorted(r.data.tags["sweep.job"] for r in jobs) == ["echo.repeats=1", "echo.repeats=2"]
    assert {r.data.tags["mlflow.parentRunId"] for r in jobs} == {parent.info.run_id}

    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "CI": "true"}
    done = subprocess.run([sys.executable, "-m", "pipeline.tools.audit", parent.info.run_id], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "bit-identical: 1/1 repeats" in done.stdout and "bit-identical: 2/2 repeats" in done.stdout


@pytest.mark.slow
def test_a_sweep_over_model_settings_runs_a_panel_per_job_and_sets_their_answers_side_by_side(tmp_path):
    # the lag, the model setting that changes the data's shape (units sweep through the very same machinery)
    run_sweep(tmp_path, "panel=quick", "model.lag=1,3", "panel.repeats=2", "panel.baselines=none",
              "regime=[stateful,stateless]")

    results = pd.read_csv(tmp_path / "sweep" / "results.csv")
    assert results.job.unique().tolist() == ["model.lag=1", "model.lag=3"]
    assert set(results.contrast.astype(str)) == {"1"}
    summary = pd.read_csv(tmp_path / "sweep" / "summary.csv")
    assert summary.columns.tolist() == ["contrast", "claim", "model.lag=1", "model.lag=3"] and len(summary) == 1
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    found = client.search_runs([client.get_experiment_by_name("lstm-state-study").experiment_id])
    parent = next(r for r in found if r.data.tags.get("study.kind") == "sweep")
    panels = [r for r in found if r.data.tags.get("study.kind") == "panel" and "series" not in r.data.tags]
    assert sorted(r.data.tags["sweep.job"] for r in panels) == ["model.lag=1", "model.lag=3"]
    assert {r.data.tags["mlflow.parentRunId"] for r in panels} == {parent.info.run_id}


def test_a_sweep_across_studies_is_refused_before_any_study_runs(tmp_path):
    sweep_dir = f"hydra.sweep.dir={tmp_path / 'sweep'}"
    cmd = [sys.executable, "-m", "pipeline.tools.sweep", "-m", "study=echo,sine", sweep_dir]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    done = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "a sweep runs one study" in done.stderr
    assert not list((tmp_path / "sweep").glob("*/reports"))  # no job ran its study
