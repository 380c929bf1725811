"""What each evaluated algorithm plays: map-set instances (a POGEMA grid) or an *env task*.

An env task is ``episodes`` seeded episodes of one registered env, reported with the env's own metrics
(:class:`agents.eval.episode.EnvInstance`). An algorithm plays one when

- ``eval.env`` is set: every algorithm plays that env instead of the map sets, or
- it is a policy trained on a non-grid env (a ``srmt`` checkpoint of PettingZoo, a gym adapter, a
  plugin's env): it plays its own training env, rebuilt from the checkpoint (plugin included).

Every other algorithm plays the map sets, as before. One rule for all envs and algorithms: what an
algorithm needs from the state is declared at registration (``register_algorithm(..., any_env=True)``
for those that act from observations alone), not special-cased per adapter.
"""

from __future__ import annotations

import dataclasses

import configs
from agents.eval.algorithms import BuiltAlgorithm, algorithm_spec
from agents.eval.episode import EnvInstance
from agents.eval_config import EvalConfig
from envs.config import EnvConfig

NOT_APPLICABLE = "map_sets, mode, maps, max_maps, num_agents, scenarios, published"
"""EvalConfig keys an env task ignores (they describe map-set grids)."""


def task_env(cfg: EvalConfig, name: str, built: BuiltAlgorithm | None) -> EnvConfig | None:
    """The env an algorithm's env task plays, or None for the map sets. ``built`` may be None (a
    ``report_only`` run without the checkpoint here: then only ``eval.env`` can say)."""
    spec = cfg.algorithms[name]
    if cfg.env is not None:
        if not algorithm_spec(spec.kind).any_env:
            raise ValueError(
                f"algorithm {name} (kind {spec.kind}) needs a POGEMA grid's positions and goals, so it cannot play "
                f"eval.env ({cfg.env.name!r}); drop it from run, or unset env to evaluate on map sets"
            )
        return cfg.env
    base = built.env_base if built is not None else None
    if isinstance(base, EnvConfig):
        from envs import env_spec

        if not env_spec(base.name).grid:
            return base
    return None


def env_instances(env_cfg: EnvConfig, cfg: EvalConfig) -> list[EnvInstance]:
    """The seeded episodes of an env task: ``seeds`` (or ``0..episodes-1``), capped by ``max_episodes``;
    ``max_episode_steps`` (when set) replaces the env's step limit."""
    from envs import make_env

    if cfg.max_episode_steps:
        env_cfg = dataclasses.replace(env_cfg, max_episode_steps=cfg.max_episode_steps)
    data = configs.to_dict(env_cfg)
    seeds = list(cfg.seeds) if cfg.seeds else list(range(cfg.episodes))
    if cfg.max_episodes:
        seeds = seeds[: cfg.max_episodes]
    env = make_env(env_cfg, seed=seeds[0] if seeds else 0)  # its agent count (a wrapped env decides it)
    try:
        num_agents = int(env.num_agents)
    finally:
        env.close()
    steps = int(env_cfg.max_episode_steps or 0)
    return [EnvInstance(data, int(s), num_agents, steps) for s in seeds]


def describe(env_cfg: EnvConfig) -> str:
    options = ", ".join(f"{k}={v}" for k, v in env_cfg.options.items())
    return f"env {env_cfg.name!r}" + (f" ({options})" if options else "")


def task_note(cfg: EvalConfig, name: str, env_cfg: EnvConfig) -> str:
    """The one line saying what an env task plays and which keys do not apply to it."""
    why = "eval.env" if cfg.env is not None else "its training env, not a POGEMA grid"
    seeds = list(cfg.seeds) if cfg.seeds else list(range(cfg.episodes))
    n = min(len(seeds), cfg.max_episodes) if cfg.max_episodes else len(seeds)
    source = "seeds" if cfg.seeds else "eval.episodes"
    capped = f", capped by max_episodes={cfg.max_episodes}" if n < len(seeds) else ""
    count = f"{n} seeded episodes ({source}{capped})"
    return (
        f"{name} plays {describe(env_cfg)} ({why}): {count}, the env's own metrics; "
        f"{NOT_APPLICABLE} do not apply to it"
    )
