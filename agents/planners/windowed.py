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

import numpy as np

from agents.planners.base import WorldState, action_towards
from agents.planners.grid import GridGraph
from agents.planners.pibt import PIBT, pibt_step


def windowed_path(
    graph: GridGraph,
    start: int,
    goal: int,
    dist: list[int],
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


class WindowedPIBT(PIBT):
    """Windowed prioritised planning as guidance for PIBT, centralised (kind ``wpibt``)."""

    def __init__(self, window: int = 16, pull: bool = True, stuck_steps: int = 16) -> None:
        super().__init__(pull=pull, stuck_steps=stuck_steps)
        if window < 1:
            raise ValueError(f"window={window} must be >= 1")
        self.window = window

    def act(self, state: WorldState) -> np.ndarray:
        assert self.graph is not None, "call reset() before act()"
        graph = self.graph
        pos = graph.cells(state.positions)
        goals = graph.cells(state.goals)
        prio = self.update_priorities(pos, goals)
        active = state.active.tolist()
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
        nxt = pibt_step(graph, pos, goals, prio, self.rng, active, self.pull, preferred)
        return np.array([action_towards(graph.xy(p), graph.xy(n)) for p, n in zip(pos, nxt)], dtype=np.int64)
