import json
import os
import shutil
import sqlite3
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from pipeline.params import PROJECT_ROOT, compose_config
from pipeline.tools import drift, reproduce

SCRIPT = PROJECT_ROOT / "scripts" / "reproduce"


def git(root: Path, *args: str) -> str:
    ident = ("-c", "user.name=t", "-c", "user.email=t@t")
    return subprocess.run(["git", *ident, *args], cwd=root, check=True, capture_output=True, text=True).stdout


# ---------------------------------------------------------------------------------------------- platform


def test_the_libraries_are_the_pinned_runtime_dependencies_as_installed(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\ndependencies = ["pytest>=8", "no-such-distribution-here; extra == \'x\'"]\n'
        '[project.optional-dependencies]\ndev = ["ruff"]\n'
    )
    (tmp_path / "constraints.txt").write_text("Pluggy==0.1\npytest==0.1  # pinned, not installed\nruff==0.1\n")
    versions = reproduce.runtime_versions(tmp_path)
    # pytest and, through it, pluggy; not iniconfig (not pinned), ruff (an extra) nor the marker-excluded one
    assert versions == {"pluggy": metadata.version("pluggy"), "pytest": pytest.__version__}


def test_the_fingerprint_is_stable_and_its_key_moves_with_any_library():
    first, again = reproduce.platform_fingerprint(PROJECT_ROOT), reproduce.platform_fingerprint(PROJECT_ROOT)
    assert first == again and reproduce.cache_key(first) == reproduce.cache_key(again)
    assert {"system", "machine", "libc", "python", "cpu", "blas", "libraries"} <= set(first) and first["blas"]
    assert first["libraries"]["numpy"] == __import__("numpy").__version__

    moved = {**first, "libraries": {**first["libraries"], "numpy": "0.0.1"}}
    assert reproduce.cache_key(moved) != reproduce.cache_key(first)
    numpy = first["libraries"]["numpy"]
    assert reproduce.platform_differences(first, moved) == [f"libraries.numpy: {numpy} in the reference, 0.0.1 here"]


def test_the_cpu_is_its_vendor_and_vector_instruction_sets(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    processor = "vendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 fma avx512f lm sse\n"
    cpuinfo.write_text(processor + "\n" + processor)  # one block per core
    assert reproduce.cpu_features(cpuinfo) == "AuthenticAMD avx2 avx512f fma sse sse2"
    cpuinfo.write_text(processor.replace(" avx512f", ""))
    assert reproduce.cpu_features(cpuinfo) == "AuthenticAMD avx2 fma sse sse2"


# --------------------------------------------------------------------------------------------- the steps


def test_the_copy_is_the_working_tree_without_ignored_files(tmp_path):
    project, work = tmp_path / "project", tmp_path / "work"
    (project / "conf").mkdir(parents=True)
    work.mkdir()
    (project / ".gitignore").write_text("/outputs/\n")
    (project / "conf" / "a.yaml").write_text("x: 1\n")
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "a")
    (project / "conf" / "a.yaml").write_text("x: 2\n")  # edited, not committed
    (project / "conf" / "b.yaml").write_text("y: 1\n")  # new, not committed
    (project / "outputs").mkdir()
    (project / "outputs" / "big.bin").write_text("ignored")

    uncommitted = reproduce.copy_tree(project, work)

    assert sorted(uncommitted) == ["conf/a.yaml", "conf/b.yaml"]
    assert (work / "conf" / "a.yaml").read_text() == "x: 2\n" and (work / "conf" / "b.yaml").is_file()
    assert not (work / "outputs").exists()
    assert git(work, "status", "--porcelain") == "" and len(git(work, "log", "--oneline").splitlines()) == 1


def fake_audit(root: Path) -> Path:
    """An empty ``pipeline.tools`` package under ``root``, for a stand-in ``audit.py`` to be written into."""
    tools = root / "pipeline" / "tools"
    tools.mkdir(parents=True)
    for package in (tools.parent, tools):
        (package / "__init__.py").write_text("")
    return tools / "audit.py"


@pytest.mark.parametrize(
    ("exit_status", "prints", "expect"),
    [(0, "bit-identical: 4/4 repeats", None),
     (1, "MISMATCH: 1/4 repeats differ", "reports/results.csv: MISMATCH: 1/4 repeats differ")],
)
def test_the_audit_outcome_is_read_from_its_exit_status(tmp_path, exit_status, prints, expect):
    fake = fake_audit(tmp_path)  # stands in for python -m pipeline.tools.audit in the copy
    fake.write_text(f"import sys\nprint({prints!r})\nsys.exit({exit_status})\n")
    runner = reproduce.Runner(tmp_path, dict(os.environ), tmp_path / "log")
    assert reproduce.audit(runner, ["reports/results.csv"]) == expect


@pytest.mark.parametrize(
    "script",
    ["raise RuntimeError('boom')",  # exit status 1, as a mismatch, but no MISMATCH line
     "print('could not re-run: RuntimeError: boom'); sys.exit(2)"],  # the audit's own failure
)
def test_an_audit_that_crashes_is_an_error_not_nondeterminism(tmp_path, script):
    fake = fake_audit(tmp_path)
    fake.write_text(f"import sys\nif 'echo' in sys.argv[-1]:\n    {script}\nprint('bit-identical: 2/2 repeats')\n")
    runner = reproduce.Runner(tmp_path, dict(os.environ), tmp_path / "log")
    with pytest.raises(reproduce.ReproduceError, match=r"audit of reports/echo\.csv failed with exit status"):
        reproduce.audit(runner, ["reports/results.csv", "reports/echo.csv"])
    assert "RuntimeError: boom" in (tmp_path / "log").read_text()


def test_a_missing_reference_says_how_to_make_one(tmp_path):
    with pytest.raises(reproduce.ReproduceError, match=r"scripts/reproduce --refresh"):
        reproduce.load_manifest(tmp_path / "reference")


def test_the_summary_lists_what_drifted_and_goes_to_the_github_job_page(tmp_path, monkeypatch):
    page = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(page))
    moved = drift.Change("metric", "reports/metrics.json:stateful.mean", 103.5, 104.0)
    verdict = drift.Verdict("exact", (moved,), ())
    assert reproduce.publish(tmp_path, reproduce.DRIFT, ["tolerance: exact"], verdict) == reproduce.DRIFT
    text = (tmp_path / "summary.md").read_text()
    assert text.startswith("# Scheduled reproduction: DRIFT") and moved.describe() in text and page.read_text() == text
    record = json.loads((tmp_path / "verdict.json").read_text())
    assert record["exit"] == 3 and record["drift"] == [moved.describe()] and record["mode"] == "exact"


def test_upgrade_without_refresh_is_refused_before_anything_runs():
    done = subprocess.run([SCRIPT, "--upgrade"], capture_output=True, text=True)
    assert done.returncode == 2 and "give --refresh too" in done.stderr


# ------------------------------------------------------------------------------------------- end to end

TINY_CI = """\
# @package _global_
defaults:
  - override /regime: [stateful, stateless]
repeats: 2
model: {epochs: 2}
data: {source: packaged}
stats: {bootstrap_resamples: 100, se_draws: 100}
"""


def project_copy(root: Path) -> Path:
    """A git repository holding this project's working tree, with a tiny CI preset and only the shampoo study
    (the other studies' stages add tables, not mechanism, and would triple the test's time; the report stage
    reads their committed sections)."""
    listed = git(PROJECT_ROOT, "ls-files", "--cached", "--others", "--exclude-standard").splitlines()
    for name in listed:
        if (PROJECT_ROOT / name).is_file() and not name.startswith(f"{reproduce.REFERENCE}/"):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / name, root / name)
    (root / "conf" / "experiment" / "ci.yaml").write_text(TINY_CI)
    pipeline = yaml.safe_load((root / "dvc.yaml").read_text())
    stages = pipeline["stages"]
    for name in [n for n, stage in stages.items() if "pipeline.studies." in stage["cmd"]]:
        del stages[name]
    (root / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "the project")
    return root


def run_reproduce(project: Path, out: Path, *args: str) -> tuple[int, str]:
    cache = str(out.parent / "cache")
    cmd = [sys.executable, "-m", "pipeline.tools.reproduce", "--out", str(out), "--cache", cache, *args]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CI": "true"}
    done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.slow
def test_reproduce_passes_on_a_clean_copy_and_fails_naming_the_metric_after_a_parameter_change(tmp_path):
    project = project_copy(tmp_path / "project")

    status, output = run_reproduce(project, tmp_path / "refresh", "--refresh")
    assert status == reproduce.PASS, output
    manifest = json.loads((project / "reference" / "manifest.json").read_text())
    assert manifest["metrics"] == ["reports/metrics.json"] and manifest["tables"] == ["reports/results.csv"]
    assert manifest["params"]["repeats"] == 2 and (project / "reference" / "reports" / "results.csv").is_file()
    git(project, "add", "reference")
    git(project, "commit", "-qm", "the reference")

    out = tmp_path / "pass"
    status, output = run_reproduce(project, out)
    assert status == reproduce.PASS, output
    assert "Stage 'train' is cached - skipping run" in output  # unchanged inputs are restored, not retrained
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["status"] == "PASS" and verdict["mode"] == "exact" and verdict["drift"] == []
    assert (out / "report" / "report.html").is_file() and (out / "logs" / "reproduce.log").is_file()
    with sqlite3.connect(out / "mlflow" / "mlflow.db") as store:  # this reproduction's runs, and the audit's tags
        assert store.execute("select count(*) from runs").fetchone()[0] == 3  # the study and its two regimes
        assert store.execute("select count(*) from tags where key = 'audit'").fetchone()[0] == 2

    config = project / "conf" / "config.yaml"
    text = config.read_text()
    assert text.count("learning_rate: 0.001 ") == 1
    config.write_text(text.replace("learning_rate: 0.001 ", "learning_rate: 0.01 "))  # edited, not committed
    out = tmp_path / "drift"
    status, output = run_reproduce(project, out)
    assert status == reproduce.DRIFT, output
    assert "parameter model.learning_rate: 0.001 -> 0.01" in output
    assert "metric reports/metrics.json:stateful.mean: " in output  # the metric that moved, and by how much
    assert "uncommitted changes reproduced: conf/config.yaml" in output
    drifted = json.loads((out / "verdict.json").read_text())["drift"]
    assert any(line.startswith("metric reports/metrics.json:stateless.mean: ") and "%)" in line for line in drifted)


def test_the_ci_preset_is_every_study_as_configured_with_fewer_repeats_on_the_fast_engine():
    default = OmegaConf.to_container(compose_config(), resolve=True)
    ci = OmegaConf.to_container(compose_config(list(reproduce.OVERRIDES)), resolve=True)
    changed = {c.name for c in drift.param_changes(default, ci)}
    assert changed == {"repeats", "alphabet.repeats", "echo.repeats", "sine.repeats"}
    assert ci["engine"]["name"] == "vectorized"  # minutes, where the keras engine takes hours
    for name in changed:
        section = name.removesuffix("repeats").rstrip(".")
        small, full = (cfg[section]["repeats"] if section else cfg["repeats"] for cfg in (ci, default))
        assert 2 <= small < full, name  # at least two, so each regime's outcomes can be tested
