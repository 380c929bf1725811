"""Compiled inner loops of the planners (numba, the optional ``fast`` extra), each with the pure
Python/scipy code it replaces as the fallback and the reference its tests compare against.

Each kernel does the same arithmetic in the same order as the code it replaces (IEEE float64, no
``fastmath``), so results are identical, not merely close: see ``tests/test_planners_speed.py``.
Without numba (``HAVE_NUMBA`` False) the planners take their pure paths, slower on large maps
(issue 11: 256 agents on 256x256 maps).
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
