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

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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
        eye = torch.eye(A, dtype=torch.bool, device=memory.device)
        readable = active[:, None, :] | eye  # (G, A reader, A entry)
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

    def forward(self, q_in: Tensor, kv_in: Tensor, mask: Tensor | None = None) -> Tensor:
        """``q_in [B, Lq, D]``, ``kv_in [B, Lk, D]``, ``mask`` bool broadcastable to ``[B, 1, Lq, Lk]``
        (True = attend; every row needs one True) -> ``[B, Lq, D]``."""
        B, Lq, D = q_in.shape
        Lk = kv_in.shape[1]
        H = self.num_heads
        q = self.q(q_in).view(B, Lq, H, D // H).transpose(1, 2)  # (B, H, Lq, hd)
        k, v = self.kv(kv_in).view(B, Lk, 2, H, D // H).permute(2, 0, 3, 1, 4)  # 2 x (B, H, Lk, hd)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, H, Lq, hd)
        return self.out(y.transpose(1, 2).reshape(B, Lq, D))


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
        mask = None
        if pool.mask is not None:
            # one mask row per query token: row r's Lq tokens share r's readable entries
            mask = pool.mask[:, :, None, :].expand(B, R, Lq, P).reshape(B, 1, R * Lq, P)
        assert self.cross_attn is not None and self.norm_pool is not None  # built with cross=True
        y = self.cross_attn(q.reshape(B, R * Lq, D), self.norm_pool(pool.memory), mask)  # (B, R*Lq, D)
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
        segment: Tensor,
        memory: Tensor | None = None,
        segment_valid: Tensor | None = None,
        pool: Pool | None = None,
        last_only: bool = False,
    ) -> SegmentOutput:
        """``segment [N, L, D]``, ``memory [N, M, D]`` or None, ``segment_valid [N, L]`` bool or None (all
        valid), ``pool`` or None -> :class:`SegmentOutput`.

        Invalid segment tokens are never attended (they are padding, e.g. an empty history slot); each
        token may always attend to itself so that no softmax row is empty.
        """
        N, L, D = segment.shape
        M = 0 if memory is None else memory.shape[1]
        parts = [segment]
        if memory is not None:
            parts = [memory + self.read_emb, segment, memory + self.write_emb]
        x = torch.cat(parts, dim=1) if len(parts) > 1 else segment  # (N, 2M+L, D)
        mask = self._mask(M, L, segment_valid, segment.device)  # (N or 1, 1, 2M+L, 2M+L)
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

    def _mask(self, M: int, L: int, segment_valid: Tensor | None, device: torch.device) -> Tensor:
        s, eye = self.structure(M, L, device)
        if segment_valid is None:
            return s[None, None]
        N = segment_valid.shape[0]
        ones = torch.ones(N, M, dtype=torch.bool, device=device)
        key_valid = torch.cat([ones, segment_valid, ones], dim=1)  # (N, 2M+L)
        return ((s & key_valid[:, None, :]) | eye)[:, None]
