"""dvc.yaml knows every input: each stage's deps hold its module's whole import closure within pipeline/."""

import ast
from pathlib import Path

import pytest
import yaml

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
    found = closure("pipeline.stages.compare")
    assert {"pipeline/tracking.py", "pipeline/analysis/stats.py", "pipeline/params.py"} <= found  # main()'s import
    assert "pipeline/stages/__init__.py" not in found  # a docstring only


def test_fetch_tracks_the_users_file_and_compare_the_studies_sections():
    assert "${data.path}" in STAGES["fetch"]["deps"]
    assert {f"${{paths.{s}_report}}" for s in ("alphabet", "echo", "sine")} <= set(STAGES["compare"]["deps"])
