"""Compiled kernels of the env's planner (numba, the optional ``fast`` extra; no torch, no scipy).

Each kernel does the arithmetic of the numpy (or scipy) code it replaces, in the same float type, so
results are identical, not merely close: :class:`envs.guidance.PathPlanner` runs these when numba is
installed and its numpy path otherwise, and the tests compare the two (``tests/test_envs_guidance_compiled.py``).
FollowerLite's compiled planner (``agents/planners/follower_planner.py``) shares the BFS and Dijkstra
kernels (``agents/planners/compiled.py`` re-exports them).

Without numba (``HAVE_NUMBA`` False) the decorator is a no-op: the kernels still run, as slow Python;
the callers then take their numpy / scipy paths instead.
"""

from __future__ import annotations

import numpy as np

try:  # the optional extra: pip install 'srmt[fast]'
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised on installs without the extra
    HAVE_NUMBA = False

    def njit(*args, **kwargs):  # the decorator as a no-op: the kernels then run as (slow) Python
        if args and callable(args[0]):
            return args[0]
        return lambda f: f


# ----------------------------------------------------------------------------- static costs, goal fields
@njit(cache=True)
def bfs_sums(table: np.ndarray, sources: np.ndarray, sums: np.ndarray, counts: np.ndarray) -> None:
    """For every cell v: ``sums[v]`` += its BFS distance from each source that reaches it (v itself
    excluded) and ``counts[v]`` += 1 per such source: the totals of the static costs' mean distances.
    ``table``: [N + 1, 4] neighbour cells (``N`` = none)."""
    n = sums.shape[0]
    dist = np.empty(n, dtype=np.int64)
    queue = np.empty(n, dtype=np.int64)
    for s in sources:
        for c in range(n):
            dist[c] = -1
        dist[s] = 0
        queue[0] = s
        head, tail = 0, 1
        while head < tail:
            u = queue[head]
            head += 1
            du = dist[u] + 1
            for k in range(4):
                v = table[u, k]
                if v < n and dist[v] < 0:
                    dist[v] = du
                    sums[v] += du
                    counts[v] += 1
                    queue[tail] = v
                    tail += 1


@njit(cache=True)
def dijkstra_to(table, enter, goal, out, hf, hg, hu) -> bool:
    """Cheapest cost from every cell to ``goal`` where entering cell v costs ``enter[v]`` into ``out``
    (inf: no path). Always True (the signature keeps ``hg``, ``hu``: ``hf`` and ``hu`` serve as the
    indexed heap's keys and cells, sized for every cell at once).

    ``out[v] = min over neighbours u of out[u] + enter[u]``, each sum rounded once: a float fixed point
    that every correct Dijkstra reaches whatever its order among ties (scipy's, for one), since entry
    costs are positive."""
    n = out.shape[0]
    pos = np.full(n, -1, dtype=np.int64)  # heap index of each cell; -1 = not in the heap
    for c in range(n):
        out[c] = np.inf
    out[goal] = 0.0
    size = 0
    hf[0], hu[0], pos[goal] = 0.0, goal, 0
    size = 1
    while size > 0:
        u = hu[0]
        d = hf[0]
        pos[u] = -2  # settled
        size -= 1
        if size > 0:  # move the last entry to the root and sift it down
            lf, lu = hf[size], hu[size]
            i = 0
            while True:
                c = 2 * i + 1
                if c >= size:
                    break
                if c + 1 < size and hf[c + 1] < hf[c]:
                    c += 1
                if lf <= hf[c]:
                    break
                hf[i], hu[i] = hf[c], hu[c]
                pos[hu[i]] = i
                i = c
            hf[i], hu[i] = lf, lu
            pos[lu] = i
        step = d + enter[u]
        for k in range(4):
            v = table[u, k]
            if v >= n or pos[v] == -2 or not step < out[v]:
                continue
            out[v] = step
            i = pos[v]
            if i < 0:  # new entry at the bottom
                i = size
                size += 1
            while i > 0:  # sift up (a decreased key only moves up)
                p = (i - 1) >> 1
                if hf[p] <= step:
                    break
                hf[i], hu[i] = hf[p], hu[p]
                pos[hu[i]] = i
                i = p
            hf[i], hu[i] = step, v
            pos[v] = i
    return True


@njit(cache=True)
def dijkstra_buckets(table, enter, goal, out) -> bool:
    """:func:`dijkstra_to` without a heap (Dial's buckets of width 1), for entry costs >= 1 (False if
    one is below 1, or not finite, and nothing was computed).

    A cell whose cost lies in [k, k+1) cannot lower another one of that bucket (that costs >= 1 more),
    so each bucket's cells are final, in any order: the same fixed point, so the same floats."""
    n = out.shape[0]
    top = 1.0
    for c in range(n):
        out[c] = np.inf
        if table[c, 0] < n:  # a free cell with a free neighbour: its cost may be paid
            w = enter[c]
            if not (w >= 1.0 and w < np.inf):
                return False
            if w > top:
                top = w
    B = int(top) + 2  # a relaxation from bucket k lands in k+1 .. k+1+int(top): a ring of B buckets
    head = np.full(B, -1, dtype=np.int64)
    cap = 4 * n + 1
    nxt = np.empty(cap, dtype=np.int64)
    cell = np.empty(cap, dtype=np.int64)
    done = np.zeros(n, dtype=np.bool_)
    out[goal] = 0.0
    cell[0], nxt[0], head[0] = goal, -1, 0
    used, pending, k = 1, 1, 0
    while pending > 0:
        b = k % B
        while head[b] >= 0:
            e = head[b]
            head[b] = nxt[e]
            pending -= 1
            u = cell[e]
            if done[u] or int(out[u]) != k:
                continue  # settled already, or a stale entry (its cell moved to a lower bucket)
            done[u] = True
            step = out[u] + enter[u]
            for j in range(4):
                v = table[u, j]
                if v < n and not done[v] and step < out[v]:
                    out[v] = step
                    if used == cap:  # entries are never reused: grow (rare: lowered labels)
                        nxt = np.concatenate((nxt, np.empty(cap, dtype=np.int64)))
                        cell = np.concatenate((cell, np.empty(cap, dtype=np.int64)))
                        cap *= 2
                    bv = int(step) % B
                    cell[used], nxt[used], head[bv] = v, head[bv], used
                    used += 1
                    pending += 1
        k += 1
    return True


@njit(cache=True)
def padded_successors(enter_p, togo_p, Wp, goal_p, succ) -> None:
    """Static successor of every cell of a padded map (flat, row length ``Wp``) towards one goal: the
    4-neighbour with the least ``enter_p + togo_p`` (float32 sums; ties up, down, left, right; a
    neighbour off the array counts as inf), itself where none is finite and at the goal ``goal_p``.
    ``envs.guidance.MapCosts.padded_fields``' numpy arithmetic, one goal at a time."""
    n = enter_p.shape[0]
    w = np.full(n + 2 * Wp, np.inf, dtype=np.float32)  # inf beyond both ends: no bounds checks below
    for i in range(n):
        w[Wp + i] = enter_p[i] + togo_p[i]
    for i in range(n):
        k = Wp + i
        best = w[k - Wp]
        arg = i - Wp
        if w[k + Wp] < best:
            best, arg = w[k + Wp], i + Wp
        if w[k - 1] < best:
            best, arg = w[k - 1], i - 1
        if w[k + 1] < best:
            best, arg = w[k + 1], i + 1
        succ[i] = arg if best < np.inf else i
    succ[goal_p] = goal_p


@njit(cache=True)
def padded_goal_fields(table, enter, goals, W, pad, enter_p, togo, succ) -> None:
    """For each goal: its static cost-to-go (:func:`dijkstra_to`; on maps of ~1000 cells the heap beats
    the buckets, whose set-up dominates) as float32 over the map padded by ``pad`` cells of inf
    (``togo[i]``, flat, row length ``W + 2 pad``) and its :func:`padded_successors` (``succ[i]``):
    ``MapCosts.padded_fields``."""
    n = enter.shape[0]
    Wp = W + 2 * pad
    f = np.empty(n)
    hf, hu = np.empty(n + 1), np.empty(n + 1, dtype=np.int64)  # an indexed heap: one entry per cell
    for i in range(goals.shape[0]):
        g = goals[i]
        dijkstra_to(table, enter, g, f, hf, hf, hu)
        t = togo[i]
        for c in range(t.shape[0]):
            t[c] = np.inf
        H = n // W
        for x in range(H):
            o = (x + pad) * Wp + pad
            for y in range(W):
                t[o + y] = f[x * W + y]
        padded_successors(enter_p, t, Wp, (g // W + pad) * Wp + g % W + pad, succ[i])


# ----------------------------------------------------------------------------- the per-step planner
@njit(cache=True)
def count_sightings(dyn, N, pos, cell, active, all_active, see, stamp) -> None:
    """Dynamic counts: every other active agent within Chebyshev distance ``see`` of agent i adds 1.0
    to its cell in i's counts (``dyn``: float32 [A * N], padded-map cells ``cell``), once per cell
    however many agents stand on it. ``stamp``: int64 [N] work array (any content)."""
    A = cell.shape[0]
    for c in range(N):
        stamp[c] = -1
    for i in range(A):
        if not all_active and not active[i]:
            continue
        xi, yi = pos[i, 0], pos[i, 1]
        for j in range(A):
            if j == i or (not all_active and not active[j]):
                continue
            if abs(pos[j, 0] - xi) <= see and abs(pos[j, 1] - yi) <= see and stamp[cell[j]] != i:
                stamp[cell[j]] = i
                dyn[i * N + cell[j]] += np.float32(1.0)


@njit(cache=True)
def _jacobi(V, c, Wp, n, Q, tol) -> bool:
    """One Bellman-Ford step over ``n`` flat cells, ``V = min(V, W shifted by +-1 and +-Q)`` with
    ``W = c + V`` from before the step (``envs.guidance._relax``); True if a value dropped by more
    than ``tol``. ``Wp``: work array of ``n + 2Q`` floats whose first and last ``Q`` are inf (a
    neighbour off the array), so that the loop has no branches and vectorises."""
    w = Wp[Q : Q + n]
    for i in range(n):
        w[i] = c[i] + V[i]
    up, down, left, right = Wp[0:n], Wp[2 * Q : 2 * Q + n], Wp[Q - 1 : Q - 1 + n], Wp[Q + 1 : Q + 1 + n]
    dropped = 0
    for i in range(n):
        old = V[i]
        m = old
        x = right[i]
        m = x if x < m else m
        x = left[i]
        m = x if x < m else m
        x = down[i]
        m = x if x < m else m
        x = up[i]
        m = x if x < m else m
        V[i] = m
        dropped |= m < old - tol
    return dropped != 0


@njit(cache=True)
def _solve_windows(
    cell, goal_p, dyn, togo, enter_p, N, Wp, R, Q, tol, compact_after, plan_win, V, Wout, cost
):
    """``envs.guidance.PathPlanner._solve``'s values, the same float32 arithmetic step for step: gather
    every agent's patch (entry costs plus counts inside the window, the exit ring's static values, the
    goal), then Bellman-Ford with the steps and stops of ``_bellman`` over the patches laid end to end
    (separators included: they take part in its checks). Writes the values ``V`` and ``c + V`` into
    ``Wout`` (float32 [A, Q*Q] each) and each agent's value at its cell into ``cost``."""
    A = cell.shape[0]
    QQ = Q * Q
    n = A * QQ
    P = Q - 1  # window and exit ring; row and column P are separators
    p = R + 1
    inf = np.float32(np.inf)
    c = np.empty(n, dtype=np.float32)
    v = V.reshape(-1)
    for a in range(A):
        o = a * QQ
        ca = cell[a]
        for i in range(P):
            row = ca + (i - p) * Wp - p
            k0 = o + i * Q
            ring_row = i == 0 or i == P - 1
            for j in range(P):
                loc = row + j
                e = enter_p[loc]
                if ring_row or j == 0 or j == P - 1:  # the exit ring: static values, no counts
                    c[k0 + j] = e
                    v[k0 + j] = togo[a * N + loc]
                else:
                    c[k0 + j] = e + dyn[a * N + loc]
                    v[k0 + j] = inf
            c[k0 + P] = inf
            v[k0 + P] = inf
        for j in range(Q):
            c[o + P * Q + j] = inf
            v[o + P * Q + j] = inf
        g = plan_win[goal_p[a] - ca + N]
        if g >= 0:  # the goal, inside the window, ends the path
            v[o + g] = 0.0
    Wp_ = np.full(n + 2 * Q, np.inf, dtype=np.float32)
    for _ in range(compact_after):
        _jacobi(v, c, Wp_, n, Q, tol)
    prev = v.copy()
    _jacobi(v, c, Wp_, n, Q, tol)
    busy = np.empty(A, dtype=np.int64)
    B = 0
    for a in range(A):
        for k in range(a * QQ, (a + 1) * QQ):
            if v[k] < prev[k] - tol:
                busy[B] = a
                B += 1
                break
    if B > 0:  # the patches still changing, laid end to end, until a checked step drops nothing
        m = B * QQ
        sv = np.empty(m, dtype=np.float32)
        sc = np.empty(m, dtype=np.float32)
        for b in range(B):
            o = busy[b] * QQ
            for q in range(QQ):
                sv[b * QQ + q] = v[o + q]
                sc[b * QQ + q] = c[o + q]
        Wp_[Q + m : 2 * Q + m] = np.inf  # the end of the shorter array
        it = 0
        while True:
            dropped = _jacobi(sv, sc, Wp_, m, Q, tol)
            it += 1
            if it % 2 == 0 and not dropped:
                break
        for b in range(B):
            o = busy[b] * QQ
            for q in range(QQ):
                v[o + q] = sv[b * QQ + q]
    w = Wout.reshape(-1)
    for k in range(n):
        w[k] = c[k] + v[k]
    centre = p * Q + p
    for a in range(A):
        cost[a] = v[a * QQ + centre]


@njit(cache=True)
def plan_step(
    pos, goal_xy, pad, active, solve, has_dyn, see, stamp, dyn, togo, enter_p, N, Wp, R, Q,
    tol, compact_after, plan_win, patch_of, is_ring, fresh, solved_cell, solved_goal, V, Wsolved, base, succ, win,
    mapcell, r, mask,
):  # fmt: skip
    """One step of ``envs.guidance.PathPlanner.update`` after the goal fields, compiled: the counts
    (:func:`count_sightings`), the window solve on solve steps (:func:`_solve_windows`), each agent's
    entry (its last solve's window, or the static field after a goal change, outside that window and
    with static costs) and the read-out as ``PathPlanner._trace`` does it, with the successors of
    layer 0 computed where the path passes instead of tabled. Draws into ``mask`` ([A, (2r+1)^2],
    False on entry); returns (path cells int64 [A, n], -1 after each path's end; sub-goals: the second
    cell, or the first where the path has one; costs float64 [A])."""
    A = pos.shape[0]
    cell = np.empty(A, dtype=np.int64)
    goal_p = np.empty(A, dtype=np.int64)
    all_active = True
    for a in range(A):
        cell[a] = (pos[a, 0] + pad) * Wp + pos[a, 1] + pad
        goal_p[a] = (goal_xy[a, 0] + pad) * Wp + goal_xy[a, 1] + pad
        if not active[a]:
            all_active = False
    if has_dyn:
        count_sightings(dyn, N, pos, cell, active, all_active, see, stamp)
    cost = np.empty(A)
    start = np.empty(A, dtype=np.int64)
    if solve:
        _solve_windows(
            cell, goal_p, dyn, togo, enter_p, N, Wp, R, Q, tol, compact_after, plan_win, V, Wsolved, cost
        )
        for a in range(A):
            solved_cell[a] = cell[a]
            solved_goal[a] = plan_win[goal_p[a] - cell[a] + N]
            fresh[a] = False
            start[a] = base[a] + cell[a]
    else:
        for a in range(A):
            cost[a] = togo[a * N + cell[a]]
            start[a] = base[a] + cell[a] + 2 * N  # layer 1: the static field
            if has_dyn and not fresh[a]:
                q = plan_win[cell[a] - solved_cell[a] + N]
                if q >= 0:  # inside the last solve's window: its values
                    cost[a] = V[a, q]
                    start[a] = base[a] + cell[a]
    Wflat = Wsolved.reshape(-1)
    twoN = 2 * N
    d = (2 * r + 1) * (2 * r + 1)
    L = d + 1
    first = min(3 * r + 3, L - 1)
    every = 4
    T = np.empty((A, L), dtype=np.int64)
    lengths = np.empty(A, dtype=np.int64)
    n_all = 1
    for a in range(A):
        origin = N - cell[a] - base[a]
        ba, sc, sg, o = base[a], solved_cell[a], solved_goal[a], a * Q * Q
        T[a, 0] = start[a]
        gone = False
        n = L
        for k in range(1, L):
            # the next entry, as PathPlanner's successor tables hold it: layer 1 (e - base >= 2N)
            # from the static table; layer 0 from the last solve's c + V: an inner cell steps to the
            # neighbour with the least (ties up, down, left, right; it stays at the goal and where
            # none is finite), the exit ring on to layer 1 (it stays where the static path stops)
            e = T[a, k - 1]
            rel = e - ba
            if rel >= twoN:
                e = succ[e]
            else:
                q = patch_of[rel - sc + N]
                if is_ring[q]:
                    s = succ[e + twoN]
                    if s != e + twoN:
                        e = s
                elif q != sg:
                    x = o + q
                    best = Wflat[x - Q]
                    step = -Wp
                    if Wflat[x + Q] < best:
                        best, step = Wflat[x + Q], Wp
                    if Wflat[x - 1] < best:
                        best, step = Wflat[x - 1], -1
                    if Wflat[x + 1] < best:
                        best, step = Wflat[x + 1], 1
                    if best < np.inf:
                        e += step
            T[a, k] = e
            if k >= first and (k - first) % every == 0:  # the numpy loop's checks, so its length
                for j in range(k - every + 1, k + 1):
                    if win[T[a, j] + origin] < 0:
                        gone = True
                if gone or T[a, k] == T[a, k - 1]:
                    n = k + 1
                    break
        if n > n_all:
            n_all = n
        length = 1
        mask[a, win[T[a, 0] + origin]] = True
        if all_active or active[a]:
            for k in range(1, n):
                e = T[a, k]
                if e == T[a, k - 1]:
                    break  # a fixed point: the goal, or no path on
                length += 1
                w = win[e + origin]
                if w < 0:
                    break  # the first cell outside the drawing window ends the path
                mask[a, w] = True
        else:
            cost[a] = np.inf
        lengths[a] = length
    out = np.full((A, n_all), -1, dtype=np.int64)
    nxt = np.empty(A, dtype=np.int64)
    for a in range(A):
        for k in range(lengths[a]):
            out[a, k] = mapcell[T[a, k] - base[a]]
        nxt[a] = out[a, 1] if lengths[a] > 1 else out[a, 0]
    return out, nxt, cost
