"""Compiled inner loops of the planners (numba, the optional ``fast`` extra), each with the pure
Python/scipy code it replaces as the fallback and the reference its tests compare against.

Each kernel does the same arithmetic in the same order as the code it replaces (IEEE float64, no
``fastmath``), so results are identical, not merely close: see ``tests/test_planners_speed.py``.
Without numba (``HAVE_NUMBA`` False) the planners take their pure paths, slower on large maps
(issue 11: 256 agents on 256x256 maps).
"""

from __future__ import annotations

import numpy as np

# numba (or the no-op decorator without it) and the BFS / Dijkstra kernels that the env's planner
# shares (envs/compiled.py): one implementation, re-exported here for the planners
from envs.compiled import HAVE_NUMBA, bfs_sums, dijkstra_buckets, dijkstra_to, njit  # noqa: F401


@njit(cache=True)
def bfs_into(table: np.ndarray, source: int, out: np.ndarray, unreachable: int) -> None:
    """BFS distances from ``source`` over ``table`` ([N + 1, 4] neighbour cells, ``N`` = none) into
    ``out`` (int32 [N]); ``unreachable`` where there is no path."""
    n = out.shape[0]
    for c in range(n):
        out[c] = unreachable
    out[source] = 0
    queue = np.empty(n, dtype=np.int64)
    queue[0] = source
    head, tail = 0, 1
    while head < tail:
        u = queue[head]
        head += 1
        du = out[u] + 1
        for k in range(4):
            v = table[u, k]
            if v < n and out[v] > du:
                out[v] = du
                queue[tail] = v
                tail += 1


@njit(cache=True)
def _heap_push(hf, hg, hu, size, f, g, u):
    """Push key ``(f, g, u)`` (lexicographic, as Python compares tuples) into the arrays' binary heap."""
    i = size
    while i > 0:
        p = (i - 1) >> 1
        if hf[p] < f or (hf[p] == f and (hg[p] < g or (hg[p] == g and hu[p] < u))):
            break
        hf[i], hg[i], hu[i] = hf[p], hg[p], hu[p]
        i = p
    hf[i], hg[i], hu[i] = f, g, u
    return size + 1


@njit(cache=True)
def _heap_pop(hf, hg, hu, size):
    """Remove the smallest key; returns (f, g, u, new size)."""
    f, g, u = hf[0], hg[0], hu[0]
    size -= 1
    lf, lg, lu = hf[size], hg[size], hu[size]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size:
            d = c + 1
            if hf[d] < hf[c] or (hf[d] == hf[c] and (hg[d] < hg[c] or (hg[d] == hg[c] and hu[d] < hu[c]))):
                c = d
        if lf < hf[c] or (lf == hf[c] and (lg < hg[c] or (lg == hg[c] and lu < hu[c]))):
            break
        hf[i], hg[i], hu[i] = hf[c], hg[c], hu[c]
        i = c
    hf[i], hg[i], hu[i] = lf, lg, lu
    return f, g, u, size


@njit(cache=True)
def follower_astar(table, start, goal, cost, h, g, parent, stamp, mark, hf, hg, hu, path) -> int:
    """``envs.guidance._astar`` compiled: the same pops in the same order (its heap holds
    ``(f, -g, cell)`` tuples, unique, so any min-heap pops them alike), the same float sums.

    ``g``, ``parent``: work arrays valid where ``stamp == mark`` (no clearing per call). Writes the path
    (start and goal included) to ``path`` and returns its length; -1 if the heap arrays were too small.
    """
    if start == goal or not h[start] < np.inf:
        path[0] = start
        return 1
    n = cost.shape[0]
    cap = hf.shape[0]
    stamp[start] = mark
    g[start] = 0.0
    parent[start] = -1
    size = _heap_push(hf, hg, hu, 0, h[start], 0.0, start)
    while size > 0:
        _, neg_g, u, size = _heap_pop(hf, hg, hu, size)
        if u == goal:
            break
        gu = -neg_g
        if gu > g[u]:
            continue
        for k in range(4):
            v = table[u, k]
            if v >= n:
                continue
            gv = gu + cost[v]
            if stamp[v] != mark or gv < g[v]:
                if size >= cap:
                    return -1
                stamp[v] = mark
                g[v] = gv
                parent[v] = u
                size = _heap_push(hf, hg, hu, size, gv + h[v], -gv, v)
    if stamp[goal] != mark:
        path[0] = start
        return 1
    length = 0
    v = goal
    while v != start:
        path[length] = v
        length += 1
        v = parent[v]
    path[length] = start
    length += 1
    path[:length] = path[:length][::-1].copy()
    return length


@njit(cache=True)
def follower_plan(
    table, start, goal, cost, h, g, parent, stamp, mark, hf, hg, hu, path, W, r, mask, out_cost
):
    """:func:`follower_astar`, then what ``AStarPlanner`` derives from the path: ``mask`` ([2r+1, 2r+1],
    the path from the start until it first leaves the window) and ``out_cost[0]`` (the summed entry
    costs in path order, if the path reaches the goal). Returns the path length (-1: heap too small)."""
    n = follower_astar(table, start, goal, cost, h, g, parent, stamp, mark, hf, hg, hu, path)
    if n < 0:
        return n
    if path[n - 1] == goal:
        total = 0.0
        for k in range(1, n):
            total += cost[path[k]]
        out_cost[0] = total
    x0, y0 = start // W, start % W
    for k in range(1, n):
        dx, dy = path[k] // W - x0, path[k] % W - y0
        if abs(dx) > r or abs(dy) > r:
            break
        mask[r + dx, r + dy] = True
    return n


_WARM = False


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel now, once per process: callers do it while
    they set up, so that the first timed step does not pay for it."""
    global _WARM
    if _WARM or not HAVE_NUMBA:
        return
    table = np.array([[1, 2, 2, 2], [0, 2, 2, 2], [2, 2, 2, 2]], dtype=np.int64)  # cells 0-1, sentinel 2
    dist = np.empty(2, dtype=np.int32)
    bfs_into(table, 0, dist, 1 << 30)
    bfs_sums(
        table, np.array([0, 1], dtype=np.int64), np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.int64)
    )
    hf, hg, hu = np.empty(16), np.empty(16), np.empty(16, dtype=np.int64)
    field = np.empty(2)
    dijkstra_to(table, np.ones(2), 1, field, hf, hg, hu)
    work = np.zeros(2), np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.int64)
    one = np.zeros(1, dtype=np.int64)
    dijkstra_buckets(table, np.ones(2), 1, field)
    follower_plan_all(
        table, one, one + 1, np.ones(1, dtype=np.bool_), np.ones((1, 2)), False, field[None, :], one, *work,
        one.copy(), hf, hg, hu, np.zeros(8, dtype=np.int64), one.copy(), one.copy(), 2, 1,
        np.zeros((1, 3, 3), dtype=np.bool_), np.full(1, np.inf), 0,
    )  # fmt: skip
    _WARM = True


@njit(cache=True)
def follower_plan_all(
    table,
    starts,
    goals,
    active,
    cost,
    per_agent,
    pool,
    slots,
    g,
    parent,
    stamp,
    mark,
    hf,
    hg,
    hu,
    flat,
    offsets,
    lengths,
    W,
    r,
    mask,
    out_cost,
    first,
):
    """:func:`follower_plan` for agents ``first``, ``first + 1``, ... in one call.

    ``cost``: [A, H*W] rows per agent if ``per_agent`` else [1, H*W] for all; agent i's goal field is
    ``pool[slots[i]]``. Paths go to ``flat`` at ``offsets[i]`` (``lengths[i]`` cells); inactive agents
    get their own cell. ``mark[0]`` counts searches. Returns ``(i, status)``: status 0 = all done, 1 =
    ``flat`` may not hold agent i's path, 2 = the heap arrays were too small for agent i's search (grow
    them, then call again from i)."""
    A = starts.shape[0]
    n_cells = pool.shape[1]
    pos = 0 if first == 0 else offsets[first - 1] + lengths[first - 1]
    for i in range(first, A):
        if pos + n_cells + 1 > flat.shape[0]:
            return i, 1
        start = starts[i]
        offsets[i] = pos
        if not active[i]:
            flat[pos] = start
            lengths[i] = 1
            pos += 1
            continue
        c = cost[i] if per_agent else cost[0]
        mark[0] += 1
        out = flat[pos:]
        total = np.full(1, np.inf)
        n = follower_plan(
            table,
            start,
            goals[i],
            c,
            pool[slots[i]],
            g,
            parent,
            stamp,
            mark[0],
            hf,
            hg,
            hu,
            out,
            W,
            r,
            mask[i],
            total,
        )
        if n < 0:
            return i, 2
        out_cost[i] = total[0]
        lengths[i] = n
        pos += n
    return A, 0
