"""Scripted policies for the Cue Bottleneck (``envs.cue``): the check that memory is what the task needs.

Every policy here sees the *full state* (map, all positions, each goal's row, who is still active) and
plays the same collision-free crossing protocol (down-agents first, up-agents wait in the near row of
their room); they differ only in what they know about the **side** of each agent's goal, which is
visible only in the first observation:

- ``memory``: each agent remembers the cue of its first observation (in ``cue_partner``: reads its
  partner's remembered cue, i.e. shared memory);
- ``own_memory``: each agent remembers its own cue and nobody else's (in ``cue`` the same as ``memory``;
  in ``cue_partner`` the cue is about the partner, so the agent must guess its own side);
- ``reactive_left`` / ``reactive_random``: no memory, so the side must be guessed from what is visible
  after the first step, which does not depend on it: always the left end, or a fair coin per agent.

``python -m agents.cue_policies`` prints CSR / ISR / trapped per policy and env (docs/memory-task.md).
"""

from __future__ import annotations

import argparse
import sys
from collections import deque

import numpy as np

from envs.cue import CORRIDOR_COL, MAX_END_OFFSET, WIDTH, CueEnv, end_offset, partners

POLICIES = ("memory", "own_memory", "reactive_left", "reactive_random")
MOVES = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))  # pogema's actions: wait, up, down, left, right


def read_cue(obs: np.ndarray) -> np.ndarray:
    """int [A] the side shown in the goal channel of the first observation ``obs [A, 3, d, d]``."""
    cols = obs[:, 2].max(axis=1).argmax(axis=1)  # column of the marker
    d = obs.shape[-1]
    if np.any((cols != 0) & (cols != d - 1)):
        raise ValueError("no cue in this observation: the marker is not on the left or right border")
    return np.where(cols == 0, -1, 1)


def _bfs(free: np.ndarray, targets: list[tuple[int, int]]) -> np.ndarray:
    H, W = free.shape
    dist = np.full((H, W), np.iinfo(np.int64).max, dtype=np.int64)
    queue: deque[tuple[int, int]] = deque()
    for t in targets:
        if free[t]:
            dist[t] = 0
            queue.append(t)
    while queue:
        x, y = queue.popleft()
        for dx, dy in MOVES[1:]:
            nx, ny = x + dx, y + dy
            if 0 <= nx < H and 0 <= ny < W and free[nx, ny] and dist[nx, ny] > dist[x, y] + 1:
                dist[nx, ny] = dist[x, y] + 1
                queue.append((nx, ny))
    return dist


class ScriptedCuePolicy:
    """One of :data:`POLICIES`; ``reset(env, obs)`` after each ``env.reset()``, then ``act(env)``."""

    def __init__(self, kind: str, seed: int = 0) -> None:
        if kind not in POLICIES:
            raise ValueError(f"unknown scripted policy {kind!r}; allowed: {', '.join(POLICIES)}")
        self.kind = kind
        self.rng = np.random.default_rng(seed)

    def reset(self, env: CueEnv, obs: np.ndarray) -> None:
        cue = read_cue(obs)  # what each agent sees at its first observation
        A = env.num_agents
        self.down = env.targets_xy()[:, 0] > env.agents_xy()[:, 0]  # the goal's row is observable
        guess = np.full(A, -1) if self.kind == "reactive_left" else self.rng.choice(np.array([-1, 1]), A)
        if self.kind == "memory":
            self.side = cue[partners(A)] if env.partner_cue else cue
        elif self.kind == "own_memory":
            self.side = guess if env.partner_cue else cue
        else:
            self.side = guess

    def act(self, env: CueEnv) -> np.ndarray:
        free = ~env.obstacles
        H = free.shape[0]
        L = H - 4
        pos, goal_rows, active = env.agents_xy(), env.targets_xy()[:, 0], env.active
        down = self.down
        corridor_busy = bool(np.any(active & down & (pos[:, 0] < L + 2)))
        actions = np.zeros(env.num_agents, dtype=np.int64)
        claimed: set[tuple[int, int]] = set()  # a contested cell blocks everyone: lower index goes first
        for i in np.flatnonzero(active):
            others = [tuple(p) for j, p in enumerate(pos.tolist()) if j != i and active[j]]
            if not down[i] and corridor_busy:
                # wait in the near row of the bottom room, off the corridor's mouth
                safe = [(L + 2, c) for c in range(1, WIDTH - 1) if c != CORRIDOR_COL]
                if tuple(pos[i]) in safe:
                    continue
                targets = [c for c in safe if c not in others]
            else:
                targets = [(int(goal_rows[i]), CORRIDOR_COL + int(self.side[i]) * end_offset(env.cfg.opts))]
            blocked = free.copy()
            for o in others:
                blocked[o] = False
            dist = _bfs(blocked, targets)
            if dist[tuple(pos[i])] == np.iinfo(np.int64).max:
                dist = _bfs(free, targets)  # no way around the others: follow the static path, wait if taken
            x, y = pos[i]
            best, best_d = 0, dist[x, y]
            for a, (dx, dy) in enumerate(MOVES[1:], start=1):
                nx, ny = x + dx, y + dy
                if (
                    0 <= nx < H
                    and 0 <= ny < WIDTH
                    and dist[nx, ny] < best_d
                    and (nx, ny) not in others
                    and (nx, ny) not in claimed
                ):
                    best, best_d = a, dist[nx, ny]
            claimed.add((x + MOVES[best][0], y + MOVES[best][1]))
            actions[i] = best
        return actions


def play(env: CueEnv, policy: ScriptedCuePolicy, seed: int) -> dict[str, float]:
    """One episode; its metrics (CSR, ISR, trapped, ...)."""
    obs, _ = env.reset(seed=seed)
    policy.reset(env, obs)
    while True:
        _, _, term, trunc, infos = env.step(policy.act(env))
        if np.all(np.asarray(term) | np.asarray(trunc)):
            return dict(infos[0]["metrics"])


def evaluate(
    name: str,
    kind: str,
    lengths: list[int],
    episodes: int,
    num_agents: int = 2,
    seed: int = 0,
    offset: int = MAX_END_OFFSET,
) -> dict[str, float]:
    """Mean CSR / ISR / trapped of ``episodes`` episodes per corridor length of the ``name`` env (goal and
    trap ``offset`` columns from the corridor's, ``env.options.end_offset``)."""
    from envs import make_env
    from envs.cue import cue_config

    policy = ScriptedCuePolicy(kind, seed)
    rows = []
    for L in lengths:
        cfg = cue_config(L, name=name, num_agents=num_agents, options={"end_offset": offset})
        env = make_env(cfg, seed=seed)
        rows += [play(env, policy, seed * 100_003 + L * 1_009 + e) for e in range(episodes)]
    return {k: float(np.mean([r[k] for r in rows])) for k in ("CSR", "ISR", "trapped")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m agents.cue_policies", description=__doc__.splitlines()[0])
    p.add_argument("--lengths", default="3,5,10,20,50,100", help="corridor lengths L")
    p.add_argument("--episodes", type=int, default=50, help="episodes per L, env and policy")
    p.add_argument("--agents", type=int, default=2, help="agents per episode")
    p.add_argument(
        "--end-offset",
        type=int,
        default=MAX_END_OFFSET,
        help=f"env.options.end_offset: goal/trap columns from the corridor's, 1..{MAX_END_OFFSET}",
    )
    args = p.parse_args(argv)
    if not 1 <= args.end_offset <= MAX_END_OFFSET:
        p.error(f"--end-offset {args.end_offset} is invalid; allowed: an integer in 1..{MAX_END_OFFSET}")
    lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    print(
        f"| env | policy | CSR | ISR | trapped |  ({args.episodes} episodes x L in {lengths}, {args.agents} agents, "
        f"end_offset {args.end_offset})"
    )
    print("|---|---|---|---|---|")
    for name in ("cue", "cue_partner"):
        for kind in POLICIES:
            m = evaluate(name, kind, lengths, args.episodes, args.agents, offset=args.end_offset)
            print(f"| `{name}` | {kind} | {m['CSR']:.3f} | {m['ISR']:.3f} | {m['trapped']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
