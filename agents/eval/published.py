"""The POGEMA benchmark's published per-episode results (``raw_data_LMAPF`` / ``raw_data_MAPF``).

Each ``raw_data_*/<map set>/<Algorithm>.json`` is a pogema-toolbox result list over the same grid as the
benchmark config (all episodes with seed 0), so our rows and theirs pair up by (map, agents, seed).
"""

from __future__ import annotations

import json
from pathlib import Path

from agents.eval.benchmark import resolve_dir
from agents.eval.results import from_toolbox

RAW_DIR = {"lifelong": "raw_data_LMAPF", "classic": "raw_data_MAPF"}


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
    benchmark_dir: str, map_set: str, mode: str, algorithms: list[str] | None = None, seed: int = 0
) -> list[dict]:
    """Published rows (``source='published'``) of one map set; ``algorithms`` None/empty = all.

    Naming an algorithm the benchmark does not have is a one-line error listing what it has.
    """
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
        rows += from_toolbox(items, map_set, mode, "published", default_seed=seed)
    return rows


def on_same_instances(published: list[dict], ours: list[dict]) -> list[dict]:
    """The published rows whose (map set, mode, map, agents, seed) we also ran."""
    keys = {(r["map_set"], r["mode"], r["map_name"], r["num_agents"], r["seed"]) for r in ours}
    return [
        r for r in published if (r["map_set"], r["mode"], r["map_name"], r["num_agents"], r["seed"]) in keys
    ]
