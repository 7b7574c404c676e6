"""Engines train a stack of replicas for one regime and forecast with them, behind one interface.

An engine is chosen by ``conf/engine/<name>.yaml``, whose ``_target_`` names its class; adding an
engine is one module here plus one config file.
"""

from __future__ import annotations

import os
from typing import Any

from pipeline.engines.base import Engine, Problem, TrainedReplicas

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of stage logs

__all__ = ["Engine", "Problem", "TrainedReplicas", "make_engine"]


def make_engine(engine_cfg: Any) -> Engine:
    from hydra.utils import instantiate  # here: importing the records above should not cost Hydra's start-up

    return instantiate(engine_cfg)
