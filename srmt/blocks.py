"""Attention blocks shared by the online memory core and the offline (RATE-style) sequence model.

A segment of tokens is processed as ``[read memory (M) ; segment (L) ; write memory (M)]``:

- read-memory tokens see the read-memory tokens only;
- segment token i sees the read memory and the valid segment tokens j <= i (causal, so a segment of a
  recorded trajectory never looks ahead);
- write-memory tokens see everything, so the new memory depends on the whole segment, including its
  last (current) token.  This is the fix for the reference SRMT, whose memory token came first under a
  causal mask and therefore never saw an observation (DESIGN.md, "Memory core semantics").

Every layer then lets each token read a memory *pool* through cross-attention: in SRMT the memories
``m_j(t-1)`` of the agents of the same environment, masked so that an inactive agent is never read.
SRMT's online step is the case M=1, segment = recent history + current embedding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_CONSTANTS: dict[tuple, Tensor] = {}
"""Small constant tensors (identity masks, 0 / -inf, ones) built once per key, not per step: in the eager
inference step every op is a kernel launch, and these would otherwise be rebuilt at every call."""


def constant(key: tuple, make: Callable[[], Tensor]) -> Tensor:
    """``make()`` cached under ``key`` (which must name everything ``make`` depends on: shape, dtype,
    device).  Inside a ``torch.compile`` graph it is built fresh: a constant there, and a cache write
    would force recompiles.  The few keys per shape and device keep the cache small."""
    if torch.compiler.is_compiling():
        return make()
    t = _CONSTANTS.get(key)
    if t is None:
        t = _CONSTANTS[key] = make()
    return t


def _eye(n: int, device: torch.device) -> Tensor:
    return constant(("eye", n, device), lambda: torch.eye(n, dtype=torch.bool, device=device))


def cached_ones(dtype: torch.dtype, device: torch.device) -> Tensor:
    """A cached 1-element ``[1, 1, 1]`` ones tensor; ``.expand(...)`` it (a view, no kernel)."""
    return constant(("ones", dtype, device), lambda: torch.ones(1, 1, 1, dtype=dtype, device=device))


def attention_bias(mask: Tensor, dtype: torch.dtype, repeat: int = 1) -> Tensor:
    """Bool mask ``[..., R, P]`` (True = attend) -> the additive float mask ``[..., R * repeat, P]`` in
    ``dtype`` (0 where True, -inf where False; row r repeated ``repeat`` times), in one op.

    ``scaled_dot_product_attention`` converts a bool mask to exactly this itself (two scalar tensors and
    a ``where`` per call); doing it here with cached scalars saves those ops, and ``repeat`` builds an
    expanded mask without a separate copy."""
    device = mask.device
    zero = constant(
        ("zero", dtype, device, repeat), lambda: torch.zeros(repeat, 1, dtype=dtype, device=device)
    )
    ninf = constant(("-inf", dtype, device), lambda: torch.tensor(float("-inf"), dtype=dtype, device=device))
    if repeat == 1:
        return torch.where(mask, zero[0, 0], ninf)
    *lead, R, P = mask.shape
    return torch.where(mask[..., None, :], zero, ninf).view(*lead, R * repeat, P)


class Pool(NamedTuple):
    """Memory entries that groups of query rows read through cross-attention.

    The N query rows are split into B contiguous groups of R = N // B rows (an environment's agents);
    every row of group b may read the entries ``memory[b]`` allowed by ``mask[b, r]``.
    """

    memory: Tensor
    """``[B, P, D]`` pool entries per group."""
    mask: Tensor | None
    """``[B, R, P]`` bool, True where row r of group b may read entry p; None = every entry."""

    @staticmethod
    def shared(memory: Tensor, active: Tensor | None = None) -> Pool:
        """The memories of one environment's agents, read by each of them.

        ``memory [G, A, M, D]`` (M memory tokens per agent), ``active [G, A]`` bool or None.  Agent a reads
        the entries of the active agents of its environment and always its own: an active agent is in
        its own pool anyway, and for an inactive one (whose outputs are don't-care) this keeps the
        softmax finite even when every agent of the environment is inactive.
        """
        G, A, M, D = memory.shape
        if active is None:
            return Pool(memory.reshape(G, A * M, D), None)
        readable = active[:, None, :] | _eye(A, memory.device)  # (G, A reader, A entry)
        mask = readable[..., None].expand(G, A, A, M).reshape(G, A, A * M)
        return Pool(memory.reshape(G, A * M, D), mask)

    @staticmethod
    def own(memory: Tensor) -> Pool:
        """Each row reads only its own memory tokens: ``memory [N, M, D]`` (RMT, no sharing)."""
        return Pool(memory, None)


class Attention(nn.Module):
    """Multi-head attention through ``scaled_dot_product_attention``; queries and keys from separate inputs."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.dropout = dropout
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self, q_in: Tensor, kv_in: Tensor, mask: Tensor | None = None, mask_repeat: int = 1
    ) -> Tensor:
        """``q_in [B, Lq, D]``, ``kv_in [B, Lk, D]``, ``mask`` bool broadcastable to ``[B, 1, Lq, Lk]``
        (True = attend; every row needs one True) -> ``[B, Lq, D]``.

        ``mask_repeat``: each mask row stands for that many consecutive query rows (``mask [B, 1, Lq /
        mask_repeat, Lk]``), expanded in the same op that makes the additive mask."""
        B, Lq, D = q_in.shape
        Lk = kv_in.shape[1]
        H = self.num_heads
        # 2-D inputs: a linear on a strided 3-D slice copies it and then runs matmul + add; on the slice
        # reshaped to 2-D (the same copy) it is one addmm
        q = self.q(q_in.reshape(B * Lq, D)).view(B, Lq, H, D // H).transpose(1, 2)  # (B, H, Lq, hd)
        kv = self.kv(kv_in.reshape(B * Lk, D))
        k, v = kv.view(B, Lk, 2, H, D // H).permute(2, 0, 3, 1, 4)  # 2 x (B, H, Lk, hd)
        if mask is not None and mask.dtype == torch.bool:
            mask = attention_bias(mask, q.dtype, mask_repeat)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, H, Lq, hd)
        return self.out(y.transpose(1, 2).reshape(B * Lq, D)).view(B, Lq, D)


class MLP(nn.Sequential):
    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        # no Dropout module at p=0: one op less per step in the recurrent loop
        drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim), drop)


class MemoryBlock(nn.Module):
    """One pre-LayerNorm layer: masked self-attention, cross-attention to a pool (optional), MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_size: int, dropout: float = 0.0, cross: bool = True):
        super().__init__()
        self.norm_self = nn.LayerNorm(dim)
        self.self_attn = Attention(dim, num_heads, dropout)
        self.norm_cross = nn.LayerNorm(dim) if cross else None
        self.norm_pool = nn.LayerNorm(dim) if cross else None
        self.cross_attn = Attention(dim, num_heads, dropout) if cross else None
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_size, dropout)

    def forward(
        self, x: Tensor, mask: Tensor | None = None, pool: Pool | None = None, query: slice | None = None
    ) -> Tensor:
        """``x [N, L, D]``, ``mask`` bool broadcastable to ``[N, 1, Lq, L]`` -> ``[N, Lq, D]``.

        ``query`` picks the positions whose outputs are needed (a slice of L; None = all): only those
        are updated, the others serve as keys.  ``pool`` None skips the cross-attention.
        """
        h = self.norm_self(x)
        xq, hq = (x, h) if query is None else (x[:, query], h[:, query])
        xq = xq + self.self_attn(hq, h, mask)
        if pool is not None:
            if self.norm_cross is None:
                raise ValueError("this block was built with cross=False and cannot read a pool")
            xq = xq + self._read_pool(self.norm_cross(xq), pool)
        return xq + self.mlp(self.norm_mlp(xq))

    def _read_pool(self, q: Tensor, pool: Pool) -> Tensor:
        N, Lq, D = q.shape
        B, P, _ = pool.memory.shape
        if N % B:
            raise ValueError(f"{N} query rows cannot be split into {B} pool groups")
        R = N // B
        # one mask row per query row: row r's Lq tokens share r's readable entries (expanded by the attention)
        mask = None if pool.mask is None else pool.mask[:, None]  # (B, 1, R, P)
        assert self.cross_attn is not None and self.norm_pool is not None  # built with cross=True
        y = self.cross_attn(q.reshape(B, R * Lq, D), self.norm_pool(pool.memory), mask, Lq)  # (B, R*Lq, D)
        return y.view(N, Lq, D)


class SegmentOutput(NamedTuple):
    segment: Tensor
    """``[N, L, D]`` outputs of the segment tokens (``[N, 1, D]``, the last token, with ``last_only``)."""
    memory: Tensor | None
    """``[N, M, D]`` new memory (outputs of the write tokens); None without memory."""


class MemoryTransformer(nn.Module):
    """A stack of :class:`MemoryBlock` over ``[read memory ; segment ; write memory]`` (RATE-style).

    Used online by the SRMT/RMT/attention cores (one step: M=1 or 0, segment = history + current
    embedding, ``last_only=True``) and offline on whole trajectory segments (``last_only=False``), with
    or without a cross-agent pool.  Position information of the segment is the caller's business.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        num_layers: int,
        mlp_size: int,
        dropout: float = 0.0,
        cross: bool = True,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            MemoryBlock(dim, num_heads, mlp_size, dropout, cross) for _ in range(num_layers)
        )
        # read and write tokens start from the same memory vector; these tell them apart
        self.read_emb = nn.Parameter(torch.randn(dim) * 0.02)
        self.write_emb = nn.Parameter(torch.randn(dim) * 0.02)
        self.norm_out = nn.LayerNorm(dim)
        # a LayerNorm on the new memory keeps the recurrence m(t) = f(m(t-1), ...) bounded over long episodes
        self.norm_mem = nn.LayerNorm(dim)
        # masks depend only on (M, L, device): built once, not per step
        self._structure_cache: dict[tuple[int, int, torch.device], tuple[Tensor, Tensor]] = {}

    def structure(self, M: int, L: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """``[2M+L, 2M+L]`` bool: which token may attend to which (before key validity), and the identity."""
        key = (M, L, device)
        if torch.compiler.is_compiling() or key not in self._structure_cache:
            n = 2 * M + L
            s = torch.zeros(n, n, dtype=torch.bool, device=device)
            s[:M, :M] = True  # read memory sees read memory
            s[M : M + L, :M] = True  # segment sees read memory ...
            s[M : M + L, M : M + L] = torch.ones(L, L, dtype=torch.bool, device=device).tril()  # ... causally
            s[M + L :, :] = True  # write memory sees everything
            eye = torch.eye(n, dtype=torch.bool, device=device)
            if torch.compiler.is_compiling():
                return s, eye  # constants inside a graph; a cache write would force recompiles
            self._structure_cache[key] = (s, eye)
        return self._structure_cache[key]

    def forward(
        self,
        segment: Tensor | Sequence[Tensor],
        memory: Tensor | None = None,
        segment_valid: Tensor | None = None,
        pool: Pool | None = None,
        last_only: bool = False,
        segment_pos: Tensor | None = None,
    ) -> SegmentOutput:
        """``segment [N, L, D]`` (or its parts ``[N, L_i, D]``, concatenated here), ``memory [N, M, D]``
        or None, ``segment_valid [N, L']`` bool or None (all valid; ``L' < L`` flags the first L'
        tokens, the rest are valid), ``pool`` or None, ``segment_pos [L, D]`` or None (added to the
        segment) -> :class:`SegmentOutput`.

        Invalid segment tokens are never attended (they are padding, e.g. an empty history slot); each
        token may always attend to itself so that no softmax row is empty.  With ``last_only`` and
        memory every row already sees the read memory, and an invalid token's own output is read by no
        valid token, so that self-exception is left out of the mask (the outputs are the same).
        """
        parts = [segment] if isinstance(segment, Tensor) else list(segment)
        N, _, D = parts[0].shape
        L = sum(p.shape[1] for p in parts)
        M = 0 if memory is None else memory.shape[1]
        if segment_pos is not None:
            # the fast path of the online step: one cat of the tokens and one add of their embeddings
            tokens = parts if memory is None else [memory, *parts, memory]
            x = torch.cat(tokens, dim=1) if len(tokens) > 1 else tokens[0]
            if memory is None:
                x = x + segment_pos
            else:
                bias = [self.read_emb.expand(M, D), segment_pos, self.write_emb.expand(M, D)]
                x = x + torch.cat(bias, dim=0)  # (N, 2M+L, D)
        else:
            seg = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
            tokens = [seg] if memory is None else [memory + self.read_emb, seg, memory + self.write_emb]
            x = torch.cat(tokens, dim=1) if len(tokens) > 1 else seg  # (N, 2M+L, D)
        self_exception = not (last_only and M > 0)
        mask = self._mask(M, L, segment_valid, x.device, self_exception)  # (N or 1, 1, 2M+L, 2M+L)
        # with last_only the final layer computes just the last segment token and the write tokens
        query = slice(M + L - 1, 2 * M + L) if last_only else None
        for i, layer in enumerate(self.layers):
            q = query if i == len(self.layers) - 1 else None
            x = layer(x, mask if q is None else mask[:, :, q], pool, q)
        if last_only:
            seg_out, mem_out = x[:, :1], x[:, 1:]
        else:
            seg_out, mem_out = x[:, M : M + L], x[:, M + L :]
        return SegmentOutput(self.norm_out(seg_out), self.norm_mem(mem_out) if memory is not None else None)

    def _mask(
        self, M: int, L: int, segment_valid: Tensor | None, device: torch.device, self_exception: bool = True
    ) -> Tensor:
        s, eye = self.structure(M, L, device)
        if segment_valid is None:
            return s[None, None]
        N, Lv = segment_valid.shape
        ones = cached_ones(torch.bool, device)
        # (N, 2M+L): read memory, the flagged segment tokens, the rest of the segment and the write memory
        key_valid = torch.cat(
            [ones.expand(N, M, 1)[..., 0], segment_valid, ones.expand(N, L - Lv + M, 1)[..., 0]], 1
        )
        allowed = s & key_valid[:, None, :]
        return (allowed | eye if self_exception else allowed)[:, None]
