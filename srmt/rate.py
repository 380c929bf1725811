"""RATE: the Recurrent Action Transformer with Memory (arXiv 2306.09459), with SRMT's shared memory pool.

A decision-transformer-style model over trajectory segments of K steps. Step t contributes three tokens,
``R_t`` (return-to-go), ``o_t`` (observation) and ``a_t`` (the action taken), each embedded and summed
with an embedding of the episode timestep t. One segment of one agent is the token sequence
``[R_0, o_0, a_0, ..., R_{K-1}, o_{K-1}, a_{K-1}]`` processed by :class:`srmt.blocks.MemoryTransformer`
as ``[read memory (M) ; segment (3K) ; write memory (M)]``:

- the action logits of step t come from the ``o_t`` token, which (causal mask) sees the read memory,
  ``R_0..R_t``, ``o_0..o_t`` and ``a_0..a_{t-1}``, never ``a_t`` or anything later;
- the write tokens see the whole segment; their outputs are the memory read by the next segment of the
  same trajectory, so information flows beyond K;
- with ``shared_memory=True`` every token also reads, by cross-attention, the pool of the *read* memories
  of the agents of its environment (SRMT, arXiv 2501.13200), masked so that inactive agents are never
  read. The pool holds memories written by earlier segments only, so it cannot leak the future.

Padded steps (``valid`` False) are never attended and never change the memory. An agent that is not
active at the first step of a segment (``active`` False; in ``finish`` mode it has left the grid) keeps
its memory unchanged through that segment and is not in the pool.

Step mode (:meth:`RATEModel.step_logits` + :meth:`RATEModel.step_commit`) acts one step at a time with
the tokens of the current segment as context and writes the memory when a segment is complete, so it
gives exactly the logits of the segment forward (tested in float64).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from srmt.blocks import MemoryTransformer, Pool
from srmt.encoder import ResNetEncoder

TOKENS_PER_STEP = 3  # R_t, o_t, a_t
OBS_TOKEN = 1  # index of o_t within a step's tokens: the logits come from it


@dataclass
class RATEConfig:
    """The offline sequence model's typed config (``model.*`` in ``agents.offline_config``)."""

    hidden_size: int = 32
    """Width D of every token, memory vector and embedding."""
    num_heads: int = 2
    """Attention heads."""
    num_layers: int = 2
    """Transformer layers of the :class:`~srmt.blocks.MemoryTransformer`."""
    mlp_ratio: float = 4.0
    """Hidden width of the transformer MLP as a multiple of ``hidden_size``."""
    dropout: float = 0.0
    """Dropout on attention weights and MLP outputs (training mode only)."""
    num_filters: int = 8
    """Channels of the ResNet observation encoder's conv layers."""
    num_res_blocks: int = 1
    """Residual blocks of the observation encoder."""
    segment_len: int = 8
    """K: steps per segment (3K tokens); memory carries information from segment to segment."""
    memory_tokens: int = 2
    """M: memory tokens per agent (read at the start of a segment, written at its end)."""
    shared_memory: bool = True
    """Every token also reads the memories of all active agents of its environment through
    cross-attention (SRMT); False = each agent sees only its own memory tokens (plain RATE)."""
    max_timestep: int = 1024
    """Size of the timestep embedding; later steps share the last embedding."""
    rtg_scale: float = 1.0
    """Returns-to-go are multiplied by this before their linear embedding (keep them O(1))."""

    def __post_init__(self) -> None:
        for name in (
            "hidden_size",
            "num_heads",
            "num_layers",
            "num_filters",
            "segment_len",
            "memory_tokens",
            "max_timestep",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}={v!r} is invalid; it must be an integer >= 1")
        if self.num_res_blocks < 0:
            raise ValueError(f"num_res_blocks={self.num_res_blocks} is invalid; it must be >= 0")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} must be divisible by num_heads={self.num_heads}"
            )
        if self.mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio={self.mlp_ratio} is invalid; it must be > 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} is invalid; allowed: 0 <= dropout < 1")
        if self.rtg_scale <= 0:
            raise ValueError(f"rtg_scale={self.rtg_scale} is invalid; it must be > 0")

    @property
    def mlp_size(self) -> int:
        """Hidden width of the transformer MLP: ``round(mlp_ratio * hidden_size)``, at least 1."""
        return max(1, round(self.mlp_ratio * self.hidden_size))


class RATEOutput(NamedTuple):
    logits: Tensor
    """``[G, A, K, n_actions]`` action logits of every step (garbage where ``valid`` is False)."""
    memory: Tensor
    """``[G, A, M, D]`` memory after the segment (unchanged for agents not active in it)."""


class StepState(NamedTuple):
    """Acting state of :meth:`RATEModel.step_logits` / :meth:`RATEModel.step_commit`."""

    memory: Tensor
    """``[G, A, M, D]`` memory read by the current segment."""
    active: Tensor
    """``[G, A]`` bool: who was active at the current segment's first step (the pool mask)."""
    tokens: Tensor
    """``[G, A, 3k, D]`` embedded tokens of the k completed steps of the current segment."""
    valid: Tensor
    """``[G, A, 3k]`` bool validity of those tokens."""
    pending: Tensor | None
    """``[G, A, 2, D]`` R_t and o_t of the step awaiting its action (None between steps)."""
    pending_valid: Tensor | None
    """``[G, A]`` validity of the pending step."""
    pending_time: Tensor | None
    """``[G, A, D]`` timestep embedding of the pending step (added to its action token)."""


class RATEModel(nn.Module):
    """``RATEModel(cfg, obs_shape=(C, H, W), num_actions)``: segment forward and step-mode acting."""

    def __init__(self, cfg: RATEConfig, obs_shape: tuple[int, int, int], num_actions: int) -> None:
        super().__init__()
        if num_actions < 1:
            raise ValueError(f"num_actions={num_actions} must be >= 1")
        self.cfg = cfg
        C, H, W = (int(s) for s in obs_shape)
        self.obs_shape = (C, H, W)
        self.num_actions = num_actions
        D = cfg.hidden_size
        self.obs_emb = ResNetEncoder(self.obs_shape, cfg.num_filters, cfg.num_res_blocks, D)
        self.rtg_emb = nn.Linear(1, D)
        self.action_emb = nn.Embedding(num_actions, D)
        self.time_emb = nn.Embedding(cfg.max_timestep, D)
        nn.init.normal_(self.time_emb.weight, std=0.02)
        self.memory_init = nn.Parameter(torch.randn(cfg.memory_tokens, D) * 0.02)
        self.transformer = MemoryTransformer(
            D, cfg.num_heads, cfg.num_layers, cfg.mlp_size, cfg.dropout, cross=cfg.shared_memory
        )
        self.head = nn.Linear(D, num_actions)

    # ------------------------------------------------------------------ shared pieces
    def initial_memory(self, G: int, A: int) -> Tensor:
        """``[G, A, M, D]``: the learned initial memory of every agent."""
        M, D = self.memory_init.shape
        return self.memory_init.expand(G, A, M, D)

    def _time(self, timesteps: Tensor) -> Tensor:
        return self.time_emb(timesteps.long().clamp(0, self.cfg.max_timestep - 1))

    def _embed_rtg_obs(self, obs: Tensor, rtg: Tensor, time: Tensor) -> tuple[Tensor, Tensor]:
        """``obs [..., C, H, W]``, ``rtg [...]``, ``time [..., D]`` -> R and o tokens ``[..., D]`` each."""
        dtype = time.dtype
        r = self.rtg_emb((rtg.to(dtype) * self.cfg.rtg_scale)[..., None]) + time
        o = self.obs_emb(obs).to(dtype) + time
        return r, o

    def _embed_action(self, actions: Tensor, time: Tensor) -> Tensor:
        # padded steps may hold any integer: clamp so that the lookup is defined (they are masked anyway)
        return self.action_emb(actions.long().clamp(0, self.num_actions - 1)) + time

    def _run(
        self, tokens: Tensor, valid: Tensor, memory: Tensor, active: Tensor, last_only: bool
    ) -> tuple[Tensor, Tensor]:
        """``tokens [G, A, L, D]``, ``valid [G, A, L]``, ``memory [G, A, M, D]``, ``active [G, A]`` ->
        (segment outputs ``[G, A, L or 1, D]``, new memory ``[G, A, M, D]``)."""
        G, A, L, D = tokens.shape
        M = memory.shape[2]
        N = G * A
        memory = memory.to(tokens.dtype)
        pool = Pool.shared(memory, active) if self.cfg.shared_memory else None
        out = self.transformer(
            tokens.reshape(N, L, D), memory.reshape(N, M, D), valid.reshape(N, L), pool, last_only
        )
        seg = out.segment.view(G, A, -1, D)
        new_memory = torch.where(active[:, :, None, None], out.memory.view(G, A, M, D), memory)
        return seg, new_memory

    # ------------------------------------------------------------------ segment forward (training)
    def forward(
        self,
        obs: Tensor,
        actions: Tensor,
        rtg: Tensor,
        timesteps: Tensor,
        valid: Tensor,
        memory: Tensor | None = None,
        active: Tensor | None = None,
    ) -> RATEOutput:
        """One segment for all agents of G envs.

        ``obs [G, A, K, C, H, W]`` (any dtype), ``actions [G, A, K]`` int (the actions taken; a_t is an
        input token for steps > t only), ``rtg [G, A, K]``, ``timesteps [G, A, K]`` int, ``valid [G, A, K]``
        bool, ``memory [G, A, M, D]`` or None (initial memory), ``active [G, A]`` bool or None (=
        ``valid[..., 0]``) -> :class:`RATEOutput`.
        """
        G, A, K = actions.shape
        self._check(obs, actions, rtg, timesteps, valid, memory, active)
        if memory is None:
            memory = self.initial_memory(G, A)
        if active is None:
            active = valid[..., 0]
        time = self._time(timesteps)  # (G, A, K, D)
        r, o = self._embed_rtg_obs(obs, rtg, time)  # (G, A, K, D) each
        a = self._embed_action(actions, time)  # (G, A, K, D)
        D = r.shape[-1]
        tokens = torch.stack([r, o, a], dim=3).view(G, A, TOKENS_PER_STEP * K, D)  # R_0 o_0 a_0 R_1 ...
        tok_valid = valid[..., None].expand(G, A, K, TOKENS_PER_STEP).reshape(G, A, TOKENS_PER_STEP * K)
        seg, new_memory = self._run(tokens, tok_valid, memory, active, last_only=False)
        logits = self.head(seg[:, :, OBS_TOKEN::TOKENS_PER_STEP])  # (G, A, K, n)
        return RATEOutput(logits, new_memory)

    def _check(self, obs, actions, rtg, timesteps, valid, memory, active) -> None:
        if actions.dim() != 3:
            raise ValueError(f"actions shape {tuple(actions.shape)} must be [G, A, K]")
        G, A, K = actions.shape
        if tuple(obs.shape) != (G, A, K, *self.obs_shape):
            raise ValueError(f"obs shape {tuple(obs.shape)} must be {(G, A, K, *self.obs_shape)}")
        for name, x in (("rtg", rtg), ("timesteps", timesteps), ("valid", valid)):
            if tuple(x.shape) != (G, A, K):
                raise ValueError(f"{name} shape {tuple(x.shape)} must be {(G, A, K)}")
        if valid.dtype != torch.bool:
            raise ValueError(f"valid must be a bool tensor, got {valid.dtype}")
        M, D = self.memory_init.shape
        if memory is not None and tuple(memory.shape) != (G, A, M, D):
            raise ValueError(f"memory shape {tuple(memory.shape)} must be {(G, A, M, D)}")
        if active is not None and (tuple(active.shape) != (G, A) or active.dtype != torch.bool):
            raise ValueError(f"active must be a bool tensor of shape {(G, A)}, got {tuple(active.shape)}")

    # ------------------------------------------------------------------ step mode (acting)
    def initial_step_state(self, G: int, A: int, memory: Tensor | None = None) -> StepState:
        """A fresh acting state at the start of an episode (``memory`` None = the learned initial one)."""
        p = self.head.weight
        D = self.cfg.hidden_size
        memory = self.initial_memory(G, A).to(p.dtype) if memory is None else memory
        return StepState(
            memory=memory,
            active=torch.ones(G, A, dtype=torch.bool, device=p.device),
            tokens=p.new_zeros(G, A, 0, D),
            valid=torch.zeros(G, A, 0, dtype=torch.bool, device=p.device),
            pending=None,
            pending_valid=None,
            pending_time=None,
        )

    def step_logits(
        self, state: StepState, obs: Tensor, rtg: Tensor, timestep: Tensor, valid: Tensor
    ) -> tuple[Tensor, StepState]:
        """``obs [G, A, C, H, W]``, ``rtg [G, A]``, ``timestep [G, A]``, ``valid [G, A]`` bool -> logits
        ``[G, A, n]`` of this step and the state awaiting :meth:`step_commit` with the chosen actions."""
        if state.pending is not None:
            raise RuntimeError("step_logits called twice; call step_commit(actions) between steps")
        active = valid if state.tokens.shape[2] == 0 else state.active  # fixed at a segment's first step
        time = self._time(timestep).to(state.tokens.dtype)  # (G, A, D)
        r, o = self._embed_rtg_obs(obs, rtg, time)
        pending = torch.stack([r, o], dim=2)  # (G, A, 2, D)
        tokens = torch.cat([state.tokens, pending], dim=2)  # (G, A, 3k+2, D): ends with o_t
        tok_valid = torch.cat([state.valid, valid[..., None].expand(*valid.shape, 2)], dim=2)
        seg, _ = self._run(tokens, tok_valid, state.memory, active, last_only=True)  # (G, A, 1, D)
        logits = self.head(seg[:, :, 0])
        return logits, state._replace(active=active, pending=pending, pending_valid=valid, pending_time=time)

    def step_commit(self, state: StepState, actions: Tensor) -> StepState:
        """Append the action ``[G, A]`` of the pending step; after K steps write the memory and start a
        new segment (the write tokens see the whole segment, as in :meth:`forward`)."""
        pending, pending_valid, pending_time = state.pending, state.pending_valid, state.pending_time
        if pending is None or pending_valid is None or pending_time is None:
            raise RuntimeError("step_commit called without a pending step; call step_logits first")
        a = self._embed_action(actions, pending_time)[:, :, None]  # (G, A, 1, D)
        tokens = torch.cat([state.tokens, pending, a], dim=2)
        pv = pending_valid[..., None].expand(*pending_valid.shape, TOKENS_PER_STEP)
        valid = torch.cat([state.valid, pv], dim=2)
        state = state._replace(
            tokens=tokens, valid=valid, pending=None, pending_valid=None, pending_time=None
        )
        if tokens.shape[2] < TOKENS_PER_STEP * self.cfg.segment_len:
            return state
        _, memory = self._run(tokens, valid, state.memory, state.active, last_only=True)
        G, A = actions.shape
        return self.initial_step_state(G, A, memory=memory)


def build_rate(cfg: RATEConfig, obs_shape: tuple[int, int, int], num_actions: int) -> RATEModel:
    return RATEModel(cfg, obs_shape, num_actions)
