"""The actor-critic both learners use: encoder -> memory core -> masked policy head and value head."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.distributions import Categorical

from srmt.blocks import Pool
from srmt.config import ModelConfig
from srmt.core import MemoryCore, build_core
from srmt.encoder import build_encoder


class ActorCriticOutput(NamedTuple):
    logits: Tensor
    """``[G, A, n]`` (step) or ``[G, A, T, n]`` (sequence); disallowed actions at the dtype's minimum."""
    value: Tensor
    """``[G, A]`` or ``[G, A, T]``."""
    state: Tensor
    """``[G, A, S]``: the state after the step (after the last step of a sequence)."""


def mask_logits(logits: Tensor, action_mask: Tensor | None) -> Tensor:
    """Disallowed actions (``action_mask`` False) get the most negative finite logit: probability 0,
    no NaN even when an agent has no allowed action (it then samples uniformly)."""
    if action_mask is None:
        return logits
    return logits.masked_fill(~action_mask, torch.finfo(logits.dtype).min)


class ActorCritic(nn.Module):
    """``ActorCritic(cfg, obs_shape, num_actions)``; the agent axis A is explicit everywhere.

    ``obs_shape`` is one agent's observation: ``(C, H, W)`` images / grids (conv encoder) or ``(D,)``
    vectors (MLP encoder); ``cfg.encoder`` picks (``srmt.encoder.build_encoder``). Below, ``*O`` stands
    for ``obs_shape``.

    ``step`` runs one step for ``[G, A]`` agents; ``sequence`` runs T steps with per-step reset/active
    flags and gives the same results as a loop of ``step`` (tested to 1e-6 in float64).
    """

    def __init__(self, cfg: ModelConfig, obs_shape: tuple[int, ...], num_actions: int) -> None:
        super().__init__()
        if num_actions < 1:
            raise ValueError(f"num_actions={num_actions} must be >= 1")
        self.cfg = cfg
        self.encoder = build_encoder(cfg, tuple(obs_shape))
        self.obs_shape: tuple[int, ...] = self.encoder.obs_shape
        self.num_actions = num_actions
        self.core: MemoryCore = build_core(cfg)
        self.policy_head = nn.Linear(cfg.hidden_size, num_actions)
        self.value_head = nn.Linear(cfg.hidden_size, 1)
        # near-uniform initial policy (standard for PPO), unit-scale value
        nn.init.orthogonal_(self.policy_head.weight, gain=0.01)
        nn.init.zeros_(self.policy_head.bias)
        nn.init.orthogonal_(self.value_head.weight, gain=1.0)
        nn.init.zeros_(self.value_head.bias)

    @property
    def state_size(self) -> int:
        """Floats per agent in the flat recurrent state (>= 1 for every core)."""
        return self.core.state_size

    def initial_state(
        self, G: int, A: int, *, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> Tensor:
        """``[G, A, S]`` zeros on the parameters' device and dtype unless given."""
        p = self.policy_head.weight
        return self.core.initial_state(G, A, device=device or p.device, dtype=dtype or p.dtype)

    def step(
        self,
        obs: Tensor,
        state: Tensor,
        reset: Tensor | None = None,
        active: Tensor | None = None,
        action_mask: Tensor | None = None,
        *,
        pool: Pool | None = None,
    ) -> ActorCriticOutput:
        """``obs [G, A, *O]``, ``state [G, A, S]``, ``reset``/``active [G, A]`` bool,
        ``action_mask [G, A, n]`` bool -> logits ``[G, A, n]``, value ``[G, A]``, new state.

        ``pool`` replaces the shared memory pool for this step (evaluation controls, :mod:`srmt.controls`)."""
        self._check(obs, state, 2, reset, active, action_mask)
        x = self.encoder(obs)  # (G, A, D)
        features, state = self.core.step(x, state, reset, active, pool=pool)
        return self._heads(features, action_mask, state)

    def sequence(
        self,
        obs: Tensor,
        state: Tensor,
        reset: Tensor | None = None,
        active: Tensor | None = None,
        action_mask: Tensor | None = None,
    ) -> ActorCriticOutput:
        """``obs [G, A, T, *O]``, initial ``state [G, A, S]``, ``reset``/``active [G, A, T]``,
        ``action_mask [G, A, T, n]`` -> logits ``[G, A, T, n]``, value ``[G, A, T]``, final state."""
        self._check(obs, state, 3, reset, active, action_mask)
        x = self.encoder(obs)  # (G, A, T, D): one encoder call for the whole chunk
        features, state = self.core.sequence(x, state, reset, active)
        return self._heads(features, action_mask, state)

    def distribution(self, logits: Tensor, action_mask: Tensor | None = None) -> Categorical:
        """A categorical over the last axis; ``action_mask`` (if given) is applied again (idempotent)."""
        return Categorical(logits=mask_logits(logits, action_mask), validate_args=False)

    def _heads(self, features: Tensor, action_mask: Tensor | None, state: Tensor) -> ActorCriticOutput:
        # outputs in the state's dtype: float32 for the loss even when the body ran under bf16 autocast
        logits = mask_logits(self.policy_head(features).to(state.dtype), action_mask)
        value = self.value_head(features).squeeze(-1).to(state.dtype)
        return ActorCriticOutput(logits, value, state)

    def _check(
        self,
        obs: Tensor,
        state: Tensor,
        lead_dims: int,
        reset: Tensor | None,
        active: Tensor | None,
        action_mask: Tensor | None,
    ) -> None:
        what = "step" if lead_dims == 2 else "sequence"
        lead = "[G, A, " if lead_dims == 2 else "[G, A, T, "
        n = len(self.obs_shape)
        if obs.dim() != lead_dims + n or tuple(obs.shape[lead_dims:]) != self.obs_shape:
            raise ValueError(
                f"{what}: obs shape {tuple(obs.shape)} must be {lead}{', '.join(map(str, self.obs_shape))}]"
            )
        G, A = obs.shape[:2]
        batch = tuple(obs.shape[:lead_dims])
        if tuple(state.shape) != (G, A, self.state_size):
            raise ValueError(
                f"{what}: state shape {tuple(state.shape)} must be ({G}, {A}, {self.state_size})"
            )
        for name, flags in (("reset", reset), ("active", active)):
            if flags is not None and (tuple(flags.shape) != batch or flags.dtype != torch.bool):
                raise ValueError(
                    f"{what}: {name} must be a bool tensor of shape {batch}, got {flags.dtype} {tuple(flags.shape)}"
                )
        if action_mask is not None and (
            tuple(action_mask.shape) != (*batch, self.num_actions) or action_mask.dtype != torch.bool
        ):
            raise ValueError(
                f"{what}: action_mask must be a bool tensor of shape {(*batch, self.num_actions)}, "
                f"got {action_mask.dtype} {tuple(action_mask.shape)}"
            )


def build_actor_critic(cfg: ModelConfig, obs_shape: tuple[int, ...], num_actions: int) -> ActorCritic:
    """The actor-critic for ``cfg`` (the core is picked by ``cfg.core``)."""
    return ActorCritic(cfg, obs_shape, num_actions)
