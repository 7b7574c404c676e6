from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.engines.base import Problem
from pipeline.tools import bench


def test_law_summary_tells_equal_from_shifted_distributions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(100, 5, 200), rng.normal(100, 5, 200)
    same = bench.law_summary(a, b)
    shifted = bench.law_summary(a, b + 5)
    assert same["ks_p"] > 0.05 and same["mannwhitney_p"] > 0.05
    assert shifted["ks_p"] < 1e-6 and shifted["mannwhitney_p"] < 1e-6


def test_mean_ci_covers_the_mean_and_narrows_with_n():
    rng = np.random.default_rng(1)
    small, large = rng.normal(10, 2, 30), rng.normal(10, 2, 3000)
    m, low, high = bench.mean_ci(small)
    assert low < m < high
    _, low_l, high_l = bench.mean_ci(large)
    assert high_l - low_l < (high - low) / 5
    assert low_l < 10 < high_l


def test_lengthened_repeats_the_training_rows_only():
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    p = Problem(x, np.arange(3, dtype=np.float32), x[:1], np.zeros(1, np.float32))
    longer = bench.lengthened(p, 3)
    assert longer.x_train.shape == (9, 2) and longer.y_train.shape == (9,)
    np.testing.assert_array_equal(longer.x_train[3:6], x)
    assert longer.x_test is p.x_test


def _numbers(line: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", line)]


@pytest.mark.slow
def test_bench_prints_every_section(capsys):
    bench.main(
        [
            "regime=[stateless,stateful]", "engine.workers=1",  # Hydra overrides go first (a pair, for the panel)
            "--regime", "stateless", "--repeats", "20", "--big-repeats", "24", "--cell-replicas", "16",
            "--cell-rounds", "2", "--epochs", "2", "--keras-epochs", "1", "--replicas", "1", "20",
            "--scaling-epochs", "1", "2", "--lengths", "1", "2", "--base-replicas", "8", "--base-epochs", "1",
            "--law", "--law-repeats", "3", "--law-workers", "1", "--law-regimes", "stateless", "--panel", "quick",
        ]
    )
    out = capsys.readouterr().out
    study = out[out.index("study: 2 regimes x 20 repeats x 2 epochs (2 distinct training procedures)") :]
    rows = {line.split()[0]: float(line.split()[1]) for line in study.splitlines()[2:4]}
    assert set(rows) == {"stateless", "stateful"}
    assert all(20 < rmse < 1000 for rmse in rows.values())
    assert re.search(r"train stage [\d.]+ s .* forecasts included\), scoring [\d.]+ s; peak memory [\d.]+ GiB", out)
    assert "study: 2 regimes x 24 repeats x 2 epochs" in out
    cell = out[out.index("cost per replica-step on stateless, 16 replicas (CPU time, one thread, best of 2 ") :]
    engine_ns, reference_ns, cell_ratio = (_numbers(line)[0] for line in cell.splitlines()[1:4])
    assert engine_ns > 0 and reference_ns > 0 and cell_ratio == pytest.approx(engine_ns / reference_ns, rel=0.01)
    throughput = out[out.index("throughput on stateless") :]
    assert float(re.search(r"ratio:\s+([\d.e+]+)x", throughput).group(1)) > 1  # faster than Keras, even here
    assert "scaled linearly to 2 epochs" in out
    scaling = out[out.index("scaling on stateless") :]
    assert [_numbers(line)[:2] for line in scaling.splitlines()[2:6]] == [[1, 1], [20, 1], [8, 1], [8, 2]]
    assert "training rows" in scaling and re.search(r"^\s+44\s+[\d.e-]+$", scaling, re.M)
    law = out[out.index("law: 3 models") :]
    law_rows = [line for line in law.splitlines() if line.strip().startswith("stateless")]
    assert [line.split()[1] for line in law_rows] == ["vectorized", "keras"]
    p_values = _numbers(law_rows[0])[-2:]
    assert all(0 <= p <= 1 for p in p_values)
    panel = out[out.index("panel quick: 2 series, ") :].splitlines()
    assert re.search(r"models \(series x origins x regimes x repeats\), 2 epochs, baselines none", panel[0])
    assert re.search(r"^\s+[\d.]+ s, [\d.e+]+ models/s \([\d.e+]+x the keras engine's", panel[1])
    targets = out[out.index("targets (measured / target") :].splitlines()[2:]
    assert [line.split()[0] for line in targets] == ["train", "cost", "models/s", "train", "peak", "panel"]
    assert all(line.split()[-1] in ("met", "missed") for line in targets)
    assert _numbers(targets[1])[-1] == pytest.approx(cell_ratio / 1.3, rel=0.01)


def test_dvc_stages_reads_what_dvc_ran_skipped_or_restored_and_until_when():
    lines = [
        (0.5, "Stage 'fetch' didn't change, skipping\n"),
        (1.0, "Running stage 'train':\n"),
        (1.1, "> python -m pipeline.stages.train\n"),
        (1.2, "train: Running stage 'x' is what a stage's own output may say mid-line\n"),
        (9.0, "Stage 'evaluate' is cached - skipping run, checking out outputs\n"),
        (10.0, "Running stage 'compare':\n"),
        (14.0, "Updating lock file 'dvc.lock'\n"),
    ]
    found = bench.dvc_stages(lines, end=15.0)
    assert [(s.name, s.outcome) for s in found] == [
        ("fetch", "skipped"), ("train", "ran"), ("evaluate", "restored"), ("compare", "ran")]
    assert [s.seconds for s in found] == pytest.approx([0.5, 8.0, 1.0, 5.0])
    assert bench.dvc_stages([(1.0, "nothing to reproduce\n")], end=2.0) == []


def test_stage_commands_come_from_dvc_yaml(tmp_path):
    from pipeline.params import PROJECT_ROOT

    commands = bench.stage_commands(PROJECT_ROOT / "dvc.yaml")
    for name in ("fetch", "difference", "scale", "frame", "train", "evaluate", "compare", "report"):
        assert commands[name] == f"python -m pipeline.stages.{name}"
    (tmp_path / "dvc.yaml").write_text("stages:\n  a:\n    cmd: echo one\n  b:\n    cmd: echo two\n    deps: [x]\n")
    assert bench.stage_commands(tmp_path / "dvc.yaml") == {"a": "echo one", "b": "echo two"}


def test_stage_targets_are_the_issues_bounds_as_ratios(capsys):
    timing = bench.StagesTiming(
        repro_s=45.0, dvc=[], standalone={"fetch": 1.0, "evaluate": 2.0, "compare": 6.0, "track": 4.0,
                                          "baselines": 2.0, "report": 0.5}, numpy_s=0.25, overrides=())
    rows = bench.stage_targets(timing)
    assert rows == [  # compare and evaluate by their own bounds; baselines and track printed, held to none
        ("dvc repro compare, fresh clone (s)", 45.0, 30.0, True), ("compare stage (s)", 6.0, 3.0, True),
        ("evaluate stage (s)", 2.0, 4.0, True), ("fetch minus bare numpy import (s)", 0.75, 1.0, True),
        ("report minus bare numpy import (s)", 0.25, 1.0, True),
    ]
    bench.report_targets(rows)
    table = {line.split("(s)")[0].strip(): line.split()[-2:] for line in capsys.readouterr().out.splitlines()[3:]}
    assert table["dvc repro compare, fresh clone"] == ["1.5", "missed"]
    assert table["evaluate stage"] == ["0.5", "met"]
    assert table["fetch minus bare numpy import"] == ["0.75", "met"]
    overridden = bench.StagesTiming(10.0, [], {}, 0.25, overrides=("repeats=20",))
    assert bench.stage_targets(overridden) == [("dvc repro compare, fresh clone, overridden (s)", 10.0, 30.0, True)]


def _git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path):
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("[core]\n    analytics = false\n")
    (tmp_path / "params.yaml").write_text("repeats: 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "first")
    return tmp_path


def test_fresh_clone_is_head_in_a_folder_removed_afterwards_and_warns_of_uncommitted_changes(repo, capsys):
    (repo / "params.yaml").write_text("repeats: 2\n")
    with bench.fresh_clone(repo) as clone:
        assert (clone / "params.yaml").read_text() == "repeats: 1\n"
        site = (clone / ".dvc" / "config.local").read_text().split("site_cache_dir = ")[1].strip()
        assert Path(site).parent == clone.parent  # DVC's site cache inside the temporary folder too
    assert not clone.parent.exists()
    warning = capsys.readouterr().out
    assert warning.startswith("warning: 1 tracked files have uncommitted changes (params.yaml)") and "HEAD" in warning
    (repo / "params.yaml").write_text("repeats: 1\n")
    with bench.fresh_clone(repo):
        pass
    assert capsys.readouterr().out == ""


def test_fresh_clone_outside_a_git_checkout_says_so(tmp_path):
    with pytest.raises(bench.StageError, match="--stages clones the git checkout the bench runs from"), \
            bench.fresh_clone(tmp_path):
        pass


def test_clone_env_runs_this_interpreter_on_the_clones_code_without_the_callers_tracking(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://team-server:5000")
    monkeypatch.setenv("DVC_ROOT", "/elsewhere")
    env = bench.clone_env(tmp_path)
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert env["PYTHONPATH"] == str(tmp_path)
    assert "MLFLOW_TRACKING_URI" not in env and "DVC_ROOT" not in env


def test_a_failing_command_is_one_line_naming_it_with_its_last_output(tmp_path):
    with pytest.raises(bench.StageError, match=r"`echo a; echo b >&2; exit 3` failed .* \(exit 3\): a \| b$"):
        bench.best_wall("echo a; echo b >&2; exit 3", tmp_path, dict(os.environ), runs=2)


@pytest.mark.slow
def test_timed_repro_reads_a_real_dvc_runs_stages_in_a_fresh_clone(repo):
    (repo / "dvc.yaml").write_text(
        "stages:\n"
        "  first:\n    cmd: python -c \"open('a', 'w').write('1')\"\n    outs: [a]\n"
        "  compare:\n    cmd: python -c \"open('b', 'w').write(open('a').read())\"\n    deps: [a]\n    outs: [b]\n"
        "  track:\n    cmd: python -c \"open('c', 'w').write(open('b').read())\"\n    deps: [b]\n    outs: [c]\n"
    )
    _git(repo, "add", "dvc.yaml")
    _git(repo, "commit", "-qm", "stages")
    with bench.fresh_clone(repo) as clone:
        env = bench.clone_env(clone)
        seconds, reached = bench.timed_repro(clone, env)
        assert [(s.name, s.outcome) for s in reached] == [("first", "ran"), ("compare", "ran"), ("track", "ran")]
        assert 0 < sum(s.seconds for s in reached) < seconds
        assert (clone.parent / "dvc-site").is_dir()  # DVC's site cache is the clone's, not the machine's
        _, again = bench.timed_repro(clone, env)
        assert [(s.name, s.outcome) for s in again] == [("first", "skipped"), ("compare", "skipped"),
                                                        ("track", "skipped")]
        (clone / "dvc.yaml").write_text("stages:\n  track:\n    cmd: python -c \"raise SystemExit('no data')\"\n")
        with pytest.raises(bench.StageError, match=r"`dvc repro track` failed .*no data"):
            bench.timed_repro(clone, env)
    assert not (repo / "a").exists()  # DVC ran in the clone only


def test_report_stages_prints_what_dvc_did_and_each_stage_against_the_numpy_import(monkeypatch, capsys):
    timing = bench.StagesTiming(
        45.0, [bench.DvcStage("fetch", "ran", 2.0), bench.DvcStage("train", "ran", 20.0),
               bench.DvcStage("compare", "skipped", 0.25), bench.DvcStage("track", "ran", 8.0)],
        {"fetch": 1.0, "compare": 5.0, "track": 7.5, "report": 1.5}, 0.5, ())
    monkeypatch.setattr(bench, "measure_stages", lambda *_: timing)
    assert bench.report_stages(Path("/repo"), [], 2) is timing
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "stages, fresh clone of /repo (as committed): dvc repro track 45.0 s wall, compare done at " \
                     "37.0 s; ran fetch, train, track; skipped compare"
    assert bench.stage_targets(timing)[0] == ("dvc repro compare, fresh clone (s)", 37.0, 30.0, True)
    rows = {line.split()[0]: line.split()[1:] for line in out[3:8]}
    assert rows == {"fetch": ["ran", "2", "1", "0.5"], "train": ["ran", "20", "in-process,", "below", "-"],
                    "compare": ["skipped", "0.25", "5", "4.5"], "track": ["ran", "8", "7.5", "7"],
                    "report": ["-", "-", "1.5", "1"]}
