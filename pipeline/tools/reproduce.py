"""``scripts/reproduce``: rebuild the CI-sized study in a clean copy, audit it, and hold it to the committed reference.

What the weekly workflow runs, and what a user runs, step by step:

1. copy the working tree (tracked and untracked, not ignored: a clean clone when nothing is uncommitted) into a
   temporary git repository, and compose ``experiment=ci`` there (``python -m pipeline.params``);
2. put the reference's metrics files (``reference/``) at their paths and commit them, so that DVC can diff against them;
3. ``dvc repro`` every stage with a DVC cache shared between reproductions on the same platform (``--cache``), so
   a rerun with unchanged inputs restores from DVC's run-cache what it can (DVC keeps none for stages with
   ``cache: false`` outputs); the stages that log to MLflow always run, so the store records this reproduction;
4. ``python -m pipeline.tools.audit`` on every study's results table: each is trained again from its recorded seeds and
   must come out bit for bit the same;
5. ``dvc metrics diff`` against the reference commit, and every per-repeat table against the reference's
   (``pipeline.tools.drift``: exact on the reference's platform, distribution tests elsewhere);
6. copy the report, the MLflow store, the logs and the verdict (``verdict.json``, ``summary.md``) to ``--out``.

``--refresh`` does steps 1 to 4 and writes the reference instead of judging against it.

Exit status: 0 reproduced; 1 error (the message says what failed); 2 bad command line; 3 drift; 4 nondeterminism.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from omegaconf import OmegaConf
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pipeline import io, studies
from pipeline.params import PROJECT_ROOT
from pipeline.stages.compare import bootstrap_spec
from pipeline.tools import drift

PASS, ERROR, DRIFT, NONDETERMINISM = 0, 1, 3, 4  # 2: bad arguments (argparse)
STATUS = {PASS: "PASS", DRIFT: "DRIFT", NONDETERMINISM: "NONDETERMINISM"}
OVERRIDES = ("experiment=ci",)
REFERENCE = "reference"  # the committed results, relative to the project root
MANIFEST = "manifest.json"
TRACKED_STAGES = ("track", *studies.NAMES)  # stages that log to MLflow: run, never restored from the run-cache
ASSEMBLED_STAGES = ("report",)  # put together from tracked stages' outputs: run after them, never pulling them in
# Stages the CI-sized reproduction leaves out: the panel study (hours at its full size, and the audit cannot re-run
# its results table yet).
NOT_REPRODUCED = ("panel",)
AUDIT_MISMATCH = 1  # python -m pipeline.tools.audit's exit status for a value whose bits differ (2: it could not audit)


class ReproduceError(RuntimeError):
    """A step failed for a reason other than drift or nondeterminism; the message names the step and the fix."""


# ------------------------------------------------------------------------------------------------ platform


def runtime_versions(project: Path) -> dict[str, str]:
    """Installed version of every pinned distribution the study runs on: ``pyproject.toml``'s dependencies and
    theirs, recursively, without extras (test tools and optional launchers cannot change a result)."""
    pins = {canonicalize_name(line.split("#")[0].split("==")[0]) for line in (project / "constraints.txt").open()}
    todo = list(tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"])
    versions: dict[str, str] = {}
    while todo:
        requirement = Requirement(todo.pop())
        name = canonicalize_name(requirement.name)
        if name in versions or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        try:
            versions[name] = metadata.version(name)
            todo += metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return {name: versions[name] for name in sorted(versions.keys() & pins)}


SIMD_FLAGS = ("sse", "avx", "fma", "f16c", "amx", "gfni", "vaes", "vpclmulqdq")  # prefixes of /proc/cpuinfo flags


def cpu_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's vendor and vector instruction sets, which XLA compiles the engine's kernels for and oneDNN dispatches
    Keras's on: the same BLAS kernels (which OPENBLAS_CORETYPE can force) are no proof of the same instructions."""
    if not cpuinfo.exists():
        return platform.processor()
    fields = {key.strip(): value.strip() for key, value in
              (line.split(":", 1) for line in cpuinfo.read_text().splitlines() if ":" in line)}
    flags = sorted(f for f in fields.get("flags", "").split() if f.startswith(SIMD_FLAGS))
    return " ".join([fields.get("vendor_id", "unknown"), *flags])


def platform_fingerprint(project: Path) -> dict[str, Any]:
    """What decides the bits of a deterministic run: OS and C library, the CPU's vector instructions, the kernels
    OpenBLAS picked, Python, and the pinned libraries."""
    import numpy  # noqa: F401  (loads the BLAS libraries that threadpoolctl reports)
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_info

    return {
        "system": platform.system(),
        "machine": platform.machine(),
        "libc": " ".join(platform.libc_ver()).strip(),
        "python": ".".join(platform.python_version_tuple()[:2]),
        "cpu": cpu_features(),
        "blas": sorted(
            {f"{i['internal_api']} {i.get('architecture')}" for i in threadpool_info() if i["user_api"] == "blas"}
        ),
        "libraries": runtime_versions(project),
    }


def platform_differences(reference: dict[str, Any], current: dict[str, Any]) -> list[str]:
    return [f"{c.name}: {c.old} in the reference, {c.new} here" for c in drift.param_changes(reference, current)]


def cache_key(fingerprint: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------- processes


class Runner:
    """Runs the steps' commands in the copy, echoing them and their output to the console and a log."""

    def __init__(self, root: Path, env: dict[str, str], log: Path) -> None:
        self.root, self.env, self.log = root, env, log

    def stream(self, *args: str) -> tuple[int, str]:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("a") as sink:
            print(f"$ {' '.join(args)}", file=sink, flush=True)
            print(f"reproduce: $ {' '.join(args)}", flush=True)
            proc = subprocess.Popen(
                args, cwd=self.root, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            lines = []
            for line in proc.stdout:
                sys.stdout.write(line)
                sink.write(line)
                lines.append(line)
            return proc.wait(), "".join(lines)

    def check(self, *args: str) -> str:
        rc, output = self.stream(*args)
        if rc != 0:
            raise ReproduceError(f"`{' '.join(args)}` failed with exit status {rc} (log: {self.log}).")
        return output

    def capture(self, *args: str) -> str:
        done = subprocess.run(args, cwd=self.root, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise ReproduceError(f"`{' '.join(args)}` failed: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout


def git(root: Path, *args: str) -> str:
    ident = ("-c", "user.name=reproduce", "-c", "user.email=reproduce@localhost", "-c", "commit.gpgsign=false")
    done = subprocess.run(["git", *ident, *args], cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise ReproduceError(f"`git {' '.join(args)}` in {root} failed: {done.stderr.strip()}")
    return done.stdout


def copy_tree(project: Path, work: Path) -> list[str]:
    """The working tree (tracked files and untracked, non-ignored ones) as a fresh one-commit repository in
    ``work``; the files that differ from HEAD, so a user knows what is reproduced beyond the last commit."""
    listed = git(project, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, listed):
        if (project / name).is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(project / name, work / name)
    git(work, "init", "-q")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "the tree reproduced")
    return [line[3:] for line in git(project, "status", "--porcelain").splitlines()]


# -------------------------------------------------------------------------------------------- the steps


def stage_names(runner: Runner) -> list[str]:
    """The stages ``dvc.yaml`` declares (``dvc.lock`` may still hold removed ones), but those not reproduced."""
    return [s for s in runner.capture("dvc", "stage", "list", "--name-only").split() if s not in NOT_REPRODUCED]


def outputs(runner: Runner, stages: Sequence[str]) -> tuple[list[str], list[str]]:
    """(metrics files, per-repeat tables) of the pipeline's ``stages``, as paths relative to the copy."""
    shown = json.loads(runner.capture("dvc", "metrics", "show", "--json") or "{}")
    files = {path: entry for revision in shown.values() for path, entry in revision.get("data", {}).items()}
    errors = [str(e["error"]) for e in (*shown.values(), *files.values()) if "error" in e]
    if errors:
        raise ReproduceError(f"`dvc metrics show` could not read the metrics: {'; '.join(errors)}")
    metrics = sorted(files)
    lock = yaml.safe_load((runner.root / "dvc.lock").read_text()).get("stages", {})
    tables = set()
    for stage in (lock[name] for name in stages if name in lock):
        for out in stage.get("outs", []):
            path = runner.root / out["path"]
            for csv in sorted(path.rglob("*.csv")) if path.is_dir() else [path]:
                if csv.suffix == ".csv" and drift.is_per_repeat(pd.read_csv(csv, nrows=0).columns):
                    tables.add(csv.relative_to(runner.root).as_posix())
    return metrics, sorted(tables)


def repro(runner: Runner, stages: Sequence[str]) -> None:
    restorable = [s for s in stages if s not in (*TRACKED_STAGES, *ASSEMBLED_STAGES)]
    if restorable:
        runner.check("dvc", "repro", *restorable)
    for stage in (s for s in TRACKED_STAGES if s in stages):
        runner.check("dvc", "repro", "--force", "--single-item", stage)
    for stage in (s for s in ASSEMBLED_STAGES if s in stages):
        runner.check("dvc", "repro", "--single-item", stage)


def audit(runner: Runner, tables: Sequence[str]) -> str | None:
    """None when the audit reproduced every value of every results table bit for bit, else what it found."""
    found = []
    for results in tables:
        rc, output = runner.stream(sys.executable, "-m", "pipeline.tools.audit", results)
        if rc == 0:
            continue
        mismatches = [line for line in output.splitlines() if line.startswith("MISMATCH")]
        if rc != AUDIT_MISMATCH or not mismatches:  # a crash exits 1 too, but prints no verdict
            raise ReproduceError(f"the audit of {results} failed with exit status {rc} (log: {runner.log}).")
        found += [f"{results}: {line}" for line in mismatches]
    return "; ".join(found) or None


def seed_reference(work: Path, reference: Path, metrics: Sequence[str]) -> None:
    """Commit the reference's metrics files at their paths in the copy: ``dvc metrics diff`` compares with HEAD."""
    for name in metrics:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(reference / name, work / name)
    git(work, "add", "-f", "params.yaml", *metrics)
    git(work, "commit", "-qm", "the committed reference", "--allow-empty")


def compare(
    runner: Runner, reference: Path, manifest: dict, params: dict, tables: list[str], fingerprint: dict
) -> tuple[drift.Verdict, pd.DataFrame]:
    """(verdict, the per-column tests) of this reproduction against the reference."""
    metrics = drift.metric_changes(json.loads(runner.capture("dvc", "metrics", "diff", "--json") or "{}"))
    boot = bootstrap_spec(OmegaConf.create(params).stats)
    rows = []
    for name in dict.fromkeys([*manifest["tables"], *tables]):
        if name not in tables or name not in manifest["tables"]:
            where = "not produced" if name not in tables else "not in the reference"
            rows.append({"table": name, "column": "*", "outcome": where})
            continue
        rows += drift.table_rows(name, pd.read_csv(reference / name), pd.read_csv(runner.root / name), boot)
    tests = drift.tests(rows, params["stats"]["alpha"])
    mode = "exact" if manifest["platform"] == fingerprint else "distribution"
    return drift.judge(mode, drift.param_changes(manifest["params"], params), metrics, tests), tests


def write_reference(work: Path, reference: Path, params: dict, fingerprint: dict, files: tuple[list, list]) -> None:
    """Replace ``reference/`` with this reproduction's metrics and per-repeat tables, and what they were made with."""
    metrics, tables = files
    staged = Path(tempfile.mkdtemp(prefix=".reference-", dir=reference.parent))
    for name in (*metrics, *tables):
        (staged / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(work / name, staged / name)
    manifest = {"overrides": OVERRIDES, "platform": fingerprint, "params": params, "metrics": metrics, "tables": tables}
    io.write_json(staged / MANIFEST, manifest)
    staged.chmod(0o755)  # mkdtemp's 0700 would make the committed folder private to its maker
    if reference.exists():
        shutil.rmtree(reference)
    staged.rename(reference)


# ------------------------------------------------------------------------------------------------ report


def summary(status: int, notes: Sequence[str], verdict: drift.Verdict | None = None) -> str:
    lines = [f"# Scheduled reproduction: {STATUS[status]}", "", *(f"- {note}" for note in notes)]
    if verdict is not None:
        for title, changes in (("beyond tolerance (drift)", verdict.drift), ("moved within tolerance", verdict.within)):
            lines.append(f"- {len(changes)} change(s) {title}" + (":" if changes else ""))
            lines += [f"  - {c.describe()}" for c in changes]
    return "\n".join(lines) + "\n"


def publish(out: Path, status: int, notes: Sequence[str], verdict: drift.Verdict | None = None) -> int:
    """Write ``summary.md`` and ``verdict.json`` to ``out``, print the summary (and on GitHub, show it on the job's
    page); the exit status."""
    text = summary(status, notes, verdict)
    record = {"status": STATUS[status], "exit": status, "notes": list(notes)}
    if verdict is not None:
        record |= {
            "mode": verdict.mode,
            "drift": [c.describe() for c in verdict.drift],
            "within": [c.describe() for c in verdict.within],
        }
    io.write_text(out / "summary.md", text)
    io.write_json(out / "verdict.json", record)
    print("\n" + text, end="")
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a") as page:
            page.write(text)
    return status


# -------------------------------------------------------------------------------------------------- main


def reproduce(args: argparse.Namespace, work: Path) -> int:
    project, out = PROJECT_ROOT, args.out
    reference = project / REFERENCE
    fingerprint = platform_fingerprint(project)
    manifest = None if args.refresh else load_manifest(reference)

    # 1-3: the study, rebuilt in a copy
    uncommitted = copy_tree(project, work)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # DVC's stages run our python
    env = {**os.environ, "PATH": path, "MLFLOW_TRACKING_URI": f"sqlite:///{out / 'mlflow' / 'mlflow.db'}"}
    runner = Runner(work, env, out / "logs" / "reproduce.log")
    runner.check(sys.executable, "-m", "pipeline.params", *OVERRIDES)
    params = yaml.safe_load((work / "params.yaml").read_text())
    if manifest is not None:
        seed_reference(work, reference, manifest["metrics"])
    runner.capture("dvc", "cache", "dir", "--local", str(args.cache / cache_key(fingerprint)))
    stages = stage_names(runner)
    repro(runner, stages)
    shutil.copytree(work / Path(params["paths"]["report_md"]).parent, out / "report")
    notes = [f"uncommitted changes reproduced: {', '.join(uncommitted)}"] if uncommitted else []

    # 4: the determinism audit
    metrics, tables = outputs(runner, stages)
    mismatch = audit(runner, tables)  # every per-repeat table the pipeline's stages wrote
    notes.append(f"determinism audit: {mismatch or 'every repeat trained again came out bit-identical'}")
    if args.refresh:
        if mismatch:
            return publish(out, NONDETERMINISM, [*notes, "the reference was NOT refreshed"])
        write_reference(work, reference, params, fingerprint, (metrics, tables))
        return publish(out, PASS, [*notes, f"reference refreshed: commit {reference} together with constraints.txt"])

    # 5: the drift gate
    verdict, tests = compare(runner, reference, manifest, params, tables, fingerprint)
    io.write_csv(out / "drift_tests.csv", tests)
    if verdict.mode == "exact":
        notes.append("tolerance: exact, as this is the platform the reference was made on")
    else:
        differences = "; ".join(platform_differences(manifest["platform"], fingerprint))
        notes.append(f"tolerance: distribution tests, as the platform differs from the reference's ({differences})")
    if verdict.drift:
        notes.append("if the change is intended, refresh the reference: scripts/reproduce --refresh")
    return publish(out, NONDETERMINISM if mismatch else DRIFT if verdict.drift else PASS, notes, verdict)


def load_manifest(reference: Path) -> dict:
    path = reference / MANIFEST
    if not path.is_file():
        raise ReproduceError(f"no committed reference at {path}: make one with `scripts/reproduce --refresh`.")
    return io.read_json(path)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/reproduce",
        description="Rebuild the CI-sized study in a clean copy, audit it and judge it against reference/.",
        epilog="exit status: 0 reproduced, 1 error, 2 bad arguments, 3 drift, 4 nondeterminism",
    )
    parser.add_argument("--refresh", action="store_true", help="rewrite reference/ from this run instead of judging")
    parser.add_argument(
        "--out",
        type=Path,
        default=PROJECT_ROOT / "outputs" / "reproduce",
        help="where the report, MLflow store, logs and verdict go; emptied first",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=PROJECT_ROOT / ".cache" / "reproduce",
        help="DVC cache shared by reproductions, one folder per platform",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy the study ran in")
    args = parser.parse_args(argv)
    args.out, args.cache = args.out.resolve(), args.cache.resolve()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    work = Path(tempfile.mkdtemp(prefix="reproduce-"))
    try:
        return reproduce(args, work)
    except ReproduceError as err:
        print(f"reproduce: ERROR: {err}", file=sys.stderr)
        return ERROR
    finally:
        if args.keep:
            print(f"reproduce: the copy is kept at {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
