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

Two additions against the deadlocks of issue 11 (our own design, after the swap idea of LaCAM3's PIBT,
Okumura, "Engineering LaCAM*", AAMAS 2024):

- **Dead-end pull.** Agent B stands in a dead-end corridor whose only exit is A's cell, and A wants to
  go in. The paper's PIBT pushes B deeper or gives up; A and B then wait for ever (with 2 agents on a
  5x5 puzzle map, both priorities grow at the same rate, so the order never changes). Here A steps
  back, away from its goal, and B follows into A's cell; repeated, this brings B out to the junction
  where the two can pass. Dead-end corridors are found once per map (bridges of the grid graph).
- **Escape mode.** Jams of 3+ agents that need another priority order (two agents wanting into a dead
  end that a third must leave): an agent stuck for ``stuck_steps`` steps gets a random priority above
  every agent not stuck, redrawn while it stays stuck (:class:`PIBT`).

Measured (16 maps each, 64 agents, lifelong): 01-random 2.59 -> 3.59 goals/step, 02-mazes 1.77 -> 1.86;
5x5 dead-end puzzles with 2/3/4 agents 0.30/0.27/0.22 -> 0.48/0.63/0.73.
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
    pull: bool = True,
    preferred: list[int] | None = None,
    shuffle: bool = True,
) -> list[int]:
    """Next cell of every agent (flat indices). Inactive agents keep their cell and block nothing.

    ``pull`` enables the dead-end swap (see the module docstring); ``False`` is the paper's PIBT.
    ``preferred``: a cell per agent (-1 = none) tried before the others, e.g. from a windowed plan.
    ``shuffle``: break ties between equally close cells at random; ``False`` keeps the order up, down,
    left, right (the first of equals, as the env's planner ``envs.guidance`` draws its path).
    """
    A = len(positions)
    active = [True] * A if active is None else active
    dists = [graph.distances_to(g, p) for g, p in zip(goals, positions)]
    here = {positions[i]: i for i in range(A) if active[i]}  # cell -> agent standing there now
    nxt = [-1] * A
    taken: dict[int, int] = {}  # cell -> agent that will stand there next step

    def pulls(i: int, c: int) -> int:
        """The agent that ``i`` should pull out of a dead end instead of pushing it in, else -1.

        ``i`` wants cell ``c``, where undecided agent ``j`` stands and wants ``i``'s cell, and ``c`` lies
        in a dead-end corridor entered from ``i``'s cell. Pushing ``j`` deeper cannot let both pass;
        ``i`` stepping back with ``j`` following can, once ``i`` reaches a branch.
        """
        j = here.get(c, -1)
        if j < 0 or j == i or nxt[j] >= 0:
            return -1
        u = positions[i]
        if dists[j][u] >= dists[j][c]:
            return -1  # j does not need to come out through i
        return j if graph.dead_end_corridor(u, c) else -1

    def plan(i: int, parent: int) -> bool:
        here_i = positions[i]
        cands = [here_i, *graph.neighbors[here_i]]
        if shuffle:
            rng.shuffle(cands)  # random tie-break among equally close cells (sort below is stable)
        dist = dists[i]
        cands.sort(key=dist.__getitem__)
        if preferred is not None and preferred[i] >= 0 and preferred[i] in cands:
            cands.remove(preferred[i])
            cands.insert(0, preferred[i])
        pulled = -1
        if pull and cands[0] != here_i and cands[0] not in taken:
            pulled = pulls(i, cands[0])
            if pulled >= 0:
                # step away from the goal (least bad cell first) so that the pulled agent can follow
                cands = [c for c in cands[1:] if c != here_i] + [here_i]
        for c in cands:
            if c in taken or (parent >= 0 and c == positions[parent]):
                continue  # reserved, or the parent's cell: moving there would swap with it
            taken[c] = i
            nxt[i] = c
            j = here.get(c, -1)
            if j >= 0 and j != i and nxt[j] < 0 and not plan(j, i):
                continue  # j could not make room; j now stays on c and owns it in ``taken``
            if pulled >= 0 and c != here_i and nxt[pulled] < 0 and here_i not in taken:
                nxt[pulled] = here_i  # the pulled agent follows into the cell i leaves
                taken[here_i] = pulled
            return True
        # Nothing works: stay. Only a pushed agent gets here, and its parent then tries elsewhere.
        nxt[i] = here_i
        taken[here_i] = i
        return False

    for i in sorted(range(A), key=lambda k: -priorities[k]):
        if not active[i]:
            nxt[i] = positions[i]
        elif nxt[i] < 0:
            plan(i, -1)
    return nxt


ESCAPE = 1e6
"""Priority offset of an agent in escape mode: above every agent that is not (see :class:`PIBT`)."""


class PIBT:
    """Centralised PIBT as an evaluated algorithm (lifelong and classic).

    ``pull``: the dead-end swap of :func:`pibt_step`. ``stuck_steps``: an agent that has not come closer
    to its goal for this many steps enters *escape mode*: its priority jumps above every agent not in
    escape mode, with a random order among those that are, redrawn every ``stuck_steps`` steps while it
    stays stuck, until it reaches its goal. Plain PIBT keeps one priority order between agents that all
    wait (their priorities grow at the same rate), so a jam that needs another order never clears;
    random redraws try other orders. 0 turns it off (``pull=False, stuck_steps=0`` is the paper's PIBT).
    ``tie_break``: the order of the unique base priorities, which decides between agents whose goals are
    equally old: ``random`` (drawn per episode) or ``index`` (the lower agent index first: the order the
    env's ``priority_channel`` shows, so that a policy imitating PIBT can see whom it must give way to).
    ``move_ties``: between equally close cells, ``random`` or ``fixed`` (up, down, left, right: the move
    of the env's path channel with ``unit`` costs).
    """

    def __init__(
        self, pull: bool = True, stuck_steps: int = 16, tie_break: str = "random", move_ties: str = "random"
    ) -> None:
        if stuck_steps < 0:
            raise ValueError(f"stuck_steps={stuck_steps} must be >= 0 (0 = off)")
        if tie_break not in ("random", "index"):
            raise ValueError(f"tie_break={tie_break!r}; allowed: random, index")
        if move_ties not in ("random", "fixed"):
            raise ValueError(f"move_ties={move_ties!r}; allowed: random, fixed")
        self.move_ties = move_ties
        self.pull, self.stuck_steps, self.tie_break = pull, stuck_steps, tie_break
        self.graph: GridGraph | None = None
        self._obstacles_key: bytes = b""
        self.rng = random.Random(0)
        self.base: list[float] = []
        self.priorities: list[float] = []
        self.prev_goals: list[int] = []
        self.best: list[int] = []  # closest distance to the current goal so far
        self.stuck: list[int] = []  # steps since ``best`` last improved
        self.boost: list[float] = []

    def reset(self, state: WorldState, seed: int) -> None:
        key = state.obstacles.tobytes() + bytes(str(state.obstacles.shape), "ascii")
        if self.graph is None or key != self._obstacles_key:  # BFS caches survive episodes on one map
            self.graph = GridGraph(state.obstacles)
            self._obstacles_key = key
        self.rng = random.Random(seed)
        A = state.num_agents
        # unique fractional base priorities in [0, 1): ties between agents never need a tie-break
        order = list(range(A - 1, -1, -1))  # index: agent 0 highest
        if self.tie_break == "random":
            order = list(range(A))
            self.rng.shuffle(order)
        self.base = [order[i] / A for i in range(A)]
        self.priorities = list(self.base)
        self.prev_goals = [-1] * A  # every goal is new at the first step
        self.best = [0] * A
        self.stuck = [0] * A
        self.boost = [0.0] * A

    def update_priorities(self, pos: list[int], goals: list[int]) -> list[float]:
        """This step's priorities (PIBT's rule plus escape mode) from the agents' cells and goals."""
        assert self.graph is not None, "call reset() before act()"
        for i in range(len(pos)):
            d = self.graph.distances_to(goals[i], pos[i])[pos[i]]
            # reached its goal (now or last step: in lifelong mode pogema has already set a new goal)
            if pos[i] == goals[i] or goals[i] != self.prev_goals[i]:
                self.priorities[i] = self.base[i]
                self.best[i], self.stuck[i], self.boost[i] = d, 0, 0.0
                continue
            self.priorities[i] += 1.0
            if d < self.best[i]:
                self.best[i], self.stuck[i] = d, 0
            else:
                self.stuck[i] += 1
                if self.stuck_steps and self.stuck[i] % self.stuck_steps == 0:
                    self.boost[i] = ESCAPE + ESCAPE * self.rng.random()
        self.prev_goals = list(goals)
        return [p + b for p, b in zip(self.priorities, self.boost)]

    def act(self, state: WorldState) -> np.ndarray:
        assert self.graph is not None, "call reset() before act()"
        pos = self.graph.cells(state.positions)
        goals = self.graph.cells(state.goals)
        prio = self.update_priorities(pos, goals)
        active = state.active.tolist()
        nxt = pibt_step(
            self.graph, pos, goals, prio, self.rng, active, self.pull, shuffle=self.move_ties == "random"
        )
        g = self.graph
        return np.array([action_towards(g.xy(p), g.xy(n)) for p, n in zip(pos, nxt)], dtype=np.int64)
