"""The GitHub Actions workflows: valid for GitHub's schema, clean for zizmor, and doing what the README says."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.params import PROJECT_ROOT

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent


def workflow(name: str) -> dict:
    spec = yaml.safe_load((WORKFLOWS / name).read_text())
    spec["on"] = spec.pop(True, spec.get("on"))  # YAML 1.1 reads the key `on` as true
    return spec


def check_schema(*paths: Path) -> subprocess.CompletedProcess:
    args = [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *paths]
    return subprocess.run(args, capture_output=True, text=True)


def zizmor(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([BIN / "zizmor", "--offline", "--no-progress", *paths], capture_output=True, text=True)


def test_the_workflows_are_valid_github_workflows():
    done = check_schema(*sorted(WORKFLOWS.glob("*.yml")))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_workflows_pass_zizmor():
    done = zizmor(WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("text", "linter"),
    [
        ("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    step:\n      - run: true\n", check_schema),
        (
            "on: pull_request_target\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
            "      - run: echo ${{ github.event.pull_request.title }}\n",
            zizmor,
        ),
    ],
    ids=["misspelt key", "template injection"],
)
def test_the_linters_reject_a_broken_workflow(tmp_path, text, linter):
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(text)
    assert linter(broken).returncode != 0


def test_reproduce_runs_weekly_and_on_demand_and_only_calls_the_script():
    spec = workflow("reproduce.yml")
    assert set(spec["on"]) == {"schedule", "workflow_dispatch"} and spec["on"]["schedule"][0]["cron"]
    steps = spec["jobs"]["reproduce"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    assert len(runs) == 1 and "scripts/reproduce" in runs[0] and "make" not in runs[0] and "dvc" not in runs[0]
    uploads = [s["with"] for s in steps if "upload-artifact" in s.get("uses", "")]
    assert {"reproduction-report", "mlflow-store", "reference"} == {u["name"] for u in uploads}
    assert any("/mlflow" in u["path"] for u in uploads) and any("/report" in u["path"] for u in uploads)


def test_reproduce_caches_are_keyed_on_the_pins_and_the_pipeline():
    steps = workflow("reproduce.yml")["jobs"]["reproduce"]["steps"]
    setup = next(s["with"] for s in steps if "setup-python" in s.get("uses", ""))
    assert setup["cache"] == "pip"
    assert {"constraints.txt", "pyproject.toml"} <= set(setup["cache-dependency-path"].split())
    cache = next(s["with"] for s in steps if "actions/cache" in s.get("uses", ""))
    assert cache["path"] == ".cache/reproduce"
    for part in ("constraints.txt", "pipeline/**", "dvc.yaml", "conf/**", "dvc.lock", "params.yaml"):
        assert part in cache["key"]
    assert cache["restore-keys"].strip() and cache["key"].startswith(cache["restore-keys"].strip())
    assert "conf/**" not in cache["restore-keys"]  # a fallback never crosses a change of code or pins


def test_tests_run_the_readme_test_command_on_pushes_and_pull_requests():
    spec = workflow("tests.yml")
    assert set(spec["on"]) == {"push", "pull_request"}
    runs = [s["run"] for s in spec["jobs"]["test"]["steps"] if "run" in s]
    assert runs == ["make test"] and "make test" in (PROJECT_ROOT / "README.md").read_text()
