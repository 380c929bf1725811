"""Windowed PIBT: a stronger centralised planner for lifelong MAPF (issue 11).

Each step, two stages:

1. **Windowed prioritised planning** (WHCA*, Silver, "Cooperative Pathfinding", AIIDE 2005): in priority
   order, each agent finds the cheapest space-time path over the next ``window`` steps (a step or a wait
   costs 1; a path ends at the goal or, at the window's end, pays the remaining distance), avoiding the
   cells (vertex conflicts) and the edges in the opposite direction (swaps) that higher-priority agents
   reserved. It sees oncoming traffic: an agent waits at a junction instead of entering a corridor
   another agent is about to come through.
2. **PIBT** executes one step, each agent preferring the next cell of its windowed path, then cells by
   distance to its goal. PIBT keeps the guarantees the windowed plans lack (no agent is left without a
   move, pushes and dead-end pulls), so the step is always conflict-free.

Priorities, dead-end pulls and escape mode are those of :class:`agents.planners.pibt.PIBT`.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np

from agents.planners.base import WorldState, action_towards
from agents.planners.grid import GridGraph
from agents.planners.pibt import PIBT, pibt_step


def windowed_path(
    graph: GridGraph,
    start: int,
    goal: int,
    dist: Sequence[int],
    window: int,
    vertex: set[tuple[int, int]],
    edges: set[tuple[int, int, int]],
    max_expansions: int = 2000,
) -> list[int]:
    """Cells at t = 1..window (shorter if the goal is reached) of the cheapest space-time path that avoids
    the reserved ``vertex`` ``(cell, t)`` and ``edges`` ``(from, to, t)`` (moving ``from -> to`` into step
    t); ``[]`` if every first move is reserved or the budget runs out."""
    # every step (move or wait) costs 1, so a state's cost is its time t: the first visit is the best,
    # and f = t + distance left orders the search (ties to the later state: it dives along the path)
    start_state = (start, 0)
    parent: dict[tuple[int, int], tuple[int, int] | None] = {start_state: None}
    heap = [(dist[start], 0, start)]  # (f, -t, cell)
    nbrs = graph.neighbors
    pop, push = heapq.heappop, heapq.heappush
    expansions = 0
    found: tuple[int, int] | None = None
    while heap and expansions < max_expansions:
        _, neg_t, u = pop(heap)
        t = -neg_t
        if u == goal or t == window:
            found = (u, t)  # f is exact here: the cheapest end
            break
        expansions += 1
        t1 = t + 1
        for v in (u, *nbrs[u]):
            state = (v, t1)
            if state in parent or state in vertex or (v, u, t1) in edges:
                continue  # seen, or a higher-priority agent stands there or comes the other way
            parent[state] = (u, t)
            push(heap, (t1 + dist[v], -t1, v))
    if found is None:
        return []
    cells = []
    node: tuple[int, int] | None = found
    while node is not None and node != start_state:
        cells.append(node[0])
        node = parent[node]
    return cells[::-1]


def windowed_path_fast(
    nbrs: list[list[int]],
    n_cells: int,
    start: int,
    goal: int,
    dist,
    window: int,
    vertex: set[int],
    edges: set[int],
    max_expansions: int = 2000,
) -> list[int]:
    """:func:`windowed_path` with states, reservations and heap entries encoded as ints (identical result).

    ``vertex`` holds ``t * n_cells + cell``, ``edges`` ``(t * n_cells + from) * n_cells + to``. First a
    *dive*: while the current cell has an unreserved neighbour one step closer to the goal, A* pops the
    smallest such cell next (its f equals the start's, every other entry is worse or shallower), so the
    dive follows exactly A*'s choices; if a dive step finds no such neighbour, the full search runs.
    """
    N = n_cells
    if window >= max_expansions:  # the budget could stop the search before the dive ends
        return _windowed_search(nbrs, N, start, goal, dist, window, vertex, edges, max_expansions)
    u, du, t = start, dist[start], 0
    cells: list[int] = []
    while u != goal and t < window:
        t += 1
        best = -1
        base = t * N
        for v in nbrs[u]:
            if dist[v] == du - 1 and (best < 0 or v < best) and base + v not in vertex:
                if (base + v) * N + u not in edges:
                    best = v
        if best < 0:
            return _windowed_search(nbrs, N, start, goal, dist, window, vertex, edges, max_expansions)
        cells.append(best)
        u, du = best, du - 1
    return cells


def _windowed_search(nbrs, N, start, goal, dist, window, vertex, edges, max_expansions) -> list[int]:
    """The search of :func:`windowed_path` on int states ``t * N + cell`` and int heap keys ordered as its
    tuples ``(f, -t, cell)``: ``(f * T + (window - t)) * N + cell`` with ``T = window + 1``."""
    T = window + 1
    parent: dict[int, int] = {start: -1}
    heap = [((dist[start] * T + window) * N + start)]
    pop, push = heapq.heappop, heapq.heappush
    expansions = 0
    found = -1
    while heap and expansions < max_expansions:
        key = pop(heap)
        u = key % N
        t = window - (key // N) % T
        if u == goal or t == window:
            found = t * N + u
            break
        expansions += 1
        t1 = t + 1
        base = t1 * N
        back = window - t1
        for v in (u, *nbrs[u]):
            state = base + v
            if state in parent or state in vertex or state * N + u in edges:
                continue
            parent[state] = t * N + u
            push(heap, ((t1 + dist[v]) * T + back) * N + v)
    if found < 0:
        return []
    out = []
    node = found
    while node != start:  # the start state is t = 0, i.e. the cell index itself
        out.append(node % N)
        node = parent[node]
    return out[::-1]


class WindowedPIBT(PIBT):
    """Windowed prioritised planning as guidance for PIBT, centralised (kind ``wpibt``).

    The windowed stage uses :func:`windowed_path_fast`; :class:`WindowedPIBTReference` runs the same
    policy on :func:`windowed_path` (tuples), the slow reference its tests compare actions with.
    """

    def __init__(self, window: int = 16, pull: bool = True, stuck_steps: int = 16) -> None:
        super().__init__(pull=pull, stuck_steps=stuck_steps)
        if window < 1:
            raise ValueError(f"window={window} must be >= 1")
        self.window = window

    def windowed_plans(
        self, pos: list[int], goals: list[int], prio: list[float], active: list[bool]
    ) -> list[int]:
        """Each agent's first windowed step (-1: none), planned in priority order with reservations."""
        assert self.graph is not None, "call reset() before act()"
        graph = self.graph
        N = graph.height * graph.width
        nbrs = graph.neighbors
        vertex: set[int] = set()
        edges: set[int] = set()
        preferred = [-1] * len(pos)
        for i in sorted(range(len(pos)), key=lambda k: -prio[k]):
            if not active[i]:
                continue
            dist = graph.distances_to(goals[i], pos[i])
            path = windowed_path_fast(nbrs, N, pos[i], goals[i], dist, self.window, vertex, edges)
            prev = pos[i]
            for t, c in enumerate(path, start=1):
                vertex.add(t * N + c)
                edges.add((t * N + prev) * N + c)  # a later agent may not move c -> prev into step t
                prev = c
            if path:
                preferred[i] = path[0]
        return preferred

    def act(self, state: WorldState) -> np.ndarray:
        assert self.graph is not None, "call reset() before act()"
        graph = self.graph
        pos = graph.cells(state.positions)
        goals = graph.cells(state.goals)
        prio = self.update_priorities(pos, goals)
        active = state.active.tolist()
        preferred = self.windowed_plans(pos, goals, prio, active)
        nxt = pibt_step(graph, pos, goals, prio, self.rng, active, self.pull, preferred)
        return np.array([action_towards(graph.xy(p), graph.xy(n)) for p, n in zip(pos, nxt)], dtype=np.int64)


class WindowedPIBTReference(WindowedPIBT):
    """:class:`WindowedPIBT` with the windowed stage as first written (tuples, :func:`windowed_path`):
    the slow reference that the fast one must match action for action."""

    def windowed_plans(
        self, pos: list[int], goals: list[int], prio: list[float], active: list[bool]
    ) -> list[int]:
        assert self.graph is not None, "call reset() before act()"
        graph = self.graph
        vertex: set[tuple[int, int]] = set()
        edges: set[tuple[int, int, int]] = set()
        preferred = [-1] * len(pos)
        for i in sorted(range(len(pos)), key=lambda k: -prio[k]):
            if not active[i]:
                continue
            dist = graph.distances_to(goals[i], pos[i])
            path = windowed_path(graph, pos[i], goals[i], dist, self.window, vertex, edges)
            prev = pos[i]
            for t, c in enumerate(path, start=1):
                vertex.add((c, t))
                edges.add((prev, c, t))  # a later agent may not move c -> prev into step t
                prev = c
            if path:
                preferred[i] = path[0]
        return preferred
