"""The Cue Bottleneck: a corridor task that a memoryless policy cannot solve (docs/memory-task.md).

The Bottleneck of the SRMT paper (:mod:`envs.bottleneck`) with two changes:

- each agent's goal is one of the two **end cells** of the far row of the opposite room, left or right
  (the row's ends, or nearer the corridor's column: ``env.options.end_offset``),
  and the *other* end cell is a **trap**: stepping onto it removes the agent from the episode as a
  failure (it never reaches its goal);
- the goal channel shows **which end** only at the first observation (the cue, ``CUE_STEPS`` = 1
  observation); afterwards it keeps showing whether the goal is above, below or level with the agent,
  but not on which side.

So from the second step on nothing an agent observes depends on the side of its goal, and the trap
rules out checking both ends: an agent that does not carry the cue from its first observation through
the corridor reaches its goal with probability 1/2 at best (docs/memory-task.md has the argument).

Map (W = 11, corridor length L in column 5, rooms of 2 rows as in the Bottleneck)::

    ...........   row 0      far row of the top room: (0, 0) and (0, 10) are the up-agents' ends
    #.........#   row 1
    #####.#####   rows 2..L+1
    #.........#   row L+2
    ...........   row L+3    far row of the bottom room: the down-agents' ends

Agent 0 starts in the top room (uniform over its 18 inner cells) and goes down, agent 1 the other way
round, more agents alternate; each draws its side independently.

Two registered envs:

- ``cue``: the cue an agent sees is the side of its own goal (memory is necessary);
- ``cue_partner``: agent i sees the side of its partner's goal (agents 2k and 2k+1 are partners), so an
  agent learns its own side only from its partner: shared memory (or a signal through behaviour) is
  necessary, an agent's own memory is not enough.

Splits, corridor lengths and step limits are the Bottleneck's: both envs register :class:`CueOptions`,
the Bottleneck's options (``env.options.split``, ``env.options.corridor_lengths``) plus one training
curricula (``env.options.trap_free_share``, ``env.options.cue_shown_share``; train split only: the test
split always has the trap and shows the side once);
the observation radius defaults to 2 (the Bottleneck's); ``on_target`` must be ``finish``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from envs.bottleneck import (
    DEFAULT_NUM_AGENTS,
    ROOM_ROWS,
    BottleneckOptions,
    _check_length,
    corridor_lengths,
    step_limit,
)
from envs.config import BOTTLENECK_FAMILY, EnvConfig
from envs.grid_env import Episode, GridEnv, grid_config

WIDTH = 11
CORRIDOR_COL = 5
CUE_STEPS = 1
MAX_END_OFFSET = CORRIDOR_COL
"""The far row's ends: ``env.options.end_offset`` at most (and its default)."""
"""Observations (from the reset on) that show the side of the goal."""
DEFAULT_RADIUS = 2
CUE_TASKS = ("cue", "cue_partner")
CORRIDOR_TASKS = BOTTLENECK_FAMILY
"""Registered corridor tasks that share the Bottleneck's options (splits and corridor lengths)."""


@dataclass
class CueOptions(BottleneckOptions):
    """``env.options`` of the ``cue`` and ``cue_partner`` envs: the Bottleneck's, plus a curriculum."""

    trap_free_share: float = 0.0
    """Cue tasks, train split only: the share of episodes (drawn per episode) in which the wrong end cell
    is no trap, so an agent that reaches it can still walk on to its goal (a curriculum: the crossing and
    the far room are learnt before the side has to be remembered); 0 = every episode has the trap. The
    test split ignores it and always has the trap."""

    cue_shown_share: float = 0.0
    """Cue tasks, train split only: the share of episodes (drawn per episode) in which the goal channel
    shows the side at every step, not only in the first observation (a curriculum: the choice of end cell
    is learnt as a function of the side before the side has to come from memory); 0 = the side is shown
    once in every episode. The test split ignores it and shows the side once."""

    end_offset: int = MAX_END_OFFSET
    """Cue tasks, both splits: how far the two end cells (goal and trap) lie from the corridor's column
    on the far row, 1..5. 5 = the far row's own ends (the task as first built: after the corridor an
    agent walks 5 cells along the far row, and may turn back on the way); 1 = the far-row cells one column
    either side of the corridor's, two moves from the room cell at the corridor's mouth (a T-junction:
    the side is chosen in one move). Every value keeps the map symmetric, so a memoryless policy
    still reaches its goal with probability 1/2 (docs/memory-task.md)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        d = self.end_offset
        if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= MAX_END_OFFSET:
            raise ValueError(f"end_offset={d!r} is invalid; allowed: an integer in 1..{MAX_END_OFFSET}")
        for key in ("trap_free_share", "cue_shown_share"):
            share = getattr(self, key)
            if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
                raise ValueError(f"{key}={share!r} is invalid; allowed: a number in [0, 1]")


def trap_free_share(opts: BottleneckOptions) -> float:
    """The share of episodes without the trap that ``opts`` asks for: 0 on the test split."""
    return float(getattr(opts, "trap_free_share", 0.0)) if opts.split == "train" else 0.0


def cue_shown_share(opts: BottleneckOptions) -> float:
    """The share of episodes that show the side at every step: 0 on the test split."""
    return float(getattr(opts, "cue_shown_share", 0.0)) if opts.split == "train" else 0.0


def draw_trap_free(share: float, rng: np.random.Generator) -> bool:
    """Whether an episode is drawn into a curriculum share (no trap, or the side shown throughout); draws
    from ``rng`` only when ``share > 0`` (so the episodes of the default config are drawn as before)."""
    return bool(share > 0.0 and rng.random() < share)


def cue_map(length: int) -> np.ndarray:
    """bool [L+4, 11] obstacle map (True = wall)."""
    _check_length(length)
    H = 2 * ROOM_ROWS + length
    grid = np.zeros((H, WIDTH), dtype=bool)
    grid[ROOM_ROWS : ROOM_ROWS + length, :] = True
    grid[ROOM_ROWS : ROOM_ROWS + length, CORRIDOR_COL] = False
    grid[1, [0, WIDTH - 1]] = True  # the near rows of the rooms are 9 wide; only the far rows reach the ends
    grid[H - 2, [0, WIDTH - 1]] = True
    return grid


def end_cells(length: int, offset: int = MAX_END_OFFSET) -> np.ndarray:
    """int [2 rooms (top, bottom), 2 sides (left, right), 2] the end cells, in map coordinates: columns
    ``CORRIDOR_COL -/+ offset`` of each far row (``env.options.end_offset``)."""
    _check_length(length)
    last = 2 * ROOM_ROWS + length - 1
    left, right = CORRIDOR_COL - offset, CORRIDOR_COL + offset
    return np.array([[[0, left], [0, right]], [[last, left], [last, right]]], dtype=np.int64)


def end_offset(opts: BottleneckOptions) -> int:
    """``opts.end_offset`` (5 for options without it, e.g. the Bottleneck's own)."""
    return int(getattr(opts, "end_offset", MAX_END_OFFSET))


def inner_room_cells(length: int) -> tuple[np.ndarray, np.ndarray]:
    """int [18, 2] the cells of the top and the bottom room without the end cells (agents start there)."""
    _check_length(length)
    rows = np.repeat(np.arange(ROOM_ROWS), WIDTH - 2)
    cols = np.tile(np.arange(1, WIDTH - 1), ROOM_ROWS)
    top = np.stack([rows, cols], axis=1)
    return top, top + np.array([ROOM_ROWS + length, 0])


def sample_task(
    length: int, num_agents: int, rng: np.random.Generator, offset: int = MAX_END_OFFSET
) -> tuple[list, list, np.ndarray]:
    """Starts, goals and sides (-1 left, +1 right): even agents top -> bottom, odd agents bottom -> top;
    the goals at the end cells ``offset`` columns from the corridor's (:func:`end_cells`)."""
    top, bottom = inner_room_cells(length)
    cells = len(top)
    down, up = num_agents - num_agents // 2, num_agents // 2
    if down > cells:
        raise ValueError(
            f"num_agents={num_agents} is more than the Cue Bottleneck rooms hold ({2 * cells} agents, "
            f"{cells} per room); allowed: 1..{2 * cells}"
        )
    starts = np.empty((num_agents, 2), dtype=np.int64)
    starts[0::2], starts[1::2] = top[rng.permutation(cells)[:down]], bottom[rng.permutation(cells)[:up]]
    sides = rng.choice(np.array([-1, 1]), size=num_agents)
    ends = end_cells(length, offset)
    goals = np.empty((num_agents, 2), dtype=np.int64)
    goals[0::2] = ends[1, (sides[0::2] + 1) // 2]  # down-agents end in the bottom room
    goals[1::2] = ends[0, (sides[1::2] + 1) // 2]
    return starts.tolist(), goals.tolist(), sides


def partners(num_agents: int) -> np.ndarray:
    """int [A]: agent 2k's partner is 2k+1 and back; an odd last agent is its own partner."""
    p = np.arange(num_agents) ^ 1
    return np.where(p < num_agents, p, np.arange(num_agents))


def cue_config(length: int, split: str = "test", name: str = "cue", **overrides) -> EnvConfig:
    """EnvConfig of the ``cue`` (or ``cue_partner``) task with one corridor length."""
    _check_length(length)
    options = {**overrides.pop("options", {}), "split": split, "corridor_lengths": [int(length)]}
    return EnvConfig(**{"obs_radius": DEFAULT_RADIUS, **overrides, "name": name, "options": options})


class CueEnv(GridEnv):
    """:class:`GridEnv` with the cue observation and the trap cells (module docstring)."""

    def __init__(self, cfg: EnvConfig, new_episode, seed: int | None, partner_cue: bool) -> None:
        super().__init__(cfg, new_episode, seed)
        self.partner_cue = partner_cue
        self._partner = partners(cfg.num_agents)
        self._sides = np.zeros(cfg.num_agents, dtype=np.int64)
        self._trap = np.zeros((cfg.num_agents, 2), dtype=np.int64)
        self._trapped = np.zeros(cfg.num_agents, dtype=bool)

    @property
    def sides(self) -> np.ndarray:
        """int [A] the side of each agent's goal (-1 left, +1 right) in the current episode."""
        return self._sides.copy()

    @property
    def traps(self) -> np.ndarray:
        """int [A, 2] each agent's trap cell (map coordinates)."""
        return self._trap.copy()

    @property
    def trapped(self) -> np.ndarray:
        """bool [A] agents removed by their trap in this episode."""
        return self._trapped.copy()

    @property
    def trap_on(self) -> bool:
        """Whether the current episode has the trap (False only in a ``trap_free_share`` training episode)."""
        return bool(self.episode is None or self.episode.labels.get("trap", True))

    @property
    def cue_always(self) -> bool:
        """Whether the current episode shows the side at every step (a ``cue_shown_share`` training episode)."""
        return bool(self.episode is not None and self.episode.labels.get("cue_always", False))

    def _start_episode(self, env) -> None:
        super()._start_episode(env)
        assert self.episode is not None
        self._sides = np.asarray(self.episode.labels["sides"], dtype=np.int64)
        goals = self.targets_xy()
        self._trap = goals.copy()
        self._trap[:, 1] = WIDTH - 1 - goals[:, 1]  # the mirror end cell of the same far row
        self._trap_flat = (self._trap[:, 0] + self._r) * self._W + (self._trap[:, 1] + self._r)
        if not self.episode.labels.get("trap", True):
            self._trap_flat = np.full(self.num_agents, -1, dtype=np.int64)  # matches no cell
        self._trapped = np.zeros(self.num_agents, dtype=bool)

    def step(self, actions):
        obs, rewards, terminated, truncated, infos = super().step(actions)
        if self._done:
            return obs, rewards, terminated, truncated, infos
        trapped = self._active & (self._cur == self._trap_flat)
        if not np.count_nonzero(trapped):
            return obs, rewards, terminated, truncated, infos
        # removed like a finished agent (pogema hides it), but without an arrival: a failure
        self._trapped |= trapped
        self._active[trapped] = False
        self._all_acting = False
        self._occ_flat[self._cur[trapped]] = 0.0
        for i in np.flatnonzero(trapped).tolist():
            self._pogema.grid.is_active[i] = False
        terminated = ~self._active
        obs = self._observe()
        if np.count_nonzero(terminated) == self.num_agents:
            self._done = True
            m = self._metrics()
            for info in infos:
                info["metrics"] = dict(m)
        return obs, rewards, terminated, truncated, infos

    def _observe(self) -> np.ndarray:
        obs = super()._observe()
        r = self._r
        obs[:, 2] = 0.0
        # row of the goal marker: as pogema's (vertical offset clipped to the window); column: the side
        # during the cue, the centre afterwards
        dx = np.clip(self._pos[:, 0] - self._goal[:, 0], -r, r)
        if self.elapsed_steps < CUE_STEPS or self.cue_always:
            shown = self._sides[self._partner] if self.partner_cue else self._sides
            cols = r + r * shown
        else:
            cols = np.full(self.num_agents, r)
        obs[np.arange(self.num_agents), 2, r - dx, cols] = 1.0
        return obs

    def _metrics(self) -> dict[str, float]:
        m = super()._metrics()
        m["trapped"] = float(np.mean(self._trapped))
        return m


def _build(cfg: EnvConfig, seed: int | None, partner_cue: bool) -> CueEnv:
    if (
        cfg.map is not None
        or cfg.maps_file is not None
        or cfg.agents_xy is not None
        or cfg.targets_xy is not None
    ):
        raise ValueError(
            f"the {cfg.name!r} env builds its own map and tasks; leave map, maps_file, agents_xy and targets_xy unset"
        )
    if cfg.on_target != "finish":
        raise ValueError(f"on_target={cfg.on_target!r} is not supported by {cfg.name!r}; allowed: finish")
    if cfg.obs_radius is None:
        cfg = dataclasses.replace(cfg, obs_radius=DEFAULT_RADIUS)
    if cfg.num_agents is None:
        cfg = dataclasses.replace(cfg, num_agents=DEFAULT_NUM_AGENTS)
    opts: BottleneckOptions = cfg.opts
    share, shown, offset = trap_free_share(opts), cue_shown_share(opts), end_offset(opts)
    lengths = list(opts.corridor_lengths) or corridor_lengths(opts.split)
    for length in lengths:
        _check_length(length)
    sample_task(lengths[0], cfg.num_agents, np.random.default_rng(0))  # capacity check, before any reset
    maps = {L: cue_map(L).astype(int).tolist() for L in set(lengths)}

    def new_episode(ep_seed: int, rng: np.random.Generator) -> Episode:
        length = lengths[int(rng.integers(len(lengths)))] if len(lengths) > 1 else lengths[0]
        starts, goals, sides = sample_task(length, cfg.num_agents, rng, offset)
        trap = not draw_trap_free(share, rng)
        cue_always = draw_trap_free(shown, rng)
        gc = grid_config(
            map=maps[length],
            agents_xy=starts,
            targets_xy=goals,
            num_agents=cfg.num_agents,
            on_target="finish",
            collision_system=cfg.collision_system,
            obs_radius=cfg.radius,
            max_episode_steps=cfg.max_episode_steps or step_limit(length, opts.split),
            seed=ep_seed,
        )
        labels = {
            "map_name": f"{cfg.name}-{length}",
            "corridor_length": length,
            "sides": sides.tolist(),
            "trap": trap,
            "cue_always": cue_always,
        }
        return Episode(gc, ep_seed, labels)

    return CueEnv(cfg, new_episode, seed, partner_cue)


def build_cue(cfg: EnvConfig, seed: int | None = None) -> CueEnv:
    """``cue``: each agent's first observation shows the side of its own goal."""
    return _build(cfg, seed, partner_cue=False)


def build_cue_partner(cfg: EnvConfig, seed: int | None = None) -> CueEnv:
    """``cue_partner``: each agent's first observation shows the side of its partner's goal."""
    return _build(cfg, seed, partner_cue=True)
