"""Map sets in pogema-toolbox's evaluation-config format, and the grid of instances they define.

A map set YAML (e.g. the POGEMA benchmark's ``experiments/01-random/01-random-lmapf.yaml``) has an
``environment`` section whose values may be ``{grid_search: [...]}`` lists (we grid over ``num_agents``,
``map_name`` and ``seed``), optional ``scenarios`` (frozen starts and goals per map and seed: each
holds ``agents_xy`` for the largest agent count, and an episode with N agents uses the first N, which is
also what pogema generates for N agents from that seed) and maps in ``maps.yaml`` beside it (or inline
under ``maps:``, our extension for small shipped sets). ``algorithms`` and ``results_views`` sections
belong to pogema-toolbox and are ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agents.eval.episode import Instance
from agents.eval_config import EvalConfig
from configs import paths
from envs.maps import select_maps

SHIPPED_MAP_SETS = paths.CONFIG_DIR / "eval" / "mapsets"

_GRID_KEYS = ("num_agents", "map_name", "seed")
_ENV_KEYS = {"on_target", "max_episode_steps", "collision_system", "obs_radius"}
_IGNORED_ENV_KEYS = {"name", "with_animation", "observation_type", "use_maps"}
_SUFFIX = {"lifelong": "lmapf", "classic": "mapf"}


def resolve_dir(path: str | Path, what: str = "folder") -> Path:
    """A folder by the path rule of :mod:`configs.paths` (as given, the data folder, the package)."""
    return paths.resolve(path, what, kind="dir")


@dataclass
class MapSet:
    name: str
    """Short name, e.g. ``01-random`` (the published results' folder name)."""
    label: str
    """File stem, e.g. ``01-random-lmapf``: the results sub-folder."""
    path: Path
    maps: dict[str, str]
    map_names: list[str]
    num_agents: list[int]
    seeds: list[int]
    env: dict[str, Any]
    """on_target, max_episode_steps, collision_system, obs_radius."""
    scenarios: dict[tuple[str, int], dict] = field(default_factory=dict)
    """(map_name, seed) -> {"agents_xy": [...], "targets_xy": [...]}."""

    @property
    def mode(self) -> str:
        return "lifelong" if self.env["on_target"] == "restart" else "classic"


def resolve_map_set(name: str, mode: str, benchmark_dir: str) -> Path:
    """A map set's YAML: a path, a benchmark set name, or a set shipped under ``configs/eval/mapsets``."""
    suffix = _SUFFIX[mode]
    shipped = sorted(p.stem for p in SHIPPED_MAP_SETS.glob("*.yaml"))
    if name.endswith((".yaml", ".yml")):
        if (SHIPPED_MAP_SETS / name).is_file() and not paths.candidates(name)[0].is_file():
            return (SHIPPED_MAP_SETS / name).resolve()
        return paths.resolve(name, "map set")
    for c in (SHIPPED_MAP_SETS / f"{name}-{suffix}.yaml", SHIPPED_MAP_SETS / f"{name}.yaml"):
        if c.is_file():
            return c.resolve()
    try:
        bench = resolve_dir(benchmark_dir, "benchmark_dir")
    except ValueError as e:  # names one line: where it looked and how to get the data
        raise ValueError(f"map set {name!r} ({mode}) is not shipped ({', '.join(shipped)}) and {e}") from None
    path = bench / "experiments" / name / f"{name}-{suffix}.yaml"
    if not path.is_file():
        raise ValueError(
            f"map set {name!r} ({mode}) not found: no experiments/{name}/{name}-{suffix}.yaml in {bench}, "
            f"not shipped ({', '.join(shipped)}), not a YAML path"
        )
    return path.resolve()


def _grid_values(env: dict, key: str, where: Path) -> list | None:
    value = env.get(key)
    if isinstance(value, dict):
        if (
            set(value) != {"grid_search"}
            or not isinstance(value["grid_search"], list)
            or not value["grid_search"]
        ):
            raise ValueError(
                f"{where}: environment.{key} must be a value or {{grid_search: [non-empty list]}}"
            )
        return list(value["grid_search"])
    return None if value is None else [value]


_PARSED: dict[tuple[str, int, int], Any] = {}


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "srmt" / "yaml"


def read_yaml_cached(path: Path) -> Any:
    """YAML parsed once per file version: the benchmark's lifelong configs are ~2 MB of frozen goal
    sequences that PyYAML needs seconds for, so the parsed form is kept as JSON in the user's cache
    folder (keyed by path, size and mtime); any cache failure falls back to parsing."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _PARSED:
        return _PARSED[key]
    cached = _cache_dir() / (hashlib.sha1(repr(key).encode()).hexdigest() + ".json")
    data = None
    if cached.is_file():
        try:
            data = json.loads(cached.read_text())
        except (OSError, ValueError):
            data = None
    if data is None:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            data = yaml.load(path.read_text(), Loader=loader)
        except yaml.YAMLError as e:
            raise ValueError(f"map set {path}: invalid YAML ({str(e).splitlines()[0]})") from None
        if st.st_size > 100_000:  # small files parse fast; do not litter the cache with them
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(data))
                tmp.replace(cached)  # atomic: parallel processes never read a half-written file
            except (OSError, TypeError, ValueError):
                pass
    _PARSED[key] = data
    return data


def load_map_set(path: str | Path) -> MapSet:
    path = Path(path)
    data = read_yaml_cached(path)
    if not isinstance(data, dict) or not isinstance(data.get("environment"), dict):
        raise ValueError(
            f"map set {path}: expected a mapping with an 'environment' section (pogema-toolbox format)"
        )
    env = data["environment"]
    unknown = set(env) - set(_GRID_KEYS) - _ENV_KEYS - _IGNORED_ENV_KEYS
    if unknown:
        raise ValueError(
            f"map set {path}: unsupported environment key(s) {sorted(unknown)}; supported: "
            f"{', '.join(sorted(set(_GRID_KEYS) | _ENV_KEYS))}"
        )
    for key in _ENV_KEYS:
        if isinstance(env.get(key), dict):
            raise ValueError(f"map set {path}: grid_search over environment.{key} is not supported")
    if "maps" in data:
        maps = data["maps"]
    elif (path.parent / "maps.yaml").is_file():
        maps = read_yaml_cached(path.parent / "maps.yaml")
    else:
        raise ValueError(f"map set {path}: no maps (neither a 'maps:' section nor maps.yaml beside it)")
    if not isinstance(maps, dict) or not all(isinstance(v, str) for v in maps.values()):
        raise ValueError(f"map set {path}: maps must map names to pogema map strings")
    selectors = _grid_values(env, "map_name", path)
    map_names = select_maps(maps, selectors, where=str(path)) if selectors else list(maps)
    num_agents = [int(n) for n in (_grid_values(env, "num_agents", path) or [8])]
    seeds = [int(s) for s in (_grid_values(env, "seed", path) or [0])]
    env_values = {
        "on_target": env.get("on_target", "restart"),
        "max_episode_steps": int(env.get("max_episode_steps", 256)),
        "collision_system": env.get("collision_system", "soft"),
        "obs_radius": int(env.get("obs_radius", 5)),
    }
    if env_values["on_target"] not in ("restart", "nothing", "finish"):
        raise ValueError(
            f"map set {path}: on_target {env_values['on_target']!r}; allowed: restart, nothing, finish"
        )
    scenarios = {}
    for key, sc in (data.get("scenarios") or {}).items():
        try:
            scenarios[(str(sc["map_name"]), int(sc.get("seed", 0)))] = {
                "agents_xy": sc["agents_xy"],
                "targets_xy": sc["targets_xy"],
            }
        except (KeyError, TypeError):
            raise ValueError(
                f"map set {path}: scenario {key!r} needs map_name, agents_xy and targets_xy"
            ) from None
    stem = path.stem
    name = stem.removesuffix("-lmapf").removesuffix("-mapf")
    return MapSet(name, stem, path, maps, map_names, num_agents, seeds, env_values, scenarios)


def build_instances(ms: MapSet, cfg: EvalConfig) -> list[Instance]:
    """The map set's grid, narrowed by ``cfg``, in (map, num_agents, seed) order."""
    names = select_maps(ms.map_names, cfg.maps, where=ms.label) if cfg.maps else list(ms.map_names)
    if cfg.max_maps:
        names = names[: cfg.max_maps]
    counts = list(cfg.num_agents) or ms.num_agents
    seeds = list(cfg.seeds) or ms.seeds
    steps = cfg.max_episode_steps or ms.env["max_episode_steps"]
    out = []
    for map_name in names:
        for n in counts:
            for seed in seeds:
                sc = ms.scenarios.get((map_name, seed)) if cfg.scenarios else None
                agents_xy = targets_xy = None
                if sc is not None:
                    if n > len(sc["agents_xy"]):
                        raise ValueError(
                            f"{ms.label}: the scenario of {map_name} (seed {seed}) has {len(sc['agents_xy'])} "
                            f"agents, {n} asked; lower num_agents or set scenarios=false"
                        )
                    agents_xy, targets_xy = sc["agents_xy"][:n], sc["targets_xy"][:n]
                out.append(
                    Instance(
                        map_set=ms.name,
                        map_name=map_name,
                        map=ms.maps[map_name],
                        num_agents=n,
                        seed=seed,
                        on_target=ms.env["on_target"],
                        max_episode_steps=steps,
                        collision_system=ms.env["collision_system"],
                        obs_radius=ms.env["obs_radius"],
                        agents_xy=agents_xy,
                        targets_xy=targets_xy,
                    )
                )
    if cfg.max_episodes:
        out = out[: cfg.max_episodes]
    return out
