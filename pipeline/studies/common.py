"""What the three studies share: seeding Keras, stateful-model guards, rates over seeds, report outputs."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from statsmodels.stats.proportion import proportion_confint

from pipeline import io
from pipeline.errors import BadInput
from pipeline.params import ConfigError, load_params

# Streams 0 and 1 of a repeat's seed draw initial weights and shuffles (pipeline.seeds); data comes from 2.
DATA_STREAM = 2


def data_rng(seed: int) -> np.random.Generator:
    """The generator for a repeat's random data, independent of the streams Keras draws from."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(DATA_STREAM,)))


def stage_main(name: str, run: Callable[[DictConfig, Path], pd.DataFrame]) -> None:
    """A study's DVC stage: run it on ``params.yaml`` in the working directory, then log it to MLflow."""
    from pipeline import tracking  # mlflow is imported where a run is logged, not by every import of a study

    cfg, root = load_params(), Path.cwd()
    enable_op_determinism()
    start = time.time()
    run(cfg, root)
    tracking.log_other_study(cfg, root, name, kind="repro", trained=(start, time.time()))


class StudyError(BadInput):
    """A study cannot run as asked; the message names the problem and the fix."""


def quiet_tensorflow() -> None:
    """Silence TensorFlow's retracing warnings: every fresh model traces its own functions, as intended here."""
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")


def enable_op_determinism() -> None:
    """Turn on TensorFlow's op determinism for this process, for good (TensorFlow offers no way back).

    Every process that trains a study for the record turns it on (its DVC stage, a sweep job, the audit):
    some CPU kernels take another path with it on and differ in the last bits (measured: the alphabet's
    one-batch framing after 5000 epochs), so a result is reproducible only under the same setting.
    """
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


def seed_keras(seed: int) -> None:
    """Seed Python, NumPy and the backend from one recorded seed, right before a model is built."""
    import keras

    keras.utils.set_random_seed(int(seed))


def reset_states(model: Any) -> None:
    """Zero the state of every stateful recurrent layer (Keras 3 has no ``Model.reset_states``)."""
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()


def check_batch(model: Any, n_rows: int, batch_size: int) -> None:
    """Refuse batch sizes a stateful model was not built for: Keras 3 would silently broadcast its state."""
    built = model.inputs[0].shape[0]
    if built is None:
        return
    if batch_size != built:
        raise StudyError(
            f"this stateful model was built for batch size {built} but was called with {batch_size}: "
            f"Keras would broadcast one state over the batch; rebuild the model with batch_shape=({batch_size}, ...)."
        )
    if n_rows % built:
        raise StudyError(
            f"{n_rows} rows do not split into whole batches of {built}; a stateful model needs every batch full, "
            f"so use a batch size that divides {n_rows}."
        )


def positive_ints(section: Mapping[str, Any], keys: Iterable[str], where: str) -> None:
    """Raise a ConfigError naming ``where.key`` unless every key holds a positive integer."""
    for key in keys:
        value = section[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{where}.{key} must be a positive integer, got {value!r}: set e.g. {where}.{key}=10.")


def rate(successes: Iterable[bool]) -> dict[str, float | int]:
    """How many seeds succeeded, their share and its 95% Wilson interval."""
    flags = np.asarray(list(successes), dtype=bool)
    n, k = len(flags), int(flags.sum())
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson") if n else (float("nan"), float("nan"))
    return {"count": k, "n": n, "share": k / n if n else float("nan"), "ci_low": float(low), "ci_high": float(high)}


def rate_verdict(r: Mapping[str, float | int], claimed: bool = True) -> str:
    """A claim that a run shows an outcome (``claimed``) or shows it never happens (``claimed=False``), judged on
    the rate over seeds: supported when its 95% interval lies wholly on the claimed side of one half (most seeds
    agree), contradicted when wholly on the other side, inconclusive when the seeds split about evenly."""
    low, high = (r["ci_low"], r["ci_high"]) if claimed else (1 - r["ci_high"], 1 - r["ci_low"])
    return "supported" if low > 0.5 else "contradicted" if high < 0.5 else "inconclusive"


def claims_table(rows: Iterable[Mapping[str, str]]) -> pd.DataFrame:
    """The write-up's claims as a study section shows them: claim, what was measured, verdict."""
    return pd.DataFrame(list(rows), columns=["claim (write-up)", "measured over seeds", "verdict"])


def describe(values: Iterable[float]) -> dict[str, float]:
    """Mean, standard deviation and five-number summary of one outcome over seeds."""
    v = np.asarray(list(values), dtype=np.float64)
    q = np.quantile(v, [0.0, 0.25, 0.5, 0.75, 1.0])
    return {
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
        "min": float(q[0]),
        "q25": float(q[1]),
        "median": float(q[2]),
        "q75": float(q[3]),
        "max": float(q[4]),
    }


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def rate_text(r: Mapping[str, float | int]) -> str:
    """``k/n (share, 95% CI low-high)``, the way every study prints a rate."""
    return f"{r['count']}/{r['n']} ({pct(r['share'])}, 95% CI {pct(r['ci_low'])}-{pct(r['ci_high'])})"


def markdown_table(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, disable_numparse=True)


def image(md_path: Path, png_path: Path, alt: str) -> str:
    """A markdown image line pointing from the fragment to a PNG by relative file name."""
    return f"![{alt}]({Path(os.path.relpath(png_path, md_path.parent)).as_posix()})"


def save_figure(fig: Any, path: Path) -> None:
    """Write a matplotlib figure as PNG atomically, without a timestamp or version in its metadata."""
    import matplotlib.pyplot as plt

    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)


def pyplot() -> Any:
    """matplotlib's pyplot on the non-interactive backend, for stages that run headless."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
