"""Compose ``conf/`` into the parameters every stage reads, and keep ``params.yaml`` in step with it.

``python -m pipeline.params [overrides...]`` rewrites ``params.yaml`` from ``conf/`` (what DVC's
own Hydra composition does on ``dvc exp run``); ``dvc repro`` and the stage modules then read it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from pipeline import io, studies
from pipeline.regimes import StateRegime, regimes_from_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"
PARAMS_FILE = PROJECT_ROOT / "params.yaml"


class ConfigError(ValueError):
    """A parameter is out of range; the message names it and the fix."""


def compose_config(overrides: Sequence[str] = (), conf_dir: Path = CONF_DIR) -> DictConfig:
    """Compose the primary config with Hydra overrides, exactly as ``dvc exp run -S`` would."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir), version_base=None):
        cfg = compose(config_name="config", overrides=list(overrides))
    validate(cfg)
    return cfg


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)


def load_params(path: Path | str = "params.yaml") -> DictConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} not found: generate it from conf/ with `python -m pipeline.params`.")
    cfg = OmegaConf.load(path)
    OmegaConf.set_struct(cfg, True)  # a typo in a key is an error, not a silent default
    validate(cfg)
    return cfg


def validate(cfg: DictConfig) -> None:
    checks = {
        "repeats": cfg.repeats,
        "model.epochs": cfg.model.epochs,
        "model.units": cfg.model.units,
        "data.test_size": cfg.data.test_size,
        "data.interval": cfg.data.interval,
    }
    for key, value in checks.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{key} must be a positive integer, got {value!r}: set e.g. {key}=10.")
    if cfg.study not in ("shampoo", *studies.NAMES):
        raise ConfigError(f"study must be shampoo or one of {', '.join(studies.NAMES)}, got {cfg.study!r}.")
    if cfg.model.lag != 1:
        raise ConfigError(f"model.lag must be 1 (the study frames lag-1 pairs), got {cfg.model.lag!r}.")
    regimes(cfg)


def regimes(cfg: DictConfig) -> list[StateRegime]:
    return regimes_from_config(OmegaConf.to_container(cfg.regime, resolve=True))


def main(argv: Sequence[str] | None = None) -> None:
    overrides = list(sys.argv[1:] if argv is None else argv)
    cfg = compose_config(overrides)
    io.write_text(
        PARAMS_FILE,
        "# Generated from conf/ by `python -m pipeline.params`; edit conf/, not this file.\n" + to_yaml(cfg),
    )
    names = [r.name for r in regimes(cfg)]
    print(f"wrote {PARAMS_FILE.relative_to(PROJECT_ROOT)}: {len(names)} regimes ({', '.join(names)}) x "
          f"{cfg.repeats} repeats x {cfg.model.epochs} epochs = {len(names) * cfg.repeats} models")


if __name__ == "__main__":
    main()
