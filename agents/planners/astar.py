"""The decentralised A* baseline: every agent plans alone on the obstacles it has seen so far.

Two implementations of one policy, pogema's ``AStarAgent`` (``pogema/a_star_policy.py``, pogema 1.4.0):

- each agent remembers every obstacle it has seen in its ``(2r+1)^2`` window, treats unseen cells as
  free and ignores other agents;
- it steps along a path to its goal on that remembered map;
- if it did not move on the previous step (and is not on its goal), it takes a uniformly random action
  (without looking at the map), which breaks most head-on jams.

:class:`AStar` (kind ``astar``) is ours: a shortest path on the remembered map, kept between steps and
searched again only when it stops being valid (new goal, the agent is off the path, a newly seen
obstacle lies on it). Since the remembered map only gains obstacles, a valid remaining path is still a
shortest one, so the decisions are those of searching every step, up to the choice among equally short
paths. That makes it fast enough for 256 agents on 256x256 maps (issue 11: pogema's agent, searching
every step with one Python object per node, needed 272 ms per step there).

:class:`PogemaAStar` (kind ``astar_pogema``) wraps ``pogema.AStarAgent`` itself, as the reference.
"""

from __future__ import annotations

import heapq

import numpy as np
from pogema import AStarAgent

from agents.planners.base import MOVES, WorldState


def pomapf_observations(state: WorldState, starts: np.ndarray) -> list[dict]:
    """pogema's ``POMAPF`` observation dicts, rebuilt from the world state (so any env backend works).

    ``obstacles`` / ``agents`` are the ``(2r+1)^2`` windows around each agent; ``xy`` and ``target_xy``
    are relative to the agent's start cell, as pogema defines them.
    """
    r = state.obs_radius
    agents_map = np.zeros(state.obstacles.shape, dtype=np.float32)
    on_grid = state.positions[state.active]
    agents_map[on_grid[:, 0], on_grid[:, 1]] = 1.0
    obstacles = state.obstacles.astype(np.float32)
    out = []
    for (x, y), (sx, sy), (gx, gy) in zip(state.positions.tolist(), starts.tolist(), state.goals.tolist()):
        out.append(
            {
                "obstacles": obstacles[x - r : x + r + 1, y - r : y + r + 1],
                "agents": agents_map[x - r : x + r + 1, y - r : y + r + 1],
                "xy": (x - sx, y - sy),
                "target_xy": (gx - sx, gy - sy),
            }
        )
    return out


class PogemaAStar:
    """One ``pogema.AStarAgent`` per agent; seeded per episode so runs repeat exactly."""

    def __init__(self) -> None:
        self.agents: list[AStarAgent] = []
        self.starts = np.zeros((0, 2), dtype=np.int64)

    def reset(self, state: WorldState, seed: int) -> None:
        # one independent random stream per agent, all derived from the episode seed
        seeds = np.random.SeedSequence(seed).generate_state(state.num_agents).tolist()
        self.agents = [AStarAgent(seed=s) for s in seeds]
        self.starts = state.positions.copy()

    def act(self, state: WorldState) -> np.ndarray:
        obs = pomapf_observations(state, self.starts)
        actions = np.zeros(state.num_agents, dtype=np.int64)
        for i, (agent, o) in enumerate(zip(self.agents, obs)):
            if state.active[i]:
                actions[i] = int(agent.act(o))
        return actions


def grid_neighbors(height: int, width: int) -> list[list[int]]:
    """4-neighbours of every cell of a ``height x width`` grid (flat indices), inside its bounds."""
    out: list[list[int]] = []
    for c in range(height * width):
        x, y = divmod(c, width)
        out.append(
            [
                nx * width + ny
                for nx, ny in ((x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1))
                if 0 <= nx < height and 0 <= ny < width
            ]
        )
    return out


def shortest_path(
    nbrs: list[list[int]], blocked: bytearray, width: int, start: int, goal: int, max_expansions: int
) -> list[int]:
    """A* (Manhattan heuristic, ties to the deeper node) from ``start`` to ``goal`` avoiding ``blocked``
    cells; the cells after ``start`` up to ``goal``, or ``[]`` if none is found within the budget."""
    if start == goal:
        return []
    gx, gy = divmod(goal, width)
    sx, sy = divmod(start, width)
    g = {start: 0}
    parent = {start: -1}
    heap = [(abs(sx - gx) + abs(sy - gy), 0, start)]
    pop, push = heapq.heappop, heapq.heappush
    expansions = 0
    while heap and expansions < max_expansions:
        _, neg_g, u = pop(heap)
        gu = -neg_g
        if gu > g[u]:
            continue  # stale entry (consistent heuristic: a popped node's g is final)
        if u == goal:
            path = [u]
            while parent[path[-1]] != start:
                path.append(parent[path[-1]])
            return path[::-1]
        expansions += 1
        gv = gu + 1
        for v in nbrs[u]:
            if not blocked[v] and gv < g.get(v, 1 << 30):
                g[v] = gv
                parent[v] = u
                vx, vy = divmod(v, width)
                push(heap, (gv + abs(vx - gx) + abs(vy - gy), -gv, v))
    return []


class AStar:
    """Decentralised A* on each agent's remembered obstacles, with paths kept between steps."""

    max_expansions = 10_000
    """Search budget per plan, as pogema's agent (``a_star(max_steps=10000)``): beyond it the agent waits."""

    def __init__(self) -> None:
        self.shape: tuple[int, int] = (0, 0)
        self.nbrs: list[list[int]] = []
        self.known: list[bytearray] = []  # per agent, flat: 1 = an obstacle it has seen
        self.views: list[np.ndarray] = []  # the same memory as [H, W] uint8 arrays (window updates)
        self.paths: list[list[int]] = []  # cells still to walk, reversed: the next one last
        self.on_path: list[set[int]] = []  # every cell of the path as planned
        self.path_from: list[int] = []  # the cell where the remaining path starts
        self.path_goal: list[int] = []
        self.prev: list[int] = []
        self.rngs: list[np.random.Generator] = []

    def reset(self, state: WorldState, seed: int) -> None:
        H, W = state.obstacles.shape
        if (H, W) != self.shape:
            self.shape, self.nbrs = (H, W), grid_neighbors(H, W)
        A = state.num_agents
        self.known = [bytearray(H * W) for _ in range(A)]
        self.views = [np.frombuffer(k, dtype=np.uint8).reshape(H, W) for k in self.known]
        self.paths = [[] for _ in range(A)]
        self.on_path = [set() for _ in range(A)]
        self.path_from = [-1] * A
        self.path_goal = [-1] * A
        self.prev = [-1] * A
        # one random stream per agent from the episode seed (pogema's agent draws its random actions so)
        self.rngs = [
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).generate_state(A).tolist()
        ]

    def act(self, state: WorldState) -> np.ndarray:
        H, W = self.shape
        r = state.obs_radius
        obstacles = state.obstacles
        actions = np.zeros(state.num_agents, dtype=np.int64)
        pos_xy = state.positions.tolist()
        goals_xy = state.goals.tolist()
        for i, ((x, y), (gx, gy)) in enumerate(zip(pos_xy, goals_xy)):
            if not state.active[i]:
                continue
            here, goal = x * W + y, gx * W + gy
            if here == self.prev[i] and here != goal:
                actions[i] = int(self.rngs[i].integers(len(MOVES)))  # did not move: random action
                continue
            self.prev[i] = here
            path = self.paths[i]
            if path and path[-1] == here:  # moved as planned
                path.pop()
                self.path_from[i] = here
            valid = bool(path) and self.path_goal[i] == goal and self.path_from[i] == here
            lo_x, lo_y = max(x - r, 0), max(y - r, 0)
            window = obstacles[lo_x : x + r + 1, lo_y : y + r + 1] != 0
            known = self.views[i][lo_x : x + r + 1, lo_y : y + r + 1]
            new = window & (known == 0)
            if new.any():
                known[new] = 1
                if valid:
                    nx, ny = np.nonzero(new)
                    on_path = self.on_path[i]
                    valid = not any(c in on_path for c in ((nx + lo_x) * W + ny + lo_y).tolist())
            if not valid:
                path = shortest_path(self.nbrs, self.known[i], W, here, goal, self.max_expansions)[::-1]
                self.paths[i], self.on_path[i] = path, set(path)
                self.path_from[i], self.path_goal[i] = here, goal
            if path:
                nxt = path[-1]
                actions[i] = MOVES.index((nxt // W - x, nxt % W - y))
        return actions
