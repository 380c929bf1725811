"""The fast online step of the attention cores against a slow reference written from the definition.

``TransformerCore.step`` builds its tokens in one cat, its masks from cached constants, its additive
attention masks itself and its new state in one cat (fewer kernel launches for the inference worker).
The reference below recomputes one step the plain way: every token of every layer in full (no
``last_only``), explicit softmax attention with the bool masks of the module docstrings (including the
self-exception for invalid tokens), the history window slid by concatenation.  float64, so any
difference beyond rounding is a real one.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from agents.bench.step import OpCounter
from srmt import ModelConfig, build_actor_critic
from srmt.core import TransformerCore

OBS = (3, 5, 5)
G, A = 3, 4


def _attend(attn, q_in, kv_in, allowed):
    """Multi-head attention of ``q_in [B, Lq, D]`` over ``kv_in [B, Lk, D]``; ``allowed [B, Lq, Lk]``."""
    B, Lq, D = q_in.shape
    H = attn.num_heads
    hd = D // H
    q = attn.q(q_in).view(B, Lq, H, hd).transpose(1, 2)
    k, v = attn.kv(kv_in).view(B, -1, 2, H, hd).unbind(2)
    k, v = k.transpose(1, 2), v.transpose(1, 2)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    scores = scores.masked_fill(~allowed[:, None], float("-inf"))
    y = torch.softmax(scores, dim=-1) @ v  # (B, H, Lq, hd)
    return attn.out(y.transpose(1, 2).reshape(B, Lq, D))


def reference_step(core: TransformerCore, x, state, reset, active):
    """One step of ``core`` from its parameters, the slow way: -> (features [G, A, D], state [G, A, S])."""
    Gx, Ax, D = x.shape
    K, Dh, m = core.history_len, core.history_dim, core.mem_size
    if reset is not None:
        state = torch.where(reset[..., None], torch.zeros_like(state), state)
    mem = state[..., :m] if core.memory else None
    slots = state[..., m : m + K * Dh].reshape(Gx, Ax, K, Dh)
    flags = state[..., m + K * Dh : m + K * Dh + K] > 0.5
    tr = core.transformer
    seg = torch.cat([core.hist_up(slots), x[:, :, None]], dim=2) + core.pos_emb  # (G, A, K+1, D)
    seg_valid = torch.cat([flags, torch.ones(Gx, Ax, 1, dtype=torch.bool)], dim=2)
    Mtok = 1 if core.memory else 0
    L = K + 1
    n = 2 * Mtok + L
    toks = [seg] if mem is None else [(mem + tr.read_emb)[:, :, None], seg, (mem + tr.write_emb)[:, :, None]]
    h = torch.cat(toks, dim=2).reshape(Gx * Ax, n, D)
    # allowed[i, j]: read memory sees read memory; segment token i sees read memory and valid j <= i;
    # write memory sees every valid token; every token sees itself
    allowed = torch.zeros(n, n, dtype=torch.bool)
    allowed[:Mtok, :Mtok] = True
    allowed[Mtok : Mtok + L, :Mtok] = True
    allowed[Mtok : Mtok + L, Mtok : Mtok + L] = torch.ones(L, L, dtype=torch.bool).tril()
    allowed[Mtok + L :, :] = True
    ones = torch.ones(Gx * Ax, Mtok, dtype=torch.bool)
    key_valid = torch.cat([ones, seg_valid.reshape(Gx * Ax, L), ones], dim=1)
    allowed = (allowed & key_valid[:, None, :]) | torch.eye(n, dtype=torch.bool)
    for layer in tr.layers:
        h = h + _attend(layer.self_attn, layer.norm_self(h), layer.norm_self(h), allowed)
        if core.pool is not None:
            q = layer.norm_cross(h).reshape(Gx, Ax * n, D)
            if core.pool == "shared":
                entries = layer.norm_pool(mem)  # (G, A, D): m_j(t-1) of the env's agents
                act = torch.ones(Gx, Ax, dtype=torch.bool) if active is None else active
                readable = act[:, None, :] | torch.eye(Ax, dtype=torch.bool)  # (G, reader, entry)
                read = readable[:, :, None, :].expand(Gx, Ax, n, Ax).reshape(Gx, Ax * n, Ax)
                h = h + _attend(layer.cross_attn, q, entries, read).reshape(Gx * Ax, n, D)
            else:  # own memory only
                own = layer.norm_pool(mem.reshape(Gx * Ax, 1, D))
                qa = layer.norm_cross(h)
                h = h + _attend(layer.cross_attn, qa, own, torch.ones(Gx * Ax, n, 1, dtype=torch.bool))
        h = h + layer.mlp(layer.norm_mlp(h))
    features = tr.norm_out(h[:, Mtok + L - 1]).view(Gx, Ax, D)
    parts = []
    if core.memory:
        parts.append(tr.norm_mem(h[:, Mtok + L]).view(Gx, Ax, D))
    if K:
        window = torch.cat([slots, core.hist_down(x[:, :, None])], dim=2)[:, :, 1:]  # slide by one
        parts += [window.reshape(Gx, Ax, K * Dh), seg_valid[:, :, 1:].double()]
    new = torch.cat(parts, dim=-1) if parts else torch.zeros(Gx, Ax, 0, dtype=x.dtype)
    if new.shape[-1] < core.state_size:
        new = torch.cat([new, torch.zeros(Gx, Ax, core.state_size - new.shape[-1], dtype=x.dtype)], -1)
    if core.state_precision == "bfloat16":
        new = new.to(torch.bfloat16).double()
    if active is not None:
        new = torch.where(active[..., None], new, state)
    return features, new


CASES = list(
    itertools.product(
        ("srmt", "rmt", "attention"),
        ((0, 0), (1, 0), (3, 0), (3, 4)),  # (history_len, history_dim)
        (1, 2),  # layers
        ("float32", "bfloat16"),
        ("none", "plain", "mixed"),
    )
)


@pytest.mark.parametrize("core,kd,layers,precision,flags", CASES)
def test_fast_step_equals_slow_reference(core, kd, layers, precision, flags):
    K, Dh = kd
    cfg = ModelConfig(
        core=core,
        hidden_size=8,
        num_heads=2,
        num_layers=layers,
        num_filters=4,
        history_len=K,
        history_dim=Dh,
        state_precision=precision,
    )
    torch.manual_seed(0)
    model = build_actor_critic(cfg, OBS, 5).double().eval()
    g = torch.Generator().manual_seed(K * 10 + layers)
    x = torch.randn(G, A, 8, generator=g, dtype=torch.float64)
    state = torch.randn(G, A, model.state_size, generator=g, dtype=torch.float64)
    if K:  # realistic flags: 0/1, some history slots empty
        state[..., -K:] = (torch.rand(G, A, K, generator=g) < 0.6).double()
    reset = active = None
    if flags == "plain":
        reset, active = torch.zeros(G, A, dtype=torch.bool), torch.ones(G, A, dtype=torch.bool)
    elif flags == "mixed":
        reset = torch.rand(G, A, generator=g) < 0.3
        active = torch.rand(G, A, generator=g) < 0.7
        active[0] = False  # a whole environment inactive: its pool is each agent's own memory only
        active[1, 0] = True
    with torch.no_grad():
        fast_f, fast_s = model.core.step(x, state, reset, active)
        ref_f, ref_s = reference_step(model.core, x, state, reset, active)
    torch.testing.assert_close(fast_f, ref_f, rtol=0, atol=1e-12)
    torch.testing.assert_close(fast_s, ref_s, rtol=0, atol=1e-12)


def test_the_srmt_step_launch_budget():
    """A guard on the work of this change: one SRMT step of the shipped training recipe's model (srmt-mid
    shape, 1 layer, narrow bf16 history) dispatches at most 30 non-view ops more than the stateless
    ``none`` core with the same encoder and heads (46 before the reduction; ``srmt bench step``)."""

    def kernels(core: str) -> int:
        cfg = ModelConfig(
            core=core, hidden_size=16, num_heads=4, num_filters=4, history_len=8, history_dim=4,
            state_precision="bfloat16",
        )  # fmt: skip
        model = build_actor_critic(cfg, OBS, 5).eval()
        x = torch.rand(2, 3, *OBS)
        state = torch.zeros(2, 3, model.state_size)
        flags = torch.zeros(2, 3, dtype=torch.bool)
        with torch.no_grad():
            model.step(x, state, flags, ~flags)  # warm-up: the cached masks and constants
            with OpCounter() as c:
                model.step(x, state, flags, ~flags)
        return c.total - c.views

    assert kernels("srmt") - kernels("none") <= 30
