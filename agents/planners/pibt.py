"""PIBT: Priority Inheritance with Backtracking (Okumura et al., IJCAI 2019 / AIJ 2022), centralised.

One call plans one synchronous step for all agents. Agents decide in priority order; an agent picks the
free neighbouring cell (or its own) closest to its goal, and if another undecided agent stands there,
that agent *inherits* the priority and must move away first (recursively); if it cannot, the parent
backtracks to its next candidate. The result never has two agents in one cell (vertex conflict) nor two
agents exchanging cells (swap conflict); followers and rotations of 3+ agents are allowed, which pogema's
``soft`` collision system executes as planned.

Priorities grow by one per step while an agent is away from its goal and drop back to a unique
fractional value when it reaches it (the paper's rule), so an agent that waits long enough gets its way.
Lifelong MAPF (``on_target='restart'``) is the same loop with goals that change; classic MAPF
(``nothing``) keeps arrived agents on the grid, where they can be pushed away and come back.
"""

from __future__ import annotations

import random

import numpy as np

from agents.planners.base import WorldState, action_towards
from agents.planners.grid import GridGraph


def pibt_step(
    graph: GridGraph,
    positions: list[int],
    goals: list[int],
    priorities: list[float],
    rng: random.Random,
    active: list[bool] | None = None,
) -> list[int]:
    """Next cell of every agent (flat indices). Inactive agents keep their cell and block nothing."""
    A = len(positions)
    active = [True] * A if active is None else active
    dists = [graph.distances_from(g) for g in goals]
    here = {positions[i]: i for i in range(A) if active[i]}  # cell -> agent standing there now
    nxt = [-1] * A
    taken: dict[int, int] = {}  # cell -> agent that will stand there next step

    def plan(i: int, parent: int) -> bool:
        cands = [positions[i], *graph.neighbors[positions[i]]]
        rng.shuffle(cands)  # random tie-break among equally close cells (sort below is stable)
        dist = dists[i]
        cands.sort(key=dist.__getitem__)
        for c in cands:
            if c in taken or (parent >= 0 and c == positions[parent]):
                continue  # reserved, or the parent's cell: moving there would swap with it
            taken[c] = i
            nxt[i] = c
            j = here.get(c, -1)
            if j >= 0 and j != i and nxt[j] < 0 and not plan(j, i):
                continue  # j could not make room; j now stays on c and owns it in ``taken``
            return True
        # Nothing works: stay. Only a pushed agent gets here, and its parent then tries elsewhere.
        nxt[i] = positions[i]
        taken[positions[i]] = i
        return False

    for i in sorted(range(A), key=lambda k: -priorities[k]):
        if not active[i]:
            nxt[i] = positions[i]
        elif nxt[i] < 0:
            plan(i, -1)
    return nxt


class PIBT:
    """Centralised PIBT as an evaluated algorithm (lifelong and classic)."""

    def __init__(self) -> None:
        self.graph: GridGraph | None = None
        self._obstacles_key: bytes = b""
        self.rng = random.Random(0)
        self.base: list[float] = []
        self.priorities: list[float] = []
        self.prev_goals: list[int] = []

    def reset(self, state: WorldState, seed: int) -> None:
        key = state.obstacles.tobytes() + bytes(str(state.obstacles.shape), "ascii")
        if self.graph is None or key != self._obstacles_key:  # BFS caches survive episodes on one map
            self.graph = GridGraph(state.obstacles)
            self._obstacles_key = key
        self.rng = random.Random(seed)
        A = state.num_agents
        # unique fractional base priorities in [0, 1): ties between agents never need a tie-break
        order = list(range(A))
        self.rng.shuffle(order)
        self.base = [order[i] / A for i in range(A)]
        self.priorities = list(self.base)
        self.prev_goals = self.graph.cells(state.goals)

    def act(self, state: WorldState) -> np.ndarray:
        assert self.graph is not None, "call reset() before act()"
        pos = self.graph.cells(state.positions)
        goals = self.graph.cells(state.goals)
        for i in range(len(pos)):
            # reached its goal (now or last step: in lifelong mode pogema has already set a new goal)
            if pos[i] == goals[i] or goals[i] != self.prev_goals[i]:
                self.priorities[i] = self.base[i]
            else:
                self.priorities[i] += 1.0
        self.prev_goals = goals
        active = state.active.tolist()
        nxt = pibt_step(self.graph, pos, goals, self.priorities, self.rng, active)
        g = self.graph
        return np.array([action_towards(g.xy(p), g.xy(n)) for p, n in zip(pos, nxt)], dtype=np.int64)
