"""The Cue Bottleneck tasks (``cue``, ``cue_partner``) batched over environments.

:class:`CueVector` is :class:`envs.bottleneck_vec.BottleneckVector` with the rules of
:class:`envs.cue.CueEnv`: the 11-wide map, starts in the inner room cells, goals at the end cells of
the far rows with the mirror end as a trap (an agent that steps on it leaves the episode as a
failure), and the goal marker that shows the side only in the first observation of an episode; with
``env.options.trap_free_share`` (train split) a drawn share of episodes has no trap, with
``env.options.cue_shown_share`` a drawn share shows the side at every step.
It plays what ``k`` independent ``make_env(cfg, seed=s)`` Cue envs play (``tests/test_envs_vector.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from envs.bottleneck import ROOM_ROWS
from envs.bottleneck_vec import BottleneckVector
from envs.config import EnvConfig
from envs.cue import (
    CORRIDOR_COL,
    CUE_STEPS,
    WIDTH,
    _build,
    cue_shown_share,
    draw_trap_free,
    end_offset,
    partners,
    trap_free_share,
)
from envs.rewards import needs_planner


class CueVector(BottleneckVector):
    """``k = len(seeds)`` envs of ``cue`` (``partner_cue=False``) or ``cue_partner``."""

    width = WIDTH

    def __init__(
        self,
        cfg: EnvConfig,
        seeds: Sequence[int | None],
        obs_dtype: object = np.float32,
        partner_cue: bool = False,
    ) -> None:
        self.partner_cue = partner_cue
        super().__init__(cfg, seeds, obs_dtype)
        A, N = self.num_agents, self._N
        # two permutations of the inner cells, the sides, whether the episode has no trap and whether it
        # shows the side throughout
        self.draw_size = 2 * self._inner + A + 2
        self._share = trap_free_share(self.cfg.opts)
        self._shown = cue_shown_share(self.cfg.opts)
        self._offset = end_offset(self.cfg.opts)
        self._cue_always = np.zeros(N, dtype=bool)
        self._sides = np.zeros(N, dtype=np.int64)
        self._trap_flat = np.full(N, -1, dtype=np.int64)
        self._trapped = np.zeros(N, dtype=bool)
        self._partner = (np.arange(self.num_envs)[:, None] * A + partners(A)).reshape(-1)

    @property
    def sides(self) -> np.ndarray:
        """int [k, A] the side of each agent's goal (-1 left, +1 right) in the current episodes."""
        return self._sides.reshape(self.num_envs, self.num_agents).copy()

    @property
    def trapped(self) -> np.ndarray:
        """bool [k, A] agents removed by their trap in the current episodes."""
        return self._trapped.reshape(self.num_envs, self.num_agents).copy()

    @property
    def trap_on(self) -> np.ndarray:
        """bool [k] whether each env's current episode has the trap (``trap_free_share``)."""
        return self._trap_flat.reshape(self.num_envs, self.num_agents)[:, 0] >= 0

    @property
    def cue_always(self) -> np.ndarray:
        """bool [k] whether each env's current episode shows the side at every step (``cue_shown_share``)."""
        return self._cue_always.reshape(self.num_envs, self.num_agents)[:, 0].copy()

    def _check_config(self, cfg: EnvConfig) -> tuple[EnvConfig, list[int]]:
        # the single env's own checks and defaults (builds no episode)
        cfg = _build(cfg, None, partner_cue=self.partner_cue).cfg
        from envs.bottleneck import corridor_lengths

        self._inner = 2 * (WIDTH - 2)  # inner room cells (starts): rows 0-1, columns 1..9
        return cfg, list(cfg.opts.corridor_lengths) or corridor_lengths(cfg.opts.split)

    def _map(self, length: int) -> np.ndarray:
        from envs.cue import cue_map

        return cue_map(length)

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        """:func:`envs.cue.sample_task`'s draws: starts down, starts up, each agent's side, then
        :func:`envs.cue.draw_trap_free` twice (1 = no trap; 1 = the side shown at every step)."""
        n = self._inner
        return np.concatenate(
            [
                rng.permutation(n),
                rng.permutation(n),
                rng.choice(np.array([-1, 1]), size=self.num_agents),
                [int(draw_trap_free(self._share, rng)), int(draw_trap_free(self._shown, rng))],
            ]
        )

    def _place(self, envs, picks, length_of):
        A, n, r, Wp = self.num_agents, self._inner, self._r, self._Wp
        down, up = A - A // 2, A // 2
        cols = WIDTH - 2
        last = (2 * ROOM_ROWS - 1 + length_of)[:, None]  # the far row of the bottom room
        bottom = (ROOM_ROWS + length_of)[:, None]
        p_down, p_up, sides = picks[:, :n], picks[:, n : 2 * n], picks[:, 2 * n : 2 * n + A]
        trap_free = np.repeat(picks[:, 2 * n + A] == 1, A)
        x = np.empty((len(envs), A), dtype=np.int64)
        y, gx, gy = np.empty_like(x), np.empty_like(x), np.empty_like(x)
        x[:, 0::2], y[:, 0::2] = p_down[:, :down] // cols, 1 + p_down[:, :down] % cols
        x[:, 1::2], y[:, 1::2] = bottom + p_up[:, :up] // cols, 1 + p_up[:, :up] % cols
        end_col = CORRIDOR_COL + sides * self._offset  # sides are -1 / +1
        gx[:, 0::2], gx[:, 1::2] = np.broadcast_to(last, (len(envs), down)), 0
        gy[:] = end_col
        ag = (envs[:, None] * A + np.arange(A)).reshape(-1)
        self._cue_always[ag] = np.repeat(picks[:, 2 * n + A + 1] == 1, A)
        self._sides[ag] = sides.reshape(-1)
        self._trapped[ag] = False
        trap_y = WIDTH - 1 - gy  # the mirror end cell of the same far row
        trap = self._base[ag] + (gx + r).reshape(-1) * Wp + (trap_y + r).reshape(-1)
        self._trap_flat[ag] = np.where(trap_free, -1, trap)  # -1 matches no cell
        return x, y, gx, gy

    def _after_step(self, terminated: np.ndarray, ended: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # CueEnv.step: traps of the envs whose episode the moves did not end
        k, A = self.num_envs, self.num_agents
        trapped = self._active & (self._cur == self._trap_flat) & ~np.repeat(ended, A)
        if not np.count_nonzero(trapped):
            return terminated, ended
        self._trapped |= trapped
        self._active[trapped] = False
        self._occ[self._cur[trapped]] = 0  # removed like a finished agent, but without an arrival
        terminated = ~self._active.reshape(k, A)
        return terminated, ended | terminated.all(axis=1)

    def _goal_cells(self) -> tuple[np.ndarray, np.ndarray]:
        r = self._r
        dx = np.clip(self._pos[:, 0] - self._goal[:, 0], -r, r)
        shown = self._sides[self._partner] if self.partner_cue else self._sides
        cue = np.repeat(self._t < CUE_STEPS, self.num_agents) | self._cue_always
        return r - dx, np.where(cue, r + r * shown, r)

    def _metrics(self, envs: np.ndarray) -> list[dict[str, float]]:
        out = super()._metrics(envs)
        A = self.num_agents
        share = (self._trapped[envs[:, None] * A + np.arange(A)].sum(axis=1) / A).tolist()
        for m, v in zip(out, share):
            m["trapped"] = v
        return out


def build_cue_vector(cfg: EnvConfig, seeds: Sequence[int | None], obs_dtype: object = np.float32):
    """The registered vector builder of ``cue``: None (fall back to the loop) for the planner."""
    if cfg.planner_path or cfg.priority_channel or needs_planner(cfg.reward):
        return None
    return CueVector(cfg, seeds, obs_dtype, partner_cue=False)


def build_cue_partner_vector(cfg: EnvConfig, seeds: Sequence[int | None], obs_dtype: object = np.float32):
    """The registered vector builder of ``cue_partner``."""
    if cfg.planner_path or cfg.priority_channel or needs_planner(cfg.reward):
        return None
    return CueVector(cfg, seeds, obs_dtype, partner_cue=True)
