"""The POGEMA benchmark's published per-episode results (``raw_data_LMAPF`` / ``raw_data_MAPF``).

Each ``raw_data_*/<map set>/<Algorithm>.json`` is a pogema-toolbox result list over the same grid as the
benchmark config, so our rows and theirs pair up by (map, agents, seed). pogema-toolbox writes only the
grid-searched keys into ``env_grid_search``: a config with ``map_name: wfi_warehouse`` (a value) has rows
with ``{seed, num_agents}`` only, one with ``num_agents: 1`` rows with ``{map_name, seed}``. The missing
keys are the config's single values (:func:`grid_defaults`).
"""

from __future__ import annotations

import json
from pathlib import Path

from agents.eval.benchmark import MapSet, resolve_dir
from agents.eval.results import from_toolbox

RAW_DIR = {"lifelong": "raw_data_LMAPF", "classic": "raw_data_MAPF"}
_GRID_KEYS = ("map_name", "num_agents", "seed")


def grid_defaults(ms: MapSet) -> dict:
    """The map set's single-valued grid axes (``map_name``, ``num_agents``, ``seed``): what a published
    row leaves out of its ``env_grid_search``."""
    out: dict = {}
    for key, values in (("map_name", ms.map_names), ("num_agents", ms.num_agents), ("seed", ms.seeds)):
        if len(values) == 1:
            out[key] = values[0]
    return out


def _complete(items: object, defaults: dict, path: Path) -> list[dict]:
    """Toolbox entries with every grid key present: a missing one comes from ``defaults``."""
    if not isinstance(items, list):
        raise ValueError(f"published results {path} must be a JSON list of entries (pogema-toolbox format)")
    out = []
    for k, it in enumerate(items):
        grid = it.get("env_grid_search") if isinstance(it, dict) else None
        if not isinstance(grid, dict):
            raise ValueError(f"published results {path}: entry {k} has no env_grid_search mapping")
        missing = [key for key in _GRID_KEYS if key not in grid and key not in defaults]
        if missing:
            raise ValueError(
                f"published results {path}: entry {k} lacks env_grid_search.{missing[0]} and the map set has "
                f"no single {missing[0]} to fill it in (it is a grid there, or the set has several)"
            )
        out.append({**it, "env_grid_search": {**{key: defaults[key] for key in defaults}, **grid}})
    return out


def published_folder(benchmark_dir: str, map_set: str, mode: str) -> Path | None:
    """``raw_data_*/<map_set>`` if the benchmark folder has it, else None."""
    try:
        folder = resolve_dir(benchmark_dir) / RAW_DIR[mode] / map_set
    except ValueError:
        return None
    return folder if folder.is_dir() else None


def available(benchmark_dir: str, map_set: str, mode: str) -> list[str]:
    folder = published_folder(benchmark_dir, map_set, mode)
    return sorted(p.stem for p in folder.glob("*.json")) if folder else []


def load_published(
    benchmark_dir: str,
    map_set: str,
    mode: str,
    algorithms: list[str] | None = None,
    seed: int = 0,
    defaults: dict | None = None,
) -> list[dict]:
    """Published rows (``source='published'``) of one map set; ``algorithms`` None/empty = all.

    ``defaults`` fills grid keys a row leaves out (:func:`grid_defaults` of the map set); ``seed`` is the
    seed of rows without one when ``defaults`` has none. Naming an algorithm the benchmark does not have
    is a one-line error listing what it has.
    """
    fill = {"seed": seed, **(defaults or {})}
    folder = published_folder(benchmark_dir, map_set, mode)
    names = available(benchmark_dir, map_set, mode)
    wanted = list(algorithms) if algorithms else names
    missing = [a for a in wanted if a not in names]
    if missing:
        have = ", ".join(names) if names else f"nothing ({RAW_DIR[mode]}/{map_set} not found)"
        raise ValueError(f"no published results for {missing} on {map_set} ({mode}); available: {have}")
    rows = []
    for name in wanted:
        path = folder / f"{name}.json"
        try:
            items = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"published results {path} are not valid JSON ({e.msg})") from None
        rows += from_toolbox(_complete(items, fill, path), map_set, mode, "published", default_seed=seed)
    return rows


def on_same_instances(published: list[dict], ours: list[dict]) -> list[dict]:
    """The published rows whose (map set, mode, map, agents, seed) we also ran."""
    keys = {(r["map_set"], r["mode"], r["map_name"], r["num_agents"], r["seed"]) for r in ours}
    return [
        r for r in published if (r["map_set"], r["mode"], r["map_name"], r["num_agents"], r["seed"]) in keys
    ]
