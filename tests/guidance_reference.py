"""Slow reference for tests: envs/guidance.py as it was before the successor-table rewrite (commit
4b8b1b0), kept verbatim below this docstring so that the fast planner (``replan_every=1``), the static
costs and FollowerLite's ``AStarPlanner`` can be checked to give the same results, bit for bit.
Not imported by the package; scipy does the graph searches here.
"""

from __future__ import annotations

import heapq
import typing
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

# scipy is imported where the graphs are built and searched, so that importing envs (every env, also
# those without a planner channel) does not load it
from envs.config import PlannerCosts

PLANNER_COSTS = typing.get_args(PlannerCosts)
EXACT_AVG_MAX_CELLS = 4096
"""Up to this many free cells the static cost uses all-pairs BFS; beyond, a fixed sample of targets."""
DTYPE = np.float32
"""Costs and values in the per-step solve: float32 halves the memory traffic of the vector steps."""
TOLERANCE = 1e-3
"""Value changes below this are rounding: float32 path costs (up to ~1e4) carry ~1e-3 of it. Paths whose
costs differ by less count as equally short."""
_OFFSETS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # up, down, left, right: the neighbour order of the trace


def check_costs(name: str) -> str:
    if name not in PLANNER_COSTS:
        raise ValueError(f"unknown planner costs {name!r}; allowed: {', '.join(PLANNER_COSTS)}")
    return name


def _adjacency(free: np.ndarray, weight: np.ndarray | None = None) -> tuple[Any, np.ndarray]:
    """4-connected graph over the free cells; edge u -> v carries ``weight[u]`` (1 if None).

    Returns the matrix over free-cell nodes and node -> flat cell. With ``weight = s`` a Dijkstra *from*
    the goal along these edges gives every cell's cost of travelling *to* the goal with entry costs s.
    """
    H, W = free.shape
    cells = np.flatnonzero(free.ravel())
    node = np.full(H * W, -1, dtype=np.int64)
    node[cells] = np.arange(len(cells))
    x, y = np.divmod(cells, W)
    rows, cols = [], []
    for dx, dy in _OFFSETS:
        nx, ny = x + dx, y + dy
        ok = (nx >= 0) & (nx < H) & (ny >= 0) & (ny < W)
        ok[ok] = free[nx[ok], ny[ok]]
        rows.append(node[cells[ok]])
        cols.append(node[nx[ok] * W + ny[ok]])
    r, c = np.concatenate(rows), np.concatenate(cols)
    w = np.ones(len(r)) if weight is None else weight.ravel()[cells][r]
    from scipy.sparse import csr_matrix

    return csr_matrix((w, (r, c)), shape=(len(cells), len(cells))), cells


def static_costs(free: np.ndarray) -> np.ndarray:
    """float64 [H, W] static cost of entering each cell: ``max_avg / avg(v)`` on free cells, 1.0 elsewhere.

    ``avg(v)``: mean BFS distance from v to every other cell of its component (exact up to
    :data:`EXACT_AVG_MAX_CELLS` free cells, else to an evenly spaced sample of 1024 target cells).
    An isolated cell has no average and costs 1.0 (no path ever enters it).
    """
    from scipy.sparse.csgraph import shortest_path

    free = np.asarray(free, dtype=bool)
    graph, cells = _adjacency(free)
    n = len(cells)
    out = np.ones(free.shape)
    if n == 0:
        return out
    if n <= EXACT_AVG_MAX_CELLS:
        dist = shortest_path(graph, method="D", unweighted=True)  # [n, n], symmetric
    else:
        targets = np.linspace(0, n - 1, 1024).astype(np.int64)
        dist = shortest_path(graph, method="D", unweighted=True, indices=targets)  # [k, n]
    reach = np.isfinite(dist) & (dist > 0)
    count = reach.sum(0)
    avg = np.where(count > 0, np.where(reach, dist, 0.0).sum(0) / np.maximum(count, 1), 0.0)
    top = avg.max()
    flat = out.reshape(-1)
    flat[cells] = np.where(avg > 0, top / np.where(avg > 0, avg, 1.0), 1.0)
    return out


class MapCosts:
    """Per map: static entry costs and static cost-to-go fields per goal (cached)."""

    def __init__(self, free: np.ndarray, costs: PlannerCosts, max_goals: int = 4096) -> None:
        self.free = np.asarray(free, dtype=bool)
        self.shape = self.free.shape
        self.enter = np.ones(self.shape) if check_costs(costs) == "unit" else static_costs(self.free)
        self._graph, self._cells = _adjacency(self.free, self.enter)
        self._node = np.full(self.free.size, -1, dtype=np.int64)
        self._node[self._cells] = np.arange(len(self._cells))
        self._fields: dict[int, np.ndarray] = {}
        self._max = max_goals

    def to_goal(self, goals: list[int]) -> list[np.ndarray]:
        """Static cost-to-go [H, W] (inf where the goal is unreachable) for each goal cell."""
        missing = sorted({g for g in goals if g not in self._fields})
        if missing:
            if len(self._fields) + len(missing) > self._max:
                self._fields.clear()
            nodes = self._node[missing]
            if (nodes < 0).any():
                bad = missing[int(np.flatnonzero(nodes < 0)[0])]
                raise ValueError(f"goal cell {divmod(bad, self.shape[1])} is an obstacle or off the map")
            from scipy.sparse.csgraph import dijkstra

            dist = dijkstra(self._graph, directed=True, indices=nodes)  # [k, n]
            for g, d in zip(missing, dist):
                f = np.full(self.free.size, np.inf)
                f[self._cells] = d
                self._fields[g] = f.reshape(self.shape)
        return [self._fields[g] for g in goals]

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

    def __init__(self, max_maps: int = 32) -> None:
        self._maps: OrderedDict[bytes, MapCosts] = OrderedDict()
        self._max = max_maps

    def get(self, free: np.ndarray, costs: PlannerCosts) -> MapCosts:
        free = np.asarray(free, dtype=bool)
        key = costs.encode() + np.asarray(free.shape, np.int64).tobytes() + np.packbits(free).tobytes()
        m = self._maps.pop(key, None)
        if m is None:
            m = MapCosts(free, costs)
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
    cell to the goal or to the first cell outside the planning window (that cell included)."""
    next_cell: np.ndarray
    """int64 [A]: the path's second cell (Follower's sub-goal); the agent's own cell if it has no path
    or stands on its goal."""
    cost: np.ndarray
    """float64 [A]: the path's cost under the model above (inf: the goal is unreachable)."""


class PathPlanner:
    """Plans for all agents of one env; ``reset`` per episode, ``update`` per step.

    radius:        drawing window radius r (the observation's): the path is drawn until it leaves it
    plan_radius:   planning window radius (>= radius; default radius) where dynamic costs count
    see_radius:    who sees whom for the dynamic costs (Chebyshev distance; default radius)
    costs:         ``follower`` (static + dynamic), ``static`` or ``unit``
    reset_dynamic: forget an agent's dynamic counts when its goal changes (Follower's default)
    """

    def __init__(
        self,
        radius: int,
        costs: PlannerCosts = "follower",
        plan_radius: int | None = None,
        see_radius: int | None = None,
        reset_dynamic: bool = True,
        cache: MapCostsCache | None = None,
    ) -> None:
        self.costs = check_costs(costs)
        self.r = int(radius)
        self.R = self.r if plan_radius is None else int(plan_radius)
        if self.r < 1 or self.R < self.r:
            raise ValueError(f"radius={radius}, plan_radius={plan_radius}: need 1 <= radius <= plan_radius")
        self.see = self.r if see_radius is None else int(see_radius)
        self.reset_dynamic = reset_dynamic
        self.cache = cache if cache is not None else MapCostsCache()
        self.pad = self.R + 1
        # A patch is the planning window, a ring of exit cells around it, and one more row and column
        # of separators (cost inf) so that patches can lie end to end in one flat array.
        P = 2 * self.R + 3
        self.Q = Q = P + 1
        self._offs = np.arange(P) - (self.R + 1)
        inner = np.zeros((Q, Q), dtype=bool)
        inner[1 : P - 1, 1 : P - 1] = True
        self._inner = np.flatnonzero(inner)
        self._step = np.array([dx * Q + dy for dx, dy in _OFFSETS])
        self._centre = (self.R + 1) * Q + (self.R + 1)
        sep = np.zeros((Q, Q), dtype=bool)
        sep[P:, :] = sep[:, P:] = True
        self._sep = np.flatnonzero(sep)
        self._map: MapCosts | None = None

    # ------------------------------------------------------------------ episode state
    def reset(self, free: np.ndarray, positions: np.ndarray, goals: np.ndarray) -> Plan:
        """New episode on map ``free`` (bool [H, W]); positions / goals int [A, 2]; returns the first plan."""
        self._map = m = self.cache.get(free, self.costs)
        H, W = m.shape
        p = self.pad
        self.W, self.Wp = W, W + 2 * p
        P = self.Q - 1
        off = np.zeros((self.Q, self.Q), dtype=np.int64)
        off[:P, :P] = self._offs[:, None] * self.Wp + self._offs[None, :]
        self._grid = off.ravel()  # patch cell -> offset from the centre in the padded map
        enter = np.where(m.free, m.enter, np.inf).astype(DTYPE)
        self._enter_p = np.pad(enter, p, constant_values=np.inf)
        A = len(positions)
        self._togo = np.full((A, H + 2 * p, W + 2 * p), np.inf, dtype=DTYPE)
        self._dyn = np.zeros((A, H + 2 * p, W + 2 * p), dtype=DTYPE) if self.costs == "follower" else None
        self._goal = np.full(A, -1, dtype=np.int64)
        return self.update(positions, goals, np.ones(A, dtype=bool))

    def update(self, positions: np.ndarray, goals: np.ndarray, active: np.ndarray) -> Plan:
        """Plans for this step: dynamic costs from what each agent sees now, then every agent's path."""
        if self._map is None:
            raise RuntimeError("call reset() before update()")
        pos = np.asarray(positions, dtype=np.int64)
        goal_xy = np.asarray(goals, dtype=np.int64)
        A = len(pos)
        W, p = self.W, self.pad
        goal = goal_xy[:, 0] * W + goal_xy[:, 1]
        changed = np.flatnonzero(goal != self._goal)
        if changed.size:
            fields = self._map.to_goal(goal[changed].tolist())
            for i, f in zip(changed.tolist(), fields):
                self._togo[i, p:-p, p:-p] = f
            if self._dyn is not None and self.reset_dynamic:
                self._dyn[changed] = 0.0
            self._goal[changed] = goal[changed]
        px, py = pos[:, 0] + p, pos[:, 1] + p
        if self._dyn is not None:
            # every other active agent within see_radius adds 1 to its cell in the viewer's counts
            sees = np.abs(pos[:, None, :] - pos[None, :, :]).max(-1) <= self.see
            sees &= active[None, :] & active[:, None]
            np.fill_diagonal(sees, False)
            i, j = np.nonzero(sees)
            self._dyn.reshape(A, -1)[i, px[j] * self.Wp + py[j]] += 1.0  # (i, cell) pairs are unique
        return self._solve(px, py, goal_xy + p, active)

    # ------------------------------------------------------------------ the solve
    def _solve(self, px: np.ndarray, py: np.ndarray, goal_p: np.ndarray, active: np.ndarray) -> Plan:
        A = len(px)
        R, Q, Wp = self.R, self.Q, self.Wp
        P = Q - 1
        inner = self._inner
        # padded-map cell of each patch cell; separators read cell 0, a padding cell (cost inf, pad >= 2)
        local = (px * Wp + py)[:, None] + self._grid
        local[:, self._sep] = 0
        ar = np.arange(A)[:, None]
        c = self._enter_p.ravel()[local]  # [A, Q*Q] entry costs (inf: obstacle or separator)
        V = self._togo.reshape(A, -1)[ar, local]  # the exit ring keeps the static cost-to-go as its value
        # the goal, when inside the planning window, ends the path
        gx, gy = goal_p[:, 0] - px + R + 1, goal_p[:, 1] - py + R + 1
        g_in = np.flatnonzero((np.abs(gx - R - 1) <= R) & (np.abs(gy - R - 1) <= R))
        goal_cell = gx[g_in] * Q + gy[g_in]
        if self._dyn is None:
            W = c + V  # static costs only: the static cost-to-go is the answer everywhere
        else:
            c[:, inner] += self._dyn.reshape(A, -1)[ar, local[:, inner]]
            V[:, inner] = np.inf
            V[g_in, goal_cell] = 0.0
            W = _bellman(V, c, Q)
        # successor of every inner cell: the neighbour with the least c + V (ties: up, down, left, right);
        # exit-ring cells, the goal and agents without a path (or not acting) stay where they are
        W3 = W.reshape(A, Q, Q)
        around = np.stack(  # the 4 neighbours of every inner cell, in _OFFSETS order: [4, A, P-2, P-2]
            [
                W3[:, : P - 2, 1 : P - 1],
                W3[:, 2:P, 1 : P - 1],
                W3[:, 1 : P - 1, : P - 2],
                W3[:, 1 : P - 1, 2:P],
            ]
        )
        arg = around.argmin(0)  # first wins a tie
        succ = np.broadcast_to(np.arange(Q * Q), (A, Q * Q)).copy()
        succ[:, inner] = inner + self._step[arg.reshape(A, -1)]
        succ[g_in, goal_cell] = goal_cell
        cost = V[:, self._centre].copy()
        stuck = ~np.isfinite(cost) | ~active
        succ[stuck, self._centre] = self._centre
        cost[~active] = np.inf
        return self._trace(succ, cost, local)

    def _trace(self, succ: np.ndarray, cost: np.ndarray, local: np.ndarray) -> Plan:
        """Follow ``succ`` from the centre until it stops (exit ring or goal): an optimal path, since each
        step enters the neighbour that attains the Bellman minimum."""
        A, n = succ.shape
        R, r, p, Q, Wp = self.R, self.r, self.pad, self.Q, self.Wp
        flat = (succ + (np.arange(A) * n)[:, None]).ravel()
        cur = np.arange(A) * n + self._centre
        trail = [cur]
        for k in range((2 * R + 1) ** 2):
            nxt = flat[cur]
            if k % 4 == 3 and np.array_equal(nxt, cur):  # every few steps: a check costs two steps
                break
            trail.append(nxt)
            cur = nxt
        T = np.stack(trail, 1) - (np.arange(A) * n)[:, None]  # [A, L] patch cells; repeats after the end
        ok = np.ones(T.shape, dtype=bool)
        ok[:, 1:] = T[:, 1:] != T[:, :-1]
        tx, ty = np.divmod(T, Q)
        dx, dy = tx - (R + 1), ty - (R + 1)
        # drawn: the prefix until the path first leaves the drawing window
        inside = ok & (np.abs(dx) <= r) & (np.abs(dy) <= r)
        drawn = np.cumprod(inside, axis=1).astype(bool)
        d = 2 * r + 1
        mask = np.zeros((A, d, d), dtype=bool)
        a_idx, t_idx = np.nonzero(drawn)
        mask[a_idx, dx[a_idx, t_idx] + r, dy[a_idx, t_idx] + r] = True
        mx, my = np.divmod(np.take_along_axis(local, T, 1), Wp)
        cells = np.where(ok, (mx - p) * self.W + (my - p), -1)
        nxt_cell = np.where(cells[:, 1] >= 0, cells[:, 1], cells[:, 0]) if T.shape[1] > 1 else cells[:, 0]
        return Plan(mask, cells, nxt_cell, cost)


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
