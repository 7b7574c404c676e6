"""Hydra entry point for sweeps:
``python -m pipeline.tools.sweep -m regime=stateful,stateless,noreset repeats=10,30,100``.

Each job composes ``conf/`` with its overrides and runs the study's stages in process: the same
``run(cfg, root)`` functions ``dvc repro`` runs, in the same order, with ``root`` the job's own
output folder (``multirun/<date>/<time>-<pid>-<random>/<num>_<overrides>/``), so jobs never share a file. Finished
chunks of replicas go to the project's resume cache, so a killed sweep, rerun, trains only what is
missing. Each job logs its regimes as child runs of the sweep's MLflow parent run.

``study=<name>`` makes every job run one of the other write-ups' studies instead (its one stage,
``pipeline.studies.<name>``), e.g. ``-m study=echo echo.repeats=10,30,100``; each job logs it as one
run under the sweep's parent run. ``study=panel``, or a ``panel=<name>`` override, makes every job a whole
panel (``pipeline.stages.panel``), e.g. ``-m panel=default model.units=1,4,16 model.epochs=100,1000``: one job
per model setting, each logged as a panel run (with its series as children) under the sweep's run, and the
sweep's summary sets every setting's pooled answers side by side.

``SweepCallback`` (registered in ``conf/hydra/default.yaml``) opens that parent run before the jobs
start, and after the last one writes the sweep's summary to the sweep folder: every job's RMSEs
(``results.csv``), their distributions side by side (``summary.csv``) and every pair of them tested
(``tests.csv``), which is how the A-vs-A preset (``-m experiment=a_vs_a``) compares its two runs.
Nothing imports this module.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from collections.abc import Iterator
from io import TextIOBase
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from pipeline import errors, io, studies, tracking
from pipeline.analysis import stats
from pipeline.errors import PipelineError
from pipeline.params import CONF_DIR, ConfigError, validate
from pipeline.stages import baselines, compare, difference, evaluate, fetch, frame, panel, report, scale, train
from pipeline.studies import common

SWEEP_RESULTS = ("results.csv", "summary.csv", "tests.csv")  # written to the sweep folder after the last job
# The core study is these stages then compare: dvc.yaml's `python -m pipeline.<stage>` stages, in order (a test
# holds this list to dvc.yaml). The other write-ups' studies are one stage each (`study=<name>`).
STAGES = (fetch, difference, baselines, scale, frame, train, evaluate)

# conf/hydra/default.yaml's run and sweep folders end in ${unique:}, so concurrent runs never share one. Cached:
# a sweep's jobs (in other processes) get the value their sweep resolved, as Hydra copies the resolver cache.
if not OmegaConf.has_resolver("unique"):  # run as __main__, the callback imports this module a second time
    OmegaConf.register_new_resolver("unique", lambda: f"{os.getpid()}-{secrets.token_hex(3)}", use_cache=True)


def sweep_dir(hydra_node: Any) -> Path:
    return Path(hydra_node.sweep.dir).resolve()


def swept_keys(folder: Path) -> set[str]:
    """What a multirun varies: the keys of its sweep overrides (regime=a,b) and of ``hydra.sweeper.params``."""
    multirun = OmegaConf.load(folder / "multirun.yaml").hydra
    parsed = OverridesParser.create().parse_overrides(list(multirun.overrides.task))
    return {o.key_or_group for o in parsed if o.is_sweep_override()} | set(multirun.sweeper.get("params") or {})


def job_label(overrides: list[str], keys: set[str]) -> str:
    """A job's values of the swept keys, e.g. ``regime=stateful,repeats=30``: what tells it from its siblings."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return ",".join(o.input_line for o in parsed if o.key_or_group in keys)


class LogLines(TextIOBase):
    """A text stream handing each complete line to a logger: with stdout redirected to it, what a job prints
    reaches Hydra's handlers, so the console and the job's own ``<job>.log`` (``conf/hydra/default.yaml``)."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self.logger, self.pending = logger, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        for line in lines:
            self.logger.info(line)
        return len(text)

    def end(self) -> None:
        if self.pending:
            self.logger.info(self.pending)
            self.pending = ""


@contextlib.contextmanager
def printed_to_log(name: str) -> Iterator[None]:
    """Print into the job's log while it runs; as is when logging is off (hydra/job_logging=none)."""
    if not logging.getLogger().handlers:
        yield
        return
    stream = LogLines(logging.getLogger(name))
    try:
        with contextlib.redirect_stdout(stream):
            yield
    finally:
        stream.end()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> None:
    validate(cfg)
    with printed_to_log("pipeline"):
        run_job(cfg)


def run_job(cfg: DictConfig) -> None:
    """One job: the core study's stages, or another study's, in the job's folder; logged under the sweep's run."""
    job = HydraConfig.get()
    root = Path(job.runtime.output_dir)
    multirun = job.mode == RunMode.MULTIRUN
    keys = swept_keys(sweep_dir(job)) if multirun else set()
    if "study" in keys:  # checked by every job: Hydra only warns when a callback raises
        raise ConfigError("a sweep runs one study (its jobs are summed up together): sweep study=echo and "
                          "study=sine separately, e.g. -m study=echo echo.repeats=10,30.")
    label = job_label(list(job.overrides.task), keys) if multirun else ""
    parent = tracking.sweep_parent(cfg, sweep_dir(job)) if multirun else None
    kind = "sweep" if multirun else "run"  # the parent run's name without -m: one study, run in process
    try:
        if runs_panel(cfg, list(job.overrides.task)):
            panel.run(cfg, root, parent=parent, label=label)
            return
        if cfg.study in studies.NAMES:
            common.enable_op_determinism()  # as the study's stage and the audit run it
            start = time.time()
            studies.load(cfg.study).run(cfg, root)
            tracking.log_other_study(cfg, root, cfg.study, kind=kind, parent=parent, label=label,
                                     trained=(start, time.time()))
            return
        for stage in STAGES:
            stage.run(cfg, root)
        comparison = compare.run(cfg, root)
        assembled = report.run(cfg, root)
        tables = comparison.tables
        tracking.log_study(
            cfg, root, results=tables.results, summary=tables.summary, baselines=tables.baselines,
            files=(*comparison.files, assembled.markdown, assembled.html), kind=kind, verdicts=tables.verdicts,
            parent=parent, label=label,
        )
    except BaseException:
        if parent is not None:  # the sweep as a whole has failed; the other jobs still log their runs
            tracking.finish(cfg, parent, failed=True)
        raise


def runs_panel(cfg: DictConfig, overrides: list[str]) -> bool:
    """Whether a job is a panel: ``study=panel``, or a ``panel=<name>`` override on the command line."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return cfg.study == "panel" or any(o.key_or_group == "panel" for o in parsed)


def finished_jobs(folder: Path, *files: str) -> list[tuple[list[str], Path]]:
    """(overrides, folder) of every job under a sweep folder that wrote all ``files``, in job order."""
    jobs = []
    for hydra_dir in folder.glob("**/.hydra"):
        if all((hydra_dir.parent / f).is_file() for f in files):
            num = OmegaConf.load(hydra_dir / "hydra.yaml").hydra.job.num
            jobs.append((num, list(OmegaConf.load(hydra_dir / "overrides.yaml")), hydra_dir.parent))
    if not jobs:
        raise FileNotFoundError(f"no finished job under {folder}: nothing to sum up.")
    return [(overrides, job) for _, overrides, job in sorted(jobs, key=lambda job: job[0])]


def collect(folder: Path, results_path: str) -> pd.DataFrame:
    """Every finished job's results under a sweep folder, in job order, labelled by its swept values.

    Column ``sample`` names each (job, regime) distribution: the regime and the job's other swept values.
    """
    keys, tables = swept_keys(folder), []
    for overrides, job in finished_jobs(folder, results_path):
        table = pd.read_csv(job / results_path).assign(job=job_label(overrides, keys))
        table["sample"] = (table.regime + " " + job_label(overrides, keys - {"regime"})).str.strip()
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def summarize_study(cfg: DictConfig, folder: Path) -> list[Path]:
    """Another study's sweep: every job's results table, labelled (``results.csv``), and its metrics side by
    side, one row per job (``summary.csv``: e.g. the share of seeds that solve the echo problem at each
    ``echo.repeats``); their paths."""
    keys, files = swept_keys(folder), (cfg.paths[f"{cfg.study}_results"], cfg.paths[f"{cfg.study}_metrics"])
    jobs = [(job_label(overrides, keys), job) for overrides, job in finished_jobs(folder, *files)]
    results = pd.concat([pd.read_csv(job / files[0]).assign(job=label) for label, job in jobs], ignore_index=True)
    summary = pd.DataFrame([{"job": label, **tracking.numbers(io.read_json(job / files[1]))} for label, job in jobs])
    written = [folder / name for name in SWEEP_RESULTS[:2]]
    io.write_csv(written[0], results[["job", *(c for c in results.columns if c != "job")]])
    io.write_csv(written[1], summary)
    print(summary.set_index("job").T.to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"sweep summary: {', '.join(str(p) for p in written)}")
    return written


def summarize_panel(cfg: DictConfig, folder: Path) -> list[Path]:
    """A panel sweep: every job's pooled answers, labelled by its setting (``results.csv``), and per contrast each
    setting's pooled effect and verdict side by side (``summary.csv``); their paths."""
    pooled_csv = f"{cfg.paths.panel}/pooled.csv"
    keys = swept_keys(folder)
    tables = [pd.read_csv(job / pooled_csv).assign(job=job_label(overrides, keys))
              for overrides, job in finished_jobs(folder, pooled_csv)]
    results = pd.concat(tables, ignore_index=True)
    results["answer"] = [f"{v} ({100 * e:+.2f}%)" if np.isfinite(e) else v
                         for v, e in zip(results.verdict, results.pooled, strict=True)]
    summary = results.pivot(index=["contrast", "claim"], columns="job", values="answer")
    written = [folder / name for name in SWEEP_RESULTS[:2]]
    io.write_csv(written[0], results[["job", *(c for c in results.columns if c not in ("job", "answer"))]])
    io.write_csv(written[1], summary.reset_index())
    print(summary.to_string())
    print(f"sweep summary: {', '.join(str(p) for p in written)}")
    return written


def summarize(cfg: DictConfig, folder: Path) -> list[Path]:
    """Write the sweep's results, per-sample distributions and pairwise tests to ``folder``; their paths."""
    if runs_panel(cfg, list(OmegaConf.load(folder / "multirun.yaml").hydra.overrides.task)):
        return summarize_panel(cfg, folder)
    if cfg.study in studies.NAMES:
        return summarize_study(cfg, folder)
    table = collect(folder, cfg.paths.results)
    order = list(dict.fromkeys(table["sample"]))
    summary = table.groupby("sample", sort=False).rmse.describe().loc[order]
    samples = {}
    for name, group in table.groupby("sample", sort=False):
        rows = group.sort_values("repeat")
        samples[name] = stats.Sample(rows.rmse.to_numpy(np.float64), rows.seed.to_numpy())
    written = [folder / name for name in SWEEP_RESULTS]
    io.write_csv(written[0], table[["job", "regime", "repeat", "seed", "rmse"]])
    io.write_csv(written[1], summary.reset_index())
    if len(samples) > 1 and min(len(s.values) for s in samples.values()) > 1:
        tests = stats.pairwise(samples, compare.bootstrap_spec(cfg.stats), cfg.stats.alpha)
        io.write_csv(written[2], tests)
        print(tests[["a", "b", "design", "mean_diff", "ci_low", "ci_high", "rank_p_holm", "outcome"]].to_string(
            index=False, float_format=lambda v: f"{v:.3f}"))
    else:
        written.pop()
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"sweep summary: {', '.join(str(p) for p in written)}")
    return written


class SweepCallback(Callback):
    """Opens the sweep's MLflow parent run before the jobs start; sums the sweep up after the last one."""

    run_id: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self.run_id = tracking.start_sweep(config, sweep_dir(config.hydra), list(config.hydra.overrides.task))
        except PipelineError as err:  # Hydra would only warn, then start every job
            errors.exit_now(err)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        folder = sweep_dir(config.hydra)
        tracking.finish_sweep(config, self.run_id, folder, summarize(config, folder))


def cli() -> None:
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # Hydra re-raises a job's error, which errors.cli prints as one line
    main()


if __name__ == "__main__":
    errors.cli(cli)
