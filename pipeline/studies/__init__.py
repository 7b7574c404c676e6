"""The other write-ups as studies: alphabet framings, echo memory, loop-vs-single-fit determinism.

Each module is one DVC stage (``python -m pipeline.studies.<name>``) with the house shape: pure
helpers for data and summaries, Keras 3 models built after seeding from the repeat's seed, and
``run(cfg, root)`` writing a markdown section, plots, a metrics JSON and one CSV row per seed (its
results table, which the determinism audit recomputes and compares bit for bit). The stage then logs
the study to MLflow as one run; a sweep job (``study=<name>``) runs the same ``run`` in its folder.
"""

import os
from importlib import import_module
from types import ModuleType

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of stage logs

NAMES = ("alphabet", "echo", "sine")  # each a module here, a config group, a DVC stage and a `paths.<name>_*` set


def load(name: str) -> ModuleType:
    """The study module ``pipeline.studies.<name>``."""
    if name not in NAMES:
        raise ValueError(f"no study {name!r}: the studies are {', '.join(NAMES)}.")
    return import_module(f"pipeline.studies.{name}")
