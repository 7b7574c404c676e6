"""Resume: every finished chunk of replicas, and of their forecasts, is kept outside the stage outputs.

Each distinct training procedure is trained over its seeds in chunks of ``resume.chunk_size`` seeds,
at fixed boundaries (repeats 0..k-1, k..2k-1, ...), and each finished chunk is cached. While a chunk
trains, the engine keeps a checkpoint of it after every epoch segment (about a second of work:
weights, Adam moments, state and losses so far, ``SegmentCheckpoints``). A killed ``dvc repro`` or
sweep therefore loses at most the segments in flight: rerun, it reuses every finished chunk, carries
on from every checkpoint, and the bits are those of an uninterrupted run. DVC deletes a stage's
outputs before rerunning it and a rerun sweep gets fresh job folders, so the cache lives under the
project root (``resume.cache``), shared by ``dvc repro``, every sweep job and queued experiments.

A chunk's key hashes everything that determines its bits: the engine's config and source code, the
numeric libraries' versions, the training procedure, the model spec, the exact training arrays, and
its seeds (forecasts: the whole regime record and the trained chunk's own arrays). A hit is
therefore the same result, and any change is a miss. Writes are atomic and keyed by content, so
parallel jobs share one cache safely.
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

    def _path(self, kind: str, key: str) -> Path:
        return self.directory / kind / key[:2] / f"{key}.npz"

    def lookup(self, kind: str, key: str, load: Callable[[Path], T]) -> T | None:
        """The entry ``key`` of ``kind``, or None (caching off, no entry, or an unreadable one)."""
        if self.directory is None:
            return None
        path = self._path(kind, key)
        if path.is_file():
            try:
                return load(path)
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
                print(f"resume: ignoring unreadable cache entry {path} ({err}); computing it again")
        return None

    def store(self, kind: str, key: str, value: T, save: Callable[[T, Path], None]) -> None:
        if self.directory is not None:
            save(value, self._path(kind, key))

    def get_or_compute(
        self, kind: str, key: str, compute: Callable[[], T], load: Callable[[Path], T], save: Callable[[T, Path], None]
    ) -> tuple[T, bool]:
        """The entry ``key`` of ``kind`` and True, or ``compute()`` (saved at once when caching is on) and False."""
        value = self.lookup(kind, key, load)
        if value is not None:
            return value, True
        value = compute()
        self.store(kind, key, value, save)
        return value, False

    def checkpoints(self) -> SegmentCheckpoints | None:
        """Where engines keep unfinished chunks between epoch segments; None when caching is off."""
        return None if self.directory is None else SegmentCheckpoints(self.directory / "segments")


@dataclass(frozen=True)
class SegmentCheckpoints:
    """An engine's ``Checkpoints``: one uncompressed archive per unfinished chunk (rewritten every segment,
    so kept cheap to write), replaced atomically, removed once the chunk's replicas are cached."""

    directory: Path

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.npz"

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {name: archive[name] for name in archive.files}
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            print(f"resume: ignoring unreadable checkpoint {path} ({err}); training that chunk from the start")
            return None

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        with io.atomic_path(self._path(key)) as tmp, open(tmp, "wb") as file:
            np.savez(file, **arrays)

    def discard(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def cache_from_config(cfg: DictConfig) -> ChunkCache:
    size = cfg.resume.chunk_size
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"resume.chunk_size must be a positive integer, got {size!r}: set e.g. resume.chunk_size=10.")
    directory = project_root() / cfg.resume.cache if cfg.resume.enabled else None
    return ChunkCache(directory, size)


def _identity(engine_cfg: DictConfig, spec: ModelSpec, record: dict, arrays: tuple[np.ndarray, ...]) -> str:
    versions = library_versions()
    return digest({
        "engine": OmegaConf.to_container(engine_cfg, resolve=True),
        "code": code_fingerprint(*ENGINE_CODE),
        "libraries": {name: versions[name] for name in NUMERIC_LIBRARIES},
        "model": asdict(spec),
        **record,
    }, arrays)


def _fields(regime: StateRegime) -> dict:
    return {k: v for k, v in asdict(regime).items() if k != "name"}


def replica_identity(engine_cfg: DictConfig, regime: StateRegime, spec: ModelSpec, problem: Problem) -> str:
    """Hash of everything but the seed that determines a replica's forecasts (the regime's name is not part of it)."""
    arrays = (problem.x_train, problem.y_train, problem.x_test, problem.y_test)
    return _identity(engine_cfg, spec, {"regime": _fields(regime)}, arrays)


def training_identity(engine_cfg: DictConfig, procedure: StateRegime, spec: ModelSpec, problem: Problem) -> str:
    """Hash of everything but the seed that determines a trained replica: the training procedure
    (``engines.base.training_procedure``: the regime fields training reads), the model, the training arrays,
    the engine and its code. Regimes that train identically share it, so they are trained once."""
    return _identity(engine_cfg, spec, {"procedure": _fields(procedure)}, (problem.x_train, problem.y_train))


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
