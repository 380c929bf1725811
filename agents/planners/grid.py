"""The static map as a 4-connected graph over flat cell indices (``x * W + y``), with cached distances.

Pure Python lists on purpose: the planners touch a handful of cells per agent and step, where list
indexing beats numpy's per-call overhead by an order of magnitude.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence

import numpy as np

from agents.planners.base import MOVES

UNREACHABLE = 1 << 30
"""Distance of a cell that cannot reach the goal (larger than any real distance)."""


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
        if len(self._bfs_cache) >= self._max_cached:
            self._bfs_cache.clear()  # maps are small; a full reset is simpler than LRU and rarely hit
        self._bfs_cache[source] = dist
        return dist

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
