"""Memory cores: one interface for SRMT and its ablations, registered by name.

A core maps observation embeddings ``[G, A, D]`` (G environments, A agents) and a per-agent state
``[G, A, S]`` to features for the heads and the new state.  The state is one flat float vector per agent
because sample-factory stores exactly that; every core's initial state is all zeros, which is also what
sample-factory puts in a fresh buffer.

- ``srmt``: tokens ``[m_i(t-1) ; history ; e_i(t) ; write]`` (see :mod:`srmt.blocks`), cross-attention to
  the pool ``{m_j(t-1) : j active in the same environment}``; new memory from the write token.
- ``rmt``: the same with a pool of the agent's own memory only (no sharing).
- ``attention``: history + current embedding, no memory, no pool.
- ``gru``: a GRU cell.
- ``none``: a feed-forward residual MLP, no state (a 1-float placeholder).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn

from srmt.blocks import MLP, MemoryTransformer, Pool, cached_ones
from srmt.config import ModelConfig


class MemoryCore(nn.Module):
    """Base class: ``step`` handles resets and inactive agents, subclasses implement ``_step``."""

    state_size: int
    state_precision: str = "float32"
    """``bfloat16``: every new state is rounded to bfloat16 values (kept in the state's dtype), so that
    a transport that stores it in 16 bits (the sample-factory adapter) loses nothing."""

    compile_mode: str | None = None
    """``torch.compile`` mode of :meth:`sequence` (the learner's BPTT loop); None = eager (see
    :meth:`compile_sequence`)."""
    compile_scope: Literal["step", "sequence"] = "step"
    """What :meth:`compile_sequence` compiles: ``step`` (one graph for the per-step body, the loop over T
    stays in Python) or ``sequence`` (the whole loop unrolled over T into one forward and one backward
    graph: fusion across steps and fewer kernel launches, a longer compile)."""

    def compile_sequence(self, mode: str = "default", scope: Literal["step", "sequence"] = "step") -> None:
        """Run :meth:`sequence` through ``torch.compile`` (fused kernels for the learner's BPTT loop),
        either its per-step body or the whole unrolled loop (``scope``).  A minibatch has one fixed
        shape, so one graph serves every chunk; :meth:`step` itself (the inference path, whose batch
        size varies) stays eager.  The compiled callable is made on first use and never copied (a deep
        copy of the core compiles its own)."""
        if scope not in ("step", "sequence"):
            raise ValueError(f"compile scope {scope!r} is not one of 'step', 'sequence'")
        self.compile_mode = mode
        self.compile_scope = scope
        self.__dict__.pop("_compiled_step", None)

    def _compiled(self, fn: Callable[..., tuple[Tensor, Tensor]]) -> Callable[..., tuple[Tensor, Tensor]]:
        compiled = self.__dict__.get("_compiled_step")
        if compiled is None:
            compiled = torch.compile(fn, mode=self.compile_mode, dynamic=False)
            self.__dict__["_compiled_step"] = compiled
        return compiled

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())
        state.pop("_compiled_step", None)  # bound to this instance; a copy compiles its own
        return state

    def initial_state(
        self, G: int, A: int, *, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> Tensor:
        return torch.zeros(G, A, self.state_size, device=device, dtype=dtype)

    @staticmethod
    def reset_state(state: Tensor, reset: Tensor | None) -> Tensor:
        """The one place where an episode boundary resets an agent: where ``reset [G, A]`` is True the
        state becomes the initial state (zeros), before it is read by the agent or through the pool."""
        return state if reset is None else state.masked_fill(reset[..., None], 0.0)

    def step(
        self,
        x: Tensor,
        state: Tensor,
        reset: Tensor | None = None,
        active: Tensor | None = None,
        *,
        pool: Pool | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``x [G, A, D]``, ``state [G, A, S]``, ``reset``/``active [G, A]`` bool -> (features ``[G, A, D]``,
        new state ``[G, A, S]``).  An inactive agent's state is carried through unchanged.

        ``pool`` replaces the memory pool the agents read (evaluation controls, :mod:`srmt.controls`);
        only cores that read a pool accept it."""
        state = self.reset_state(state, reset)
        if pool is None:
            features, new_state = self._step(x, state, active)
        else:
            features, new_state = self._step_with_pool(x, state, active, pool)
        if self.state_precision == "bfloat16":
            new_state = new_state.to(torch.bfloat16)  # widened back by the where (one op less), or here
            if active is None:
                new_state = new_state.to(state.dtype)
        if active is not None:
            new_state = torch.where(active[..., None], new_state, state)  # bf16 | float32 -> state's dtype
        return features, new_state

    def sequence(
        self, x: Tensor, state: Tensor, reset: Tensor | None = None, active: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``x [G, A, T, D]``, ``reset``/``active [G, A, T]`` -> (features ``[G, A, T, D]``, final state).

        A loop of :meth:`step` over T: gradients flow through the memory and the shared pool of every
        step, recomputed from the current parameters (BPTT over the chunk).
        """
        if self.compile_mode is None:
            return self._unrolled(x, state, reset, active)
        if self.compile_scope == "sequence":
            return self._compiled(self._unrolled)(x, state, reset, active)
        return self._unrolled(x, state, reset, active, step=self._compiled(self.step))

    def _unrolled(
        self,
        x: Tensor,
        state: Tensor,
        reset: Tensor | None,
        active: Tensor | None,
        step: Callable[..., tuple[Tensor, Tensor]] | None = None,
    ) -> tuple[Tensor, Tensor]:
        step = self.step if step is None else step
        features = []
        for t in range(x.shape[2]):
            f, state = step(
                x[:, :, t],
                state,
                None if reset is None else reset[:, :, t],
                None if active is None else active[:, :, t],
            )
            features.append(f)
        return torch.stack(features, dim=2), state

    def _step(self, x: Tensor, state: Tensor, active: Tensor | None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _step_with_pool(
        self, x: Tensor, state: Tensor, active: Tensor | None, pool: Pool
    ) -> tuple[Tensor, Tensor]:
        raise ValueError(f"{type(self).__name__} reads no memory pool, so its pool cannot be replaced")


class TransformerCore(MemoryCore):
    """``srmt`` / ``rmt`` / ``attention``: a :class:`MemoryTransformer` over one agent's tokens.

    State layout (flat, per agent): ``[memory (D, if any) | history (K*Dh) | history valid flags (K)]``;
    an empty history slot has flag 0 and is masked, never attended as a zero embedding.  ``Dh`` is
    ``cfg.history_dim`` (default D): with Dh < D an embedding is stored as ``down(e)`` and attended as
    ``up(down(e))``, which shrinks the state that a trainer has to carry between steps.
    """

    def __init__(self, cfg: ModelConfig, memory: bool, pool: Literal["shared", "own"] | None) -> None:
        super().__init__()
        if pool not in (None, "shared", "own"):
            raise ValueError(f"pool={pool!r} must be None, 'shared' or 'own'")
        if pool is not None and not memory:
            raise ValueError("a memory pool needs memory=True")
        D, K = cfg.hidden_size, cfg.history_len
        Dh = cfg.history_dim or D
        self.hidden_size, self.history_len, self.history_dim = D, K, Dh
        self.memory, self.pool = memory, pool
        self.mem_size = D if memory else 0
        self.state_size = max(1, self.mem_size + K * Dh + K)  # >= 1 so a state always exists
        self.state_precision = cfg.state_precision
        # history slots narrower than the embedding: stored down-projected, attended up-projected
        self.hist_down: nn.Module = nn.Linear(D, Dh) if Dh != D and K else nn.Identity()
        self.hist_up: nn.Module = nn.Linear(Dh, D) if Dh != D and K else nn.Identity()
        self.pos_emb = nn.Parameter(torch.randn(K + 1, D) * 0.02)  # history slots oldest..newest, current
        self.transformer = MemoryTransformer(
            D, cfg.num_heads, cfg.num_layers, cfg.mlp_size, cfg.dropout, cross=pool is not None
        )

    def unpack(self, state: Tensor) -> tuple[Tensor | None, Tensor, Tensor]:
        """``state [G, A, S]`` -> memory ``[G, A, D]`` or None, history ``[G, A, K, Dh]``, valid ``[G, A, K]``."""
        G, A, _ = state.shape
        Dh, K, m = self.history_dim, self.history_len, self.mem_size
        memory = state[..., :m] if self.memory else None
        history = state[..., m : m + K * Dh].reshape(G, A, K, Dh)
        valid = state[..., m + K * Dh : m + K * Dh + K] > 0.5
        return memory, history, valid

    def pack(self, memory: Tensor | None, history: Tensor, valid: Tensor) -> Tensor:
        G, A, K, D = history.shape
        parts = [history.reshape(G, A, K * D), valid.to(history.dtype)]
        if memory is not None:
            parts.insert(0, memory.to(history.dtype))
        state = torch.cat(parts, dim=-1)
        if state.shape[-1] < self.state_size:  # the 1-float placeholder of a stateless configuration
            state = torch.cat([state, state.new_zeros(G, A, self.state_size - state.shape[-1])], dim=-1)
        return state

    def _step(self, x: Tensor, state: Tensor, active: Tensor | None) -> tuple[Tensor, Tensor]:
        return self._step_with_pool(x, state, active, None)

    def _step_with_pool(
        self, x: Tensor, state: Tensor, active: Tensor | None, replaced: Pool | None
    ) -> tuple[Tensor, Tensor]:
        if replaced is not None and self.pool is None:
            raise ValueError("this core reads no memory pool, so its pool cannot be replaced")
        G, A, D = x.shape
        N, K, Dh, m = G * A, self.history_len, self.history_dim, self.mem_size
        memory, history, valid = self.unpack(state)  # history (G, A, K, Dh)
        current = x.reshape(N, 1, D).to(state.dtype)
        # tokens: history oldest..newest (up-projected when stored narrower), then the current embedding;
        # the transformer concatenates them with the memory tokens and adds the position embeddings
        segment = [current]
        if K:
            slots = history.reshape(N, K, Dh)  # a view of the state
            if isinstance(self.hist_up, nn.Linear):  # one copy to 2-D rows, then one addmm
                slots = self.hist_up(slots.reshape(N * K, Dh)).view(N, K, D).to(state.dtype)
            segment.insert(0, slots)
        seg_valid = valid.view(N, K) if K else None  # the history flags (the current token is valid)
        mem_tokens = None if memory is None else memory.reshape(N, 1, D)
        pool = replaced
        if self.pool is not None and pool is None:
            assert memory is not None and mem_tokens is not None  # a pool is built only with memory
            if self.pool == "shared":
                pool = Pool.shared(memory[:, :, None], active)  # entries m_j(t-1), j active in env g
            else:
                pool = Pool.own(mem_tokens)
        out = self.transformer(segment, mem_tokens, seg_valid, pool, last_only=True, segment_pos=self.pos_emb)
        features = out.segment.view(G, A, D)
        # the new state in one cat: [new memory | slots 2..K, the current embedding | flags 2..K, 1]
        parts: list[Tensor] = []
        if out.memory is not None:
            parts.append(out.memory.view(G, A, D).to(state.dtype))
        if K:
            stored = self.hist_down(current.view(G, A, D)).to(state.dtype)  # (G, A, Dh)
            flags = valid.to(state.dtype)
            one = cached_ones(state.dtype, state.device).expand(G, A, 1)
            parts += [state[..., m + Dh : m + K * Dh], stored, flags[..., 1:], one]
        width = sum(p.shape[-1] for p in parts)
        if width < self.state_size:  # the 1-float placeholder of a stateless configuration
            parts.append(state.new_zeros(G, A, self.state_size - width))
        return features, torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]


class GRUCore(MemoryCore):
    """``gru``: the state is the hidden vector of a GRU cell; the features are the new hidden vector."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.state_size = cfg.hidden_size
        self.state_precision = cfg.state_precision
        self.cell = nn.GRUCell(cfg.hidden_size, cfg.hidden_size)

    def _step(self, x: Tensor, state: Tensor, active: Tensor | None) -> tuple[Tensor, Tensor]:
        G, A, D = x.shape
        h = self.cell(x.reshape(G * A, D).to(state.dtype), state.reshape(G * A, D)).view(G, A, D)
        return h, h.to(state.dtype)


class FeedForwardCore(MemoryCore):
    """``none``: a pre-LayerNorm residual MLP on the current embedding; the state is a placeholder."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.state_size = 1
        self.norm = nn.LayerNorm(cfg.hidden_size)
        self.mlp = MLP(cfg.hidden_size, cfg.mlp_size, cfg.dropout)
        self.norm_out = nn.LayerNorm(cfg.hidden_size)

    def _features(self, x: Tensor) -> Tensor:
        return self.norm_out(x + self.mlp(self.norm(x)))

    def _step(self, x: Tensor, state: Tensor, active: Tensor | None) -> tuple[Tensor, Tensor]:
        return self._features(x), state

    def sequence(
        self, x: Tensor, state: Tensor, reset: Tensor | None = None, active: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        # Fast path (no recurrence): all T at once.  The final state is what the loop of steps leaves:
        # the placeholder, zeroed if the agent was reset at any step (tested against the loop).
        return self._features(x), self.reset_state(state, None if reset is None else reset.any(dim=2))


CORES: dict[str, Callable[[ModelConfig], MemoryCore]] = {
    "srmt": lambda cfg: TransformerCore(cfg, memory=True, pool="shared"),
    "rmt": lambda cfg: TransformerCore(cfg, memory=True, pool="own"),
    "attention": lambda cfg: TransformerCore(cfg, memory=False, pool=None),
    "gru": GRUCore,
    "none": FeedForwardCore,
}


def build_core(cfg: ModelConfig) -> MemoryCore:
    """The memory core named by ``cfg.core``."""
    if cfg.core not in CORES:
        raise ValueError(f"core={cfg.core!r} is not one of {', '.join(CORES)}")
    return CORES[cfg.core](cfg)
