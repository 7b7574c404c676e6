"""dvc.yaml knows every input: each stage's deps hold its module's whole import closure within pipeline/; and
dvc.lock records every stage whose outputs are committed against the files of this tree."""

import ast
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline import studies
from pipeline.params import PROJECT_ROOT

STAGES = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"]


def module_file(name: str) -> Path | None:
    """The file of module ``name`` when it lies in this project's ``pipeline`` package."""
    if name.split(".")[0] != "pipeline":
        return None
    base = PROJECT_ROOT / name.replace(".", "/")
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


def imported(path: Path, package: str) -> list[str]:
    """Every module an import in ``path`` may name (``from a import b``: ``a`` and ``a.b``), at any depth."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            base = ".".join(filter(None, [base, node.module]))
            names += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return names


def has_code(path: Path) -> bool:
    """False for a package's ``__init__.py`` holding a docstring at most: importing it changes nothing."""
    body = ast.parse(path.read_text()).body
    only_docs = all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)
    return not (path.name == "__init__.py" and only_docs)


def closure(module: str) -> set[str]:
    """Project-relative files of ``module`` and of everything it imports within pipeline/, parents included."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        path = module_file(name)
        if path is None or path in seen:
            continue
        seen.add(path)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # importing a.b.c runs a and a.b first
        todo += imported(path, name if path.name == "__init__.py" else name.rpartition(".")[0])
    return {p.relative_to(PROJECT_ROOT).as_posix() for p in seen if has_code(p)}


def stage_module(stage: dict) -> str:
    words = stage["cmd"].split()
    return words[words.index("-m") + 1]


def covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("name", STAGES)
def test_every_imported_module_is_a_dependency(name):
    deps = STAGES[name]["deps"]
    missing = sorted(f for f in closure(stage_module(STAGES[name])) if not covered(f, deps))
    assert not missing, f"dvc.yaml stage {name!r} imports but does not depend on: add {missing} to its deps"


@pytest.mark.parametrize("name", STAGES)
def test_no_stale_code_dependency(name):
    needed = closure(stage_module(STAGES[name]))
    stale = [d for d in STAGES[name]["deps"] if d.endswith(".py") and d not in needed]
    assert not stale, f"dvc.yaml stage {name!r} depends on {stale}, which it no longer imports"


def test_closure_follows_imports_inside_functions_and_parent_packages():
    found = closure("pipeline.stages.track")
    assert {"pipeline/tracking.py", "pipeline/analysis/stats.py", "pipeline/params.py"} <= found  # run()'s import
    assert "pipeline/stages/__init__.py" not in found  # a docstring only


def test_fetch_tracks_the_users_file_and_only_the_report_stage_the_other_studies():
    assert "${data.path}" in STAGES["fetch"]["deps"]
    listed = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())["report"]["studies"]
    sections = [f"${{paths.{name}_{part}}}" for name in listed for part in ("report", "plot")]
    shampoo = ["${paths.shampoo_report}", "${paths.boxplot}", "${paths.se_plot}", "${paths.forecast_plot}"]
    assert [d for d in STAGES["report"]["deps"] if d.startswith("${")] == shampoo + sections  # config's order
    for name, stage in STAGES.items():  # `dvc repro compare` must never run the other studies' stages
        if name != "report" and name not in studies.NAMES:
            assert not [d for d in stage["deps"] if d.startswith(tuple(f"${{paths.{s}_" for s in studies.NAMES))]


def committed(path: str) -> bool:
    """Whether git tracks ``path`` (a file, or files under a folder): what a fresh clone has without running."""
    found = subprocess.run(["git", "ls-files", "--", path], cwd=PROJECT_ROOT, capture_output=True, text=True)
    return bool(found.stdout.strip())


def test_every_stage_with_committed_outputs_is_recorded_against_this_tree():
    """`dvc status` of each stage whose outputs are all in git: a fresh clone skips it only while its deps, params
    and outputs are what dvc.lock recorded. A commit that edits shared code without refreshing the lock would make
    every fresh clone rerun the stage (the other studies: an hour). A dep that is another stage's cached output
    (absent from git) must be recorded as that stage recorded it."""
    if shutil.which("git") is None or not (PROJECT_ROOT / ".git").exists():
        pytest.skip("not a git checkout: which outputs are committed is unknown")
    from dvc.repo import Repo

    lock = yaml.safe_load((PROJECT_ROOT / "dvc.lock").read_text())["stages"]
    produced = {out["path"]: out.get("md5") for entry in lock.values() for out in entry.get("outs", [])}
    stale = {}
    with Repo(str(PROJECT_ROOT)) as repo, repo.lock:
        for stage in repo.index.stages:
            if not stage.outs or not all(not o.use_cache and committed(o.def_path) for o in stage.outs):
                continue  # a fresh clone runs it anyway
            recorded = {dep["path"]: dep.get("md5") for dep in lock.get(stage.name, {}).get("deps", [])}
            found = []
            for change in stage.status().get(stage.name, []):
                if isinstance(change, dict) and "changed deps" in change:
                    change = {path: why for path, why in change["changed deps"].items()
                              if not (why == "deleted" and not committed(path) and path in produced
                                      and produced[path] == recorded.get(path))}
                    change = {"changed deps": change} if change else None
                if change:
                    found.append(change)
            if found:
                stale[stage.name] = found
    assert not stale, (
        f"dvc.lock is stale for {sorted(stale)}: {stale}. If a stage's outputs cannot change (wording, code its "
        "results do not touch), record them as they are: dvc commit -f <stage>; else rerun it: dvc repro <stage>; "
        "then commit dvc.lock (and the outputs).")
