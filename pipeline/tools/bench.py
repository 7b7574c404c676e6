"""``python -m pipeline.tools.bench``: how fast the vectorized engine is, and whether it equals Keras in law.

One run prints: the study as the train stage runs it (every configured regime, ``--repeats`` models
each, each distinct training procedure trained once; compilation and worker start-up included) and
its forecasts, with the peak memory of the process tree; the same at ``--big-repeats``; the CPU cost
per replica-step at ``--cell-replicas`` replicas against a compiled single-cell reference (the same
step, XLA-fused, no data or state handling) measured in the same process; models per second of both
engines on one regime at the same epochs, and their ratio (Keras is timed on ``--keras-epochs`` and
scaled linearly, as it says); how time grows with replicas, epochs and series length; and, last, the
targets as measured/target ratios (<= 1 meets it). ``--law`` adds the slow check: RMSE distributions
of both engines over ``--law-repeats`` fresh models per regime (disjoint seeds: independent samples), compared with
Kolmogorov-Smirnov and Mann-Whitney tests and both means with 95% intervals.

``--stages`` adds, first, the study as a user runs it: a fresh ``git clone`` of this checkout's HEAD in a temporary
folder (this interpreter's environment, the clone's ``pipeline`` imported), ``dvc repro track`` (``make study``'s
first command: the study through compare, then its MLflow runs) timed there with what DVC ran or skipped and when
compare was done, then each stage's own command from ``dvc.yaml`` run standalone (best of
``--stage-runs``; train left out, timed in-process below) beside a bare ``python -c "import numpy"``. The clone runs
the study section's config (``--repeats``, ``--epochs``, the overrides); when that is the committed params.yaml it is
left as cloned. Its MLflow store and resume cache are the clone's own (MLFLOW_TRACKING_URI is unset for it).

Positional arguments, given before the options, are Hydra overrides of ``conf/`` (``engine.workers=1``);
the data come from the packaged copy, prepared in a temporary folder.
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from itertools import pairwise, repeat
from pathlib import Path

import numpy as np
import yaml
from omegaconf import OmegaConf
from scipy import stats

from pipeline import data, errors, processes
from pipeline.artifacts import load_differenced, load_problem, load_scaler, model_spec, paths
from pipeline.engines import make_engine
from pipeline.engines.base import Engine, ModelSpec, Problem
from pipeline.engines.keras_engine import KerasEngine
from pipeline.params import PROJECT_ROOT, compose_config, load_params, regimes
from pipeline.regimes import StateRegime
from pipeline.seeds import repeat_seeds
from pipeline.stages import difference, evaluate, fetch, frame, scale, train


def _ignore(_: int) -> None:
    pass


@dataclass
class PeakMemory:
    """Peak resident memory of this process and its children (the engine's workers), sampled."""

    peak_bytes: int = 0

    @contextmanager
    def watch(self, every_s: float = 0.05) -> Iterator[PeakMemory]:
        import psutil

        me, stop = psutil.Process(), threading.Event()

        def sample() -> None:
            while True:
                total = 0
                for proc in [me, *me.children(recursive=True)]:
                    with suppress(psutil.Error):  # a worker that just ended
                        total += proc.memory_info().rss
                self.peak_bytes = max(self.peak_bytes, total)
                if stop.wait(every_s):
                    return

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()


@dataclass(frozen=True)
class Study:
    """Everything prepared once: the config, its regimes and each regime's data."""

    cfg: object
    regimes: list[StateRegime]
    problems: dict[str, Problem]
    root: Path

    def spec(self, epochs: int) -> ModelSpec:
        return replace(model_spec(self.cfg), epochs=epochs)

    def rmse(self, regime: StateRegime, scaled: np.ndarray) -> np.ndarray:
        p = paths(self.cfg, self.root)
        raw, test_size = load_differenced(p)["raw"], self.cfg.data.test_size
        forecasts = data.invert_forecasts(scaled, load_scaler(p, regime.window), raw, test_size, self.cfg.data.interval)
        return data.rmse(forecasts, data.test_targets(raw, test_size))


def prepare(overrides: Sequence[str], root: Path) -> Study:
    cfg = compose_config(["data.source=packaged", "engine=vectorized", *overrides])
    for stage in (fetch, difference, scale, frame):
        stage.run(cfg, root)
    chosen = regimes(cfg)
    return Study(cfg, chosen, {r.name: load_problem(paths(cfg, root), r.window) for r in chosen}, root)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


@dataclass(frozen=True)
class StudyTiming:
    train_s: float  # the train stage: training and every regime's forecasts
    score_s: float  # the evaluate stage's scoring (no baselines)
    peak_bytes: int
    procedures: int
    mean_rmse: dict[str, float]


def run_study(study: Study, repeats: int, epochs: int) -> StudyTiming:
    """The train stage (resume off: training and every regime's forecasts) and the RMSEs, in ``study.root``."""
    cfg = copy.deepcopy(study.cfg)
    cfg.repeats, cfg.model.epochs, cfg.resume.enabled = repeats, epochs, False
    with PeakMemory().watch() as memory:
        train_s, _ = timed(lambda: train.run(cfg, study.root))
        score_s, (results, _) = timed(lambda: evaluate.score_regimes(cfg, paths(cfg, study.root)))
    means = results.groupby("regime", sort=False)["rmse"].mean()
    n_procedures = len(train.procedures(cfg, study.root, model_spec(cfg)))
    return StudyTiming(train_s, score_s, memory.peak_bytes, n_procedures, {k: float(v) for k, v in means.items()})


def train_seconds(engine: Engine, problem: Problem, reg: StateRegime, spec: ModelSpec, replicas: int) -> float:
    """Seconds to train ``replicas`` models, after an untimed short run that compiles the same program."""
    seeds = repeat_seeds(0, replicas)
    engine.train(problem, reg, replace(spec, epochs=1), seeds, _ignore)
    return timed(lambda: engine.train(problem, reg, spec, seeds, _ignore))[0]


def keras_costs(problem: Problem, reg: StateRegime, spec: ModelSpec, epochs: int) -> tuple[float, float]:
    """The Keras engine's fixed seconds per model (building, compiling) and seconds per epoch, from two runs."""

    def run(n: int) -> float:
        return timed(lambda: KerasEngine().train(problem, reg, replace(spec, epochs=n), repeat_seeds(0, 1), _ignore))[0]

    short, long = run(1), run(1 + epochs)
    if long <= short:  # noise swamped the epochs: count the whole longer run as epochs, an upper bound
        return 0.0, long / (1 + epochs)
    per_epoch = (long - short) / epochs
    return max(short - per_epoch, 0.0), per_epoch


def lengthened(problem: Problem, factor: int) -> Problem:
    """The training rows repeated ``factor`` times: a longer series of the same values."""
    return replace(problem, x_train=np.tile(problem.x_train, (factor, 1)), y_train=np.tile(problem.y_train, factor))


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    low, high = stats.t.interval(level, len(values) - 1, loc=mean, scale=stats.sem(values))
    return mean, float(low), float(high)


def law_summary(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Two-sample tests of equal distributions (KS) and equal location (Mann-Whitney U)."""
    return {
        "ks_p": float(stats.ks_2samp(a, b).pvalue),
        "mannwhitney_p": float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue),
    }


def _keras_forecasts(problem: Problem, reg: StateRegime, spec: ModelSpec, seeds: np.ndarray) -> np.ndarray:
    engine = KerasEngine()
    return engine.forecast(engine.train(problem, reg, spec, seeds, _ignore), problem, reg)


def keras_forecasts(problem: Problem, reg: StateRegime, spec: ModelSpec, seeds: np.ndarray, workers: int) -> np.ndarray:
    """The Keras engine's forecasts, one model per task over ``workers`` processes (minutes per model)."""
    if workers == 1:
        return _keras_forecasts(problem, reg, spec, seeds)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=processes.end_with,
                             initargs=(os.getpid(),)) as pool:  # a killed bench leaves no Keras worker training on
        one_each = [seeds[i : i + 1] for i in range(len(seeds))]
        parts = pool.map(_keras_forecasts, repeat(problem), repeat(reg), repeat(spec), one_each)
        return np.concatenate(list(parts))


def _one_thread() -> None:
    """Run this process's TensorFlow on one thread, as each engine worker does: in-process timings (the cost per
    replica-step, its reference, Keras) then measure one core's work, not idle threads spinning."""
    import tensorflow as tf

    with suppress(RuntimeError):  # already initialised (a second main() in one process): keep its setting
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)


def _device(engine: Engine) -> str:
    uses_gpu = getattr(engine, "uses_gpu", None)
    return "gpu" if uses_gpu and uses_gpu() else f"cpu ({len(os.sched_getaffinity(0))} cores)"


def _print_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(c) for c in header], *[[f"{c:.4g}" if isinstance(c, float) else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def report_study(study: Study, repeats: int, epochs: int) -> StudyTiming:
    timing = run_study(study, repeats, epochs)
    print(f"\nstudy: {len(study.regimes)} regimes x {repeats} repeats x {epochs} epochs "
          f"({timing.procedures} distinct training procedures), trained and forecast")
    _print_table(["regime", "mean RMSE"], list(timing.mean_rmse.items()))
    print(f"  train stage {timing.train_s:.1f} s (compilation, worker start-up and forecasts included), scoring "
          f"{timing.score_s:.1f} s; peak memory {timing.peak_bytes / 2**30:.2f} GiB (this process and its workers)")
    return timing


def cell_reference_seconds(units: int, replicas: int, steps: int, rows: int | None) -> float:
    """CPU seconds per replica-step of the reference: the engine's own training step (forward, written-out
    gradient, Adam), fused by XLA into one compiled loop, without orders, masks or resets. Its input row is
    read from a table of ``rows`` rows (step k reads row k mod rows), as any training reads its data; with
    ``rows`` None it is a compile-time constant, which XLA folds into the arithmetic: a floor no training
    on data reaches."""
    import tensorflow as tf

    from pipeline.engines import vectorized as vec

    n_params = sum(int(np.prod(shape)) for shape in vec.weight_shapes(units, 1).values())
    table = np.random.default_rng(1).uniform(-1, 1, (2, rows or 1, 1, 1, 1)).astype(np.float32)

    @tf.function(jit_compile=True)
    def reference(w, h, c, table):
        mask, count = tf.ones((1,)), tf.constant(1.0)

        def step(k, w, m, v, h, c):
            if rows is None:
                x, y = tf.fill((1, 1, 1), 0.3), tf.fill((1, 1, 1), 0.1)
            else:
                x, y = table[0, k % rows], table[1, k % rows]
            _, grad, h, c = vec.loss_and_grads(w, x, y, h, c, mask, count, units, 1, False)
            w, m, v = vec.adam(w, m, v, grad, vec.step_size(k, 0.001))
            return k + 1, w, m, v, h, c

        return tf.while_loop(lambda k, *_: k < steps, step, (0, w, tf.zeros_like(w), tf.zeros_like(w), h, c))

    w = tf.constant(np.random.default_rng(0).uniform(-0.5, 0.5, (n_params, 1, replicas)).astype(np.float32))
    zeros = tf.zeros((units, 1, replicas))
    reference(w, zeros, zeros, table)  # compile
    start = time.process_time()
    reference(w, zeros, zeros, table)
    return (time.process_time() - start) / (replicas * steps)


def engine_step_seconds(engine: Engine, problem: Problem, reg: StateRegime, spec: ModelSpec,
                        replicas: int) -> tuple[float, float]:
    """The engine's CPU seconds per replica-step in this process (one worker), and its CPU seconds of set-up per
    training (initial weights, row orders, handing segments over), its program compiled beforehand: from two
    trainings, of ``spec.epochs`` and of three times as many, since the reference's figure holds no set-up either."""
    local = replace(engine, workers=1) if hasattr(engine, "workers") else engine
    seeds = repeat_seeds(0, replicas)
    local.train(problem, reg, replace(spec, epochs=1), seeds, _ignore)

    def cpu_seconds(epochs: int) -> float:
        start = time.process_time()
        local.train(problem, reg, replace(spec, epochs=epochs), seeds, _ignore)
        return time.process_time() - start

    steps = -(-len(problem.x_train) // reg.batch_size) * replicas  # replica-steps per epoch
    short, long = cpu_seconds(spec.epochs), cpu_seconds(3 * spec.epochs)
    if long <= short:  # noise swamped the extra epochs (a tiny run): the longer run whole, an upper bound
        return long / (3 * spec.epochs * steps), 0.0
    per_step = (long - short) / (2 * spec.epochs * steps)
    return per_step, short - per_step * spec.epochs * steps


def report_cell(engine: Engine, problem: Problem, reg: StateRegime, spec: ModelSpec, replicas: int,
                rounds: int) -> float:
    """The engine's cost per replica-step against the reference's, each the best of ``rounds`` measurements taken
    in turn (this machine's speed drifts from minute to minute, and both sides alike; of three, one side's best was
    now and then a slow minute's, and the same code's ratio ranged over 0.93-1.36x in one hour)."""
    rows = len(problem.x_train)
    steps = spec.epochs * rows
    runs = [(*engine_step_seconds(engine, problem, reg, spec, replicas),
             cell_reference_seconds(spec.units, replicas, steps, rows)) for _ in range(rounds)]
    mine, reference = min(run[0] for run in runs), min(run[2] for run in runs)
    setup = min(run[1] for run in runs)
    folded = cell_reference_seconds(spec.units, replicas, steps, None)
    each = ", ".join(f"{e * 1e9:.1f}" for e, _, _ in runs)
    print(f"\ncost per replica-step on {reg.name}, {replicas} replicas (CPU time, one thread, best of {rounds} "
          f"taken in turn):")
    print(f"  engine:    {mine * 1e9:.1f} ns (each: {each}; from trainings of {spec.epochs} and {3 * spec.epochs} "
          f"epochs)")
    print(f"  reference: {reference * 1e9:.1f} ns (the same step XLA-fused, reading its row from a table of {rows}, "
          f"{steps} steps; each: {', '.join(f'{r * 1e9:.1f}' for _, _, r in runs)})")
    print(f"  ratio:     {mine / reference:.3g}x")
    print(f"  (the engine's set-up per training besides: {setup:.3f} s, mostly the initial weights' draws, "
          f"{setup / (steps * replicas) * 1e9:.1f} ns per replica-step over {spec.epochs} epochs)")
    print(f"  (the reference on a constant row, which XLA folds into the step: {folded * 1e9:.1f} ns, "
          f"{mine / folded:.3g}x)")
    return mine / reference


def report_throughput(
    engine: Engine, problem: Problem, reg: StateRegime, spec: ModelSpec, args
) -> tuple[float, float]:
    """Models per second of both engines, printed; returns their ratio and Keras's models per second."""
    fast = args.repeats / train_seconds(engine, problem, reg, spec, args.repeats)
    fixed, per_epoch = keras_costs(problem, reg, spec, args.keras_epochs)
    slow = 1 / (fixed + per_epoch * spec.epochs)
    print(f"\nthroughput on {reg.name}, {spec.epochs} epochs (training only):")
    print(f"  vectorized: {fast:.4g} models/s ({args.repeats} replicas at once)")
    print(f"  keras:      {slow:.4g} models/s (one model timed on 1 and {1 + args.keras_epochs} epochs: "
          f"{fixed:.2f} s to build plus {per_epoch * 1e3:.0f} ms per epoch, scaled linearly to {spec.epochs} epochs)")
    noisy = "" if fixed else " (Keras timing too noisy to split off its build time: upper bound; raise --keras-epochs)"
    print(f"  ratio:      {fast / slow:.4g}x{noisy}")
    return fast / slow, slow


def report_scaling(engine: Engine, problem: Problem, reg: StateRegime, spec: ModelSpec, args) -> None:
    def seconds(replicas: int, epochs: int, factor: int = 1) -> float:
        return train_seconds(engine, lengthened(problem, factor), reg, replace(spec, epochs=epochs), replicas)

    print(f"\nscaling on {reg.name} (training only, programs compiled beforehand):")
    rows = [(r, args.base_epochs, seconds(r, args.base_epochs)) for r in args.replicas]
    rows += [(args.base_replicas, e, seconds(args.base_replicas, e)) for e in args.scaling_epochs]
    _print_table(["replicas", "epochs", "seconds", "models/s"], [(r, e, s, r / s) for r, e, s in rows])
    print(f"  series length ({args.base_replicas} replicas, {args.base_epochs} epochs):")
    rows = [(len(problem.x_train) * f, seconds(args.base_replicas, args.base_epochs, f)) for f in args.lengths]
    _print_table(["training rows", "seconds"], rows)


def report_panel(name: str, overrides: Sequence[str], keras_models_per_s: float, epochs: int) -> float:
    """The panel stage end to end (nothing cached, no tracking) in a temporary folder; returns its seconds."""
    from pipeline.stages import panel

    cfg = compose_config([f"panel={name}", "engine=vectorized", "tracking.enabled=false", *overrides])
    cfg.model.epochs, cfg.resume.enabled = epochs, False
    chosen = panel.load_panel(cfg)
    cells = sum(ps.spec.origins for ps in chosen) * len(regimes(cfg)) * cfg.panel.repeats
    with tempfile.TemporaryDirectory() as tmp, PeakMemory().watch() as memory:
        seconds, _ = timed(lambda: panel.run(cfg, Path(tmp)))
    rate = cells / seconds
    print(f"\npanel {name}: {len(chosen)} series, {cells} models (series x origins x regimes x repeats), "
          f"{epochs} epochs, baselines {cfg.panel.baselines}; end to end, nothing cached")
    print(f"  {seconds:.1f} s, {rate:.4g} models/s ({rate / keras_models_per_s:.4g}x the keras engine's models/s "
          f"above); peak memory {memory.peak_bytes / 2**30:.2f} GiB")
    return seconds


def report_law(study: Study, engine: Engine, args, epochs: int) -> None:
    n, spec = args.law_repeats, study.spec(epochs)
    workers = args.law_workers or len(os.sched_getaffinity(0))
    print(f"\nlaw: {n} models per engine and regime, {epochs} epochs; Keras on disjoint seeds (independent samples)")
    rows = []
    for reg in (r for r in study.regimes if r.name in args.law_regimes):
        problem = study.problems[reg.name]
        fast_seeds = repeat_seeds(study.cfg.base_seed, n)
        keras_seeds = repeat_seeds(study.cfg.base_seed, n, first=n)
        fast = study.rmse(reg, engine.forecast(engine.train(problem, reg, spec, fast_seeds, _ignore), problem, reg))
        slow = study.rmse(reg, keras_forecasts(problem, reg, spec, keras_seeds, workers))
        tests = law_summary(fast, slow)
        for name, values in (("vectorized", fast), ("keras", slow)):
            mean, low, high = mean_ci(values)
            rows.append((reg.name, name, len(values), mean, f"[{low:.2f}, {high:.2f}]", tests["ks_p"],
                         tests["mannwhitney_p"]))
    _print_table(["regime", "engine", "n", "mean RMSE", "95% CI", "KS p", "Mann-Whitney p"], rows)


# ------------------------------------------------------------------------------------ the stages on a fresh clone

REPRO_TARGET = "track"  # make study's first command: `dvc repro track`, every stage through compare, then track
IN_PROCESS = ("train",)  # stages timed in-process above, not standalone
ALSO_TIMED = ("report",)  # make study's second command, `dvc repro --single-item report`
DVC_LINES = (  # what `dvc repro` logs for each stage it reaches
    (re.compile(r"Running stage '([^']+)'"), "ran"),
    (re.compile(r"(?:Stage )?'([^']+)' didn't change, skipping"), "skipped"),
    (re.compile(r"Stage '([^']+)' is cached - skipping run"), "restored"),  # from DVC's run cache
)


class StageError(errors.PipelineError):
    """A command of the fresh clone failed: the message names it and ends with its output's last lines."""


@dataclass(frozen=True)
class DvcStage:
    name: str
    outcome: str  # ran, skipped (didn't change) or restored (from DVC's run cache)
    seconds: float  # from its line to DVC's next stage line or its end: the command and DVC's bookkeeping after it


@dataclass(frozen=True)
class StagesTiming:
    repro_s: float
    dvc: list[DvcStage]
    standalone: dict[str, float]  # stage -> best wall seconds of its own command
    numpy_s: float  # best wall seconds of a bare `python -c "import numpy"`
    overrides: tuple[str, ...]  # what the clone's params.yaml was regenerated with; empty: as committed

    def compared_s(self) -> float:
        """Seconds into ``dvc repro`` until DVC reached the stage after compare: the study compared, not yet logged."""
        names = [s.name for s in self.dvc]
        after = names.index(REPRO_TARGET) if REPRO_TARGET in names else len(names)
        return self.repro_s - sum(s.seconds for s in self.dvc[after:])


def dvc_stages(lines: Sequence[tuple[float, str]], end: float) -> list[DvcStage]:
    """Each stage ``dvc repro`` reached, from its output's (seconds since start, line) pairs, in order."""
    events = []
    for at, line in lines:
        found = next(((m[1], outcome) for pattern, outcome in DVC_LINES if (m := pattern.match(line.strip()))), None)
        if found:
            events.append((at, *found))
    spans = pairwise([at for at, *_ in events] + [end])
    return [DvcStage(name, outcome, until - at) for (_, name, outcome), (at, until) in zip(events, spans, strict=True)]


def stage_commands(dvc_yaml: Path) -> dict[str, str]:
    """Each stage's command as dvc.yaml has it."""
    return {name: stage["cmd"] for name, stage in yaml.safe_load(dvc_yaml.read_text())["stages"].items()}


def _tail(output: str, lines: int = 3) -> str:
    return " | ".join([line.strip() for line in output.splitlines() if line.strip()][-lines:])


def _run(command: str, cwd: Path, env: Mapping[str, str]) -> str:
    """``command`` through the shell, as DVC runs a stage's; its output, or a StageError naming it."""
    done = subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    if done.returncode:
        raise StageError(f"`{command}` failed in the fresh clone {cwd} (exit {done.returncode}): {_tail(output)}")
    return output


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise StageError(f"`git {' '.join(args)}` failed in {cwd} ({_tail(done.stderr, 1)}): --stages clones the "
                         "git checkout the bench runs from; run it from one.")
    return done.stdout


@contextmanager
def fresh_clone(repo: Path) -> Iterator[Path]:
    """A clone of ``repo``'s HEAD in a temporary folder, removed afterwards; DVC's site cache kept inside it."""
    head = _git(repo, "rev-parse", "HEAD").strip()
    changed = _git(repo, "status", "--porcelain", "--untracked-files=no").splitlines()
    if changed:
        named = ", ".join(line[3:] for line in changed[:3]) + (" ..." if len(changed) > 3 else "")
        print(f"warning: {len(changed)} tracked files have uncommitted changes ({named}), which the clone of HEAD "
              f"{head[:7]} lacks: commit them to measure them")
    with tempfile.TemporaryDirectory(prefix="bench-clone-") as tmp:
        clone = Path(tmp) / "repo"
        _git(Path(tmp), "clone", "--quiet", "--no-checkout", str(repo), str(clone))
        _git(clone, "checkout", "--quiet", head)
        (clone / ".dvc" / "config.local").write_text(f"[core]\n    site_cache_dir = {Path(tmp) / 'dvc-site'}\n")
        yield clone


def clone_env(clone: Path) -> dict[str, str]:
    """This interpreter's environment for the clone: its bin first on PATH, the clone's ``pipeline`` imported, and no
    tracking server or DVC state of the caller's (MLflow then writes the clone's own store)."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI" and not k.startswith("DVC_")}
    return env | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", "PYTHONPATH": str(clone)}


def configure_clone(clone: Path, overrides: Sequence[str], env: Mapping[str, str]) -> tuple[str, ...]:
    """Regenerate the clone's params.yaml with ``overrides`` unless it already is what they compose; those applied."""
    wanted = compose_config(overrides, clone / "conf")
    if OmegaConf.to_container(wanted, resolve=True) == OmegaConf.to_container(load_params(clone / "params.yaml")):
        return ()
    _run(shlex.join(["python", "-m", "pipeline.params", *overrides]), clone, env)
    return tuple(overrides)


def timed_repro(clone: Path, env: Mapping[str, str]) -> tuple[float, list[DvcStage]]:
    """``dvc repro track`` in ``clone``: wall seconds, and each stage it reached with the time until the next."""
    command = [sys.executable, "-m", "dvc", "repro", REPRO_TARGET]
    start = time.perf_counter()
    with subprocess.Popen(command, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        lines = [(time.perf_counter() - start, line) for line in proc.stdout or ()]
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise StageError(f"`dvc repro {REPRO_TARGET}` failed in the fresh clone {clone} (exit {proc.returncode}): "
                         f"{_tail(''.join(line for _, line in lines))}")
    return seconds, dvc_stages(lines, seconds)


def best_wall(command: str, cwd: Path, env: Mapping[str, str], runs: int) -> float:
    return min(timed(lambda: _run(command, cwd, env))[0] for _ in range(runs))


def measure_stages(repo: Path, overrides: Sequence[str], runs: int) -> StagesTiming:
    with fresh_clone(repo) as clone:
        env = clone_env(clone)
        applied = configure_clone(clone, overrides, env)
        repro_s, reached = timed_repro(clone, env)
        commands = stage_commands(clone / "dvc.yaml")
        names = [s.name for s in reached if s.name not in IN_PROCESS] + [n for n in ALSO_TIMED if n in commands]
        standalone = {name: best_wall(commands[name], clone, env, runs) for name in names}
        numpy_s = best_wall('python -c "import numpy"', clone, env, runs)
    return StagesTiming(repro_s, reached, standalone, numpy_s, applied)


def report_stages(repo: Path, overrides: Sequence[str], runs: int) -> StagesTiming:
    timing = measure_stages(repo, overrides, runs)
    outcomes = {o: [s.name for s in timing.dvc if s.outcome == o] for o in ("ran", "skipped", "restored")}
    config = f"params.yaml regenerated with {' '.join(timing.overrides)}" if timing.overrides else "as committed"
    print(f"\nstages, fresh clone of {repo} ({config}): dvc repro {REPRO_TARGET} {timing.repro_s:.1f} s wall, compare "
          f"done at {timing.compared_s():.1f} s; "
          + "; ".join(f"{o} {', '.join(names)}" for o, names in outcomes.items() if names))
    by_name = {s.name: s for s in timing.dvc}
    rows = []
    for name in [*by_name, *(n for n in timing.standalone if n not in by_name)]:
        dvc = by_name.get(name)
        alone = timing.standalone.get(name)
        rows.append((name, dvc.outcome if dvc else "-", dvc.seconds if dvc else "-",
                     "in-process, below" if alone is None else alone, "-" if alone is None else alone - timing.numpy_s))
    _print_table(["stage", "dvc", "in dvc repro (s)", f"standalone, best of {runs} (s)", "minus numpy import (s)"],
                 rows)
    print(f"  (in dvc repro: until DVC's next stage, its bookkeeping included; bare `python -c \"import numpy\"` "
          f"{timing.numpy_s:.2f} s, best of {runs})")
    return timing


# Stages with a bound of their own; the issue holds the other non-training stages of its day to 1 s beyond numpy.
# baselines and track came later, out of evaluate (the baselines' fits) and compare (MLflow): their figures are
# printed with the stages', against no target.
STAGE_BOUNDS = {"compare": 3.0, "evaluate": 4.0}
UNBOUND_STAGES = ("baselines", "track")


def stage_targets(timing: StagesTiming) -> list[tuple[str, float, float, bool]]:
    """Issue 16's per-stage targets as report_targets rows."""
    alone = timing.standalone
    clone = "fresh clone, overridden" if timing.overrides else "fresh clone"
    rows = [(f"dvc repro compare, {clone} (s)", timing.compared_s(), 30.0, True)]
    rows += [(f"{name} stage (s)", alone[name], bound, True) for name, bound in STAGE_BOUNDS.items() if name in alone]
    return rows + [(f"{name} minus bare numpy import (s)", s - timing.numpy_s, 1.0, True) for name, s in alone.items()
                   if name not in STAGE_BOUNDS and name not in UNBOUND_STAGES]


def report_targets(rows: Sequence[tuple[str, float, float, bool]]) -> None:
    """(target, measured, bound, lower is better) rows as measured/bound ratios: <= 1 meets the target."""
    print("\ntargets (measured / target; <= 1 meets it):")
    table = []
    for name, measured, bound, lower in rows:
        ratio = measured / bound if lower else bound / measured
        table.append((name, f"{measured:.4g}", ("<= " if lower else ">= ") + f"{bound:g}", ratio,
                      "met" if ratio <= 1 else "missed"))
    _print_table(["target", "measured", "target", "ratio", ""], table)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.tools.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1000, help="models per regime in the study timing")
    parser.add_argument("--big-repeats", type=int, default=10000, help="models per regime of the large study (0: skip)")
    parser.add_argument("--big-epochs", type=int, default=None, help="epochs of the large study (default: --epochs)")
    parser.add_argument("--cell-replicas", type=int, default=10000, help="replicas of the cost-per-step comparison")
    parser.add_argument("--cell-rounds", type=int, default=7, help="measurements of each side of it, best kept")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per model (default: model.epochs)")
    parser.add_argument("--regime", default="stateful", help="regime of the throughput and scaling runs")
    parser.add_argument("--keras-epochs", type=int, default=10, help="epochs Keras is timed on, then scaled")
    parser.add_argument("--replicas", type=int, nargs="*", default=[1, 10, 100, 1000, 10000])
    parser.add_argument("--scaling-epochs", type=int, nargs="*", default=[10, 100, 1000])
    parser.add_argument("--lengths", type=int, nargs="*", default=[1, 2, 4, 8], help="series length multiples")
    parser.add_argument("--base-replicas", type=int, default=1000, help="replicas of the epoch and length scans")
    parser.add_argument("--base-epochs", type=int, default=100, help="epochs of the replica and length scans")
    parser.add_argument("--panel", default="", help="also run this panel (conf/panel/) end to end: default, quick")
    parser.add_argument("--law", action="store_true", help="also compare RMSE distributions of both engines (slow)")
    parser.add_argument("--law-repeats", type=int, default=30)
    parser.add_argument("--law-regimes", nargs="*", default=["stateful", "stateless"])
    parser.add_argument("--law-workers", type=int, default=0, help="Keras processes (0: one per core)")
    parser.add_argument("--stages", action="store_true",
                        help="also time make study's dvc repro track and each stage on a fresh clone of HEAD (minutes)")
    parser.add_argument("--stage-runs", type=int, default=2, help="standalone runs per stage with --stages (best kept)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/, before the options: engine.workers=1")
    args = parser.parse_args(argv)
    if args.stage_runs < 1:
        parser.error(f"--stage-runs must be at least 1, got {args.stage_runs}")
    stages = None
    if args.stages:
        sizes = [f"repeats={args.repeats}", *([f"model.epochs={args.epochs}"] if args.epochs else [])]
        stages = report_stages(PROJECT_ROOT, [*args.overrides, *sizes], args.stage_runs)
    _one_thread()

    with tempfile.TemporaryDirectory() as tmp:
        study = prepare(args.overrides, Path(tmp))
        engine = make_engine(study.cfg.engine)
        epochs = args.epochs or study.cfg.model.epochs
        print(f"engine: {engine}; device: {_device(engine)}")
        default = report_study(study, args.repeats, epochs)
        big_epochs = args.big_epochs or epochs
        big = report_study(study, args.big_repeats, big_epochs) if args.big_repeats else None
        reg = next((r for r in study.regimes if r.name == args.regime), study.regimes[0])
        problem, spec = study.problems[reg.name], study.spec(epochs)
        cell = report_cell(engine, problem, reg, replace(spec, epochs=args.base_epochs), args.cell_replicas,
                           args.cell_rounds)
        keras_ratio, keras_rate = report_throughput(engine, problem, reg, spec, args)
        report_scaling(engine, problem, reg, spec, args)
        panel_s = report_panel(args.panel, args.overrides, keras_rate, epochs) if args.panel else None
        if args.law:
            report_law(study, engine, args, epochs)
        n = len(study.regimes)
        targets = [
            (f"train stage, {n} x {args.repeats} x {epochs} (s)", default.train_s, 10.0, True),
            (f"cost per replica-step vs reference at {args.cell_replicas}", cell, 1.3, True),
            ("models/s vs the keras engine", keras_ratio, 50000.0, False),
        ]
        if big:
            size = f"{n} x {args.big_repeats} x {big_epochs}"
            bound = 120.0 * big_epochs / 1000  # 2 minutes at 1000 epochs; fewer epochs: stricter (start-up is fixed)
            targets += [(f"train (with forecasts) + scoring, {size} (s)", big.train_s + big.score_s, bound, True),
                        (f"peak memory, {size} (GiB)", big.peak_bytes / 2**30, 4.0, True)]
        if panel_s is not None:
            bound = 600.0 * epochs / 1000  # 10 minutes at 1000 epochs, as the large study's bound scales
            targets.append((f"panel {args.panel} end to end, {epochs} epochs (s)", panel_s, bound, True))
        report_targets(targets + (stage_targets(stages) if stages else []))


if __name__ == "__main__":
    errors.cli(main)
