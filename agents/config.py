"""ExperimentConfig: one typed config nesting each component's own dataclass.

    env    envs.config.EnvConfig         (owned by envs)
    model  srmt.config.ModelConfig       (owned by srmt)
    train  agents.train_config.TrainConfig
    eval   agents.eval_config.EvalConfig

Load with ``load_experiment("bottleneck-srmt", ["env.num_agents=8"])``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import configs
from agents.eval_config import EvalConfig
from agents.train_config import TrainConfig
from envs.config import EnvConfig
from srmt.config import ModelConfig


@dataclass
class ExperimentConfig:
    name: str = "default"
    """Run name: the folder under ``train.train_dir`` and the label in tables."""
    seed: int = 0
    """Global seed (env layouts, torch init, sampling)."""
    device: str = "auto"
    """``auto`` (GPU when available), ``cpu``, ``cuda`` or ``cuda:N``."""
    env: EnvConfig = field(default_factory=EnvConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        check_run_name(self.name)
        if isinstance(self.seed, bool) or not 0 <= self.seed < 2**63 - 1:
            raise ValueError(f"seed={self.seed!r} is invalid; it must be an integer in [0, 2**63 - 1)")


RESERVED_RUN_NAMES = frozenset({"wandb"})
"""Folders under ``train.train_dir`` that belong to no single run (``wandb/`` holds every run's wandb data)."""


def check_run_name(name: str) -> str:
    """``name`` if it is a plain folder name under ``train.train_dir``, else a one-line ValueError.

    The run folder is ``train_dir/<name>`` and ``train.restart=overwrite`` deletes it, so a name that is
    a path (``/abs``, ``a/b``, ``..``) would delete or write outside the run's own folder.
    """
    seps = {"/", "\\", os.sep} | ({os.altsep} if os.altsep else set())
    bad = (
        not isinstance(name, str)
        or name.strip() in ("", ".", "..")
        or any(s in name for s in seps)
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
    )
    if bad:
        raise ValueError(
            f"name={name!r} is not a plain run name; it must be one folder name under train.train_dir "
            "(not empty, no '/' or '\\', not '.' or '..', no control characters), e.g. name=my-run"
        )
    if name in RESERVED_RUN_NAMES:
        raise ValueError(
            f"name={name!r} is reserved (train.train_dir/{name}/ is shared by all runs); pick another"
        )
    return name


def load_experiment(
    source: str | Path | dict | None = None, overrides: list[str] | None = None
) -> ExperimentConfig:
    return configs.load(ExperimentConfig, source, overrides)
