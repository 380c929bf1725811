"""Vectorised versions of pogema 1.4.0's three collision systems.

pogema resolves moves with Python loops over agents; these functions reach the same result with numpy
operations over all agents (tested against pogema step by step in ``tests/test_envs_pogema_parity.py``).
Cells are flat indices into the bordered grid (``x * W + y``); ``cur``/``tgt`` hold each agent's cell
and the cell its action points to, ``active`` marks agents that still take part (finished agents in
``finish`` mode are off the grid). Each function returns ``moved`` (bool [A]): the agent ends the step on
``tgt``, otherwise it stays on ``cur``.

Semantics (pogema's, derived from its code):

- ``block_both``: a move succeeds iff the target is free of obstacles, is nobody's current cell (agents
  never follow each other) and no other agent targets it.
- ``priority``: agents move one after the other in index order, each into its target if that cell is
  free of obstacles and of agents at that moment.
- ``soft``: agents may follow each other and rotate in cycles; two agents swapping cells both stay;
  of several agents entering one cell the lowest index wins; an agent whose target holds an agent that
  stays, stays too (and so on down the chain).
"""

from __future__ import annotations

import numpy as np

SYSTEMS = ("block_both", "priority", "soft")


def _distinct(cells: np.ndarray) -> bool:
    # The common case (no two agents aim at one cell) costs one set() instead of a sort + scatter.
    return len(set(cells.tolist())) == len(cells)


def _first_of_equal(cells: np.ndarray) -> np.ndarray:
    """bool [n]: entry i is the first (lowest position) among entries holding the same cell."""
    if _distinct(cells):
        return np.ones(len(cells), dtype=bool)
    order = np.argsort(cells, kind="stable")
    s = cells[order]
    first_sorted = np.ones(len(cells), dtype=bool)
    first_sorted[1:] = s[1:] != s[:-1]
    out = np.empty(len(cells), dtype=bool)
    out[order] = first_sorted
    return out


def _shared(cells: np.ndarray) -> np.ndarray:
    """bool [n]: another entry holds the same cell."""
    if _distinct(cells):
        return np.zeros(len(cells), dtype=bool)
    order = np.argsort(cells, kind="stable")
    s = cells[order]
    eq = s[1:] == s[:-1]
    dup = np.zeros(len(cells), dtype=bool)
    dup[1:] |= eq
    dup[:-1] |= eq
    out = np.empty(len(cells), dtype=bool)
    out[order] = dup
    return out


class CollisionResolver:
    """Holds two scratch maps over the grid (kept at -1 between calls) so that "who stands on cell c"
    is an O(1) lookup instead of an O(A^2) comparison."""

    def __init__(self, system: str, num_cells: int):
        if system not in SYSTEMS:
            raise ValueError(f"unknown collision_system {system!r}; allowed: {', '.join(SYSTEMS)}")
        self.system = system
        self._owner = np.full(num_cells, -1, dtype=np.int64)
        self._holder = np.full(num_cells, -1, dtype=np.int64)
        self._resolve = {"block_both": self._block_both, "priority": self._priority, "soft": self._soft}[
            system
        ]
        self._ranks: dict[int, np.ndarray] = {}

    def __call__(
        self, cur: np.ndarray, tgt: np.ndarray, active: np.ndarray | None, obstacle: np.ndarray
    ) -> np.ndarray:
        """``active=None`` means every agent takes part (saves the gathers on the common path)."""
        if active is None:
            return self._run(cur, tgt, obstacle)
        moved = np.zeros(len(cur), dtype=bool)
        ids = np.flatnonzero(active)
        if ids.size:
            moved[ids] = self._run(cur[ids], tgt[ids], obstacle)
        return moved

    def _rank(self, n: int) -> np.ndarray:
        r = self._ranks.get(n)
        if r is None:
            r = self._ranks[n] = np.arange(n)
            r.setflags(write=False)
        return r

    def _run(self, c: np.ndarray, t: np.ndarray, obstacle: np.ndarray) -> np.ndarray:
        self._owner[c] = self._rank(len(c))  # c, t: (n,) each, in agent-index order
        try:
            return self._resolve(c, t, obstacle)
        finally:
            self._owner[c] = -1

    def _block_both(self, c: np.ndarray, t: np.ndarray, obstacle: np.ndarray) -> np.ndarray:
        # A waiting agent targets its own cell, which is occupied, so it never "moves".
        return ~obstacle[t] & (self._owner[t] < 0) & ~_shared(t)

    def _priority(self, c: np.ndarray, t: np.ndarray, obstacle: np.ndarray) -> np.ndarray:
        n = len(c)
        rank = self._rank(n)
        # Target held by a later agent that has not moved yet at this agent's turn.
        cand = (t != c) & ~obstacle[t] & ~(self._owner[t] > rank)
        moved = cand
        # Decision i depends only on decisions j < i (where they ended up), so this Jacobi iteration
        # settles agent i by round i at the latest; a round without change is the unique fixed point.
        for _ in range(n + 1):
            final = np.where(moved, t, c)
            first = _first_of_equal(final)
            self._holder[final[first]] = rank[first]  # lowest agent holding each end cell
            h = self._holder[t]
            self._holder[final[first]] = -1
            new = cand & ~((h >= 0) & (h < rank))
            if np.array_equal(new, moved):
                break
            moved = new
        return moved

    def _soft(self, c: np.ndarray, t: np.ndarray, obstacle: np.ndarray) -> np.ndarray:
        n = len(c)
        stay = (t == c) | obstacle[t]
        j = self._owner[t]  # who stands on my target now
        has = (j >= 0) & ~stay
        swap = np.zeros(n, dtype=bool)
        swap[has] = t[j[has]] == c[has]
        stay = stay | swap
        # Staying only spreads (an agent that stays blocks whoever enters its cell), so iterate to the
        # smallest consistent set of stayers.
        for _ in range(n + 1):
            movers = np.flatnonzero(~stay)
            lose = np.zeros(n, dtype=bool)
            lose[movers] = ~_first_of_equal(t[movers])  # lowest index wins a contested cell
            stayers = c[stay]
            self._holder[stayers] = 1
            blocked = (self._holder[t] == 1) & ~stay
            self._holder[stayers] = -1
            new = stay | lose | blocked
            if np.array_equal(new, stay):
                break
            stay = new
        return ~stay
