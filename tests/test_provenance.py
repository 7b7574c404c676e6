"""Provenance facts: the project root DVC names, content digests, library versions, git state."""

import subprocess

import numpy as np

from pipeline import provenance
from pipeline.params import PROJECT_ROOT


def test_project_root_is_dvc_root_when_dvc_runs_the_stage(monkeypatch, tmp_path):
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert provenance.project_root() == PROJECT_ROOT
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert provenance.project_root() == tmp_path.resolve()


def test_digest_tells_values_dtypes_shapes_and_records_apart():
    a = np.arange(4, dtype=np.float32)
    base = provenance.digest({"k": 1}, [a])
    assert base == provenance.digest({"k": 1}, [a.copy()])
    others = [
        provenance.digest({"k": 2}, [a]),
        provenance.digest({"k": 1}, [a.astype(np.float64)]),
        provenance.digest({"k": 1}, [a.reshape(2, 2)]),
        provenance.digest({"k": 1}, [np.nextafter(a, 10, dtype=np.float32)]),
    ]
    assert len({base, *others}) == 5


def test_library_versions_name_the_installed_distributions():
    versions = provenance.library_versions()
    assert set(versions) == set(provenance.LIBRARIES)
    assert versions["hydra"].startswith("1.3") and versions["tensorflow"].startswith("2.")


def test_code_fingerprint_follows_the_sources():
    fingerprint = provenance.code_fingerprint("engines", "seeds.py")
    assert fingerprint == provenance.code_fingerprint("engines", "seeds.py")
    assert fingerprint != provenance.code_fingerprint("engines")


def test_git_state_is_empty_outside_a_checkout_and_sees_edits_inside(tmp_path):
    assert provenance.git_state(tmp_path) == {}
    (tmp_path / "f").write_text("1")
    for cmd in (["init", "-q"], ["add", "f"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c"]):
        subprocess.run(["git", *cmd], cwd=tmp_path, check=True)
    state = provenance.git_state(tmp_path)
    assert len(state["commit"]) == 40 and state["dirty"] == "false"
    (tmp_path / "f").write_text("2")
    assert provenance.git_state(tmp_path)["dirty"] == "true"
