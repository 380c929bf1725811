"""FollowerLite's planner on large maps: :class:`envs.guidance.AStarPlanner`'s exact results, compiled.

``AStarPlanner`` (Follower's cost model: one A* per agent and step over the whole map, every remembered
count charged) is pure Python: on a 256x256 map with 256 agents a step costs ~165 ms (paths of ~160
cells, a 65k-entry ``g`` list per search) and a new map ~6 s (1024 BFS for the static costs, one
Dijkstra per goal; issue 11). :class:`CompiledAStarPlanner` computes the same quantities with the numba
kernels of :mod:`agents.planners.compiled`:

- static costs: the same mean BFS distances (sums of integers, exact in any order), so the same floats;
- goal fields: a Dijkstra to the goal, whose float result does not depend on the order of ties;
- per agent, the cost of every cell as ``AStarPlanner`` keeps it (the static cost plus 1.0 per sighting,
  added one at a time: the same roundings), one dense row per agent;
- the A* itself: the same heap keys, sums and tie rule, hence the same pops and the same path.

Plans are identical to ``AStarPlanner``'s (``tests/test_planners_speed.py``). FollowerLite uses this
planner when numba is installed (the ``fast`` extra) and ``AStarPlanner`` otherwise.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from agents.planners.compiled import (
    HAVE_NUMBA,
    bfs_sums,
    dijkstra_buckets,
    dijkstra_to,
    follower_plan,
    warm_up,
)
from envs.config import PlannerCosts
from envs.guidance import EXACT_AVG_MAX_CELLS, Plan, _astar, check_costs

FIELD_CACHE_ENTRIES = 1 << 25
"""Goal-field entries (8 bytes each: 256 MiB) kept per map, least recently used goals dropped first."""
_OFFSETS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # AStarPlanner's neighbour order (envs.guidance)


def neighbour_table(free: np.ndarray) -> np.ndarray:
    """int64 [H*W, 4]: the free 4-neighbours of every free cell (``_OFFSETS`` order), padded with H*W."""
    H, W = free.shape
    N = H * W
    table = np.full((N, 4), N, dtype=np.int64)
    x, y = np.divmod(np.arange(N), W)
    flat = free.ravel()
    for k, (dx, dy) in enumerate(_OFFSETS):
        nx, ny = x + dx, y + dy
        ok = flat & (nx >= 0) & (nx < H) & (ny >= 0) & (ny < W)
        ok[ok] = flat[nx[ok] * W + ny[ok]]
        table[ok, k] = (nx * W + ny)[ok]
    # AStarPlanner lists the free neighbours first and nothing else: compact each row to the left
    order = np.argsort(table == N, axis=1, kind="stable")
    return np.take_along_axis(table, order, axis=1)


def static_costs_compiled(free: np.ndarray, table: np.ndarray | None = None) -> np.ndarray:
    """:func:`envs.guidance.static_costs` (float64 [H, W], identical values) from compiled BFS."""
    free = np.asarray(free, dtype=bool)
    table = neighbour_table(free) if table is None else table
    cells = np.flatnonzero(free.ravel())
    n = len(cells)
    out = np.ones(free.shape)
    if n == 0:
        return out
    sources = cells if n <= EXACT_AVG_MAX_CELLS else cells[np.linspace(0, n - 1, 1024).astype(np.int64)]
    sums = np.zeros(free.size, dtype=np.int64)
    counts = np.zeros(free.size, dtype=np.int64)
    bfs_sums(table, sources, sums, counts)
    s, c = sums[cells].astype(np.float64), counts[cells]
    avg = np.where(c > 0, s / np.maximum(c, 1), 0.0)
    top = avg.max()
    out.reshape(-1)[cells] = np.where(avg > 0, top / np.where(avg > 0, avg, 1.0), 1.0)
    return out


class _CompiledMap:
    """Per map and cost kind: neighbours, static entry costs, goal fields (cached) and work arrays."""

    def __init__(self, free: np.ndarray, costs: str) -> None:
        self.free = np.asarray(free, dtype=bool)
        self.shape = self.free.shape
        self.table = neighbour_table(self.free)
        self.enter = np.ones(self.shape) if costs == "unit" else static_costs_compiled(self.free, self.table)
        self.enter_flat = np.ascontiguousarray(self.enter.ravel())
        N = self.free.size
        self._fields: OrderedDict[int, np.ndarray] = OrderedDict()
        self._max_fields = max(64, FIELD_CACHE_ENTRIES // max(N, 1))
        # work arrays of the searches, reused (stamps mark the entries of the current search)
        self.g = np.zeros(N)
        self.parent = np.zeros(N, dtype=np.int64)
        self.stamp = np.zeros(N, dtype=np.int64)
        self.mark = 0
        self.path = np.zeros(N + 1, dtype=np.int64)
        self._heap = self._new_heap(4 * N + 16)
        self._nbrs: list[list[int]] | None = None

    @staticmethod
    def _new_heap(capacity: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.empty(capacity), np.empty(capacity), np.empty(capacity, dtype=np.int64)

    def field(self, goal: int) -> np.ndarray:
        """Static cost-to-go (float64 [H*W], inf where unreachable) of ``goal``, cached."""
        f = self._fields.get(goal)
        if f is not None:
            self._fields.move_to_end(goal)
            return f
        if not 0 <= goal < self.free.size or not self.free.ravel()[goal]:
            raise ValueError(f"goal cell {divmod(goal, self.shape[1])} is an obstacle or off the map")
        f = np.empty(self.free.size)
        if not dijkstra_buckets(self.table, self.enter_flat, goal, f):  # an entry cost below 1
            dijkstra_to(self.table, self.enter_flat, goal, f, *self._heap)
        self._fields[goal] = f
        while len(self._fields) > self._max_fields:
            self._fields.popitem(last=False)
        return f

    def plan(self, start: int, goal: int, cost: np.ndarray, h: np.ndarray, r: int, mask: np.ndarray):
        """The cheapest path start -> goal (both included), exactly ``envs.guidance._astar``'s, drawn into
        ``mask`` as ``AStarPlanner`` draws it; returns (path, its cost or inf if it ends short of the goal)."""
        self.mark += 1
        total = np.full(1, np.inf)
        W = self.shape[1]
        heap = self._heap
        n = follower_plan(
            self.table,
            start,
            goal,
            cost,
            h,
            self.g,
            self.parent,
            self.stamp,
            self.mark,
            *heap,
            self.path,
            W,
            r,
            mask,
            total,
        )
        if n >= 0:
            return self.path[:n].copy(), float(total[0])
        # the heap arrays were too small: this one search in Python (same result), then grow them
        self._heap = self._new_heap(2 * len(heap[0]))
        if self._nbrs is None:
            self._nbrs = [[v for v in row if v < self.free.size] for row in self.table.tolist()]
        path = _astar(self._nbrs, start, goal, cost.tolist(), h.tolist())
        x0, y0 = divmod(start, W)
        for v in path[1:]:
            dx, dy = v // W - x0, v % W - y0
            if abs(dx) > r or abs(dy) > r:
                break
            mask[r + dx, r + dy] = True
        total_cost = sum(float(cost[v]) for v in path[1:]) if path[-1] == goal else np.inf
        return np.array(path, dtype=np.int64), total_cost


class CompiledAStarPlanner:
    """:class:`envs.guidance.AStarPlanner` (same arguments, ``reset`` / ``update``, identical plans),
    compiled. The maps it has seen stay cached (``max_maps``, least recently used dropped first)."""

    def __init__(
        self,
        radius: int,
        costs: PlannerCosts = "follower",
        see_radius: int | None = None,
        reset_dynamic: bool = True,
        max_maps: int = 8,
    ) -> None:
        self.costs = check_costs(costs)
        self.r = int(radius)
        if self.r < 1:
            raise ValueError(f"radius={radius}: need radius >= 1")
        self.see = self.r if see_radius is None else int(see_radius)
        self.reset_dynamic = reset_dynamic
        self._maps: OrderedDict[bytes, _CompiledMap] = OrderedDict()
        self._max_maps = max_maps
        self._map: _CompiledMap | None = None
        warm_up()

    def _get_map(self, free: np.ndarray) -> _CompiledMap:
        free = np.asarray(free, dtype=bool)
        key = np.asarray(free.shape, np.int64).tobytes() + np.packbits(free).tobytes()
        m = self._maps.pop(key, None)
        if m is None:
            m = _CompiledMap(free, self.costs)
        self._maps[key] = m
        while len(self._maps) > self._max_maps:
            self._maps.popitem(last=False)
        return m

    def reset(self, free: np.ndarray, positions: np.ndarray, goals: np.ndarray) -> Plan:
        self._map = m = self._get_map(free)
        self.W = m.shape[1]
        A = len(positions)
        # per agent, every cell's cost as AStarPlanner keeps it (static, plus 1.0 per sighting)
        self._cost = np.tile(m.enter_flat, (A, 1)) if self.costs == "follower" else None
        self._goal = np.full(A, -1, dtype=np.int64)
        self._h: list[np.ndarray] = [m.enter_flat] * A  # replaced at the first update (every goal is new)
        return self.update(positions, goals, np.ones(A, dtype=bool))

    def update(self, positions: np.ndarray, goals: np.ndarray, active: np.ndarray) -> Plan:
        if self._map is None:
            raise RuntimeError("call reset() before update()")
        m = self._map
        pos = np.asarray(positions, dtype=np.int64)
        active = np.asarray(active, dtype=bool)
        W, r = self.W, self.r
        cells = pos[:, 0] * W + pos[:, 1]
        goal = np.asarray(goals, dtype=np.int64) @ np.array([W, 1])
        changed = np.flatnonzero(goal != self._goal)
        for i in changed.tolist():
            self._h[i] = m.field(int(goal[i]))
        self._goal[changed] = goal[changed]
        if self._cost is not None:
            if self.reset_dynamic and changed.size:
                self._cost[changed] = m.enter_flat
            x, y = pos[:, 0], pos[:, 1]
            sees = np.abs(x[:, None] - x[None, :]) <= self.see  # Chebyshev distance, one axis at a time
            sees &= np.abs(y[:, None] - y[None, :]) <= self.see
            sees &= active[None, :] & active[:, None]
            np.fill_diagonal(sees, False)
            i, j = np.nonzero(sees)
            np.add.at(self._cost, (i, cells[j]), 1.0)  # one +1.0 per sighting, in turn, as AStarPlanner
        A = len(cells)
        d = 2 * r + 1
        mask = np.zeros((A, d, d), dtype=bool)
        mask[:, r, r] = True
        paths: list[np.ndarray] = []
        cost = np.full(A, np.inf)
        cell_list, goal_list, act = cells.tolist(), goal.tolist(), active.tolist()
        for i in range(A):
            if not act[i]:
                paths.append(np.array([cell_list[i]], dtype=np.int64))
                continue
            c = m.enter_flat if self._cost is None else self._cost[i]
            path, cost[i] = m.plan(cell_list[i], goal_list[i], c, self._h[i], r, mask[i])
            paths.append(path)
        L = max(len(p) for p in paths)
        table = np.full((A, L), -1, dtype=np.int64)
        for i, p in enumerate(paths):
            table[i, : len(p)] = p
        nxt = table[:, 1] if L > 1 else table[:, 0]
        return Plan(mask, table, np.where(nxt >= 0, nxt, table[:, 0]), cost)


def make_follower_planner(radius: int, costs: PlannerCosts, reset_dynamic: bool):
    """FollowerLite's planner: :class:`CompiledAStarPlanner` with numba, else ``AStarPlanner`` (same plans)."""
    if HAVE_NUMBA:
        return CompiledAStarPlanner(radius, costs, reset_dynamic=reset_dynamic)
    from envs.guidance import AStarPlanner

    return AStarPlanner(radius, costs, reset_dynamic=reset_dynamic)
