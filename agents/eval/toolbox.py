"""pogema-toolbox's result-folder layout: beside the result JSONs of a map set, the evaluation config.

pogema-toolbox's own loader (``pogema_toolbox.views.view_utils.load_from_folder(folder)``) reads
``folder/<folder name>.yaml`` (the evaluation config: ``environment`` with ``grid_search`` lists,
``algorithms``, ``results_views``) and every ``folder/*.json``. ``srmt eval`` writes one folder per map
set and mode (``{out_dir}/01-random-lmapf/``), so this module adds the config file that loader asks for,
describing the grid that was actually run.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from agents.eval.results import folder_name

_ENV_KEYS = ("on_target", "max_episode_steps", "collision_system", "obs_radius")


def toolbox_config(rows: list[dict], env: dict) -> dict:
    """The pogema-toolbox evaluation config of one map set's rows (``env``: the map set's settings)."""
    grid = {
        "num_agents": sorted({int(r["num_agents"]) for r in rows}),
        "map_name": list(dict.fromkeys(str(r["map_name"]) for r in rows)),
        "seed": sorted({int(r["seed"]) for r in rows}),
    }
    environment: dict = {"name": "Pogema-v0", **{k: env[k] for k in _ENV_KEYS if k in env}}
    environment.update({k: {"grid_search": v} for k, v in grid.items()})
    algorithms = list(dict.fromkeys(str(r["algorithm"]) for r in rows))
    return {
        "environment": environment,
        "algorithms": {a: {"name": a} for a in algorithms},
        "results_views": {},
    }


def write_toolbox_configs(
    rows: list[dict], out_dir: str | Path, envs: dict[tuple[str, str], dict]
) -> list[Path]:
    """``{out_dir}/<map set>-<lmapf|mapf>/<same>.yaml`` for every map set and mode in ``rows``;
    ``envs[(map_set, mode)]`` holds the map set's on_target / max_episode_steps / collision_system /
    obs_radius. Returns the paths written."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["map_set"], r["mode"]), []).append(r)
    written = []
    for (map_set, mode), group in groups.items():
        folder = Path(out_dir) / folder_name(map_set, mode)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{folder.name}.yaml"
        path.write_text(yaml.safe_dump(toolbox_config(group, envs.get((map_set, mode), {})), sort_keys=False))
        written.append(path)
    return written
