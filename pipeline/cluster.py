"""Sweeps on a Slurm cluster: hydra-submitit-launcher's Slurm launcher, checked before it submits and after.

``conf/hydra/launcher/slurm.yaml`` selects ``hydra_plugins.lstm_state_study.slurm_launcher.SlurmLauncher`` (Hydra
takes launchers only from its ``hydra_plugins`` package), whose ``launch`` is ``launch`` below. Before submitting it
checks that Slurm is installed, that its controller answers and that it has the partition asked for; after
submitting it waits for every job, not only up to the first that fails, and reports each job that did not finish
(cancelled, over its time limit, failed) in one line with its Slurm id, its overrides, its cause and its log.
Finished jobs keep their folders and their chunks in the resume cache, so the same command run again trains only
what is missing. Each failure is one line naming the fix (a ``CompactHydraException``, which Hydra prints without a
traceback).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra.errors import CompactHydraException
from omegaconf import OmegaConf

from pipeline.errors import BadInput

LOCAL_CLUSTER = "scripts/slurm-local up"
SIGNAL_EARLY_S = 60  # how much earlier than asked Slurm may send a job its time-limit warning


class ClusterError(BadInput, CompactHydraException):
    """Slurm cannot run the sweep, or some of its jobs did not finish: what happened and what fixes it (one line
    per problem; ``errors.cli`` prints them without a traceback)."""


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def slurm_problem(partition: str | None) -> str | None:
    """Why Slurm cannot take the sweep's jobs (one line naming the fix), or None when it can."""
    if shutil.which("sbatch") is None:
        return (f"Slurm is not installed here (no sbatch on PATH): run the sweep on the cluster's login node, or "
                f"start a local cluster with {LOCAL_CLUSTER}.")
    ping = _run("scontrol", "ping")
    if ping.returncode != 0 or " is UP" not in ping.stdout:
        said = (ping.stdout.strip() or ping.stderr.strip()).splitlines()
        return (f"no Slurm controller answers ({said[0] if said else 'scontrol ping failed'}): start it "
                f"({LOCAL_CLUSTER} here, or ask the cluster's admins), then run the sweep again.")
    if partition:
        known = _run("sinfo", "-h", "-o", "%R").stdout.split()
        if partition not in known:
            return (f"Slurm has no partition {partition!r} (it has {', '.join(known) or 'none'}): set "
                    f"hydra.launcher.partition={known[0] if known else '<partition>'}.")
    return None


def warning_problem(timeout_min: int, signal_delay_s: int) -> str | None:
    """Why a job's time limit leaves no time before submitit's warning signal (one line naming the fix), or None.

    Slurm may send the warning up to a minute early (sbatch(1), --signal); one that comes before submitit has set
    its handler kills the job outright, reported only as FAILED."""
    if timeout_min * 60 > signal_delay_s + SIGNAL_EARLY_S:
        return None
    return (f"hydra.launcher.timeout_min={timeout_min} leaves no time before the signal_delay_s={signal_delay_s} s "
            f"warning, which Slurm may send up to {SIGNAL_EARLY_S} s earlier: raise timeout_min, or lower "
            "hydra.launcher.signal_delay_s.")


def labels(job_overrides: Sequence[Sequence[str]]) -> list[str]:
    """What tells each job from the others: its overrides that not every job shares (e.g. ``regime=noreset``)."""
    jobs = [filter_overrides(overrides) for overrides in job_overrides]
    shared = set.intersection(*map(set, jobs))
    return [" ".join(o for o in job if o not in shared) or f"job {n}" for n, job in enumerate(jobs)]


def job_problem(job: Any, label: str, timeout_min: int) -> str | None:
    """One line on a job that did not finish (its id, label, state, cause and log); None when it finished."""
    error = job.exception()
    if error is None:  # the job ran to its end; Hydra's run_job keeps what the sweep's main raised in its JobReturn
        returned = job.results()[0]
        if returned.status != JobStatus.FAILED:
            return None
        raised = returned._return_value  # what the task raised, e.g. a TrackingError, or submitit's time-out
        trace = [f"{type(raised).__module__}.{type(raised).__qualname__}: {raised}"]
    else:  # submitit's FailedJobError holds the job's traceback between two rules; Uncompleted: none
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        trace = lines[lines.index("-" * 22) + 1 : -4] if "-" * 22 in lines else []
    state = job.state
    if state == "TIMEOUT" or any("timed-out" in line for line in trace):
        cause = f"over its time limit of {timeout_min} min: raise hydra.launcher.timeout_min"
    elif state.startswith("CANCELLED"):
        cause = f"{state.lower()}: run the same command again to run it"
    elif state == "OUT_OF_MEMORY":
        cause = "out of memory: raise hydra.launcher.mem_gb"
    elif trace:
        cause = trace[-1]  # the job's own error, e.g. "pipeline.tracking.TrackingError: the tracking server ..."
    else:
        cause = f"state {state}"
    return f"Slurm job {job.job_id} ({label}) did not finish: {cause}; log: {job.paths.stderr}"


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
    """hydra-submitit-launcher's Slurm ``launch``, checking Slurm first and reporting every job that did not finish."""
    import submitit  # as the plugin does: only when a sweep runs, so that Hydra starts fast
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    params = launcher.params
    problem = slurm_problem(params.get("partition")) or warning_problem(params["timeout_min"], params["signal_delay_s"])
    if problem:
        raise ClusterError(problem)
    executor = submitit.AutoExecutor(cluster="slurm", folder=params["submitit_folder"],
                                     slurm_max_num_timeout=params["max_num_timeout"])
    shared = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in shared else f"slurm_{k}": v for k, v in params.items()
                                  if k not in ("submitit_folder", "max_num_timeout")})
    Path(str(launcher.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    state = Singleton.get_state()  # the launcher's __call__ arguments, one tuple per job, as the plugin passes them
    calls = [(list(o), "hydra.sweep.dir", n, f"job_id_for_{n}", state)
             for n, o in enumerate(job_overrides, initial_job_idx)]
    jobs = executor.map_array(launcher, *zip(*calls, strict=True))
    print(f"sweep: {len(jobs)} Slurm jobs submitted (array {jobs[0].job_id.split('_')[0]}); their logs are under "
          f"{Path(jobs[0].paths.stderr).parent.parent}")
    problems = [p for job, label in zip(jobs, labels(job_overrides), strict=True)
                if (p := job_problem(job, label, params["timeout_min"]))]
    if problems:
        raise ClusterError("\n".join([*problems, (
            f"{len(problems)} of {len(jobs)} Slurm jobs did not finish; the finished ones' results are kept (their "
            "folders and the resume cache): fix the cause and run the same command again to run only the rest.")]))
    return [job.results()[0] for job in jobs]
