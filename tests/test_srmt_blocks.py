"""Attention blocks: SDPA path vs an explicit softmax, segment masks, the RATE-style block with and without
a pool, and the ``last_only`` fast path vs the full computation."""

from __future__ import annotations

import math

import pytest
import torch

from srmt import MemoryBlock, MemoryTransformer, Pool
from srmt.blocks import Attention

D, HEADS = 8, 2


def assert_close(a, b, tol=1e-10):
    torch.testing.assert_close(a, b, rtol=0, atol=tol)


def reference_attention(att: Attention, q_in, kv_in, mask):
    """Slow reference: explicit per-head softmax(QK^T / sqrt(d)) V with -inf where the mask is False."""
    B, Lq, _ = q_in.shape
    H, hd = att.num_heads, D // att.num_heads
    q = att.q(q_in).view(B, Lq, H, hd).transpose(1, 2)
    k, v = att.kv(kv_in).split(D, dim=-1)
    k = k.view(B, -1, H, hd).transpose(1, 2)
    v = v.view(B, -1, H, hd).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    y = scores.softmax(-1) @ v
    return att.out(y.transpose(1, 2).reshape(B, Lq, D))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_attention_matches_explicit_softmax():
    att = Attention(D, HEADS).double()
    q, kv = torch.randn(3, 4, D, dtype=torch.float64), torch.randn(3, 6, D, dtype=torch.float64)
    mask = torch.rand(3, 1, 4, 6) < 0.6
    mask[..., 0] = True
    assert_close(att(q, kv, mask), reference_attention(att, q, kv, mask))
    assert_close(att(q, kv), reference_attention(att, q, kv, None))


def test_pool_shared_mask_reads_active_agents_and_self():
    mem = torch.randn(1, 3, 2, D)  # G=1, A=3, M=2
    active = torch.tensor([[True, False, True]])
    pool = Pool.shared(mem, active)
    assert pool.memory.shape == (1, 6, D)
    expected = torch.tensor(
        [[[1, 1, 0, 0, 1, 1], [1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 1, 1]]], dtype=torch.bool
    )  # agent 1 is inactive: nobody else reads it, it reads everyone (don't-care, finite)
    assert torch.equal(pool.mask, expected)


def make_transformer(layers: int = 2, cross: bool = True) -> MemoryTransformer:
    return MemoryTransformer(D, HEADS, layers, mlp_size=16, cross=cross).double()


def segment_inputs(N=6, L=5, M=2):
    seg = torch.randn(N, L, D, dtype=torch.float64)
    mem = torch.randn(N, M, D, dtype=torch.float64)
    valid = torch.rand(N, L) < 0.7
    valid[:, -1] = True
    return seg, mem, valid


@pytest.mark.parametrize("with_pool", [False, True])
def test_rate_segment_with_and_without_pool(with_pool):
    """Offline use: a trajectory segment with read/write memory tokens, optionally reading a cross-agent pool."""
    tr = make_transformer()
    G, A, L, M = 2, 3, 5, 2
    seg, mem, _ = segment_inputs(G * A, L, M)
    active = torch.tensor([[True, True, False], [True, False, False]])
    pool = Pool.shared(mem.view(G, A, M, D), active) if with_pool else None
    out = tr(seg, mem, None, pool)
    assert out.segment.shape == (G * A, L, D) and out.memory.shape == (G * A, M, D)
    # causal: the first tokens do not see the later ones; the write memory sees the last one
    seg2 = seg.clone()
    seg2[:, -1] += torch.randn(G * A, D, dtype=torch.float64)
    out2 = tr(seg2, mem, None, pool)
    assert_close(out2.segment[:, :-1], out.segment[:, :-1])
    assert (out2.memory - out.memory).abs().amax(dim=(1, 2)).min() > 1e-6
    # the pool is read (or not): agent 0's memory changes agent 1's outputs only through the pool
    mem2 = mem.clone()
    mem2[0] += torch.randn(M, D, dtype=torch.float64)
    out3 = tr(seg, mem2, None, Pool.shared(mem2.view(G, A, M, D), active) if with_pool else None)
    changed = (out3.segment[1] - out.segment[1]).abs().max() > 1e-6
    assert changed == with_pool


def test_inactive_pool_entries_are_not_read():
    tr = make_transformer()
    G, A, M = 1, 3, 1
    seg, mem, _ = segment_inputs(G * A, 4, M)
    active = torch.tensor([[True, True, False]])
    mem2 = mem.clone()
    mem2[2] = 1e3 * torch.randn(M, D, dtype=torch.float64)
    out = tr(seg, mem, None, Pool.shared(mem.view(G, A, M, D), active))
    out2 = tr(seg, mem, None, Pool.shared(mem2.view(G, A, M, D), active))
    assert_close(out2.segment[:2], out.segment[:2])
    assert_close(out2.memory[:2], out.memory[:2])


def test_invalid_segment_tokens_are_never_attended():
    tr = make_transformer()
    seg, mem, valid = segment_inputs()
    seg2 = seg.clone()
    seg2[~valid] = 1e3 * torch.randn(int((~valid).sum()), D, dtype=torch.float64)
    out, out2 = tr(seg, mem, valid), tr(seg2, mem, valid)
    assert_close(out2.segment[valid], out.segment[valid])
    assert_close(out2.memory, out.memory)


@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("with_memory", [True, False])
def test_last_only_equals_full_computation(layers, with_memory):
    tr = make_transformer(layers, cross=with_memory)
    G, A, L, M = 2, 3, 5, 1
    seg, mem, valid = segment_inputs(G * A, L, M)
    pool = Pool.shared(mem.view(G, A, M, D), torch.rand(G, A) < 0.5) if with_memory else None
    mem = mem if with_memory else None
    full = tr(seg, mem, valid, pool)
    fast = tr(seg, mem, valid, pool, last_only=True)
    assert_close(fast.segment, full.segment[:, -1:])
    if with_memory:
        assert_close(fast.memory, full.memory)


def test_block_without_cross_attention_refuses_a_pool():
    block = MemoryBlock(D, HEADS, 16, cross=False)
    x = torch.randn(2, 3, D)
    with pytest.raises(ValueError, match="cross=False"):
        block(x, None, Pool.own(torch.randn(2, 1, D)))
