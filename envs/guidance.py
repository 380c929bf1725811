"""Planner-guided observations: every agent's congestion-aware planned path, vectorised over agents.

The idea is Follower's (Skrynnik et al., "Learn to Follow", AAAI 2024): a planner draws each agent's
path to its goal into the observation, over a cost map that makes crowded cells expensive, and the
policy learns to follow that path and to step aside. This module is the one implementation used by the
env option (``EnvConfig.planner_path``, an extra observation channel), the ``follower`` reward
(:class:`PathPlanner`) and the FollowerLite baseline (``agents/planners/follower_lite.py``, with
:class:`AStarPlanner`: the same static costs, goal fields, counting and drawing, Follower's exact costs).

Cost of entering a free cell ``v`` (obstacles are never entered):

- **static** ``s(v) = max_avg / avg(v)``: ``avg(v)`` is v's mean BFS distance to the cells it can reach
  and ``max_avg`` the largest such mean on the map, so central cells, where traffic concentrates, cost
  more than peripheral ones (1.0 for the most peripheral cell); an exact all-pairs BFS per map,
  compiled, or bit-parallel in numpy without numba (:func:`static_costs`);
- **dynamic** ``n_i(v)``: per agent, how many steps agent i has seen another agent standing on v since
  its goal last changed (``reset_dynamic``); it counts only while v lies in the agent's planning
  window (``plan_radius`` around its current cell, the observation window by default).

A path's cost is the sum of ``s + n_i`` over the cells it enters up to the first cell outside the
planning window, plus ``s`` over the cells after it. This is Follower's cost up to one simplification:
Follower also charges counts it remembers for cells now outside the window. In exchange the planner is
exact and vectorised: ``S_g`` (static cost-to-go to goal g, one reverse Dijkstra per goal, cached per
map and goal) gives the value of every exit cell, and Bellman-Ford over all agents' ``(2R+3)^2``
windows at once (one numpy step per hop) gives the value of every window cell. The path is then read
off greedily from the window values, from the agent's own cell until it first leaves the drawing
window (``radius``), as Follower draws it. ``costs='static'`` drops ``n`` (and the Bellman-Ford: the
static field is then the answer), ``costs='unit'`` plans plain shortest paths.

**Re-planning** (``replan_every = k``): Follower plans every step. With ``k > 1`` the window solve runs
for all agents every k-th step only (and the counts still grow every step); in between, an agent's
path is read off the last solve's values from wherever it stands now: the cheapest path under the
counts and the window of that solve (inside that window its values, beyond it the static cost-to-go),
so it stays a real path around obstacles, only up to k-1 steps late on congestion. An agent whose goal
changes (its counts were just cleared), or that walks out of that window, follows the static cost-to-go
field until the next solve. ``k = 1`` is the exact per-step model above.

Each solve leaves a successor table per agent with two layers over the padded map: layer 0 (the solve's
window: its successors inside, a step to layer 1 from its exit ring) and layer 1 (the static successors
of the agent's goal field), so reading a path is one gather per step for all agents, and a path that
has left the window never re-enters its values. Tests against slow references (and against the
implementation before these tables, ``tests/guidance_reference.py``): ``tests/test_envs_guidance.py``.

**Compiled** (``compiled``, default where numba is installed: the ``fast`` extra): one kernel call per
step (:func:`envs.compiled.plan_step`) does the counting, the window solve (the same float32
Bellman-Ford steps, in the same order, with the same stops), each agent's entry and the read-out; it
computes layer-0 successors where the path passes, from the solve's ``c + V``, instead of tabling them
for every window cell, and the goal fields come from a compiled Dijkstra (scipy's fixed point, the
same floats). The plans are the numpy path's bit for bit (``tests/test_envs_guidance_compiled.py``);
with numba, scipy is never imported. Speed: docs/bench-env.md.

Coordinates are map ``(row, column)``; cells are flat ``row * W + column`` of the unpadded map.
"""

from __future__ import annotations

import heapq
import typing
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

# scipy is imported only on the numpy path (no numba) where goal fields are searched and for the
# sampled static costs of maps over EXACT_AVG_MAX_CELLS free cells: with numba it is never loaded
from envs import compiled as _k
from envs.config import PlannerCosts

PLANNER_COSTS = typing.get_args(PlannerCosts)
EXACT_AVG_MAX_CELLS = 4096
"""Up to this many free cells the static cost uses all-pairs BFS; beyond, a fixed sample of targets."""
DTYPE = np.float32
"""Costs and values in the per-step solve: float32 halves the memory traffic of the vector steps."""
TOLERANCE = 1e-3
"""Value changes below this are rounding: float32 path costs (up to ~1e4) carry ~1e-3 of it. Paths whose
costs differ by less count as equally short."""
FIELD_CACHE_CELLS = 1 << 24
"""Per map, the cached goal fields (least recently used goal dropped first) hold at most this many
cells in all (~130 MB as float64 static fields, as much again for the planner's padded copies)."""
_OFFSETS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # up, down, left, right: the neighbour order of the trace
_POPCOUNT16: np.ndarray | None = None


def check_costs(name: str) -> str:
    if name not in PLANNER_COSTS:
        raise ValueError(f"unknown planner costs {name!r}; allowed: {', '.join(PLANNER_COSTS)}")
    return name


def check_replan_every(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"replan_every={k!r} is not allowed; need an integer >= 1 (1: every step)")
    return int(k)


def _adjacency(free: np.ndarray, weight: np.ndarray | None = None) -> tuple[Any, np.ndarray]:
    """4-connected graph (scipy CSR) over the free cells; edge u -> v carries ``weight[u]`` (1 if None).

    Returns the matrix over free-cell nodes and node -> flat cell. With ``weight = s`` a Dijkstra *from*
    the goal along these edges gives every cell's cost of travelling *to* the goal with entry costs s.
    """
    cells, nbrs = _neighbour_nodes(free)
    n = len(cells)
    r = np.concatenate([np.flatnonzero(nb < n) for nb in nbrs])
    c = np.concatenate([nb[nb < n] for nb in nbrs])
    w = np.ones(len(r)) if weight is None else weight.ravel()[cells][r]
    from scipy.sparse import csr_matrix

    return csr_matrix((w, (r, c)), shape=(n, n)), cells


def _neighbour_nodes(free: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Free cells (flat, in order) and, per direction of ``_OFFSETS``, each one's neighbour node (its
    index among the free cells; ``n`` = none)."""
    H, W = free.shape
    cells = np.flatnonzero(free.ravel())
    n = len(cells)
    node = np.full(H * W, n, dtype=np.int64)
    node[cells] = np.arange(n)
    x, y = np.divmod(cells, W)
    nbrs = []
    for dx, dy in _OFFSETS:
        nx, ny = x + dx, y + dy
        ok = (nx >= 0) & (nx < H) & (ny >= 0) & (ny < W)
        nb = np.full(n, n, dtype=np.int64)
        nb[ok] = node[nx[ok] * W + ny[ok]]
        nbrs.append(nb)
    return cells, nbrs


def _popcount16() -> np.ndarray:
    global _POPCOUNT16
    if _POPCOUNT16 is None:
        byte = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
        v = np.arange(1 << 16)
        _POPCOUNT16 = byte[v & 255] + byte[v >> 8]
    return _POPCOUNT16


def _distance_sums(nbrs: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """All-pairs BFS over ``n`` nodes at once, bit-parallel: per node, the sum of its distances to the
    nodes it reaches and how many those are (itself excluded). int64 [n] each, exact.

    Each node holds the set of sources that have reached it as a bitset (one bit per source); one BFS
    step ORs in the neighbours' sets, so step k reaches every node within k of each source, and a
    popcount per node tells how many sources arrived at step k.
    """
    words = (n + 63) // 64
    reached = np.zeros((n + 1, words), dtype=np.uint64)  # row n: "no neighbour", stays empty
    src = np.arange(n)
    reached[src, src >> 6] = np.left_shift(np.uint64(1), (src & 63).astype(np.uint64))
    pop = _popcount16()
    total = np.zeros(n, dtype=np.int64)
    count = np.ones(n, dtype=np.int64)
    nxt = np.empty((n, words), dtype=np.uint64)
    k = 0
    while True:
        k += 1
        np.bitwise_or(reached[nbrs[0]], reached[nbrs[1]], out=nxt)
        nxt |= reached[nbrs[2]]
        nxt |= reached[nbrs[3]]
        nxt |= reached[:n]
        now = pop[nxt.view(np.uint16)].sum(1, dtype=np.int64)
        new = now - count
        if not new.any():
            return total, count - 1
        total += k * new
        count = now
        reached[:n] = nxt


def neighbour_table(free: np.ndarray) -> np.ndarray:
    """int64 [H*W, 4]: the free 4-neighbours of every free cell (``_OFFSETS`` order, compacted to the
    left), padded with H*W: the graph of the compiled BFS and Dijkstra kernels (:mod:`envs.compiled`)."""
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
    # the free neighbours first and nothing else (AStarPlanner's lists): compact each row to the left
    order = np.argsort(table == N, axis=1, kind="stable")
    return np.take_along_axis(table, order, axis=1)


def static_costs(
    free: np.ndarray, compiled: bool | None = None, table: np.ndarray | None = None
) -> np.ndarray:
    """float64 [H, W] static cost of entering each cell: ``max_avg / avg(v)`` on free cells, 1.0 elsewhere.

    ``avg(v)``: mean BFS distance from v to every other cell of its component (exact up to
    :data:`EXACT_AVG_MAX_CELLS` free cells, else to an evenly spaced sample of 1024 target cells).
    An isolated cell has no average and costs 1.0 (no path ever enters it).

    ``compiled`` (default: whether numba is installed): one compiled BFS per source (``table``: the
    map's :func:`neighbour_table`, built if None); else a bit-parallel BFS in numpy (scipy's BFS
    beyond :data:`EXACT_AVG_MAX_CELLS`). Integer sums either way, so the same floats.
    """
    free = np.asarray(free, dtype=bool)
    out = np.ones(free.shape)
    if _k.HAVE_NUMBA if compiled is None else compiled:
        cells = np.flatnonzero(free.ravel())
        n = len(cells)
        if n == 0:
            return out
        table = neighbour_table(free) if table is None else table
        sources = cells if n <= EXACT_AVG_MAX_CELLS else cells[np.linspace(0, n - 1, 1024).astype(np.int64)]
        sums = np.zeros(free.size, dtype=np.int64)
        counts = np.zeros(free.size, dtype=np.int64)
        _k.bfs_sums(table, sources, sums, counts)
        s, c = sums[cells].astype(np.float64), counts[cells]
        avg = np.where(c > 0, s / np.maximum(c, 1), 0.0)
        top = avg.max()
        out.reshape(-1)[cells] = np.where(avg > 0, top / np.where(avg > 0, avg, 1.0), 1.0)
        return out
    cells, nbrs = _neighbour_nodes(free)
    n = len(cells)
    if n == 0:
        return out
    if n <= EXACT_AVG_MAX_CELLS:
        total, count = _distance_sums(nbrs, n)
        # the same float64 arithmetic as a sum over a distance matrix: integer sums are exact
        avg = np.where(count > 0, total.astype(np.float64) / np.maximum(count, 1), 0.0)
    else:
        from scipy.sparse.csgraph import shortest_path

        graph, _ = _adjacency(free)
        targets = np.linspace(0, n - 1, 1024).astype(np.int64)
        dist = shortest_path(graph, method="D", unweighted=True, indices=targets)  # [k, n]
        reach = np.isfinite(dist) & (dist > 0)
        cnt = reach.sum(0)
        avg = np.where(cnt > 0, np.where(reach, dist, 0.0).sum(0) / np.maximum(cnt, 1), 0.0)
    top = avg.max()
    flat = out.reshape(-1)
    flat[cells] = np.where(avg > 0, top / np.where(avg > 0, avg, 1.0), 1.0)
    return out


def _argmin4(
    up: np.ndarray, down: np.ndarray, left: np.ndarray, right: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Which of four same-shaped arrays is least (0-3, the first on ties, as ``np.argmin``) and its value."""
    a = down < up
    m01 = np.minimum(up, down)
    b = right < left
    m23 = np.minimum(left, right)
    c = m23 < m01
    return np.where(c, b + 2, a), np.where(c, m23, m01)


class MapCosts:
    """Per map: static entry costs and static cost-to-go fields per goal (cached, LRU by goal cell)."""

    def __init__(
        self, free: np.ndarray, costs: PlannerCosts, max_goals: int = 4096, compiled: bool | None = None
    ) -> None:
        self.free = np.asarray(free, dtype=bool)
        self.shape = self.free.shape
        self.compiled = _k.HAVE_NUMBA if compiled is None else bool(compiled)
        self._table = neighbour_table(self.free) if self.compiled else None
        unit = check_costs(costs) == "unit"
        self.enter = np.ones(self.shape) if unit else static_costs(self.free, self.compiled, self._table)
        self._graph: Any = None
        self._enter_flat: np.ndarray | None = None
        self._node = np.full(self.free.size, -1, dtype=np.int64)
        self._node[np.flatnonzero(self.free.ravel())] = np.arange(int(self.free.sum()))
        self._fields: OrderedDict[int, np.ndarray] = OrderedDict()
        self._max = max(1, min(max_goals, FIELD_CACHE_CELLS // max(1, self.free.size)))
        self._padded: dict[int, tuple[np.ndarray, OrderedDict[int, tuple[np.ndarray, np.ndarray]]]] = {}

    def _check_goals(self, goals: list[int]) -> np.ndarray:
        """The goals' free-cell nodes; a one-line error for a goal on an obstacle or off the map."""
        ok = [0 <= g < self.free.size for g in goals]
        nodes = np.where(ok, self._node[np.where(ok, goals, 0)], -1)
        if (nodes < 0).any():
            bad = goals[int(np.flatnonzero(nodes < 0)[0])]
            raise ValueError(f"goal cell {divmod(bad, self.shape[1])} is an obstacle or off the map")
        return nodes

    def to_goal(self, goals: list[int]) -> list[np.ndarray]:
        """Static cost-to-go [H, W] (inf where the goal is unreachable) for each goal cell."""
        missing = sorted({g for g in goals if g not in self._fields})
        if missing:
            nodes = self._check_goals(missing)
            if self.compiled:  # the same fixed point as scipy's Dijkstra, so the same floats
                enter = np.ascontiguousarray(self.enter.ravel())
                for g in missing:
                    f = np.empty(self.free.size)
                    if not _k.dijkstra_buckets(self._table, enter, g, f):  # an entry cost below 1
                        heap = np.empty(4 * f.size + 16), np.empty(1), np.empty(4 * f.size + 16, np.int64)
                        _k.dijkstra_to(self._table, enter, g, f, *heap)
                    self._fields[g] = f.reshape(self.shape)
            else:
                from scipy.sparse.csgraph import dijkstra

                if self._graph is None:
                    self._graph, _ = _adjacency(self.free, self.enter)
                cells = np.flatnonzero(self.free.ravel())
                dist = dijkstra(self._graph, directed=True, indices=nodes)  # [k, n]
                for g, d in zip(missing, dist):
                    f = np.full(self.free.size, np.inf)
                    f[cells] = d
                    self._fields[g] = f.reshape(self.shape)
        out = []
        for g in goals:
            self._fields.move_to_end(g)
            out.append(self._fields[g])
        while len(self._fields) > self._max:
            self._fields.popitem(last=False)
        return out

    def padded_fields(self, goals: list[int], pad: int) -> tuple[np.ndarray, np.ndarray]:
        """For each goal: float32 [N] static cost-to-go and int [N] static successor (the neighbour with
        the least entry cost + cost-to-go, ties up, down, left, right; itself at the goal and where no
        path leads on), over the map padded by ``pad`` obstacle cells and flattened (N = its size)."""
        if pad not in self._padded:
            enter = np.where(self.free, self.enter, np.inf).astype(DTYPE)
            self._padded[pad] = (np.pad(enter, pad, constant_values=np.inf), OrderedDict())
        enter_p, cache = self._padded[pad]
        Hp, Wp = enter_p.shape
        missing = sorted({g for g in goals if g not in cache})
        if missing and self.compiled:  # Dijkstra, padding and successors in one kernel call
            self._check_goals(missing)
            togo = np.empty((len(missing), Hp * Wp), dtype=DTYPE)
            succ = np.empty((len(missing), Hp * Wp), dtype=np.int64)
            if self._enter_flat is None:
                self._enter_flat = np.ascontiguousarray(self.enter.ravel())
            _k.padded_goal_fields(
                self._table, self._enter_flat, np.array(missing, dtype=np.int64), self.shape[1], pad,
                enter_p.reshape(-1), togo, succ,
            )  # fmt: skip
            for i, goal in enumerate(missing):  # copies: an entry must not keep its whole batch alive
                cache[goal] = (togo[i].copy(), succ[i].copy())
        elif missing:
            k = len(missing)
            togo = np.full((k, Hp, Wp), np.inf, dtype=DTYPE)
            togo[:, pad:-pad, pad:-pad] = np.stack(self.to_goal(missing))
            # what stepping into each cell costs from a neighbour, onwards; the k maps end to end, so
            # that flat offsets +-1 and +-Wp are the neighbours of every map cell (the pad is inf)
            w = (enter_p + togo).reshape(-1)
            arg, best = _argmin4(w[: -2 * Wp], w[2 * Wp :], w[Wp - 1 : -Wp - 1], w[Wp + 1 : -Wp + 1])
            n = Hp * Wp
            here = np.arange(k * n)
            succ = here.copy()
            step = np.array([dx * Wp + dy for dx, dy in _OFFSETS])
            succ[Wp:-Wp] = np.where(np.isfinite(best), here[Wp:-Wp] + step.take(arg), here[Wp:-Wp])
            succ = succ.reshape(k, n) - here[::n, None]
            gx, gy = np.divmod(np.array(missing), self.shape[1])
            g = (gx + pad) * Wp + gy + pad
            succ[np.arange(k), g] = g
            for i, goal in enumerate(missing):  # copies: an entry must not keep its whole batch alive
                cache[goal] = (togo[i].reshape(-1).copy(), succ[i].copy())
        out = []
        for g in goals:
            cache.move_to_end(g)
            out.append(cache[g])
        while len(cache) > self._max:
            cache.popitem(last=False)
        return np.stack([t for t, _ in out]), np.stack([s for _, s in out])

    def neighbours(self) -> list[list[int]]:
        """Free 4-neighbours of every cell (flat indices), for the per-agent A*."""
        if not hasattr(self, "_nbrs"):
            H, W = self.shape
            free = self.free.ravel().tolist()
            nbrs: list[list[int]] = [[] for _ in range(H * W)]
            for c in np.flatnonzero(self.free.ravel()).tolist():
                x, y = divmod(c, W)
                for dx, dy in _OFFSETS:
                    nx, ny = x + dx, y + dy
                    if 0 <= nx < H and 0 <= ny < W and free[nx * W + ny]:
                        nbrs[c].append(nx * W + ny)
            self._nbrs = nbrs
        return self._nbrs


class MapCostsCache:
    """:class:`MapCosts` per (map, cost kind), least recently used maps dropped first."""

    def __init__(self, max_maps: int = 32, compiled: bool | None = None) -> None:
        self._maps: OrderedDict[bytes, MapCosts] = OrderedDict()
        self._max = max_maps
        self.compiled = compiled
        """passed to every :class:`MapCosts` (None: compiled where numba is installed)"""

    def get(self, free: np.ndarray, costs: PlannerCosts) -> MapCosts:
        free = np.asarray(free, dtype=bool)
        key = costs.encode() + np.asarray(free.shape, np.int64).tobytes() + np.packbits(free).tobytes()
        m = self._maps.pop(key, None)
        if m is None:
            m = MapCosts(free, costs, compiled=self.compiled)
        self._maps[key] = m
        while len(self._maps) > self._max:
            self._maps.popitem(last=False)
        return m


@dataclass
class Plan:
    """One step's plans for all agents."""

    mask: np.ndarray
    """bool [A, 2r+1, 2r+1]: the path in each agent's drawing window (its own cell included)."""
    cells: np.ndarray
    """int64 [A, L]: the path's cells in order (flat map indices; -1 after its end), from the agent's
    cell to the goal or to the first cell outside the drawing window (that cell included)."""
    next_cell: np.ndarray
    """int64 [A]: the path's second cell (Follower's sub-goal); the agent's own cell if it has no path
    or stands on its goal."""
    cost: np.ndarray
    """float64 [A]: the path's cost under the model above, as of the last solve (inf: the goal is
    unreachable, or the agent does not act)."""


class PathPlanner:
    """Plans for all agents of one env; ``reset`` per episode, ``update`` per step.

    radius:        drawing window radius r (the observation's): the path is drawn until it leaves it
    plan_radius:   planning window radius (>= radius; default radius) where dynamic costs count
    see_radius:    who sees whom for the dynamic costs (Chebyshev distance; default radius)
    costs:         ``follower`` (static + dynamic), ``static`` or ``unit``
    reset_dynamic: forget an agent's dynamic counts when its goal changes (Follower's default)
    replan_every:  solve the windows every k-th step (1: every step; see the module docstring)
    compiled:      run the counting, window solve, read-out and goal fields as numba kernels
                   (:mod:`envs.compiled`; identical plans); default: whether numba is installed
    """

    def __init__(
        self,
        radius: int,
        costs: PlannerCosts = "follower",
        plan_radius: int | None = None,
        see_radius: int | None = None,
        reset_dynamic: bool = True,
        cache: MapCostsCache | None = None,
        replan_every: int = 1,
        compiled: bool | None = None,
    ) -> None:
        self.costs = check_costs(costs)
        if compiled and not _k.HAVE_NUMBA:
            raise ValueError(
                "compiled=True needs numba (pip install 'srmt[fast]'); use compiled=None or False"
            )
        self.compiled = _k.HAVE_NUMBA if compiled is None else bool(compiled)
        self.r = int(radius)
        self.R = self.r if plan_radius is None else int(plan_radius)
        if self.r < 1 or self.R < self.r:
            raise ValueError(f"radius={radius}, plan_radius={plan_radius}: need 1 <= radius <= plan_radius")
        self.see = self.r if see_radius is None else int(see_radius)
        self.reset_dynamic = reset_dynamic
        self.replan_every = check_replan_every(replan_every)
        self.cache = cache if cache is not None else MapCostsCache(compiled=self.compiled)
        self.pad = p = self.R + 1
        # A patch is the planning window, a ring of exit cells around it, and one more row and column
        # of separators (cost inf) so that patches can lie end to end in one flat array.
        P = 2 * self.R + 3
        self.Q = Q = P + 1
        self._offs = np.arange(P) - p
        inner = np.zeros((Q, Q), dtype=bool)
        inner[1 : P - 1, 1 : P - 1] = True
        sep = np.zeros((Q, Q), dtype=bool)
        sep[P:, :] = sep[:, P:] = True
        self._window = np.flatnonzero(~sep)  # inner cells and the exit ring
        self._step = np.array([dx * Q + dy for dx, dy in _OFFSETS])
        self._is_inner = inner.ravel()
        self._centre = p * Q + p
        # added to the gathered patches: separators cost inf; V is inf inside (the exit ring keeps S)
        self._c_add = np.where(sep, np.inf, 0.0).astype(DTYPE).ravel()
        self._v_add = np.where(sep | inner, np.inf, 0.0).astype(DTYPE).ravel()
        self._dyn_on = inner.astype(DTYPE).ravel()  # counts are charged inside the window only
        self._map: MapCosts | None = None

    # ------------------------------------------------------------------ episode state
    def reset(self, free: np.ndarray, positions: np.ndarray, goals: np.ndarray) -> Plan:
        """New episode on map ``free`` (bool [H, W]); positions / goals int [A, 2]; returns the first plan."""
        self._map = m = self.cache.get(free, self.costs)
        H, W = m.shape
        p, Q = self.pad, self.Q
        self.W, self.Wp = W, W + 2 * p
        Wp = self.Wp
        self._N = N = (H + 2 * p) * Wp
        off = np.zeros((Q, Q), dtype=np.int64)  # separators: offset 0 (any cell; their costs are inf)
        off[: Q - 1, : Q - 1] = self._offs[:, None] * Wp + self._offs[None, :]
        self._grid = off.ravel()  # patch cell -> offset from the centre in the padded map
        enter = np.where(m.free, m.enter, np.inf).astype(DTYPE)
        self._enter_p = np.pad(enter, p, constant_values=np.inf).ravel()
        # Lookup tables over the offset d = c' - c (+ N) between two cells of the padded map: a map
        # cell within Chebyshev distance s of another has a d that no cell farther away has, as long
        # as s <= 2p (a column offset dy and dy +- Wp cannot both be map offsets) and dy stays in the
        # range decoded below; the drawing radius r < p always does.
        d = np.arange(-N, N)
        dx, dy = np.divmod(d + Wp // 2, Wp)
        dy -= Wp // 2
        r, s = self.r, self.see
        win = (np.abs(dx) <= r) & (np.abs(dy) <= r)
        win = np.where(win, (dx + r) * (2 * r + 1) + dy + r, -1)  # drawing-window cell or -1
        plan = (np.abs(dx) <= self.R) & (np.abs(dy) <= self.R)
        self._plan_win = np.where(plan, (dx + p) * Q + dy + p, -1)  # planning-window patch cell or -1
        ok = s <= min(2 * p, Wp - 1 - Wp // 2)
        self._sees = (np.abs(dx) <= s) & (np.abs(dy) <= s) if ok else None  # else pairwise
        rows, cols = np.divmod(np.arange(N), Wp)
        inside = (rows >= p) & (rows < H + p) & (cols >= p) & (cols < W + p)
        mapcell = np.where(inside, (rows - p) * W + cols - p, -1)
        # Successor tables: per agent 3N entries, layer 0 at 0, layer 1 at 2N (N..2N is never written,
        # so never touched in memory): the entry e of cell c relative to an agent on cell a,
        # e - a + N, falls in 0..2N for layer 0 and 2N..4N for layer 1, and one table lookup tells
        # where either lies in the drawing window.
        self._win = np.concatenate([win, win])
        self._mapcell = np.concatenate([mapcell, np.full(N, -1), mapcell])
        A = len(positions)
        index = np.int32 if 3 * A * N < 2**31 else np.int64
        self._base = np.arange(A, dtype=index) * index(3 * N)  # agent a's table starts at a * 3N
        self._rows = np.arange(A)[:, None] * N  # agent a's row in the [A, N] arrays, flat
        self._togo = np.full((A, N), np.inf, dtype=DTYPE)
        self._succ = np.zeros((A, 3, N), dtype=index)
        follower = self.costs == "follower"
        self._dyn = np.zeros((A, H + 2 * p, Wp), dtype=DTYPE) if follower else None
        # the last solve: each agent's cell then and its window values; who got a new goal since
        self._solved_cell = np.zeros(A, dtype=np.int64)
        self._solved_value = np.full((A, self.Q * self.Q), np.inf, dtype=DTYPE)
        self._fresh = np.ones(A, dtype=bool)
        self._goal = np.full(A, -1, dtype=np.int64)
        self._t = 0
        if self.compiled:
            self._stamp = np.empty(N, dtype=np.int64)  # work array of the counting kernel
            self._win_flat = np.ascontiguousarray(self._win, dtype=np.int64)
            # the last solve's c + V and goal (patch cell, -1: outside): the kernel reads layer 0 from them
            self._solved_w = np.full((A, self.Q * self.Q), np.inf, dtype=DTYPE)
            self._solved_goal = np.full(A, -1, dtype=np.int64)
            ring = (np.abs(dx) <= p) & (np.abs(dy) <= p)
            self._patch_of = np.where(ring, (dx + p) * Q + dy + p, -1)  # window or exit ring cell, or -1
            self._is_ring = ~self._is_inner & (self._c_add == 0)
            self._no_dyn = np.zeros(1, dtype=DTYPE)
        return self.update(positions, goals, np.ones(A, dtype=bool))

    def update(self, positions: np.ndarray, goals: np.ndarray, active: np.ndarray) -> Plan:
        """Plans for this step: dynamic costs from what each agent sees now, then every agent's path."""
        if self._map is None:
            raise RuntimeError("call reset() before update()")
        pos = np.asarray(positions, dtype=np.int64)
        goal_xy = np.asarray(goals, dtype=np.int64)
        active = np.asarray(active, dtype=bool)
        W, p, Wp, N = self.W, self.pad, self.Wp, self._N
        goal = goal_xy[:, 0] * W + goal_xy[:, 1]
        solve = self._dyn is not None and self._t % self.replan_every == 0
        changed = np.flatnonzero(goal != self._goal)
        if changed.size:
            togo, succ = self._map.padded_fields(goal[changed].tolist(), p)
            self._togo[changed] = togo
            self._succ[changed, 2] = static = succ + (self._base[changed] + 2 * N)[:, None]
            if not solve:  # until the next solve, the static plan (the counts are cleared below)
                if not self.compiled:  # (the kernel reads layer 1 directly)
                    self._succ[changed, 0] = self._layer0(static, changed)
                self._fresh[changed] = True
            if self._dyn is not None and self.reset_dynamic:
                self._dyn[changed] = 0.0
            self._goal[changed] = goal[changed]
        if self.compiled:
            self._t += 1
            return self._step_compiled(pos, goal_xy, active, solve)
        cell = (pos[:, 0] + p) * Wp + pos[:, 1] + p
        all_active = bool(active.all())
        if self._dyn is not None:
            # every other active agent within see_radius adds 1 to its cell in the viewer's counts
            if self._sees is not None:
                sees = self._sees[cell[None, :] - cell[:, None] + N]
            else:
                sees = np.abs(pos[:, None, :] - pos[None, :, :]).max(-1) <= self.see
            np.fill_diagonal(sees, False)
            if not all_active:
                sees &= active[None, :] & active[:, None]
            # an agent's cell counts once per viewer and step, however many stand on it
            self._dyn.reshape(-1)[(self._rows + cell[None, :])[sees]] += 1.0
        start = self._base + cell  # layer 0
        if solve:
            cost = self._solve(cell, (goal_xy[:, 0] + p) * Wp + goal_xy[:, 1] + p)
        else:
            cost = self._togo.reshape(-1)[self._rows[:, 0] + cell].astype(np.float64)
            if self._dyn is not None:
                # where the agent stands in its last solve's window (-1: outside; layer 0 is stale
                # there, so it plans statically, from layer 1)
                at = self._plan_win[cell - self._solved_cell + N]
                at[self._fresh] = -1
                solved = np.flatnonzero(at >= 0)
                cost[solved] = self._solved_value[solved, at[solved]]
                start[at < 0] += 2 * N
        self._t += 1
        return self._trace(start, cell, cost, active, all_active)

    def _step_compiled(self, pos: np.ndarray, goal_xy: np.ndarray, active: np.ndarray, solve: bool) -> Plan:
        """The counts, the window solve, the entries and the read-out in one kernel call
        (:func:`envs.compiled.plan_step`): the same plans as the numpy steps below."""
        A, r = len(pos), self.r
        d = 2 * r + 1
        mask = np.zeros((A, d * d), dtype=bool)
        has_dyn = self._dyn is not None
        cells, nxt, cost = _k.plan_step(
            pos, goal_xy, self.pad, active, solve, has_dyn, self.see, self._stamp,
            self._dyn.reshape(-1) if has_dyn else self._no_dyn, self._togo.reshape(-1), self._enter_p,
            self._N, self.Wp, self.R, self.Q, DTYPE(TOLERANCE), 8, self._plan_win, self._patch_of,
            self._is_ring, self._fresh, self._solved_cell, self._solved_goal, self._solved_value,
            self._solved_w, self._base, self._succ.reshape(-1), self._win_flat, self._mapcell, r, mask,
        )  # fmt: skip
        return Plan(mask.reshape(A, d, d), cells, nxt, cost)

    # ------------------------------------------------------------------ the solve
    def _solve(self, cell: np.ndarray, goal_p: np.ndarray) -> np.ndarray:
        """Window values of every agent (Bellman-Ford), written into layer 0 of the successor tables;
        ``cell``, ``goal_p``: flat cells of the padded map. Returns each agent's value at its cell."""
        A = len(cell)
        Q, N = self.Q, self._N
        local = cell[:, None] + self._grid  # [A, Q*Q] padded-map cell of each patch cell
        rows = self._rows + local  # the same in the [A, N] arrays, flat
        c = self._enter_p[local]  # entry costs (inf: obstacle or separator); counts inside the window
        c += self._c_add
        c += self._dyn.reshape(-1)[rows] * self._dyn_on
        V = self._togo.reshape(-1)[rows]  # the exit ring keeps the static cost-to-go as its value
        V += self._v_add
        # the goal, when inside the planning window, ends the path
        goal_at = self._plan_win[goal_p - cell + N]
        g_in = np.flatnonzero(goal_at >= 0)
        goal_cell = goal_at[g_in]
        V[g_in, goal_cell] = 0.0
        w = _bellman(V, c, Q).reshape(-1)
        # successor of every patch cell but the first and last rows (the patches lie end to end, so
        # flat offsets +-1 and +-Q are the 4 neighbours): the one with the least c + V (ties: up, down,
        # left, right); cells without a path stay where they are. Only inner cells' are used.
        arg, best = _argmin4(w[: -2 * Q], w[2 * Q :], w[Q - 1 : -Q - 1], w[Q + 1 : -Q + 1])
        here = np.arange(Q, A * Q * Q - Q)
        nxt = np.empty(A * Q * Q, dtype=np.int64)
        nxt[Q:-Q] = np.where(np.isfinite(best), here + self._step.take(arg), here)
        nxt[g_in * (Q * Q) + goal_cell] = g_in * (Q * Q) + goal_cell  # the goal ends the path
        # layer 0 over the window: the solve's successors inside, on to layer 1 (static) from the ring
        flat = self._succ.reshape(-1)
        at = self._base[:, None] + local  # layer-0 entries of the patch cells
        ring = flat[at + 2 * N]  # on to the static successor (layer 1); stops stay in layer 0
        ring = np.where(ring == at + 2 * N, at, ring)
        new = np.where(
            self._is_inner, at.reshape(-1).take(np.where(self._is_inner, nxt.reshape(A, -1), 0)), ring
        )
        win = self._window
        flat[at[:, win]] = new[:, win]
        self._solved_cell, self._solved_value = cell, V
        self._fresh[:] = False
        return V[:, self._centre].astype(np.float64)

    def _layer0(self, static: np.ndarray, agents: np.ndarray) -> np.ndarray:
        """Layer 0 outside any window for these agents: on to the static successor in layer 1, except
        where the path stops (goal, no path), which stays in layer 0 so that it repeats one entry."""
        here = self._base[agents, None] + np.arange(self._N)
        return np.where(static == here + 2 * self._N, here, static)

    def _trace(
        self, start: np.ndarray, cell: np.ndarray, cost: np.ndarray, active: np.ndarray, all_active: bool
    ) -> Plan:
        """Follow the successor tables from each agent's entry ``start`` (its cell, layer 0 or 1) until
        every path has stopped (goal, no path) or left the drawing window: one gather per step."""
        A = len(cell)
        r, N = self.r, self._N
        flat = self._succ.reshape(-1)
        win = self._win
        origin = N - cell - self._base  # win[e + origin]: where table entry e lies in the window
        L = (2 * r + 1) ** 2 + 1
        T = np.empty((L, A), dtype=self._base.dtype)  # [step, agent] table entries
        T[0] = start
        # a path leaves the window after r + 1 steps at the earliest, most within 3r + 3: check from then
        n, first, every = L, min(3 * r + 3, L - 1), 4
        gone = np.zeros(A, dtype=bool)
        for k in range(1, L):
            flat.take(T[k - 1], out=T[k])
            if k >= first and (k - first) % every == 0:  # has every path left the window or stopped?
                gone |= (win[T[k - every + 1 : k + 1] + origin] < 0).any(0)
                if (gone | (T[k] == T[k - 1])).all():
                    n = k + 1
                    break
        T = T[:n]
        ok = np.empty(T.shape, dtype=bool)  # a real step (fixed points repeat the same entry)
        ok[0] = True
        np.not_equal(T[1:], T[:-1], out=ok[1:])
        if not all_active:
            ok[1:, ~active] = False
        where = win[T + origin]
        # drawn: the prefix until the path first leaves the drawing window
        drawn = np.logical_and.accumulate(ok & (where >= 0), axis=0)
        d = (2 * r + 1) ** 2
        mask = np.zeros((A, d + 1), dtype=bool)
        mask.reshape(-1)[np.where(drawn, where, d) + np.arange(0, A * (d + 1), d + 1)] = True
        ok[1:] &= drawn[:-1]  # the path: the drawn cells and the first cell outside the window
        cells = np.where(ok, self._mapcell[T - self._base], -1).T
        nxt_cell = np.where(cells[:, 1] >= 0, cells[:, 1], cells[:, 0]) if n > 1 else cells[:, 0]
        if not all_active:
            cost = np.where(active, cost, np.inf)
        return Plan(mask[:, :d].reshape(A, 2 * r + 1, 2 * r + 1), cells, nxt_cell, cost)


def warm_up(radius: int = 5, costs: PlannerCosts = "follower", replan_every: int = 1) -> None:
    """Compile the planner's kernels now (or load them from numba's cache), on a tiny map: the first
    plan of a process otherwise pays it (~0.3 s with the cache, seconds without), e.g. inside the
    first timed evaluation episode. No effect on later plans; without numba only a tiny plan."""
    planner = PathPlanner(radius, costs, replan_every=replan_every)
    free = np.ones((radius + 3, radius + 3), dtype=bool)
    free[1, 1:-1] = False
    corners = np.array([[0, 0], [radius + 2, radius + 2]], dtype=np.int64)
    planner.reset(free, corners, corners[::-1].copy())
    planner.update(corners, corners.copy(), np.ones(2, dtype=bool))  # new goals: new goal fields
    planner.update(corners, corners.copy(), np.array([True, False]))


def _bellman(V: np.ndarray, c: np.ndarray, Q: int, compact_after: int = 8) -> np.ndarray:
    """Solve ``V(x) = min over the 4 neighbours y of c(y) + V(y)`` in place for all agents' patches at once
    (Bellman-Ford, one vector step per hop); returns ``c + V``.

    V, c: [A, Q*Q] flat patches laid end to end; a +-1 or +-Q neighbour that leaves a patch lands on a
    separator (cost inf), so no step crosses patches. Fixed values need no restoring: an exit-ring cell
    y keeps its static cost-to-go S(y), since entering the window and leaving it again never costs
    less (S(y) <= s(x) + S(x) <= c(x) + V(x)), and the goal keeps 0. After ``compact_after`` steps
    only the patches that still change go on (most converge within a few hops of their exits).
    """
    _relax(V, c, Q, compact_after)
    busy = np.flatnonzero(_relax(V, c, Q, 1, changed_rows=True))
    if busy.size:
        sub = V[busy]
        _relax(sub, c[busy], Q, None)
        V[busy] = sub
    return c + V


def _relax(V: np.ndarray, c: np.ndarray, Q: int, steps: int | None, changed_rows: bool = False):
    """``steps`` Bellman-Ford steps (None: until nothing drops by more than rounding); with
    ``changed_rows``, which patches changed in the last step."""
    W = np.empty_like(V)
    prev = np.empty_like(V) if steps is None or changed_rows else None
    v, w = V.reshape(-1), W.reshape(-1)
    it = 0
    while steps is None or it < steps:
        check = prev is not None and (changed_rows or it % 2 == 1)
        if check:
            np.copyto(prev, V)
        np.add(c, V, out=W)
        np.minimum(v[:-1], w[1:], out=v[:-1])
        np.minimum(v[1:], w[:-1], out=v[1:])
        np.minimum(v[:-Q], w[Q:], out=v[:-Q])
        np.minimum(v[Q:], w[:-Q], out=v[Q:])
        it += 1
        if check:
            # a drop below rounding is no change: a sum in another order may sit an ulp lower, and
            # an ulp change would otherwise crawl along every path
            dropped = V < prev - TOLERANCE
            if changed_rows:
                return dropped.any(1)
            if not dropped.any():
                break
    return None


class AStarPlanner:
    """Follower's own cost model, exactly: one A* per agent and step over the whole map, charging every
    count the agent remembers (inside its window or not). Same interface, static costs, counting and
    drawing as :class:`PathPlanner`; pure Python (lists beat numpy for a few cells per agent), so
    ~5-10 ms per step for 64 agents: the FollowerLite baseline's planner, too slow for training.

    Equally cheap paths are broken towards deeper nodes (larger cost so far), as in FollowerLite's
    earlier planner.
    """

    def __init__(
        self,
        radius: int,
        costs: PlannerCosts = "follower",
        see_radius: int | None = None,
        reset_dynamic: bool = True,
        cache: MapCostsCache | None = None,
    ) -> None:
        self.costs = check_costs(costs)
        self.r = int(radius)
        if self.r < 1:
            raise ValueError(f"radius={radius}: need radius >= 1")
        self.see = self.r if see_radius is None else int(see_radius)
        self.reset_dynamic = reset_dynamic
        self.cache = cache if cache is not None else MapCostsCache()
        self._map: MapCosts | None = None

    def reset(self, free: np.ndarray, positions: np.ndarray, goals: np.ndarray) -> Plan:
        self._map = m = self.cache.get(free, self.costs)
        self.W = m.shape[1]
        self._nbrs = m.neighbours()
        self._enter = m.enter.ravel().tolist()
        A = len(positions)
        self._cost = [list(self._enter) for _ in range(A)] if self.costs == "follower" else None
        self._goal = [-1] * A
        self._h: list[list[float]] = [[] for _ in range(A)]
        return self.update(positions, goals, np.ones(A, dtype=bool))

    def update(self, positions: np.ndarray, goals: np.ndarray, active: np.ndarray) -> Plan:
        if self._map is None:
            raise RuntimeError("call reset() before update()")
        pos = np.asarray(positions, dtype=np.int64)
        W, r = self.W, self.r
        cells = (pos[:, 0] * W + pos[:, 1]).tolist()
        goal = (np.asarray(goals, dtype=np.int64) @ np.array([W, 1])).tolist()
        changed = [i for i, g in enumerate(goal) if g != self._goal[i]]
        if changed:
            fields = self._map.to_goal([goal[i] for i in changed])
            for i, f in zip(changed, fields):
                self._h[i] = f.ravel().tolist()
                self._goal[i] = goal[i]
                if self._cost is not None and self.reset_dynamic:
                    self._cost[i] = list(self._enter)
        if self._cost is not None:
            sees = np.abs(pos[:, None, :] - pos[None, :, :]).max(-1) <= self.see
            sees &= active[None, :] & active[:, None]
            np.fill_diagonal(sees, False)
            for i, j in zip(*np.nonzero(sees)):
                self._cost[i][cells[j]] += 1.0
        A = len(cells)
        d = 2 * r + 1
        mask = np.zeros((A, d, d), dtype=bool)
        mask[:, r, r] = True
        paths, cost = [], np.full(A, np.inf)
        for i in range(A):
            c = self._enter if self._cost is None else self._cost[i]
            if not active[i]:
                paths.append([cells[i]])
                continue
            path = _astar(self._nbrs, cells[i], goal[i], c, self._h[i])
            paths.append(path)
            if path[-1] == goal[i]:
                cost[i] = sum(c[v] for v in path[1:])
            x0, y0 = divmod(cells[i], W)
            for v in path[1:]:
                dx, dy = v // W - x0, v % W - y0
                if abs(dx) > r or abs(dy) > r:
                    break  # drawn until the path first leaves the window
                mask[i, r + dx, r + dy] = True
        L = max(len(p) for p in paths)
        out = np.full((A, L), -1, dtype=np.int64)
        for i, p in enumerate(paths):
            out[i, : len(p)] = p
        nxt = out[:, 1] if L > 1 else out[:, 0]
        return Plan(mask, out, np.where(nxt >= 0, nxt, out[:, 0]), cost)


def _astar(nbrs: list[list[int]], start: int, goal: int, cost: list[float], h: list[float]) -> list[int]:
    """Cheapest path start -> goal (cells, both ends included); ``[start]`` if the goal is unreachable.

    Entering cell v costs ``cost[v]``; ``h`` (the static cost-to-go) is consistent for those costs since
    dynamic counts are >= 0.
    """
    if start == goal or not h[start] < np.inf:
        return [start]
    inf = float("inf")
    g = [inf] * len(cost)
    parent = [-1] * len(cost)
    g[start] = 0.0
    heap = [(h[start], 0.0, start)]  # (f, -g, cell): ties go to the deeper node
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        _, neg_g, u = pop(heap)
        if u == goal:
            break
        gu = -neg_g
        if gu > g[u]:
            continue  # stale entry; with a consistent h a popped node's g is final
        for v in nbrs[u]:
            gv = gu + cost[v]
            if gv < g[v]:
                g[v] = gv
                parent[v] = u
                push(heap, (gv + h[v], -gv, v))
    if g[goal] == inf:
        return [start]
    path = [goal]
    while path[-1] != start:
        path.append(parent[path[-1]])
    return path[::-1]
