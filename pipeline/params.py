"""Compose ``conf/`` into the parameters every stage reads, and keep ``params.yaml`` in step with it.

``python -m pipeline.params [overrides...]`` rewrites ``params.yaml`` from ``conf/`` (what DVC's
own Hydra composition does on ``dvc exp run``); ``dvc repro`` and the stage modules then read it.
Whatever is composed or read is validated against the typed schema (``pipeline.schema``) first.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipeline import errors, io, schema
from pipeline.errors import ConfigError
from pipeline.regimes import StateRegime, regimes_from_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"
PARAMS_FILE = PROJECT_ROOT / "params.yaml"


def compose_config(overrides: Sequence[str] = (), conf_dir: Path = CONF_DIR) -> DictConfig:
    """Compose the primary config with Hydra overrides, exactly as ``dvc exp run -S`` would."""
    from hydra import compose, initialize_config_dir  # here: the stages read params.yaml and need no Hydra
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base=None):
            cfg = compose(config_name="config", overrides=list(overrides))
    except (HydraException, ValueError) as err:  # Hydra raises ValueError for some malformed overrides
        raise ConfigError(composition_error(err)) from None
    validate(cfg, conf_dir)
    return cfg


def composition_error(err: Exception) -> str:
    """Hydra's complaint about an override as one line: an unknown key or group option with what exists."""
    from hydra.errors import MissingConfigException, OverrideParseException

    text = str(err).strip().splitlines()[0]
    unknown = re.match(r"Could not override '([^']+)'", text)
    if unknown:
        return schema.unknown_key(unknown[1])
    if isinstance(err, OverrideParseException):
        return (f"the override {err.override} does not parse ({text}): quote a value that holds ; , [ ] = or spaces, "
                "e.g. data.delimiter=';'")
    if isinstance(err, MissingConfigException) and err.options:
        missing = text.removeprefix("In 'config': ")
        return f"{missing}: the choices are {', '.join(sorted(err.options))}"
    return text


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)


def load_params(path: Path | str = "params.yaml") -> DictConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} not found: generate it from conf/ with `python -m pipeline.params`.")
    try:
        cfg = OmegaConf.load(path)
    except (OmegaConfBaseException, yaml.YAMLError, ValueError) as err:
        raise ConfigError(f"{path} is not valid YAML ({' '.join(str(err).split())}): regenerate it with "
                          "`python -m pipeline.params`.") from None
    OmegaConf.set_struct(cfg, True)  # a typo in a key is an error, not a silent default
    try:
        validate(cfg)
    except ConfigError as err:
        raise ConfigError(f"{err} (in {path}: set it in conf/, then `python -m pipeline.params`)") from None
    return cfg


def validate(cfg: DictConfig, conf_dir: Path = CONF_DIR) -> None:
    """Raise a one-line :class:`ConfigError` unless every key, type and range of ``cfg`` is as the schema says."""
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        raise ConfigError(f"the config does not resolve: {str(err).splitlines()[0]}") from None
    group = resolved.get("regime")
    misplaced = [k for k, v in group.items() if not isinstance(v, dict)] if isinstance(group, dict) else []
    if misplaced:
        raise ConfigError(
            f"regime.{misplaced[0]} holds a regime field, not a regime record: "
            f"{' and '.join(unpackaged_regime_files(conf_dir)) or 'a regime file'} lacks its first line "
            "`# @package regime.<file name>`; add it."
        )
    schema.validate(resolved)
    regimes(cfg)


def unpackaged_regime_files(conf_dir: Path = CONF_DIR) -> list[str]:
    """Regime files whose first line does not put their record under ``regime.<file name>``."""
    return [
        str(path.relative_to(conf_dir.parent)) for path in sorted((conf_dir / "regime").glob("*.yaml"))
        if path.read_text().partition("\n")[0].strip() != f"# @package regime.{path.stem}"
    ]


def regimes(cfg: DictConfig) -> list[StateRegime]:
    return regimes_from_config(OmegaConf.to_container(cfg.regime, resolve=True))


def main(argv: Sequence[str] | None = None) -> None:
    """Compose ``conf/`` with ``argv``'s overrides (the command line's by default) into ``params.yaml``."""
    overrides = list(sys.argv[1:] if argv is None else argv)
    cfg = compose_config(overrides, CONF_DIR)
    io.write_text(
        PARAMS_FILE,
        "# Generated from conf/ by `python -m pipeline.params`; edit conf/, not this file.\n" + to_yaml(cfg),
    )
    names = [r.name for r in regimes(cfg)]
    print(f"wrote {PARAMS_FILE.name}: {len(names)} regimes ({', '.join(names)}) x "
          f"{cfg.repeats} repeats x {cfg.model.epochs} epochs = {len(names) * cfg.repeats} models")


if __name__ == "__main__":
    errors.cli(main)
