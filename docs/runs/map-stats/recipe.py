"""The mazes of configs/experiment/lmapf-srmt-guided-64-loops.yaml (19x19, maze_loops drawn from its
maze_loops_choices) against 02-mazes, with the statistics of stats.py. Run from the repository root:
SRMT_DATA=../shared/data python docs/runs/map-stats/recipe.py"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from stats import bench_maps, summarise  # noqa: E402

from agents.config import load_experiment  # noqa: E402
from envs.maps import maze_map  # noqa: E402

env = load_experiment("lmapf-srmt-guided-64-loops").env
rng = np.random.default_rng(1)
ch = env.maze_loops_choices
grids = [maze_map(env.size, env.size, np.random.default_rng(s), ch[s % len(ch)]) for s in range(300)]
K = ("free", "deg1", "deg2", "deg34", "run_len", "sp", "detour", "a_per_free")
for label, gs in (("recipe -loops mazes", grids), ("bench 02-mazes", bench_maps("02-mazes"))):
    g = summarise(label, gs, rng)
    print(label, {k: (round(g[k][0], 3), round(g[k][1], 3)) for k in K})
