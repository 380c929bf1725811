"""Env registry: name -> builder(cfg, seed) -> MultiAgentEnv. The built-in envs register on ``import envs``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from envs.base import MultiAgentEnv
    from envs.config import EnvConfig

Builder = Callable[["EnvConfig", "int | None"], "MultiAgentEnv"]
_REGISTRY: dict[str, Builder] = {}


def register_env(name: str, builder: Builder, replace: bool = False) -> None:
    """Make ``EnvConfig(name=name)`` build envs with ``builder(cfg, seed)``.

    Re-registering a name is an error unless ``replace=True`` (a silent overwrite would swap the task
    under every config that names it).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"env name must be a non-empty string, got {name!r}")
    if not callable(builder):
        raise ValueError(
            f"builder for env {name!r} must be callable(cfg, seed), got {type(builder).__name__}"
        )
    if name in _REGISTRY and not replace:
        raise ValueError(f"env {name!r} is already registered; pass replace=True to override it")
    _REGISTRY[name] = builder


def unregister_env(name: str) -> None:
    """Remove a registered env (tests and plugins that register temporary envs)."""
    if name not in _REGISTRY:
        raise ValueError(f"env {name!r} is not registered; registered: {', '.join(registered_envs())}")
    del _REGISTRY[name]


def registered_envs() -> list[str]:
    return sorted(_REGISTRY)


def make_env(cfg: EnvConfig, seed: int | None = None) -> MultiAgentEnv:
    """Build the env ``cfg.name``. ``seed`` fixes the first episode (see ``MultiAgentEnv.reset``)."""
    if cfg.name not in _REGISTRY:
        raise ValueError(f"unknown env name {cfg.name!r}; registered: {', '.join(registered_envs())}")
    from envs.base import check_seed

    return _REGISTRY[cfg.name](cfg, None if seed is None else check_seed(seed))
