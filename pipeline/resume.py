"""Resume: every finished chunk of replicas, and of their forecasts, is kept outside the stage outputs.

Engines train (and forecast) the repeats of a regime in chunks of ``resume.chunk_size`` seeds, at
fixed boundaries (repeats 0..k-1, k..2k-1, ...), and each finished chunk is cached at once. A killed
``dvc repro`` or sweep therefore loses at most the chunks in flight: rerun, it reuses every finished
chunk and computes only the missing ones. DVC deletes a stage's outputs before rerunning it and a
rerun sweep gets fresh job folders, so the cache lives under the project root (``resume.cache``),
shared by ``dvc repro``, every sweep job and queued experiments.

A chunk's key hashes everything that determines its bits: the engine's config and source code, the
numeric libraries' versions, the regime record, the model spec, the exact training arrays, and its
seeds (forecasts: the trained chunk's own arrays). A hit is therefore the same result, and any change
is a miss. Writes are atomic and keyed by content, so parallel jobs share one cache safely.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from omegaconf import DictConfig, OmegaConf

from pipeline import io
from pipeline.engines.base import ModelSpec, Problem, TrainedReplicas
from pipeline.provenance import NUMERIC_LIBRARIES, code_fingerprint, digest, library_versions, project_root
from pipeline.regimes import StateRegime

# Sources whose change may change a replica's bits (the train stage's code dependencies in dvc.yaml).
ENGINE_CODE = ("engines", "seeds.py", "regimes.py")
T = TypeVar("T")


@dataclass(frozen=True)
class ChunkCache:
    """Content-addressed ``.npz`` files under ``directory``; ``None`` turns caching off (the audit)."""

    directory: Path | None
    chunk_size: int

    def chunks(self, n: int) -> Iterator[slice]:
        """Fixed chunk boundaries, so a resumed run trains exactly the chunks an uninterrupted one does."""
        for start in range(0, n, self.chunk_size):
            yield slice(start, min(start + self.chunk_size, n))

    def get_or_compute(
        self, kind: str, key: str, compute: Callable[[], T], load: Callable[[Path], T], save: Callable[[T, Path], None]
    ) -> tuple[T, bool]:
        """The entry ``key`` of ``kind`` and True, or ``compute()`` (saved at once when caching is on) and False."""
        if self.directory is None:
            return compute(), False
        path = self.directory / kind / key[:2] / f"{key}.npz"
        if path.is_file():
            try:
                return load(path), True
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
                print(f"resume: ignoring unreadable cache entry {path} ({err}); computing it again")
        value = compute()
        save(value, path)
        return value, False


def cache_from_config(cfg: DictConfig) -> ChunkCache:
    size = cfg.resume.chunk_size
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"resume.chunk_size must be a positive integer, got {size!r}: set e.g. resume.chunk_size=10.")
    directory = project_root() / cfg.resume.cache if cfg.resume.enabled else None
    return ChunkCache(directory, size)


def replica_identity(engine_cfg: DictConfig, regime: StateRegime, spec: ModelSpec, problem: Problem) -> str:
    """Hash of everything but the seed that determines a trained replica (the regime's name is not part of it)."""
    versions = library_versions()
    record = {
        "engine": OmegaConf.to_container(engine_cfg, resolve=True),
        "code": code_fingerprint(*ENGINE_CODE),
        "libraries": {name: versions[name] for name in NUMERIC_LIBRARIES},
        "regime": {k: v for k, v in asdict(regime).items() if k != "name"},
        "model": asdict(spec),
    }
    return digest(record, (problem.x_train, problem.y_train, problem.x_test, problem.y_test))


def replicas_key(identity: str, seeds: np.ndarray) -> str:
    return digest({"identity": identity, "seeds": [int(s) for s in seeds]})


def forecasts_key(identity: str, trained: TrainedReplicas) -> str:
    arrays = [trained.seeds, trained.state_h, trained.state_c, *(trained.weights[k] for k in sorted(trained.weights))]
    return digest({"identity": identity, "forecast": True}, arrays)


def take(trained: TrainedReplicas, part: slice) -> TrainedReplicas:
    return TrainedReplicas(
        trained.seeds[part], {k: v[part] for k, v in trained.weights.items()},
        trained.state_h[part], trained.state_c[part], trained.losses[part],
    )


def concat(parts: list[TrainedReplicas]) -> TrainedReplicas:
    return TrainedReplicas(
        np.concatenate([p.seeds for p in parts]),
        {k: np.concatenate([p.weights[k] for p in parts]) for k in parts[0].weights},
        np.concatenate([p.state_h for p in parts]),
        np.concatenate([p.state_c for p in parts]),
        np.concatenate([p.losses for p in parts]),
    )


def save_forecasts(forecasts: np.ndarray, path: Path) -> None:
    io.save_arrays(path, {"forecasts": forecasts})


def load_forecasts(path: Path) -> np.ndarray:
    return io.load_arrays(path)["forecasts"]
