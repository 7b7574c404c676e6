"""MLflow tracking of every study run; the only module that imports mlflow.

The experiment is tagged as model training, so MLflow 3's UI opens it in its runs table, not in the GenAI
view. A study run (one ``dvc repro``, or one sweep) is a parent run holding the study's summary as metrics
(per regime ``rmse_mean/<regime>``, ``rmse_median/...``, ``rmse_sd/...``, ``share_worse_than_persistence/...``;
a sweep's with each job's label appended) and the verdicts as tags (``verdict.E1`` ...), so the runs table
compares repros, DVC experiments and sweeps. Each regime it trained is a child run holding the resolved
config that run used (flattened as params, whole as ``config.yaml``): its own regime, not the others', and
not the other write-ups' settings; the same statistics as headline metrics (``rmse_mean``, ...), every
repeat's RMSE as metric ``rmse_by_repeat`` at ``step=repeat`` and as a histogram, the training time (the
run's duration is the training's wall time), and as tags the base seed and every repeat's seed, the engine,
the data's sha256, the git commit, library versions and the DVC experiment name. Tables and plots are
artifacts: the study's on its parent (a sweep's under ``jobs/<job>/``), each regime's own on its child.

The store is ``tracking.store``, a SQLite file under the project root, unless MLFLOW_TRACKING_URI names
another (an MLflow server, for sweeps on a cluster). Parallel jobs share it safely: the database and the
experiment are created under a file lock before any run is logged (a sweep does it once, before its
jobs start), and MLflow itself waits on SQLite's lock for every write. ``serve`` runs an ``mlflow server``
on a store for as long as a block needs it (the screenshots tool, the server tests).

A store that cannot be reached or refuses this client (a server gone, its database down, wrong credentials) fails
every call with a one-line ``TrackingError`` that names the store, with any password in its URI masked, and the fix.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, wraps
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

import pandas as pd
import yaml
from filelock import FileLock
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.tracking.context.registry import resolve_tags
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME, MLFLOW_RUN_NOTE
from omegaconf import DictConfig, OmegaConf
from sqlalchemy.exc import OperationalError

from pipeline import studies
from pipeline.analysis import histogram
from pipeline.artifacts import paths
from pipeline.errors import TrackingError
from pipeline.io import read_json
from pipeline.params import ConfigError
from pipeline.provenance import file_sha256, git_state, library_versions, project_root

SEEDS_PER_TAG = 500  # a tag holds at most 8000 characters: seeds are split over tags "seeds.<first>-<last>"
# MLflow 3's UI opens an experiment without this tag in its GenAI view (traces), which hides the runs table.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
SUMMARY_STATS = {"mean": "rmse_mean", "50%": "rmse_median", "std": "rmse_sd", "min": "rmse_min",
                 "25%": "rmse_25pct", "75%": "rmse_75pct", "max": "rmse_max"}  # describe()'s rows -> metric names
PARENT_STATS = ("rmse_mean", "rmse_median", "rmse_sd", "share_worse_than_persistence")  # per regime on a parent
WORSE_THAN = "persistence"  # the baseline whose RMSE a repeat is counted as worse than
PER_REPEAT = "rmse_by_repeat"  # every repeat's RMSE at step=repeat: what the audit recomputes
SERIES_SPEC = "series.yaml"  # a panel series' run: its series file as the panel read it


@dataclass(frozen=True)
class StudyRuns:
    parent: str
    children: dict[str, str]  # regime -> run id


# ---------------------------------------------------------------------------------------------- the store


def tracking_uri(cfg: DictConfig) -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        return f"sqlite:///{(project_root() / cfg.tracking.store).resolve()}"
    if urlparse(uri).scheme in ("", "file"):
        raise ConfigError(
            f"MLFLOW_TRACKING_URI={uri} is a plain file store, which current MLflow refuses: use a database, "
            "e.g. sqlite:////abs/path/mlflow.db, or a server, e.g. http://127.0.0.1:5000."
        )
    return uri


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def _creation_lock(uri: str) -> contextlib.AbstractContextManager:
    """Two processes creating one SQLite database at once race on its schema: only one may do it at a time."""
    db = _sqlite_path(uri)
    if db is None:
        return contextlib.nullcontext()
    db.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(f"{db}.lock")


OFF = "or run without tracking: tracking.enabled=false"


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """Raise a TrackingError at once when an MLflow server does not answer (any HTTP answer will do), rather
    than after MLflow's minutes of retries."""
    if urlparse(uri).scheme not in ("http", "https"):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            pass
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise TrackingError(f"the MLflow tracking server {masked(uri)} is unreachable ({reason}): start it, point "
                            f"MLFLOW_TRACKING_URI at one that runs, {OFF}.") from None


def check_store_file(db: Path) -> None:
    """Raise a TrackingError naming the SQLite file and the fix when it cannot be written."""
    if db.exists() and not os.access(db, os.W_OK):
        raise TrackingError(f"the MLflow store {db} is read-only: make it writable (chmod u+w {db}), point "
                            f"MLFLOW_TRACKING_URI at another store, {OFF}.")
    if not os.access(db.parent if db.parent.exists() else project_root(), os.W_OK):
        raise TrackingError(f"the folder of the MLflow store {db} is not writable (SQLite writes its journal there): "
                            f"make it writable, set tracking.store elsewhere, {OFF}.")


def masked(uri: str) -> str:
    """``uri`` with its password, if any, replaced by ``***``: what messages may show."""
    parts = urlparse(uri)
    if parts.password is None:
        return uri
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def store_failure(uri: str, err: Exception) -> str | None:
    """Why the store at ``uri`` failed a request and what fixes it, in one line; None for any other error."""
    store, text = masked(uri), str(err)
    if isinstance(err, OperationalError):  # a database URI, e.g. postgresql://...: the database itself refused
        said = str(err.orig).strip().splitlines()[0] if err.orig else "no connection"
        return (f"the tracking database {store} refused the connection ({said}): start it (scripts/tracking-server "
                "up) or fix MLFLOW_TRACKING_URI, then run again.")
    if not isinstance(err, MlflowException):
        return None
    if err.error_code == "UNAUTHENTICATED":
        return (f"the tracking server {store} refused this client's credentials (HTTP 401): set "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to a user of the server's users file.")
    if err.error_code == "PERMISSION_DENIED":
        return (f"the tracking server {store} denied user {os.environ.get('MLFLOW_TRACKING_USERNAME')!r} this request "
                "(HTTP 403): ask its admin for EDIT permission on the experiment.")
    if "503" in text:
        return (f"the tracking server {store} cannot reach its database (HTTP 503): start it (scripts/tracking-server "
                "up on the server's machine), then run again.")
    if any(s in text for s in ("Failed to establish a new connection", "Connection refused", "timed out",
                               "Connection aborted", "RemoteDisconnected")):
        return (f"the tracking server {store} does not answer: start it (scripts/tracking-server up) or point "
                "MLFLOW_TRACKING_URI at one that runs, then run again; tracking.enabled=false runs without tracking.")
    return None


@contextlib.contextmanager
def _reported(uri: str) -> Iterator[None]:
    """Turn the store's failures (``store_failure``) into one-line ``TrackingError``s; let other errors through."""
    try:
        yield
    except (MlflowException, OperationalError) as err:
        problem = store_failure(uri, err)
        if problem is None:
            raise
        raise TrackingError(problem) from err


class _Guarded:
    """An MlflowClient whose every call reports the store's failures as one-line ``TrackingError``s."""

    def __init__(self, mlflow: MlflowClient, uri: str) -> None:
        self._mlflow, self._uri = mlflow, uri

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._mlflow, name)

        @wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            with _reported(self._uri):
                return method(*args, **kwargs)

        return call


@cache
def client(uri: str) -> MlflowClient:
    """A client of the store at ``uri``; the store's tables are created (under the lock) when it is new."""
    check_reachable(uri)
    db = _sqlite_path(uri)
    if db is not None:
        check_store_file(db)
    with _creation_lock(uri):
        try:
            with _reported(uri):
                mlflow = MlflowClient(tracking_uri=uri)
                mlflow.search_experiments(max_results=1)  # opens the store, creating or migrating its tables
        except TrackingError:
            raise
        except Exception as err:  # an SQL error from a damaged file, or a server that is not MLflow
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            if db is None:
                raise TrackingError(f"the MLflow store {masked(uri)} cannot be used ({first}): check "
                                    f"MLFLOW_TRACKING_URI, {OFF}.") from None
            raise TrackingError(f"the MLflow store {db} cannot be opened ({first}): move it aside "
                                f"(mv {db} {db}.broken) to start a new one, {OFF}.") from None
    return cast(MlflowClient, _Guarded(mlflow, uri))


def experiment_id(cfg: DictConfig) -> str:
    """Create the store and the experiment if they are missing; their id. Safe to call from parallel jobs."""
    uri = tracking_uri(cfg)
    mlflow = client(uri)
    found = mlflow.get_experiment_by_name(cfg.tracking.experiment)
    if found is not None:
        for key, value in EXPERIMENT_TAGS.items():  # a store made before the tag was set
            if found.tags.get(key) != value:
                mlflow.set_experiment_tag(found.experiment_id, key, value)
        return found.experiment_id
    db = _sqlite_path(uri)
    # Artifacts of the embedded store sit beside it, not in whatever directory a job runs from.
    location = (db.parent / "mlartifacts").as_uri() if db is not None else None
    try:
        return mlflow.create_experiment(cfg.tracking.experiment, artifact_location=location, tags=EXPERIMENT_TAGS)
    except MlflowException as err:  # another job created it meanwhile
        if err.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
        return mlflow.get_experiment_by_name(cfg.tracking.experiment).experiment_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(uri: str, log: Path, artifacts: Path | None = None) -> Iterator[str]:
    """``mlflow server`` on the store at ``uri`` on a free local port, until the block ends; its base URL.

    ``artifacts``: where the server keeps the artifacts clients log through it (``--artifacts-destination``).
    """
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port := free_port()),
           "--workers", "1", "--backend-store-uri", uri,
           *(["--artifacts-destination", str(artifacts)] if artifacts else [])]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/health", timeout=2):
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"mlflow server did not start:\n{log.read_text()[-2000:]}") from None
                    time.sleep(0.5)
            yield base
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# ---------------------------------------------------------------------------------------- what is logged


def leaves(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``{"model": {"units": 1}}`` -> ``("model.units", 1)``: every non-mapping value under its dotted name."""
    for key, value in tree.items():
        if isinstance(value, Mapping):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"model": {"units": 1}}`` -> ``{"model.units": "1"}``; non-strings as JSON (null, true, [5, 1, 0])."""
    return {name: value if isinstance(value, str) else json.dumps(value) for name, value in leaves(tree, prefix)}


def seed_tags(seeds: Sequence[int]) -> dict[str, str]:
    """Every repeat's seed, in repeat order: tags "seeds.0-499", "seeds.500-999", ... of comma-separated seeds."""
    tags = {}
    for first in range(0, len(seeds), SEEDS_PER_TAG):
        chunk = seeds[first : first + SEEDS_PER_TAG]
        tags[f"seeds.{first}-{first + len(chunk) - 1}"] = ",".join(str(int(s)) for s in chunk)
    return tags


def seeds_from_tags(tags: Mapping[str, str]) -> list[int]:
    chunks = sorted((int(k.split(".")[1].split("-")[0]), v) for k, v in tags.items() if k.startswith("seeds."))
    return [int(s) for _, v in chunks for s in v.split(",")]


def provenance_tags(cfg: DictConfig, root: Path) -> dict[str, str]:
    """Tags every run of a study carries: engine, seeds' origin, data and code versions, DVC experiment."""
    git = git_state()
    tags = {
        "engine": cfg.engine.name,
        "base_seed": str(cfg.base_seed),
        **{f"git.{k}": v for k, v in git.items()},
        **{f"versions.{k}": v for k, v in library_versions().items()},
        "dvc.experiment": os.environ.get("DVC_EXP_NAME", ""),  # empty outside `dvc exp run`
        "dvc.baseline_rev": os.environ.get("DVC_EXP_BASELINE_REV", ""),
    }
    raw = paths(cfg, root).raw
    if raw.is_file():
        tags["data.sha256"] = file_sha256(raw)
    return {k: v for k, v in tags.items() if v}


def study_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config of the core (shampoo) study: without the other write-ups' sections and paths."""
    config = OmegaConf.to_container(cfg, resolve=True)
    for name in studies.NAMES:
        config.pop(name, None)
        config["paths"] = {k: v for k, v in config["paths"].items() if not k.startswith(f"{name}_")}
    return config


def key_suffix(label: str) -> str:
    """A sweep job's label as a metric or tag name suffix (`` regime:stateful repeats:30``); MLflow allows
    no ``=`` or ``,`` in names."""
    unquoted = re.sub(r"[\[\]'\"]", "", label).replace("=", ":")  # regime=[a,b] -> regime:a b
    cleaned = re.sub(r"[^\w.\- :]+", " ", unquoted).split()
    return f" {' '.join(cleaned)}" if cleaned else ""


def regime_metrics(rmse: pd.Series, summary: pd.Series, baselines: pd.DataFrame) -> dict[str, float]:
    """A regime's headline numbers: its RMSE distribution and the share of repeats worse than persistence."""
    found = {name: float(summary[stat]) for stat, name in SUMMARY_STATS.items()}
    worse = baselines.loc[baselines.model == WORSE_THAN, "rmse"]
    if len(worse):
        found[f"share_worse_than_{WORSE_THAN}"] = float((rmse > float(worse.iloc[0])).mean())
    return {k: v for k, v in found.items() if math.isfinite(v)}  # one repeat has no sd


def claim_verdicts(verdicts: pd.DataFrame | None) -> dict[tuple[str, str], str]:
    """(key, claim) -> the verdict on each claim of the write-up (``E1`` ... the compare stage's verdicts table,
    one row per claim; ``not run`` when its regimes were not in the study)."""
    if verdicts is None:
        return {}
    return {(str(row.key), str(row.claim)): str(row.verdict) for row in verdicts.itertuples()}


def verdict_tags(verdicts: pd.DataFrame | None, suffix: str = "") -> dict[str, str]:
    """``verdict.E4``: ``supported``, one tag per claim."""
    return {f"verdict.{key}{suffix}": v for (key, _), v in claim_verdicts(verdicts).items()}


def verdict_note(verdicts: pd.DataFrame | None) -> str:
    """The verdicts as the markdown a run's description shows at the top of its page."""
    rows = [f"| {key} | {claim} | {verdict} |" for (key, claim), verdict in claim_verdicts(verdicts).items()]
    return "\n".join(["| claim | | verdict |", "|---|---|---|", *rows]) if rows else ""


def train_times(root: Path, cfg: DictConfig) -> dict[str, tuple[float, float]]:
    """Each regime's training (start, end) in seconds since the epoch, as the train stage recorded them."""
    path = paths(cfg, root).train_times()
    return {k: (float(v[0]), float(v[1])) for k, v in read_json(path).items()} if path.is_file() else {}


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


def _create_run(cfg: DictConfig, name: str, tags: Mapping[str, str], parent: str | None = None,
                start: float | None = None) -> str:
    extra = {MLFLOW_PARENT_RUN_ID: parent} if parent else {}
    run = client(tracking_uri(cfg)).create_run(
        experiment_id(cfg), run_name=name, start_time=_ms(start),
        tags=resolve_tags({**tags, **extra, MLFLOW_RUN_NAME: name}),
    )
    return run.info.run_id


def _log(cfg: DictConfig, run_id: str, *, params: Mapping[str, str] | None = None,
         tags: Mapping[str, str] | None = None, metrics: Sequence[Metric] = ()) -> None:
    client(tracking_uri(cfg)).log_batch(
        run_id, metrics=list(metrics), params=[Param(k, v) for k, v in (params or {}).items()],
        tags=[RunTag(k, v) for k, v in (tags or {}).items()],
    )


def _metrics(values: Mapping[str, float], timestamp: int) -> list[Metric]:
    return [Metric(k, float(v), timestamp, 0) for k, v in values.items()]


def _log_files(cfg: DictConfig, run_id: str, root: Path, files: Sequence[Path], prefix: str = "") -> None:
    """Each file under its path relative to ``root`` (reports/boxplot.png), below ``prefix``."""
    mlflow = client(tracking_uri(cfg))
    for path in files:
        relative = Path(path).resolve().relative_to(Path(root).resolve())
        folder = (Path(prefix) / relative.parent).as_posix()
        mlflow.log_artifact(run_id, str(path), None if folder == "." else folder)


def finish(cfg: DictConfig, run_id: str, failed: bool = False, end: float | None = None) -> None:
    status = RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED)
    client(tracking_uri(cfg)).set_terminated(run_id, status=status, end_time=_ms(end))


# ---------------------------------------------------------------------------------------------- studies


def log_study(
    cfg: DictConfig, root: Path, *, results: pd.DataFrame, summary: pd.DataFrame, baselines: pd.DataFrame,
    files: Sequence[Path], kind: str, verdicts: pd.DataFrame | None = None, parent: str | None = None,
    label: str = "", histograms: Callable[[str], Path] | None = None,
) -> StudyRuns | None:
    """Log a finished study (its stages' outputs under ``root``); None when tracking is off.

    Without ``parent`` a parent run of ``kind`` ("repro", "sweep") is opened for this study and holds
    its files; a sweep job passes its sweep's parent, and its files go there under ``jobs/<label>/``,
    its summary metrics and verdicts under names ending in its label. ``histograms`` gives each regime's
    histogram as a PNG drawn elsewhere (the track stage draws them in a second process); without it each is drawn
    here.
    """
    if not cfg.tracking.enabled:
        return None
    config = study_config(cfg)
    common = {**provenance_tags(cfg, root), "study.kind": kind}
    results_file = paths(cfg, root).results
    if results_file.is_file():
        common["results.sha256"] = file_sha256(results_file)
    if label:
        common["sweep.job"] = label
    trained = train_times(root, cfg)
    by_regime = {regime: rows.sort_values("repeat") for regime, rows in results.groupby("regime", sort=False)}
    headline = {regime: regime_metrics(by_regime[regime].rmse, summary[regime], baselines) for regime in by_regime}
    suffix = key_suffix(label)
    timestamp = int(time.time() * 1000)
    study_metrics = {f"{stat}/{regime}{suffix}": values[stat]
                     for regime, values in headline.items() for stat in PARENT_STATS if stat in values}
    study_metrics |= {f"baseline_{row.model}{suffix}": float(row.rmse) for row in baselines.itertuples()}
    if trained:
        # wall time of training: the regimes' procedures train together, so their spans overlap
        spans = trained.values()
        study_metrics[f"train_seconds{suffix}"] = max(end for _, end in spans) - min(start for start, _ in spans)
    own_parent = parent is None
    if own_parent:
        parent = _create_run(cfg, f"{kind} {common.get('dvc.experiment', '')}".strip(), common,
                             start=min((start for start, _ in trained.values()), default=None))
        parent_config = {k: v for k, v in config.items() if k != "regime"}  # each child holds its regime's record
        _log(cfg, parent, params={**flatten(parent_config), "regimes": ",".join(config["regime"])})
    folder = "" if own_parent else f"jobs/{label}/"
    note = verdict_note(verdicts) if own_parent else ""
    try:
        _log(cfg, parent, metrics=_metrics(study_metrics, timestamp))
        children = {
            regime: _log_regime(cfg, regime, config, by_regime[regime], headline[regime], baselines, common,
                                parent, label, trained.get(regime), histograms)
            for regime in config["regime"]
        }
        _log(cfg, parent, tags={**verdict_tags(verdicts, suffix), **({MLFLOW_RUN_NOTE: note} if note else {})})
        client(tracking_uri(cfg)).log_text(parent, OmegaConf.to_yaml(cfg, resolve=True), f"{folder}config.yaml")
        _log_files(cfg, parent, root, files, folder)
    except BaseException:
        if own_parent:  # a sweep's parent is closed by the sweep
            finish(cfg, parent, failed=True)
        raise
    if own_parent:
        finish(cfg, parent)
    return StudyRuns(parent, children)


def _log_regime(
    cfg: DictConfig, regime: str, config: Mapping[str, Any], rows: pd.DataFrame, headline: Mapping[str, float],
    baselines: pd.DataFrame, common: Mapping[str, str], parent: str, label: str,
    trained: tuple[float, float] | None, drawn: Callable[[str], Path] | None,
) -> str:
    """One regime's child run; its start and end are its training's when the train stage recorded them."""
    start, end = trained or (None, None)
    child = _create_run(cfg, f"{regime} {label}".strip(), {**common, "regime": regime}, parent, start=start)
    try:
        own = {**config, "regime": {"name": regime, **config["regime"][regime]}}  # this run's regime only
        timestamp = int(time.time() * 1000)
        per_repeat = [Metric(PER_REPEAT, float(r.rmse), timestamp, int(r.repeat)) for r in rows.itertuples()]
        values = {**headline, **{f"baseline_{row.model}": float(row.rmse) for row in baselines.itertuples()}}
        if trained:
            values["train_seconds"] = end - start
        _log(cfg, child, params=flatten(own), tags=seed_tags(rows.seed.tolist()),
             metrics=_metrics(values, timestamp) + per_repeat)  # headline first: what the compare view picks
        mlflow = client(tracking_uri(cfg))
        mlflow.log_text(child, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")  # what the audit rebuilds from
        mlflow.log_text(child, csv_text(rows), "results.csv")
        if drawn is None:
            figure = histogram.rmse_histogram(rows.rmse, baselines, histogram.title(regime, len(rows)))
            mlflow.log_figure(child, figure, histogram.FILE)
        else:
            mlflow.log_artifact(child, str(drawn(regime)))
    except BaseException:
        finish(cfg, child, failed=True)
        raise
    finish(cfg, child, end=end)
    return child


def csv_text(table: pd.DataFrame) -> str:
    """A results table as a run's ``results.csv`` artifact holds it (floats as their shortest round trip)."""
    return table.to_csv(index=False, lineterminator="\n")


def numbers(tree: Mapping[str, Any]) -> dict[str, float]:
    """The numeric leaves of a nested mapping under dotted names (``lstm.solved.share``); flags and text left out."""
    return {name: float(v) for name, v in leaves(tree) if isinstance(v, int | float) and not isinstance(v, bool)}


def log_other_study(
    cfg: DictConfig, root: Path, name: str, *, kind: str, parent: str | None = None, label: str = "",
    trained: tuple[float, float] | None = None,
) -> str | None:
    """Log one of the other write-ups' studies (``pipeline.studies.<name>``, outputs under ``root``) as one
    run; None when tracking is off.

    The run holds the study's config section and the base seed as params, every repeat's seed as tags, the
    numbers of its metrics JSON as metrics, and its results table, report section, plot and whole config as
    artifacts: what ``python -m pipeline.tools.audit <run id>`` re-runs and compares. ``trained`` (start, end
    in seconds since the epoch) becomes the run's duration and its ``train_seconds``. A sweep job passes its
    sweep's parent run.
    """
    if not cfg.tracking.enabled:
        return None
    p = paths(cfg, root)
    results, metrics = getattr(p, f"{name}_results"), getattr(p, f"{name}_metrics")
    seeds = pd.read_csv(results).drop_duplicates("repeat").sort_values("repeat").seed.tolist()
    tags = {**provenance_tags(cfg, root), "study.kind": kind, "study": name, "results.sha256": file_sha256(results),
            **({"sweep.job": label} if label else {})}
    start, end = trained or (None, None)
    run_id = _create_run(cfg, f"{name} {label}".strip(), tags, parent, start=start)
    try:
        section = OmegaConf.to_container(cfg[name], resolve=True)
        found = numbers(json.loads(metrics.read_text())) | ({"train_seconds": end - start} if trained else {})
        _log(cfg, run_id, params={"base_seed": str(cfg.base_seed), **flatten(section, f"{name}.")},
             tags=seed_tags(seeds), metrics=_metrics(found, int(time.time() * 1000)))
        client(tracking_uri(cfg)).log_text(run_id, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        others = [getattr(p, f"{name}_{part}") for part in ("report", "plot", "metrics")]
        _log_files(cfg, run_id, results.parent, [results, *(f for f in others if f.is_file())])
    except BaseException:
        finish(cfg, run_id, failed=True)
        raise
    finish(cfg, run_id, end=end)
    return run_id


def log_panel(
    cfg: DictConfig, root: Path, *, results: pd.DataFrame, metrics: Mapping[str, float], files: Sequence[Path],
    specs: Mapping[str, Mapping[str, Any]], parent: str | None = None, label: str = "",
) -> StudyRuns | None:
    """Log a panel run: a parent run with the config, the verdicts as metrics and the panel's files, and a child
    per series with its per-repeat results table (every origin, regime and seed), seeds and its series file as
    read (``specs``: series -> its record, logged as ``series.yaml`` and as params); None when off. Those are what
    ``python -m pipeline.tools.audit <run id>`` rebuilds the panel, or one series, from. In a sweep the panel's
    run is a child of the sweep's (``parent``), named by its swept values (``label``)."""
    if not cfg.tracking.enabled:
        return None
    common = {k: v for k, v in provenance_tags(cfg, root).items() if k != "data.sha256"}
    common.update({"study.kind": "panel", "panel": str(cfg.panel.name), **({"sweep.job": label} if label else {})})
    results_file = Path(root) / cfg.paths.panel_results
    own = {"results.sha256": file_sha256(results_file)} if results_file.is_file() else {}  # a results file's audit
    panel_run = _create_run(cfg, " ".join(filter(None, (f"panel {cfg.panel.name}", label))), common | own, parent)
    parent, children = panel_run, {}
    try:
        timestamp = int(time.time() * 1000)
        _log(cfg, parent, params=flatten(OmegaConf.to_container(cfg, resolve=True)),
             metrics=[Metric(k, float(v), timestamp, 0) for k, v in metrics.items()])
        client(tracking_uri(cfg)).log_text(parent, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        _log_files(cfg, parent, root, files)
        for name, rows in results.groupby("series", sort=False):
            child = _create_run(cfg, str(name), {**common, "series": str(name)}, parent)
            means = rows.groupby("regime", sort=False).relative_rmse.mean()
            _log(cfg, child, tags=seed_tags(sorted(int(s) for s in rows.seed.unique())),
                 params=flatten(specs[str(name)], "series."),
                 metrics=[Metric(f"relative_rmse_{r}", float(v), timestamp, 0) for r, v in means.items()])
            client(tracking_uri(cfg)).log_text(child, csv_text(rows), "results.csv")
            spec = yaml.safe_dump(dict(specs[str(name)]), sort_keys=False, allow_unicode=True)
            client(tracking_uri(cfg)).log_text(child, spec, SERIES_SPEC)
            finish(cfg, child)
            children[str(name)] = child
    except BaseException:
        finish(cfg, parent, failed=True)
        raise
    finish(cfg, parent)
    return StudyRuns(parent, children)


# ----------------------------------------------------------------------------------------------- sweeps


def start_sweep(cfg: DictConfig, sweep_dir: Path, overrides: Sequence[str]) -> str | None:
    """Open a sweep's parent run before its jobs start (creating the store then, once); None when off."""
    if not cfg.tracking.enabled:
        return None
    tags = {**provenance_tags(cfg, sweep_dir), "study.kind": "sweep", "sweep.dir": str(sweep_dir),
            "sweep.overrides": " ".join(overrides)}
    return _create_run(cfg, f"sweep {' '.join(overrides)}".strip(), tags)


def sweep_parent(cfg: DictConfig, sweep_dir: Path) -> str | None:
    """The parent run that ``start_sweep`` opened for ``sweep_dir`` (the newest, if the folder was reused)."""
    if not cfg.tracking.enabled:
        return None
    found = client(tracking_uri(cfg)).search_runs(
        [experiment_id(cfg)],
        filter_string=f"tags.`sweep.dir` = '{sweep_dir}' and tags.`study.kind` = 'sweep'",
        order_by=["attributes.start_time DESC"], max_results=1,
    )
    return found[0].info.run_id if found else None


def finish_sweep(cfg: DictConfig, run_id: str | None, sweep_dir: Path, files: Sequence[Path]) -> None:
    if run_id is None:
        return
    _log_files(cfg, run_id, sweep_dir, files)
    finish(cfg, run_id)


# ------------------------------------------------------------------------------------------------ audit


@dataclass(frozen=True)
class RecordedRun:
    """What the audit needs from a regime's run: its config, regime, seeds and every repeat's RMSE."""

    run_id: str
    config: DictConfig
    regime: str
    seeds: list[int]
    rmse: dict[int, list[float]]  # repeat -> every value recorded at that step (more than one: tampered)


@dataclass(frozen=True)
class RecordedStudyRun:
    """What the audit needs from another study's run: its config, study name and results table (CSV text)."""

    run_id: str
    config: DictConfig
    study: str
    results: io.StringIO


@dataclass(frozen=True)
class RecordedPanelRun:
    """What the audit needs from a panel's run, or from one of its series' runs: the panel's config as logged, and
    per series (in the panel's order) its series file as read, its per-repeat results table (CSV text) and its
    run; for the panel's run also its verdicts (None for one series' run: those pool every series)."""

    run_id: str
    panel_run: str
    config: DictConfig
    specs: dict[str, str]  # series -> its SERIES_SPEC (YAML)
    results: dict[str, str]  # series -> its results.csv
    runs: dict[str, str]  # series -> its run id
    metrics: dict[str, float] | None


def audited(tags: Mapping[str, str]) -> bool:
    """Whether a run holds recorded results itself (a regime's, another study's, a panel's or a panel series'),
    not only runs under it."""
    return "regime" in tags or "study" in tags or tags.get("study.kind") == "panel"


def runs_to_audit(cfg: DictConfig, run_id: str) -> list[str]:
    """``run_id`` itself if it holds results (a regime's run, another study's run), else the runs under it."""
    mlflow = client(tracking_uri(cfg))
    run = mlflow.get_run(run_id)
    if audited(run.data.tags):
        return [run_id]
    children = [child for child in children_of(mlflow, run) if audited(child.data.tags)]
    if not children:
        raise ValueError(f"run {run_id} holds no results and is the parent of no run that does: nothing to audit.")
    return [child.info.run_id for child in children]


def children_of(mlflow: MlflowClient, run: Any) -> list[Any]:
    """The runs directly under ``run``, oldest first."""
    return mlflow.search_runs([run.info.experiment_id], order_by=["attributes.start_time ASC"],
                              filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{run.info.run_id}'")


def recorded_run(cfg: DictConfig, run_id: str) -> RecordedRun | RecordedStudyRun | RecordedPanelRun:
    mlflow = client(tracking_uri(cfg))
    run = mlflow.get_run(run_id)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # small files: no progress bar
    if run.data.tags.get("study.kind") == "panel":
        return recorded_panel(mlflow, run)
    with tempfile.TemporaryDirectory() as tmp:
        config = OmegaConf.load(mlflow.download_artifacts(run_id, "config.yaml", tmp))
        study = run.data.tags.get("study")
        if study:
            table = Path(mlflow.download_artifacts(run_id, Path(config.paths[f"{study}_results"]).name, tmp))
            return RecordedStudyRun(run_id, config, study, io.StringIO(table.read_text()))
    rmse: dict[int, list[float]] = {}
    for metric in mlflow.get_metric_history(run_id, PER_REPEAT):
        rmse.setdefault(metric.step, []).append(metric.value)
    return RecordedRun(run_id, config, run.data.tags["regime"], seeds_from_tags(run.data.tags), rmse)


def recorded_panel(mlflow: MlflowClient, run: Any) -> RecordedPanelRun:
    """A panel's run (every series under it) or one series' run (its panel's config from the panel's run)."""
    run_id, tags = run.info.run_id, run.data.tags
    own_series = tags.get("series")
    panel_run = tags[MLFLOW_PARENT_RUN_ID] if own_series else run_id
    config = OmegaConf.create(panel_artifact(mlflow, panel_run, "config.yaml", f"panel run {panel_run}"))
    if own_series:
        members = {own_series: run}
    else:
        by_series = {child.data.tags["series"]: child for child in children_of(mlflow, run)
                     if "series" in child.data.tags}
        missing = [name for name in config.panel.series if name not in by_series]
        if missing:
            raise ValueError(f"panel run {run_id} has no series run for {missing} (its logging stopped part-way): "
                             "run the panel again and audit the new run.")
        members = {name: by_series[name] for name in config.panel.series}
    specs, results = {}, {}
    for name, member in members.items():
        where = f"run {member.info.run_id} (series '{name}' of panel run {panel_run})"
        specs[name] = panel_artifact(mlflow, member.info.run_id, SERIES_SPEC, where)
        results[name] = panel_artifact(mlflow, member.info.run_id, "results.csv", where)
    metrics = None if own_series else dict(run.data.metrics)
    return RecordedPanelRun(run_id, panel_run, config, specs, results,
                            {name: member.info.run_id for name, member in members.items()}, metrics)


def panel_artifact(mlflow: MlflowClient, run_id: str, path: str, where: str) -> str:
    """A text artifact of a panel's run; a one-line error naming the run when it was logged without it."""
    if path not in {found.path for found in mlflow.list_artifacts(run_id)}:
        raise ValueError(f"{where} has no {path} artifact (logged by an older version): run the panel again "
                         "(dvc repro -f panel; finished series come from the resume cache) and audit the new run, or "
                         "audit the panel's results file (python -m pipeline.tools.audit data/panel/results.csv).")
    with tempfile.TemporaryDirectory() as tmp:
        return Path(mlflow.download_artifacts(run_id, path, tmp)).read_text(encoding="utf-8")


def runs_with_results(cfg: DictConfig, sha256: str) -> list[str]:
    """Runs holding results (a regime's, another study's, a panel's) that recorded a results file with these exact
    bytes."""
    found = client(tracking_uri(cfg)).search_runs(
        [experiment_id(cfg)], filter_string=f"tags.`results.sha256` = '{sha256}'"
    )
    return [run.info.run_id for run in found if audited(run.data.tags)]


def set_tags(cfg: DictConfig, run_id: str, tags: Mapping[str, str]) -> None:
    _log(cfg, run_id, tags=tags)
