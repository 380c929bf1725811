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

from agents.planners.compiled import HAVE_NUMBA, dijkstra_buckets, dijkstra_to, follower_plan_all, warm_up
from envs.config import PlannerCosts
from envs.guidance import Plan, check_costs, neighbour_table, static_costs

FIELD_CACHE_ENTRIES = 1 << 25
"""Goal-field entries (8 bytes each: 256 MiB) kept per map, least recently used goals dropped first."""


def static_costs_compiled(free: np.ndarray, table: np.ndarray | None = None) -> np.ndarray:
    """:func:`envs.guidance.static_costs` (float64 [H, W], identical values) from compiled BFS."""
    return static_costs(free, compiled=True, table=table)


class _CompiledMap:
    """Per map and cost kind: neighbours, static entry costs, goal fields (cached) and work arrays."""

    def __init__(self, free: np.ndarray, costs: str) -> None:
        self.free = np.asarray(free, dtype=bool)
        self.shape = self.free.shape
        self.table = neighbour_table(self.free)
        self.enter = np.ones(self.shape) if costs == "unit" else static_costs_compiled(self.free, self.table)
        self.enter_flat = np.ascontiguousarray(self.enter.ravel())
        N = self.free.size
        # goal fields: rows of one pool (the kernel reads each agent's row by index), cached per goal
        self.pool = np.empty((0, N))
        self._slot_of: OrderedDict[int, int] = OrderedDict()  # goal -> pool row, least recent first
        self._spare: list[int] = []
        self._max_fields = max(64, FIELD_CACHE_ENTRIES // max(N, 1))
        # work arrays of the searches, reused (stamps mark the entries of the current search)
        self.g = np.zeros(N)
        self.parent = np.zeros(N, dtype=np.int64)
        self.stamp = np.zeros(N, dtype=np.int64)
        self.mark = np.zeros(1, dtype=np.int64)
        self.flat = np.zeros(2 * N + 2, dtype=np.int64)
        self._heap = self._new_heap(4 * N + 16)

    @staticmethod
    def _new_heap(capacity: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.empty(capacity), np.empty(capacity), np.empty(capacity, dtype=np.int64)

    def field_slot(self, goal: int, keep: set[int] = frozenset()) -> int:  # type: ignore[assignment]
        """The pool row holding ``goal``'s static cost-to-go (float64 [H*W], inf where unreachable),
        computed on a miss. A full pool drops its least recently used goal that is not in ``keep``
        (the goals agents plan for now), or grows."""
        slot = self._slot_of.get(goal)
        if slot is not None:
            self._slot_of.move_to_end(goal)
            return slot
        if not 0 <= goal < self.free.size or not self.free.ravel()[goal]:
            raise ValueError(f"goal cell {divmod(goal, self.shape[1])} is an obstacle or off the map")
        if not self._spare and len(self._slot_of) >= self._max_fields:
            old = next((g for g in self._slot_of if g not in keep), None)
            if old is not None:
                self._spare.append(self._slot_of.pop(old))
        if not self._spare:
            self.reserve(max(8, 2 * len(self.pool)))  # doubling: amortised copies
        slot = self._spare.pop()
        f = self.pool[slot]
        if not dijkstra_buckets(self.table, self.enter_flat, goal, f):  # an entry cost below 1
            dijkstra_to(self.table, self.enter_flat, goal, f, *self._heap)
        self._slot_of[goal] = slot
        return slot

    def reserve(self, rows: int) -> None:
        """Make the goal-field pool at least ``rows`` rows long."""
        K = len(self.pool)
        if rows > K:
            grown = np.empty((rows, self.free.size))
            grown[:K] = self.pool
            self.pool = grown
            self._spare += list(range(rows - 1, K - 1, -1))

    def field(self, goal: int) -> np.ndarray:
        """``goal``'s static cost-to-go (a copy of its pool row)."""
        slot = self.field_slot(goal)  # first: it may grow (replace) the pool
        return self.pool[slot].copy()

    def plan_all(self, starts, goals, active, cost, per_agent, slots, r, mask):
        """Every agent's path (exactly ``envs.guidance._astar``'s), drawn into ``mask`` as
        ``AStarPlanner`` draws it; returns (int64 [A, L] paths padded with -1, their costs: inf where a
        path ends short of the goal). ``cost``: [A, H*W] per agent if ``per_agent``, else [1, H*W]."""
        A = len(starts)
        offsets = np.zeros(A, dtype=np.int64)
        lengths = np.zeros(A, dtype=np.int64)
        out_cost = np.full(A, np.inf)
        i = 0
        while True:
            i, status = follower_plan_all(
                self.table,
                starts,
                goals,
                active,
                cost,
                per_agent,
                self.pool,
                slots,
                self.g,
                self.parent,
                self.stamp,
                self.mark,
                *self._heap,
                self.flat,
                offsets,
                lengths,
                self.shape[1],
                r,
                mask,
                out_cost,
                i,
            )
            if status == 0:
                break
            if status == 1:
                self.flat = np.concatenate((self.flat, np.zeros_like(self.flat)))
            else:
                self._heap = self._new_heap(2 * len(self._heap[0]))
        cols = np.arange(int(lengths.max()))
        take = np.minimum(offsets[:, None] + cols, len(self.flat) - 1)
        return np.where(cols < lengths[:, None], self.flat[take], -1), out_cost


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
        self._slot = np.zeros(A, dtype=np.int64)  # each agent's goal-field row of the map's pool
        m.reserve(min(max(2 * A, 64), m._max_fields))  # one allocation now rather than doublings later
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
        self._goal[changed] = goal[changed]
        keep = set(goal.tolist())
        for i in changed.tolist():
            self._slot[i] = m.field_slot(int(goal[i]), keep)
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
        per_agent = self._cost is not None
        cost_rows = self._cost if per_agent else m.enter_flat[None, :]
        table, cost = m.plan_all(cells, goal, active, cost_rows, per_agent, self._slot, r, mask)
        L = table.shape[1]
        nxt = table[:, 1] if L > 1 else table[:, 0]
        return Plan(mask, table, np.where(nxt >= 0, nxt, table[:, 0]), cost)


def make_follower_planner(radius: int, costs: PlannerCosts, reset_dynamic: bool):
    """FollowerLite's planner: :class:`CompiledAStarPlanner` with numba, else ``AStarPlanner`` (same plans)."""
    if HAVE_NUMBA:
        return CompiledAStarPlanner(radius, costs, reset_dynamic=reset_dynamic)
    from envs.guidance import AStarPlanner

    return AStarPlanner(radius, costs, reset_dynamic=reset_dynamic)
