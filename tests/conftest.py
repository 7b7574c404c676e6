"""Shared fixtures: tiny configs composed through Hydra's compose API, and study folders in tmp_path."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from pipeline.params import compose_config

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TINY = ("repeats=2", "model.epochs=2")


@pytest.fixture
def compose() -> Callable[..., DictConfig]:
    """Compose the real config with overrides; tiny (2 repeats, 2 epochs) unless overridden."""

    def _compose(*overrides: str) -> DictConfig:
        return compose_config([*TINY, *overrides])

    return _compose


@pytest.fixture
def prepared(compose, tmp_path: Path) -> Callable[..., tuple[DictConfig, Path]]:
    """A study folder with the data stages run: returns (cfg, root) ready for train/evaluate."""
    from pipeline import difference, fetch, frame, scale

    def _prepared(*overrides: str) -> tuple[DictConfig, Path]:
        cfg = compose("data.source=packaged", *overrides)
        for stage in (fetch, difference, scale, frame):
            stage.run(cfg, tmp_path)
        return cfg, tmp_path

    return _prepared
