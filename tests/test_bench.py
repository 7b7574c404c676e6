from __future__ import annotations

import re

import numpy as np
import pytest

from pipeline.engines.base import Problem
from pipeline.tools import bench


def test_law_summary_tells_equal_from_shifted_distributions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(100, 5, 200), rng.normal(100, 5, 200)
    same = bench.law_summary(a, b)
    shifted = bench.law_summary(a, b + 5)
    assert same["ks_p"] > 0.05 and same["mannwhitney_p"] > 0.05
    assert shifted["ks_p"] < 1e-6 and shifted["mannwhitney_p"] < 1e-6


def test_mean_ci_covers_the_mean_and_narrows_with_n():
    rng = np.random.default_rng(1)
    small, large = rng.normal(10, 2, 30), rng.normal(10, 2, 3000)
    m, low, high = bench.mean_ci(small)
    assert low < m < high
    _, low_l, high_l = bench.mean_ci(large)
    assert high_l - low_l < (high - low) / 5
    assert low_l < 10 < high_l


def test_lengthened_repeats_the_training_rows_only():
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    p = Problem(x, np.arange(3, dtype=np.float32), x[:1], np.zeros(1, np.float32))
    longer = bench.lengthened(p, 3)
    assert longer.x_train.shape == (9, 2) and longer.y_train.shape == (9,)
    np.testing.assert_array_equal(longer.x_train[3:6], x)
    assert longer.x_test is p.x_test


def _numbers(line: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", line)]


@pytest.mark.slow
def test_bench_prints_every_section(capsys):
    bench.main(
        [
            "regime=[stateless,stateful]", "engine.workers=1",  # Hydra overrides go first (a pair, for the panel)
            "--regime", "stateless", "--repeats", "20", "--big-repeats", "24", "--cell-replicas", "16",
            "--epochs", "2", "--keras-epochs", "1", "--replicas", "1", "20",
            "--scaling-epochs", "1", "2", "--lengths", "1", "2", "--base-replicas", "8", "--base-epochs", "1",
            "--law", "--law-repeats", "3", "--law-workers", "1", "--law-regimes", "stateless", "--panel", "quick",
        ]
    )
    out = capsys.readouterr().out
    study = out[out.index("study: 2 regimes x 20 repeats x 2 epochs (2 distinct training procedures)") :]
    rows = {line.split()[0]: float(line.split()[1]) for line in study.splitlines()[2:4]}
    assert set(rows) == {"stateless", "stateful"}
    assert all(20 < rmse < 1000 for rmse in rows.values())
    assert re.search(r"train stage [\d.]+ s .* forecasts included\), scoring [\d.]+ s; peak memory [\d.]+ GiB", out)
    assert "study: 2 regimes x 24 repeats x 2 epochs" in out
    cell = out[out.index("cost per replica-step on stateless, 16 replicas") :]
    engine_ns, reference_ns, cell_ratio = (_numbers(line)[0] for line in cell.splitlines()[1:4])
    assert engine_ns > 0 and reference_ns > 0 and cell_ratio == pytest.approx(engine_ns / reference_ns, rel=0.01)
    ratio = float(re.search(r"ratio:\s+([\d.e+]+)x", out).group(1))
    assert ratio > 1
    assert "scaled linearly to 2 epochs" in out
    scaling = out[out.index("scaling on stateless") :]
    assert [_numbers(line)[:2] for line in scaling.splitlines()[2:6]] == [[1, 1], [20, 1], [8, 1], [8, 2]]
    assert "training rows" in scaling and re.search(r"^\s+44\s+[\d.e-]+$", scaling, re.M)
    law = out[out.index("law: 3 models") :]
    law_rows = [line for line in law.splitlines() if line.strip().startswith("stateless")]
    assert [line.split()[1] for line in law_rows] == ["vectorized", "keras"]
    p_values = _numbers(law_rows[0])[-2:]
    assert all(0 <= p <= 1 for p in p_values)
    panel = out[out.index("panel quick: 2 series, ") :].splitlines()
    assert re.search(r"models \(series x origins x regimes x repeats\), 2 epochs, baselines none", panel[0])
    assert re.search(r"^\s+[\d.]+ s, [\d.e+]+ models/s \([\d.e+]+x the keras engine's", panel[1])
    targets = out[out.index("targets (measured / target") :].splitlines()[2:]
    assert [line.split()[0] for line in targets] == ["train", "cost", "models/s", "train", "peak", "panel"]
    assert all(line.split()[-1] in ("met", "missed") for line in targets)
    assert _numbers(targets[1])[-1] == pytest.approx(cell_ratio / 1.3, rel=0.01)
