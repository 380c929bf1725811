"""Map statistics: srmt's generated training maps vs the POGEMA benchmark's 01-random / 02-mazes.

Run from the repository root:  SRMT_DATA=../shared/data python docs/runs/map-stats/stats.py [--sweep] (out.txt)
Training maps come from the project's own generators with the recipe's settings
(envs/pogema_task.build_pogema: maze -> envs.maps.maze_map(H, W, default_rng(seed), maze_loops);
random -> pogema.generator.generate_obstacles(GridConfig(width, height, density, seed))).
Benchmark maps come from agents.eval.benchmark.load_map_set + envs.maps.parse_map.
Out-of-map cells count as blocked (pogema's artificial border).
"""

import json
import sys
from collections import deque

import numpy as np
from pogema.generator import generate_obstacles

from agents.config import load_experiment
from agents.eval.benchmark import load_map_set
from configs import paths
from envs.grid_env import grid_config
from envs.maps import maze_map, parse_map

N_TRAIN = 200
N_SRC = 24  # BFS sources per map (all reachable targets of each source are used)
AGENTS = 64
STEPS = ((0, 1), (1, 0), (0, -1), (-1, 0))


def degree(free):
    p = np.pad(free, 1, constant_values=False)
    d = p[:-2, 1:-1].astype(int) + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]
    return np.where(free, d, -1)


def components(mask):
    """Label 4-connected components of mask; returns labels (0 = not in mask) and sizes list."""
    H, W = mask.shape
    lab = np.zeros((H, W), int)
    sizes = []
    for r0, c0 in zip(*np.nonzero(mask)):
        if lab[r0, c0]:
            continue
        k = len(sizes) + 1
        lab[r0, c0] = k
        q = deque([(r0, c0)])
        n = 0
        while q:
            r, c = q.popleft()
            n += 1
            for dr, dc in STEPS:
                rr, cc = r + dr, c + dc
                if 0 <= rr < H and 0 <= cc < W and mask[rr, cc] and not lab[rr, cc]:
                    lab[rr, cc] = k
                    q.append((rr, cc))
        sizes.append(n)
    return lab, sizes


def bfs(free, src):
    H, W = free.shape
    dist = np.full((H, W), -1, int)
    dist[src] = 0
    q = deque([src])
    while q:
        r, c = q.popleft()
        for dr, dc in STEPS:
            rr, cc = r + dr, c + dc
            if 0 <= rr < H and 0 <= cc < W and free[rr, cc] and dist[rr, cc] < 0:
                dist[rr, cc] = dist[r, c] + 1
                q.append((rr, cc))
    return dist


def map_stats(obst, rng):
    free = ~obst
    H, W = free.shape
    nf = int(free.sum())
    deg = degree(free)
    _, runs = components(deg == 2)
    lab, cc = components(free)
    big = int(np.argmax(cc)) + 1
    cells = np.argwhere(lab == big)
    srcs = cells[rng.choice(len(cells), size=min(N_SRC, len(cells)), replace=False)]
    d_sp, ratio = [], []
    for s in srcs:
        dist = bfs(free, tuple(s))
        m = dist > 0
        d_sp.append(dist[m].mean())
        rr, ccol = np.nonzero(m)
        man = np.abs(rr - s[0]) + np.abs(ccol - s[1])
        ratio.append((dist[m] / man).mean())
    return dict(
        H=H,
        W=W,
        free=nf / (H * W),
        deg0=(deg == 0).sum() / nf,
        deg1=(deg == 1).sum() / nf,
        deg2=(deg == 2).sum() / nf,
        deg34=(deg >= 3).sum() / nf,
        run_len=float(np.mean(runs)) if runs else 0.0,
        run_max=max(runs) if runs else 0,
        sp=float(np.mean(d_sp)),
        detour=float(np.mean(ratio)),
        lcc=max(cc) / nf,
        a_per_free=AGENTS / nf,
        a_per_lcc=AGENTS / max(cc),
    )


def training_maps(env, kind, n, loops=None):
    H, W = env.grid_height, env.grid_width
    for s in range(n):
        if kind == "maze":
            yield maze_map(H, W, np.random.default_rng(s), env.maze_loops if loops is None else loops)
        else:
            gc = grid_config(num_agents=AGENTS, width=W, height=H, density=env.density, seed=s)
            yield generate_obstacles(gc).astype(bool)


def bench_maps(name):
    p = paths.resolve(f"pogema-benchmark/experiments/{name}/{name}-lmapf.yaml", "map set")
    ms = load_map_set(p)
    return [parse_map(ms.maps[m], m) for m in ms.map_names]


def summarise(label, grids, rng):
    rows = [map_stats(g, rng) for g in grids]
    out = {"group": label, "n": len(rows)}
    for k in rows[0]:
        v = np.array([r[k] for r in rows], float)
        out[k] = (float(v.mean()), float(v.std()), float(v.min()), float(v.max()))
    return out


def main():
    env = load_experiment("lmapf-srmt-guided-64").env
    rng = np.random.default_rng(0)
    groups = [
        summarise(f"train-random (d={env.density})", training_maps(env, "random", N_TRAIN), rng),
        summarise(f"train-maze (loops={env.maze_loops})", training_maps(env, "maze", N_TRAIN), rng),
        summarise("bench 01-random", bench_maps("01-random"), rng),
        summarise("bench 02-mazes", bench_maps("02-mazes"), rng),
    ]
    if "--sweep" in sys.argv:
        for lp in (0.3, 0.5, 0.7, 1.0):
            groups.append(summarise(f"maze loops={lp}", training_maps(env, "maze", 100, lp), rng))
    keys = [k for k in groups[0] if k not in ("group", "n")]
    print("group".ljust(28) + "".join(k.rjust(14) for k in keys))
    for g in groups:
        print(
            f"{g['group']} (n={g['n']})".ljust(28) + "".join(f"{g[k][0]:8.3f}±{g[k][1]:<5.2f}" for k in keys)
        )
    json.dump(groups, open("/tmp/mapstats/stats.json", "w"), indent=1)


if __name__ == "__main__":
    main()
