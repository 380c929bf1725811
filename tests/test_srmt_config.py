"""ModelConfig: presets load with the paper's sizes, every (preset, core) builds and steps, bad values are
one-line errors, and the core registry matches the ``Literal``."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

import pytest
import torch

import configs
from configs import ConfigError
from srmt import CORE_NAMES, CORES, ModelConfig, build_actor_critic
from srmt.config import CoreName

PRESETS = ("srmt-bottleneck", "srmt-mid", "srmt-lmapf")


@dataclass
class _Wrapped:
    """Presets are written as ``model: {...}`` so they compose into experiment configs through ``base:``."""

    model: ModelConfig = field(default_factory=ModelConfig)


def preset(name: str, overrides: list[str] | None = None) -> ModelConfig:
    return configs.load(_Wrapped, f"model/{name}.yaml", overrides).model


def test_registry_matches_literal():
    assert set(typing.get_args(CoreName)) == set(CORE_NAMES) == set(CORES)


def test_paper_sizes():
    b, lm = preset("srmt-bottleneck"), preset("srmt-lmapf")
    assert (b.hidden_size, b.num_heads, b.num_filters, b.num_res_blocks) == (16, 4, 8, 1)
    assert (lm.hidden_size, lm.num_heads, lm.num_filters, lm.num_res_blocks) == (512, 8, 64, 8)
    assert b.mlp_size == 64 and b.head_size == 4


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("core", CORE_NAMES)
def test_every_preset_and_core_builds_and_steps(name, core):
    cfg = preset(name, [f"model.core={core}"])
    assert cfg.core == core
    model = build_actor_critic(cfg, (3, 11, 11), 5)
    state = model.initial_state(1, 2)
    with torch.no_grad():
        out = model.step(torch.rand(1, 2, 3, 11, 11), state)
    assert out.logits.shape == (1, 2, 5) and torch.isfinite(out.value).all()


@pytest.mark.parametrize(
    "override, match",
    [
        ("model.core=lstm", "lstm"),
        ("model.hidden_size=10", "hidden_size=10 must be divisible by num_heads=4"),
        ("model.num_heads=0", "num_heads=0"),
        ("model.history_len=-1", "history_len=-1"),
        ("model.dropout=1.0", "dropout=1.0"),
        ("model.mlp_ratio=0", "mlp_ratio=0"),
        ("model.hidden=8", "hidden"),
    ],
)
def test_bad_values_are_one_line_errors(override, match):
    with pytest.raises(ConfigError, match=match) as e:
        preset("srmt-bottleneck", [override])
    assert "\n" not in str(e.value)


def test_direct_construction_checks_too():
    with pytest.raises(ValueError, match="core='lstm'"):
        ModelConfig(core="lstm")  # type: ignore[arg-type]
