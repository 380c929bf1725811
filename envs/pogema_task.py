"""The ``pogema`` env: any POGEMA grid from a map string, a pogema-toolbox map set or a seeded generator."""

from __future__ import annotations

import dataclasses

import numpy as np

from envs.config import EnvConfig
from envs.grid_env import Episode, GridEnv, grid_config
from envs.maps import has_markers, load_maps, maze_map, parse_map, select_maps

DEFAULT_MAX_EPISODE_STEPS = 256  # POGEMA benchmark's lifelong episodes
DEFAULT_NUM_AGENTS = 2


class _MapSet:
    """Fixed maps: name -> (what pogema gets as ``map``, number of free cells)."""

    def __init__(self, maps: dict[str, str]):
        self.names = list(maps)
        self._maps: dict[str, tuple[object, int]] = {}
        self._lettered: dict[str, int] = {}  # maps whose letters fix starts/goals -> number of agents
        for name, text in maps.items():
            grid = parse_map(text, name=f"map {name!r}")
            # Strings that fix starts/goals go to pogema as they are; plain ones as 0/1 rows (parsing
            # a string again on every reset costs pogema more than the episode's first steps).
            payload = text if has_markers(text) else grid.astype(int).tolist()
            self._maps[name] = (payload, int((~grid).sum()))
            letters = {ch for ch in text if ch.isascii() and ch.islower()}
            if letters:
                self._lettered[name] = len(letters)

    def check(self, cfg: EnvConfig) -> None:
        for name in self.names:
            free = self._maps[name][1]
            if cfg.num_agents > free:
                raise ValueError(
                    f"num_agents={cfg.num_agents} is more than the {free} free cells of map {name!r}"
                )
            fixed = self._lettered.get(name)
            if fixed is not None and fixed != cfg.num_agents:
                raise ValueError(
                    f"map {name!r} fixes {fixed} agents with letters but num_agents={cfg.num_agents}"
                )
            if fixed is not None and cfg.on_target == "restart":
                # pogema would take the single letter goals for goal sequences and crash on the first arrival
                raise ValueError(
                    f"map {name!r} fixes one goal per agent with letters; on_target='restart' needs goal "
                    "sequences: give agents_xy and targets_xy instead"
                )

    def payload(self, name: str) -> object:
        return self._maps[name][0]

    def pick(self, rng: np.random.Generator) -> tuple[str, object]:
        name = self.names[int(rng.integers(len(self.names)))] if len(self.names) > 1 else self.names[0]
        return name, self._maps[name][0]


def _map_set(cfg: EnvConfig) -> _MapSet | None:
    if cfg.map is not None:
        return _MapSet({"map": cfg.map})
    if cfg.maps_file is not None:
        maps = load_maps(cfg.maps_file)
        names = (
            select_maps(maps, cfg.map_selectors, where=f"maps file {cfg.maps_file!r}")
            if cfg.map_selectors
            else list(maps)
        )
        return _MapSet({n: maps[n] for n in names})
    return None


def build_pogema(cfg: EnvConfig, seed: int | None = None) -> GridEnv:
    if cfg.num_agents is None:
        cfg = dataclasses.replace(cfg, num_agents=DEFAULT_NUM_AGENTS)
    maps = _map_set(cfg)
    H, W = cfg.grid_height, cfg.grid_width
    if maps is not None:
        maps.check(cfg)
    elif cfg.num_agents > H * W:
        raise ValueError(f"num_agents={cfg.num_agents} is more than the {H * W} cells of a {H}x{W} map")
    limit = cfg.max_episode_steps or DEFAULT_MAX_EPISODE_STEPS
    common = dict(
        num_agents=cfg.num_agents,
        on_target=cfg.on_target,
        collision_system=cfg.collision_system,
        obs_radius=cfg.radius,
        max_episode_steps=limit,
        agents_xy=cfg.agents_xy,
        targets_xy=cfg.targets_xy,
    )
    # Fail at construction, not at the first reset, on settings pogema rejects.
    grid_config(
        **common, **({"map": maps.payload(maps.names[0])} if maps is not None else {"width": W, "height": H})
    )

    def new_episode(ep_seed: int, rng: np.random.Generator) -> Episode:
        if maps is not None:
            name, payload = maps.pick(rng)
            gc = grid_config(**common, map=payload, seed=ep_seed)
            return Episode(gc, ep_seed, {"map_name": name})
        maze = cfg.generator == "maze" or (cfg.generator == "mixed" and rng.random() < 0.5)
        if maze:
            loops = cfg.maze_loops
            if cfg.maze_loops_choices:  # drawn only then: runs without choices keep their episode stream
                loops = float(cfg.maze_loops_choices[int(rng.integers(len(cfg.maze_loops_choices)))])
            grid = maze_map(H, W, np.random.default_rng(ep_seed), loops)
            gc = grid_config(**common, map=grid.astype(int).tolist(), seed=ep_seed)
            return Episode(gc, ep_seed, {"map_name": f"maze-{H}x{W}-seed-{ep_seed}", "maze_loops": loops})
        # pogema draws the random map itself from the episode seed (as pogema / pogema-toolbox do).
        gc = grid_config(**common, width=W, height=H, density=cfg.density, seed=ep_seed)
        return Episode(gc, ep_seed, {"map_name": f"random-{H}x{W}-seed-{ep_seed}"})

    return GridEnv(cfg, new_episode, seed)
