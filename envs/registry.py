"""Env registry: name -> :class:`EnvSpec` (builder, typed options, provenance).

``register_env(name, builder, options_type)`` is the one registration pattern (the same as
``agents.eval.algorithms.register_algorithm``): ``builder(cfg, seed) -> MultiAgentEnv`` gets the
:class:`envs.config.EnvConfig`, whose ``cfg.opts`` is an ``options_type`` instance built from
``env.options`` (unknown keys and wrong types are one-line errors). The built-in envs register on
``import envs``; a plugin (``envs.plugins``) registers its own, and the registry remembers which plugin
did, so that a saved config names it.

This module imports nothing from ``envs.config`` (the config looks names up here, not the other way).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from envs.plugins import current_plugin

if TYPE_CHECKING:
    from envs.base import MultiAgentEnv
    from envs.config import EnvConfig

Builder = Callable[["EnvConfig", "int | None"], "MultiAgentEnv"]


@dataclass(frozen=True)
class EnvSpec:
    name: str
    builder: Builder
    options_type: type | None
    """A dataclass of the env's own settings (``env.options``), or None for an env without options."""
    grid: bool
    """The env reads EnvConfig's POGEMA grid keys (on_target, collision_system, obs_radius, reward and
    the map source); for other envs those keys must keep their defaults."""
    plugin: str | None
    """The plugin (module path or absolute .py path) whose import registered it, else the builder's
    module when it is importable by name; None for srmt's own envs and for builders in ``__main__``."""


_REGISTRY: dict[str, EnvSpec] = {}


def register_env(
    name: str,
    builder: Builder,
    options_type: type | None = None,
    *,
    grid: bool = False,
    replace: bool = False,
) -> None:
    """Make ``EnvConfig(name=name, options={...})`` build envs with ``builder(cfg, seed)``.

    ``options_type`` is a dataclass whose fields are the env's options (with defaults and, ideally,
    field docstrings); ``grid=True`` for POGEMA-grid tasks that read EnvConfig's grid keys.
    Re-registering a name from another place is an error unless ``replace=True`` (a silent overwrite
    would swap the task under every config that names it; ``envs.plugins`` imports each plugin once
    per process).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"env name must be a non-empty string, got {name!r}")
    if not callable(builder):
        raise ValueError(
            f"builder for env {name!r} must be callable(cfg, seed), got {type(builder).__name__}"
        )
    if options_type is not None and not (
        isinstance(options_type, type) and dataclasses.is_dataclass(options_type)
    ):
        raise ValueError(
            f"options_type for env {name!r} must be a dataclass type or None, got {options_type!r}"
        )
    if name in _REGISTRY and not replace:
        raise ValueError(f"env {name!r} is already registered; pass replace=True to override it")
    _REGISTRY[name] = EnvSpec(
        name, builder, options_type, bool(grid), current_plugin() or importable_module(builder)
    )


def importable_module(builder: Any) -> str | None:
    """The module a builder lives in, when a later process can import it by name (not ``__main__``,
    not srmt's own ``envs``)."""
    module = getattr(builder, "__module__", None)
    if not isinstance(module, str) or module == "__main__" or module == "envs" or module.startswith("envs."):
        return None
    return module


def unregister_env(name: str) -> None:
    """Remove a registered env (tests and plugins that register temporary envs)."""
    env_spec(name)
    del _REGISTRY[name]


def registered_envs() -> list[str]:
    return sorted(_REGISTRY)


def env_spec(name: str) -> EnvSpec:
    """The registration of ``name``; an unknown name is a one-line ValueError listing the known ones."""
    spec = _REGISTRY.get(name)
    if spec is None:
        raise ValueError(
            f"unknown env name {name!r}; registered: {', '.join(registered_envs())} "
            "(a plugin's env needs env.plugin=MODULE_OR_FILE or train.plugins)"
        )
    return spec


PRIORITY_CHANNEL_ENVS = ("pogema", "bottleneck")
"""Envs that draw ``EnvConfig.priority_channel`` (plain :class:`envs.grid_env.GridEnv` observations)."""


def make_env(cfg: EnvConfig, seed: int | None = None) -> MultiAgentEnv:
    """Build the env ``cfg.name``. ``seed`` fixes the first episode (see ``MultiAgentEnv.reset``). With
    ``cfg.num_agents_choices`` the env is an :class:`envs.mixed.MixedCountEnv` (mixed agent counts)."""
    from envs.base import check_seed

    seed = None if seed is None else check_seed(seed)
    if getattr(cfg, "num_agents_choices", None):
        from envs.mixed import MixedCountEnv

        return MixedCountEnv(cfg, seed)  # an env of each count inside, padded to max(choices) slots
    if getattr(cfg, "priority_channel", False) and cfg.name not in PRIORITY_CHANNEL_ENVS:
        raise ValueError(
            f"env.priority_channel=true is not supported by env {cfg.name!r}; "
            f"allowed with: {', '.join(PRIORITY_CHANNEL_ENVS)}"
        )
    env = env_spec(cfg.name).builder(cfg, seed)
    check_spaces(cfg.name, env)
    return env


def check_spaces(name: str, env: Any) -> None:
    """One agent's observation space must be one Box and its action space Discrete (one line otherwise)."""
    import gymnasium

    obs, act = getattr(env, "observation_space", None), getattr(env, "action_space", None)
    if not isinstance(obs, gymnasium.spaces.Box):
        if isinstance(obs, (gymnasium.spaces.Dict, gymnasium.spaces.Tuple)):
            raise ValueError(
                f"env {name!r}: observation_space {type(obs).__name__} has several parts (e.g. an image and a vector); "
                "srmt encoders take one Box per agent: return gymnasium.spaces.flatten(...) of it, or fold the vector "
                "into the image as extra channels (docs/extending.md)"
            )
        raise ValueError(
            f"env {name!r}: observation_space must be a gymnasium Box (one agent's observation), got {obs!r}"
        )
    if not isinstance(act, gymnasium.spaces.Discrete):
        raise ValueError(
            f"env {name!r}: action_space must be gymnasium Discrete(n) (one agent's actions), got {act!r}"
        )
