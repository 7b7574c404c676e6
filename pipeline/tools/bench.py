"""``python -m pipeline.tools.bench``: how fast the vectorized engine is, and whether it equals Keras in law.

One run prints: the wall time of the whole study (every configured regime, ``--repeats`` models each,
trained and forecast, compilation and worker start-up included) with the peak memory of the process
tree; models per second of both engines on one regime at the same epochs, and their ratio (Keras is
timed on ``--keras-epochs`` and scaled linearly, as it says); and how time grows with replicas,
epochs and series length. ``--law`` adds the slow check: RMSE distributions of both engines over
``--law-repeats`` fresh models per regime (disjoint seeds: independent samples), compared with
Kolmogorov-Smirnov and Mann-Whitney tests and both means with 95% intervals.

Positional arguments, given before the options, are Hydra overrides of ``conf/`` (``engine.workers=1``);
the data come from the packaged copy, prepared in a temporary folder.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from itertools import repeat
from pathlib import Path

import numpy as np
from scipy import stats

from pipeline import data
from pipeline.artifacts import load_differenced, load_problem, load_scaler, model_spec, paths
from pipeline.engines import make_engine
from pipeline.engines.base import Engine, ModelSpec, Problem
from pipeline.engines.keras_engine import KerasEngine
from pipeline.params import compose_config, regimes
from pipeline.regimes import StateRegime
from pipeline.seeds import repeat_seeds
from pipeline.stages import difference, fetch, frame, scale


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


def run_study(engine: Engine, study: Study, repeats: int, epochs: int) -> dict[str, tuple[float, float]]:
    """Train and forecast every regime: {regime: (seconds, mean RMSE)}."""
    seeds, spec, out = repeat_seeds(study.cfg.base_seed, repeats), study.spec(epochs), {}
    for reg in study.regimes:
        problem = study.problems[reg.name]

        def both(reg=reg, problem=problem):
            return engine.forecast(engine.train(problem, reg, spec, seeds, _ignore), problem, reg)

        seconds, scaled = timed(both)
        out[reg.name] = (seconds, float(study.rmse(reg, scaled).mean()))
    return out


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
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        one_each = [seeds[i : i + 1] for i in range(len(seeds))]
        parts = pool.map(_keras_forecasts, repeat(problem), repeat(reg), repeat(spec), one_each)
        return np.concatenate(list(parts))


def _print_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(c) for c in header], *[[f"{c:.4g}" if isinstance(c, float) else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def report_study(engine: Engine, study: Study, repeats: int, epochs: int) -> None:
    with PeakMemory().watch() as memory:
        seconds, per_regime = timed(lambda: run_study(engine, study, repeats, epochs))
    print(f"\nstudy: {len(study.regimes)} regimes x {repeats} repeats x {epochs} epochs, trained and forecast")
    _print_table(["regime", "seconds", "mean RMSE"], [(k, s, m) for k, (s, m) in per_regime.items()])
    print(f"  wall time {seconds:.1f} s (compilation and worker start-up included); "
          f"peak memory {memory.peak_bytes / 2**30:.2f} GiB (this process and its workers)")


def report_throughput(engine: Engine, problem: Problem, reg: StateRegime, spec: ModelSpec, args) -> None:
    fast = args.repeats / train_seconds(engine, problem, reg, spec, args.repeats)
    fixed, per_epoch = keras_costs(problem, reg, spec, args.keras_epochs)
    slow = 1 / (fixed + per_epoch * spec.epochs)
    print(f"\nthroughput on {reg.name}, {spec.epochs} epochs (training only):")
    print(f"  vectorized: {fast:.4g} models/s ({args.repeats} replicas at once)")
    print(f"  keras:      {slow:.4g} models/s (one model timed on 1 and {1 + args.keras_epochs} epochs: "
          f"{fixed:.2f} s to build plus {per_epoch * 1e3:.0f} ms per epoch, scaled linearly to {spec.epochs} epochs)")
    noisy = "" if fixed else " (Keras timing too noisy to split off its build time: upper bound; raise --keras-epochs)"
    print(f"  ratio:      {fast / slow:.4g}x{noisy}")


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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.tools.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1000, help="models per regime in the study timing")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per model (default: model.epochs)")
    parser.add_argument("--regime", default="stateful", help="regime of the throughput and scaling runs")
    parser.add_argument("--keras-epochs", type=int, default=10, help="epochs Keras is timed on, then scaled")
    parser.add_argument("--replicas", type=int, nargs="*", default=[1, 10, 100, 1000, 10000])
    parser.add_argument("--scaling-epochs", type=int, nargs="*", default=[10, 100, 1000])
    parser.add_argument("--lengths", type=int, nargs="*", default=[1, 2, 4, 8], help="series length multiples")
    parser.add_argument("--base-replicas", type=int, default=1000, help="replicas of the epoch and length scans")
    parser.add_argument("--base-epochs", type=int, default=100, help="epochs of the replica and length scans")
    parser.add_argument("--law", action="store_true", help="also compare RMSE distributions of both engines (slow)")
    parser.add_argument("--law-repeats", type=int, default=30)
    parser.add_argument("--law-regimes", nargs="*", default=["stateful", "stateless"])
    parser.add_argument("--law-workers", type=int, default=0, help="Keras processes (0: one per core)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/, before the options: engine.workers=1")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        study = prepare(args.overrides, Path(tmp))
        engine = make_engine(study.cfg.engine)
        epochs = args.epochs or study.cfg.model.epochs
        print(f"engine: {engine}")
        report_study(engine, study, args.repeats, epochs)
        reg = next((r for r in study.regimes if r.name == args.regime), study.regimes[0])
        problem, spec = study.problems[reg.name], study.spec(epochs)
        report_throughput(engine, problem, reg, spec, args)
        report_scaling(engine, problem, reg, spec, args)
        if args.law:
            report_law(study, engine, args, epochs)


if __name__ == "__main__":
    main()
