"""The static map as a 4-connected graph over flat cell indices (``x * W + y``), with cached distances.

Pure Python lists on purpose: the planners touch a handful of cells per agent and step, where list
indexing beats numpy's per-call overhead by an order of magnitude. Whole-map BFS is the exception: on
large maps (256x256 city maps, issue 11) a level-synchronous BFS over numpy index arrays is ~3x faster
than the Python queue, so :meth:`GridGraph.distances_from` switches to it above
:data:`NUMPY_BFS_MIN_CELLS` cells (both give identical distances; tested).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence

import numpy as np

from agents.planners.base import MOVES

UNREACHABLE = 1 << 30
"""Distance of a cell that cannot reach the goal (larger than any real distance)."""

NUMPY_BFS_MIN_CELLS = 4096
"""Grids with at least this many cells (64x64) use the numpy BFS; smaller ones the Python queue."""

LAZY_MIN_CELLS = 16384
"""Grids with at least this many cells (128x128) answer :meth:`GridGraph.distances_to` lazily."""


class LazyDistances:
    """Exact distances to ``goal``, computed only where asked: a resumable A* search from the goal
    towards the cell ``near`` (Silver's reverse resumable A*, "Cooperative Pathfinding", AIIDE 2005).

    A planner asks for the distance of the cells around one agent, which travels from ``near`` to the
    goal: the search closes roughly the cells along that route instead of the whole map (a full BFS of
    a 256x256 map costs ~13 ms; this ~1 ms). The Manhattan heuristic towards ``near`` is consistent, so a
    closed cell's distance is exact, and a query for any other cell resumes the same search.
    ``d[cell]`` reads like the list :meth:`GridGraph.distances_from` returns.
    """

    __slots__ = ("graph", "closed", "g", "heap", "near_x", "near_y")

    def __init__(self, graph: GridGraph, goal: int, near: int) -> None:
        self.graph = graph
        self.near_x, self.near_y = divmod(near, graph.width)
        self.closed: dict[int, int] = {}
        self.g: dict[int, int] = {goal: 0}
        gx, gy = divmod(goal, graph.width)
        self.heap: list[tuple[int, int, int]] = [(abs(gx - self.near_x) + abs(gy - self.near_y), 0, goal)]

    def __getitem__(self, cell: int) -> int:
        d = self.closed.get(cell)
        return d if d is not None else self._search(cell)

    def _search(self, target: int) -> int:
        if not self.graph.free[target]:
            return UNREACHABLE
        heap, g, closed = self.heap, self.g, self.closed
        nbrs, W = self.graph.neighbors, self.graph.width
        nx, ny = self.near_x, self.near_y
        pop, push = heapq.heappop, heapq.heappush
        while heap:
            _, neg_g, u = pop(heap)
            if u in closed:
                continue
            du = -neg_g
            closed[u] = du
            dv = du + 1
            for v in nbrs[u]:
                if dv < g.get(v, UNREACHABLE):
                    g[v] = dv
                    vx, vy = divmod(v, W)
                    push(heap, (dv + abs(vx - nx) + abs(vy - ny), -dv, v))  # ties: deeper first
            if u == target:
                return du
        closed[target] = UNREACHABLE  # the search is exhausted: target is not connected to the goal
        return UNREACHABLE


class GridGraph:
    """Free cells of an obstacle grid and their free 4-neighbours."""

    def __init__(self, obstacles: np.ndarray, max_cached: int = 4096) -> None:
        grid = np.asarray(obstacles)
        if grid.ndim != 2:
            raise ValueError(f"obstacles must be a 2-D grid, got shape {grid.shape}")
        H, W = grid.shape
        self.height, self.width = H, W
        free = (grid == 0).ravel()
        self.free: list[bool] = free.tolist()
        self.neighbors: list[list[int]] = [[] for _ in range(H * W)]
        for c in np.flatnonzero(free).tolist():
            x, y = divmod(c, W)
            for dx, dy in MOVES[1:]:
                nx, ny = x + dx, y + dy
                if 0 <= nx < H and 0 <= ny < W and free[nx * W + ny]:
                    self.neighbors[c].append(nx * W + ny)
        self._bfs_cache: dict[int, list[int]] = {}
        self._max_cached = max_cached
        self._nbr_array: np.ndarray | None = None  # [H*W + 1, 4] neighbour table of the numpy BFS
        self._bridges: dict[tuple[int, int], int] | None = None
        self._dead_ends: dict[tuple[int, int], bool] = {}
        self._lazy: dict[int, LazyDistances] = {}

    def cell(self, xy: Sequence[int]) -> int:
        return int(xy[0]) * self.width + int(xy[1])

    def xy(self, cell: int) -> tuple[int, int]:
        return divmod(cell, self.width)

    def cells(self, xys: np.ndarray) -> list[int]:
        """Flat indices of int [A, 2] coordinates."""
        xys = np.asarray(xys, dtype=np.int64)
        return (xys[:, 0] * self.width + xys[:, 1]).tolist()

    def distances_from(self, source: int) -> list[int]:
        """BFS distance (steps) from ``source`` to every cell; :data:`UNREACHABLE` where there is no path.

        Distances are symmetric on this graph, so this is also every cell's distance *to* ``source``.
        """
        dist = self._bfs_cache.get(source)
        if dist is not None:
            return dist
        if self.height * self.width >= NUMPY_BFS_MIN_CELLS:
            dist = self.distances_from_numpy(source)
        else:
            dist = self.distances_from_python(source)
        if len(self._bfs_cache) >= self._max_cached:
            self._bfs_cache.clear()  # maps are small; a full reset is simpler than LRU and rarely hit
        self._bfs_cache[source] = dist
        return dist

    def distances_to(self, goal: int, near: int) -> Sequence[int]:
        """Distances to ``goal``, read at cells around ``near`` (where the agent that asks stands):
        the cached full BFS on small maps, a :class:`LazyDistances` on large ones (cached per goal)."""
        if self.height * self.width < LAZY_MIN_CELLS:
            return self.distances_from(goal)
        lazy = self._lazy.get(goal)
        if lazy is None:
            if len(self._lazy) >= self._max_cached:
                self._lazy.clear()
            lazy = self._lazy[goal] = LazyDistances(self, goal, near)
        return lazy

    def distances_from_python(self, source: int) -> list[int]:
        """BFS with a Python queue (uncached): fastest on small maps."""
        dist = [UNREACHABLE] * (self.height * self.width)
        dist[source] = 0
        queue = deque([source])
        nbrs = self.neighbors
        while queue:
            u = queue.popleft()
            du = dist[u] + 1
            for v in nbrs[u]:
                if dist[v] > du:
                    dist[v] = du
                    queue.append(v)
        return dist

    def distances_from_numpy(self, source: int) -> list[int]:
        """Level-synchronous BFS over numpy index arrays (uncached): one vectorised step per distance
        level instead of one Python iteration per cell, which wins on large maps."""
        N = self.height * self.width
        if self._nbr_array is None:
            table = np.full((N + 1, 4), N, dtype=np.int64)  # row N and entry N: a sentinel "no cell"
            for c, nb in enumerate(self.neighbors):
                table[c, : len(nb)] = nb
            self._nbr_array = table
        table = self._nbr_array
        dist = np.full(N + 1, UNREACHABLE, dtype=np.int64)
        dist[N] = -1  # the sentinel never looks unvisited
        if not self.free[source]:
            dist[source] = 0
            return dist[:N].tolist()
        dist[source] = 0
        frontier = np.array([source], dtype=np.int64)
        level = 0
        while frontier.size:
            level += 1
            nxt = table[frontier].ravel()
            nxt = nxt[dist[nxt] == UNREACHABLE]
            if not nxt.size:
                break
            nxt = np.unique(nxt)
            dist[nxt] = level
            frontier = nxt
        return dist[:N].tolist()

    def bridge_side(self, u: int, v: int) -> int:
        """Cells on ``v``'s side of the edge u-v if that edge is a bridge (removing it disconnects the
        two cells), else 0. A dead end hangs off the rest of the map by a bridge; its side is the
        smaller one. Computed once per map (Tarjan's bridge search, iterative)."""
        if self._bridges is None:
            self._bridges = self._find_bridges()
        return self._bridges.get((u, v), 0)

    def dead_end_corridor(self, u: int, v: int) -> bool:
        """Whether ``v``'s side of the edge u-v is a dead-end corridor: a one-cell-wide path that ends in a
        dead end, with no branch or loop where two agents could pass each other."""
        key = (u, v)
        hit = self._dead_ends.get(key)
        if hit is not None:
            return hit
        side = self.bridge_side(u, v)
        ok = False
        if side > 0:
            prev, cur, cells = u, v, 1
            nbrs = self.neighbors
            while len(nbrs[cur]) == 2 and cells <= side:
                prev, cur = cur, nbrs[cur][0] if nbrs[cur][0] != prev else nbrs[cur][1]
                cells += 1
            ok = len(nbrs[cur]) == 1 and cells == side
        self._dead_ends[key] = ok
        return ok

    def _find_bridges(self) -> dict[tuple[int, int], int]:
        N = self.height * self.width
        nbrs = self.neighbors
        order = [-1] * N  # DFS discovery index
        low = [0] * N
        size = [1] * N  # DFS subtree sizes
        out: dict[tuple[int, int], int] = {}
        counter = 0
        for root in range(N):
            if not self.free[root] or order[root] >= 0:
                continue
            comp: list[int] = []
            order[root] = low[root] = counter
            counter += 1
            stack = [(root, -1, 0)]  # (cell, parent, next neighbour index)
            tree_edges: list[tuple[int, int]] = []
            while stack:
                u, parent, k = stack[-1]
                if k < len(nbrs[u]):
                    stack[-1] = (u, parent, k + 1)
                    w = nbrs[u][k]
                    if order[w] < 0:
                        order[w] = low[w] = counter
                        counter += 1
                        stack.append((w, u, 0))
                    elif w != parent:
                        low[u] = min(low[u], order[w])
                else:
                    stack.pop()
                    comp.append(u)
                    if parent >= 0:
                        low[parent] = min(low[parent], low[u])
                        size[parent] += size[u]
                        if low[u] > order[parent]:
                            tree_edges.append((parent, u))
            total = len(comp)
            for p, c in tree_edges:
                out[(p, c)] = size[c]
                out[(c, p)] = total - size[c]
        return out

    def weighted_distances_from(self, source: int, enter_cost: Sequence[float]) -> list[float]:
        """Dijkstra: cheapest cost from every cell to ``source`` where entering cell v costs ``enter_cost[v]``.

        Computed backwards from ``source``: the edge u -> v costs ``enter_cost[v]``, so the reverse search
        relaxes u from v with the cost of entering v.
        """
        inf = float(UNREACHABLE)
        dist = [inf] * (self.height * self.width)
        dist[source] = 0.0
        heap = [(0.0, source)]
        nbrs = self.neighbors
        while heap:
            d, v = heapq.heappop(heap)
            if d > dist[v]:
                continue
            step = d + enter_cost[v]
            for u in nbrs[v]:
                if step < dist[u]:
                    dist[u] = step
                    heapq.heappush(heap, (step, u))
        return dist
