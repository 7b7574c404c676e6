"""Sweeps on a real Slurm cluster logging to a real team tracking server (MLflow on PostgreSQL, with its own auth).

The tests marked ``cluster`` bring up a single-node Slurm (scripts/slurm-local) and the PostgreSQL-backed MLflow server
(scripts/tracking-server), installing Debian's packages where missing: they need root, as CI has. They run tiny
sweeps on Slurm that log to the server, compare them with the local launcher, cancel and resume one, check that eight
concurrent jobs log every run once, that clients without the right credentials are refused, that each fault is one
line naming its fix, and that no credential is left in the repository, a log or a run. Everything they start is
stopped at the end, and a Slurm that was running before is left running.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from pipeline import cluster, tracking
from pipeline.params import PROJECT_ROOT
from pipeline.tools.sweep import SWEEP_RESULTS

SCRIPTS = PROJECT_ROOT / "scripts"
TINY = ("repeats=2", "model.epochs=2", "data.source=packaged", "stats.bootstrap_resamples=200", "stats.se_draws=200",
        "stats.se_repeats=[2]")
SLURM = ("hydra/launcher=slurm", "hydra.launcher.partition=local", "hydra.launcher.cpus_per_task=1",
         "hydra.launcher.mem_gb=2")
CPUS = 8  # the local node offers 8 CPUs (on 2 cores), so that 8 one-CPU jobs run at once
EXPERIMENT = "lstm-state-study"


def test_jobs_are_labelled_by_the_overrides_that_tell_them_apart():
    jobs = [["repeats=2", "regime=stateful", "base_seed=1"], ["repeats=2", "regime=noreset", "base_seed=1"]]
    assert cluster.labels(jobs) == ["regime=stateful", "regime=noreset"]
    assert cluster.labels([["repeats=2"]]) == ["job 0"]


def test_a_machine_without_slurm_is_told_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch anywhere
    problem = cluster.slurm_problem("local")
    assert problem.startswith("Slurm is not installed here (no sbatch on PATH)") and "scripts/slurm-local up" in problem


def test_a_time_limit_inside_slurms_early_warning_is_refused_naming_the_fix():
    assert cluster.warning_problem(timeout_min=2, signal_delay_s=30) is None
    problem = cluster.warning_problem(timeout_min=1, signal_delay_s=30)  # the warning may come at the job's start
    assert problem.startswith("hydra.launcher.timeout_min=1 leaves no time before the signal_delay_s=30 s warning")
    assert "raise timeout_min, or lower hydra.launcher.signal_delay_s." in problem


# --------------------------------------------------------------------------------- the services, brought up once


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Services:
    work: Path  # sweeps' folders, the server's home
    url: str
    users: dict[str, str]
    server_env: dict[str, str]  # scripts/tracking-server's settings

    @property
    def home(self) -> Path:
        return Path(self.server_env["TRACKING_HOME"])

    def secrets(self) -> dict[str, str]:
        """Every credential: the users' passwords and the server's generated secrets."""
        found = {f"user {name}": password for name, password in self.users.items()}
        for name in ("admin_password", "db_password", "flask_secret_key"):
            found[name] = (self.home / name).read_text().strip()
        return found

    def client_env(self, user: str | None = "alice", password: str | None = None, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env.update(CI="true", MLFLOW_TRACKING_URI=self.url, **extra)
        if user:
            env.update(MLFLOW_TRACKING_USERNAME=user, MLFLOW_TRACKING_PASSWORD=password or self.users[user])
        return env

    def tracking_server(self, *args: str) -> subprocess.CompletedProcess:
        return script("tracking-server", *args, env={**os.environ, **self.server_env})

    def client(self, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
        for key, value in self.client_env().items():
            if key.startswith("MLFLOW_"):
                monkeypatch.setenv(key, value)
        return MlflowClient(self.url)


def script(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPTS / name), *args], env=env, capture_output=True, text=True, timeout=900,
                          check=False)


def up_or_skip(done: subprocess.CompletedProcess, what: str) -> None:
    """A failed install is a skip that says why (no registry here); any other failure of the scripts fails."""
    if done.returncode == 0:
        return
    said = (done.stderr.strip() or done.stdout.strip()).splitlines()
    if any("could not install" in line for line in said):
        pytest.skip(f"{what}: {said[-1]}")
    pytest.fail(f"{what} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    if os.geteuid() != 0:
        pytest.skip("needs root: it installs Debian's slurm-wlm, munge, MariaDB, PostgreSQL and starts their daemons")
    for module in ("hydra_plugins.hydra_submitit_launcher", "flask_wtf", "psycopg"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: pip install -e '.[cluster]'")
    work = tmp_path_factory.mktemp("cluster")
    users = {"alice": secrets.token_urlsafe(16), "bob": secrets.token_urlsafe(16)}
    home = work / "server"
    home.mkdir(mode=0o700)
    (home / "users").write_text("".join(f"{n}:{p}\n" for n, p in users.items()))
    port = free_port()
    server_env = {"TRACKING_HOME": str(home), "TRACKING_PORT": str(port), "TRACKING_PG_PORT": str(free_port()),
                  "TRACKING_PG_CLUSTER": "lstm_tracking_test", "TRACKING_PYTHON": sys.executable,
                  "TRACKING_ARTIFACTS": str(work / "artifacts")}
    found = Services(work, f"http://127.0.0.1:{port}", users, server_env)
    slurm_was_up = script("slurm-local", "status").returncode == 0
    slurm_env = {**os.environ, "SLURM_LOCAL_CPUS": str(CPUS)}
    try:
        up_or_skip(script("slurm-local", "up", env=slurm_env), "scripts/slurm-local up")
        found.tracking_server("down", "--purge")  # a test cluster left by an interrupted run holds stale users
        up_or_skip(found.tracking_server("up"), "scripts/tracking-server up")
        yield found
    finally:
        found.tracking_server("down", "--purge")
        script("slurm-local", "up" if slurm_was_up else "down")  # as found: up with its own size, or down


def sweep_command(folder: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.tools.sweep", "-m", *TINY, f"hydra.sweep.dir={folder}", *overrides]


def start_sweep(env: dict[str, str], folder: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen(sweep_command(folder, *overrides), cwd=PROJECT_ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(sweep: subprocess.Popen, ok: bool = True) -> tuple[str, str]:
    out, err = sweep.communicate(timeout=900)
    assert (sweep.returncode == 0) == ok, out[-3000:] + err[-3000:]
    return out, err


def submitted_array(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("sweep: ")).split("(array ")[1].split(")")[0]


def settled_jobs(array: str, within_s: float = 120) -> pd.DataFrame:
    """Slurm's accounting of the array's jobs once none is still pending, running or completing.

    A job writes its result, which ends the sweep, before Slurm records the job's end: accounting lags by moments.
    """
    deadline = time.monotonic() + within_s
    while True:
        accounted = subprocess.run(["sacct", "-X", "-n", "-P", "-j", array, "-o", "JobID,State,Start,End"],
                                   capture_output=True, text=True, check=True).stdout.split()
        jobs = pd.DataFrame([line.split("|") for line in accounted], columns=["job", "state", "start", "end"])
        if not jobs.state.isin(["PENDING", "RUNNING", "COMPLETING"]).any() or time.monotonic() > deadline:
            return jobs
        time.sleep(0.5)


def wait_for_job(name: str, suffix: str, state: str = "RUNNING", within_s: float = 600) -> str:
    """The Slurm id of the job named ``name`` whose id ends in ``suffix``, once it is in ``state``."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        listed = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i %T"], capture_output=True, text=True).stdout
        for job, now in (line.split() for line in listed.splitlines()):
            if job.endswith(suffix) and now == state:
                return job
        time.sleep(0.3)
    raise AssertionError(f"no job {name} *{suffix} reached {state} within {within_s} s")


def one_line(err: str, start: str) -> str:
    """The line of a failed command's stderr that starts with ``start``: the error, with no traceback around it."""
    assert "Traceback" not in err, err[-3000:]
    lines = (line.removeprefix("error: ") for line in err.splitlines())  # errors.cli's prefix
    return next(line for line in lines if line.startswith(start))


def refusal(monkeypatch, compose, env: dict[str, str]) -> str:
    """The one-line TrackingError a client with ``env``'s MLFLOW_* settings gets from the store."""
    for key, value in env.items():
        if key.startswith("MLFLOW_"):
            monkeypatch.setenv(key, value)
    tracking.client.cache_clear()
    with pytest.raises(tracking.TrackingError) as refused:
        tracking.experiment_id(compose())
    return str(refused.value)


def runs(client: MlflowClient, filter_string: str) -> list:
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    return client.search_runs([experiment], filter_string=filter_string, max_results=1000)


@pytest.fixture(scope="module")
def overtime(services: Services) -> Iterator[subprocess.Popen]:
    """A sweep whose one job runs past its time limit, started early so that the others run meanwhile."""
    folder = services.work / "overtime"
    sweep = start_sweep(services.client_env(), folder, *SLURM, "hydra.launcher.timeout_min=2",
                        "hydra.launcher.signal_delay_s=30", "model.epochs=1000000", "regime=stateful",
                        "tracking.enabled=false", f"resume.cache={folder / 'cache'}")
    yield sweep
    if sweep.poll() is None:
        sweep.kill()


# ------------------------------------------------------------------------------------------------ the sweeps


@pytest.mark.cluster
@pytest.mark.slow
def test_a_sweep_cancelled_on_slurm_resumes_with_what_is_missing_and_matches_the_local_launcher(
    services, overtime, monkeypatch
):
    work, grid = services.work / "resume", ("regime=stateful,noreset",)
    local = start_sweep({**services.client_env(user=None), "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'local.db'}"},
                        work / "local", *grid, f"resume.cache={work / 'local-cache'}")
    on_slurm = (*grid, *SLURM, "hydra.launcher.name=cancelled", f"resume.cache={work / 'cache'}")

    first = start_sweep(services.client_env(), work / "slurm", *on_slurm)
    cancelled = wait_for_job("cancelled", "_1")
    subprocess.run(["scancel", cancelled], check=True)
    _, err = finish(first, ok=False)
    message = one_line(err, f"Slurm job {cancelled} ")
    assert f"Slurm job {cancelled} (regime=noreset) did not finish: cancelled by" in message
    assert Path(message.split("; log: ")[1]).is_file()
    assert one_line(err, "1 of 2 Slurm jobs did not finish; the finished ones' results are kept")
    assert [p.parent.parent.name.split("_")[0] for p in (work / "slurm").glob("*/reports/results.csv")] == ["0"]
    cached = {p: p.stat().st_mtime_ns for p in (work / "cache").rglob("*.npz")}
    assert cached  # the finished job's replicas and forecasts

    out, _ = finish(start_sweep(services.client_env(), work / "slurm", *on_slurm))
    array = submitted_array(out)
    log = (work / "slurm" / ".submitit" / f"{array}_0" / f"{array}_0_0_log.out").read_text()
    assert "train: 2 of 2 replicas taken from the resume cache" in log  # the finished job trained nothing
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in cached.items())

    finish(local)
    for name in SWEEP_RESULTS:
        assert (work / "slurm" / name).read_bytes() == (work / "local" / name).read_bytes(), name

    parent = runs(services.client(monkeypatch), f"tags.`sweep.dir` = '{work / 'slurm'}'")
    finished = [r for r in parent if r.info.status == "FINISHED"]
    assert len(finished) == 1  # the rerun's; the cancelled sweep's parent never finished
    audit = subprocess.run([sys.executable, "-m", "pipeline.tools.audit", finished[0].info.run_id], cwd=PROJECT_ROOT,
                           env=services.client_env(), capture_output=True, text=True, timeout=900)
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-3000:]
    assert audit.stdout.count("bit-identical: 2/2 repeats") == 2


@pytest.mark.cluster
@pytest.mark.slow
def test_a_job_over_its_time_limit_is_reported_with_its_id_and_log(services, overtime):
    # Before the eight concurrent jobs, which need every CPU of the node.
    _, err = finish(overtime, ok=False)
    message = one_line(err, "Slurm job ")
    assert " (job 0) did not finish: over its time limit of 2 min: raise hydra.launcher.timeout_min; log: " in message
    assert Path(message.split("; log: ")[1]).is_file()


@pytest.mark.cluster
@pytest.mark.slow
def test_eight_concurrent_slurm_jobs_log_every_parent_and_child_run_exactly_once(services, monkeypatch):
    folder = services.work / "eight"
    regimes, seeds = ["stateful", "stateless", "noreset", "seed_train"], [1, 2]
    out, _ = finish(start_sweep(services.client_env(), folder, f"regime={','.join(regimes)}",
                                f"base_seed={','.join(map(str, seeds))}", *SLURM, f"resume.cache={folder / 'cache'}"))

    jobs = settled_jobs(submitted_array(out))
    assert len(jobs) == 8 and set(jobs.state) == {"COMPLETED"}
    assert jobs.start.max() < jobs.end.min()  # all eight were running at once

    client = services.client(monkeypatch)
    parents = runs(client, f"tags.`sweep.dir` = '{folder}'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = runs(client, f"tags.`mlflow.parentRunId` = '{parents[0].info.run_id}'")
    labels = sorted(c.data.tags["sweep.job"] for c in children)
    assert labels == sorted(f"regime={r},base_seed={s}" for r in regimes for s in seeds)  # none lost, none twice
    assert {c.info.status for c in children} == {"FINISHED"}
    for child in children:
        assert [m.step for m in client.get_metric_history(child.info.run_id, "rmse_by_repeat")] == [0, 1]
    parent = parents[0].info.run_id
    assert {a.path for a in client.list_artifacts(parent, "jobs")} == {f"jobs/{label}" for label in labels}
    assert {"results.csv", "summary.csv", "tests.csv"} <= {a.path for a in client.list_artifacts(parent)}


# ----------------------------------------------------------------------------------------------- who gets in


def status_of(url: str, user: str | None = None, password: str | None = None,
              path: str = "/api/2.0/mlflow/experiments/search?max_results=1") -> int:
    request = urllib.request.Request(f"{url}{path}")
    if user:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        return urllib.request.urlopen(request, timeout=60).status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.mark.cluster
def test_the_server_listens_on_this_machine_only_and_refuses_clients_without_the_right_credentials(
    services, compose, monkeypatch
):
    port = f"{int(services.server_env['TRACKING_PORT']):04X}"
    listening = [line.split()[1] for name in ("/proc/net/tcp", "/proc/net/tcp6")
                 for line in Path(name).read_text().splitlines()[1:] if line.split()[1].endswith(f":{port}")
                 and line.split()[3] == "0A"]  # 0A: LISTEN
    assert listening == ["0100007F:" + port]  # 127.0.0.1 only
    assert status_of(services.url) == 401
    assert status_of(services.url, "alice", "not-her-password") == 401
    assert status_of(services.url, "mallory", services.users["alice"]) == 401
    assert status_of(services.url, "alice", services.users["alice"]) == 200
    assert status_of(services.url, path="/") == 401  # the UI too
    assert status_of(services.url, "bob", services.users["bob"], path="/") == 200

    for user, password in ((None, None), ("bob", "not-his-password")):
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            monkeypatch.delenv(key, raising=False)
        env = services.client_env(user, password, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
        assert refusal(monkeypatch, compose, env) == (
            f"the tracking server {services.url} refused this client's credentials (HTTP 401): set "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to a user of the server's users file.")
    tracking.client.cache_clear()


# ---------------------------------------------------------------------------------------------------- faults


@pytest.mark.cluster
def test_no_slurm_running_and_an_unknown_partition_are_one_line_naming_the_fix(services, tmp_path):
    done = subprocess.run(sweep_command(tmp_path / "sweep", *SLURM, "hydra.launcher.partition=gpu", "regime=stateful"),
                          cwd=PROJECT_ROOT, env=services.client_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert one_line(done.stderr, "Slurm has no partition") == (
        "Slurm has no partition 'gpu' (it has local): set hydra.launcher.partition=local.")
    assert not (tmp_path / "sweep" / ".submitit").exists()  # nothing was submitted

    assert script("slurm-local", "down").returncode == 0
    try:
        problem = cluster.slurm_problem("local")
        assert problem.startswith("no Slurm controller answers (") and "scripts/slurm-local up" in problem
        assert "\n" not in problem
    finally:
        up_or_skip(script("slurm-local", "up", env={**os.environ, "SLURM_LOCAL_CPUS": str(CPUS)}), "slurm-local up")
    assert cluster.slurm_problem("local") is None


@pytest.mark.cluster
@pytest.mark.slow
def test_the_tracking_server_gone_mid_sweep_is_reported_and_comes_back(services):
    folder = services.work / "gone"
    sweep = start_sweep(services.client_env(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0"), folder, *SLURM, "regime=stateful",
                        "hydra.launcher.name=gone", f"resume.cache={folder / 'cache'}")
    job = wait_for_job("gone", "")
    os.killpg(int((services.home / "server.pid").read_text()), signal.SIGTERM)  # the server alone; its database stays
    _, err = finish(sweep, ok=False)
    assert f"Slurm job {job} (job 0) did not finish: pipeline.errors.TrackingError: the MLflow tracking server " \
           f"{services.url} is unreachable" in one_line(err, f"Slurm job {job}")
    up_or_skip(services.tracking_server("up"), "scripts/tracking-server up")
    assert status_of(services.url, "alice", services.users["alice"]) == 200


@pytest.mark.cluster
def test_the_database_refusing_connections_is_one_line_naming_the_fix(services, compose, monkeypatch):
    cluster_name, version = services.server_env["TRACKING_PG_CLUSTER"], sorted(os.listdir("/usr/lib/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", version, cluster_name, "stop"], check=True)
    try:
        assert refusal(monkeypatch, compose, services.client_env(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")) == (
            f"the tracking server {services.url} cannot reach its database (HTTP 503): start it "
            "(scripts/tracking-server up on the server's machine), then run again.")
    finally:
        tracking.client.cache_clear()
        up_or_skip(services.tracking_server("up"), "scripts/tracking-server up")  # starts the database again
    assert status_of(services.url, "alice", services.users["alice"]) == 200


# ------------------------------------------------------------------------------------ no credential left behind


@pytest.mark.cluster
def test_no_credential_is_in_the_repository_a_log_or_a_run(services, monkeypatch):
    found = services.secrets()
    kept = {services.home / name for name in ("users", "auth.ini", "pgpass", *found)}  # where they belong
    files = [p for p in services.work.rglob("*") if p.is_file() and p not in kept]
    files += [*Path("/var/log/slurm").glob("*.log"), *Path("/var/log/postgresql").glob("*lstm_tracking_test*")]
    tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=PROJECT_ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    files += [PROJECT_ROOT / p for p in tracked if (PROJECT_ROOT / p).is_file()]
    assert (services.home / "server.log").is_file() and any(p.name.endswith("_log.out") for p in files)
    for path in files:
        content = path.read_bytes()
        leaked = [name for name, value in found.items() if value.encode() in content]
        assert not leaked, f"{leaked} in {path}"

    client = services.client(monkeypatch)
    every = runs(client, "")
    assert len(every) >= 10  # the sweeps' parents and children
    for run in every:
        text = " ".join([*run.data.params.values(), *run.data.tags.values()])
        assert not [name for name, value in found.items() if value in text], run.info.run_id
