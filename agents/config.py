"""ExperimentConfig: one typed config nesting each component's own dataclass.

    env    envs.config.EnvConfig         (owned by envs)
    model  srmt.config.ModelConfig       (owned by srmt)
    train  agents.train_config.TrainConfig
    eval   agents.eval_config.EvalConfig

Load with ``load_experiment("bottleneck-srmt", ["env.num_agents=8"])``.
"""

from __future__ import annotations

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


def load_experiment(
    source: str | Path | dict | None = None, overrides: list[str] | None = None
) -> ExperimentConfig:
    return configs.load(ExperimentConfig, source, overrides)
