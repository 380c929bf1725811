"""The static map as a 4-connected graph over flat cell indices (``x * W + y``), with cached distances.

Pure Python lists on purpose: the planners touch a handful of cells per agent and step, where list
indexing beats numpy's per-call overhead by an order of magnitude. Whole-map BFS is the exception: on
large maps (256x256 city maps, issue 11) a level-synchronous BFS over numpy index arrays is ~3x faster
than the Python queue, so :meth:`GridGraph.distances_from` switches to it above
:data:`NUMPY_BFS_MIN_CELLS` cells, and :meth:`GridGraph.distances_to` answers from scipy's BFS (C, ~3 ms
per goal on a 256x256 map) kept as compact ``array('i')`` tables in a memory-bounded LRU cache (all three
give identical distances; tested).
"""

from __future__ import annotations

import array
import heapq
from collections import OrderedDict, deque
from collections.abc import Sequence

import numpy as np

from agents.planners.base import MOVES
from agents.planners.compiled import HAVE_NUMBA, bfs_into, warm_up

UNREACHABLE = 1 << 30
"""Distance of a cell that cannot reach the goal (larger than any real distance)."""

NUMPY_BFS_MIN_CELLS = 4096
"""Grids with at least this many cells (64x64) use the numpy BFS; smaller ones the Python queue."""

LARGE_MIN_CELLS = 16384
"""Grids with at least this many cells (128x128) answer :meth:`GridGraph.distances_to` from scipy's BFS."""

LARGE_CACHE_ENTRIES = 1 << 26
"""Distance entries (4 bytes each: 256 MiB) that :meth:`GridGraph.distances_to` keeps on large maps."""


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
        self._large: OrderedDict[int, array.array] = OrderedDict()  # goal -> distances, least recent first
        self._large_max = max(64, LARGE_CACHE_ENTRIES // max(H * W, 1))
        self._csgraph = None  # free-cell graph for scipy, built on the first large-map query
        if H * W >= LARGE_MIN_CELLS:
            warm_up()  # compile the BFS now (set-up time), not in the first step

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
        """Distances to ``goal`` (read at cells around ``near``, where the agent that asks stands): the
        cached full BFS on small maps; on large ones scipy's BFS as an ``array('i')``, cached per goal
        (least recently used goals dropped first). Both index like the list of :meth:`distances_from`."""
        if self.height * self.width < LARGE_MIN_CELLS:
            return self.distances_from(goal)
        dist = self._large.get(goal)
        if dist is not None:
            self._large.move_to_end(goal)
            return dist
        dist = self.distances_from_compiled(goal) if HAVE_NUMBA else self.distances_from_scipy(goal)
        self._large[goal] = dist
        while len(self._large) > self._large_max:
            self._large.popitem(last=False)
        return dist

    def distances_from_compiled(self, source: int) -> array.array:
        """The same BFS compiled (numba, :mod:`agents.planners.compiled`; uncached), ~20x faster than
        scipy's on a 256x256 map."""
        out = np.empty(self.height * self.width, dtype=np.int32)
        bfs_into(self._neighbor_table(), source, out, UNREACHABLE)
        return array.array("i", out.tobytes())

    def distances_from_scipy(self, source: int) -> array.array:
        """BFS distances from ``source`` by scipy (uncached), as a compact ``array('i')``."""
        N = self.height * self.width
        out = np.full(N, UNREACHABLE, dtype=np.int32)
        if self.free[source]:
            from scipy.sparse.csgraph import dijkstra

            if self._csgraph is None:
                self._csgraph = self._free_cell_graph()
            graph, cells, node = self._csgraph
            d = dijkstra(graph, unweighted=True, indices=int(node[source]))
            out[cells] = np.where(np.isfinite(d), d, UNREACHABLE)
        else:
            out[source] = 0
        return array.array("i", out.tobytes())

    def _free_cell_graph(self):
        """(scipy CSR adjacency over the free cells, node -> flat cell, flat cell -> node)."""
        from scipy.sparse import csr_matrix

        cells = np.flatnonzero(np.asarray(self.free))
        node = np.full(self.height * self.width, -1, dtype=np.int64)
        node[cells] = np.arange(len(cells))
        nbrs = [self.neighbors[u] for u in cells.tolist()]
        rows = np.repeat(np.arange(len(cells)), [len(nb) for nb in nbrs])
        cols = node[np.fromiter((v for nb in nbrs for v in nb), dtype=np.int64, count=len(rows))]
        n = len(cells)
        return csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)), cells, node

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
        table = self._neighbor_table()
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

    def _neighbor_table(self) -> np.ndarray:
        """int64 [H*W + 1, 4]: the free neighbours of every cell, padded with H*W ("no cell"; its row too)."""
        if self._nbr_array is None:
            N = self.height * self.width
            table = np.full((N + 1, 4), N, dtype=np.int64)
            for c, nb in enumerate(self.neighbors):
                table[c, : len(nb)] = nb
            self._nbr_array = table
        return self._nbr_array

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
