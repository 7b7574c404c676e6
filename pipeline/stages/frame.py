"""Stage ``frame``: turn each scaled window into lag-1 supervised pairs split into train and test."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from omegaconf import DictConfig

from pipeline import data, errors, io
from pipeline.artifacts import paths
from pipeline.params import load_params
from pipeline.stages.scale import windows


def run(cfg: DictConfig, root: Path) -> None:
    p = paths(cfg, root)
    for window, train_rows in windows(cfg).items():
        scaled = io.load_arrays(p.scaled(window))["scaled"]
        x, y = data.frame_lag1(scaled)
        split = data.split_supervised(x, y, cfg.data.test_size, train_rows)
        io.save_arrays(p.supervised(window), asdict(split))


def main() -> None:
    run(load_params(), Path.cwd())


if __name__ == "__main__":
    errors.cli(main)
