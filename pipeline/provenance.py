"""Where a result came from: the project it belongs to, the code and libraries that made it, content hashes.

The resume cache keys its chunks with these facts (a chunk is reused only when nothing that
determines its bits changed) and tracking records the same facts as tags, so both agree.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from contextlib import suppress
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.params import PROJECT_ROOT

PACKAGE_DIR = Path(__file__).resolve().parent
# Import names of the libraries recorded with every run; those before the cut also key the resume cache,
# because a new version of them may change the bits a replica comes out with.
LIBRARIES = ("tensorflow", "keras", "numpy", "pandas", "sklearn", "scipy", "hydra", "omegaconf", "dvc", "mlflow")
NUMERIC_LIBRARIES = LIBRARIES[:3]
# Distributions known to install those import names: tried first, because asking every installed package
# which names it provides (``packages_distributions``) costs most of a second.
DISTRIBUTIONS = {"tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-macos"),
                 "sklearn": ("scikit-learn",), "hydra": ("hydra-core",)}


def project_root() -> Path:
    """The project whose shared state (MLflow store, resume cache) a run uses.

    DVC sets DVC_ROOT for every stage it runs; for a queued experiment, which runs in a temporary copy,
    it names the parent repository, so queued experiments share the store and cache of the project.
    """
    return Path(os.environ.get("DVC_ROOT", PROJECT_ROOT)).resolve()


@cache
def library_versions() -> dict[str, str]:
    """Installed version of each library in ``LIBRARIES``, by distribution (tensorflow-cpu, hydra-core ...)."""
    versions = {}
    for module in LIBRARIES:
        for name in DISTRIBUTIONS.get(module, (module,)):
            with suppress(metadata.PackageNotFoundError):
                versions[module] = metadata.version(name)
                break
        else:
            names = metadata.packages_distributions().get(module) or [module]
            versions[module] = metadata.version(names[0])
    return versions


@cache
def code_fingerprint(*relative: str) -> str:
    """sha256 of the Python sources under ``pipeline/<relative>`` (files or packages), path by path."""
    h = hashlib.sha256()
    for rel in relative:
        target = PACKAGE_DIR / rel
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        for path in files:
            h.update(str(path.relative_to(PACKAGE_DIR)).encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def digest(record: Mapping[str, Any], arrays: Iterable[np.ndarray] = ()) -> str:
    """sha256 of a JSON-able record and arrays (dtype, shape and bytes of each): a content key."""
    h = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode())
    for array in arrays:
        a = np.ascontiguousarray(array)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def git_state(repo: Path = PROJECT_ROOT) -> dict[str, str]:
    """Commit of the code that ran and whether tracked files differed from it; empty outside a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"commit": commit, "dirty": str(dirty).lower()}
