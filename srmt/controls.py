"""Pool controls: run a trained SRMT with its shared pool replaced, to measure how much it reads the pool.

A reviewer's question about shared memory is "does the policy use it?". Two controls answer it at
evaluation time, without retraining and without patching the model:

- ``own``: every agent reads only its own memory ``m_i(t-1)`` through the cross-attention (what an
  ``rmt`` core reads), so nothing of the other agents reaches it through the pool;
- ``other``: every agent reads the pool ``{m_j(t-1)}`` of *another* episode (a donor environment played
  by the same policy at the same time), so the pool is well-formed but carries the wrong information.

``shared`` is the model's own step (:meth:`ActorCritic.step`). The agent's own memory token, history and
memory write are unchanged in every control; only the pool entries differ.

The model's own step runs with the pool replaced (``ActorCritic.step(..., pool=...)``), so every part of
the core (history projections, state precision, masks) is the trained model's; ``tests/test_srmt_controls.py``
checks ``own`` against an ``rmt`` core with the same weights and ``other`` with the episode as its own
donor against the model's step.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from srmt.blocks import Pool
from srmt.core import TransformerCore
from srmt.model import ActorCritic, ActorCriticOutput

PoolControl = Literal["shared", "own", "other"]
POOL_CONTROLS: tuple[str, ...] = ("shared", "own", "other")


def check_pool_control(net: ActorCritic, pool: str) -> None:
    """One-line errors for an unknown control or a model without a shared pool."""
    if pool not in POOL_CONTROLS:
        raise ValueError(f"unknown pool control {pool!r}; allowed: {', '.join(POOL_CONTROLS)}")
    core = net.core
    if pool != "shared" and not (isinstance(core, TransformerCore) and core.pool == "shared"):
        raise ValueError(
            f"pool={pool!r} replaces the shared memory pool, which only the 'srmt' core has; "
            f"this model's core is {net.cfg.core!r} (use pool=shared)"
        )


def control_pool(
    core: TransformerCore,
    memory: Tensor,
    active: Tensor | None,
    pool: PoolControl,
    donor_memory: Tensor | None = None,
    donor_active: Tensor | None = None,
) -> Pool:
    """The pool agents read under a control: ``memory [G, A, D]`` (after resets), ``active [G, A]``.

    ``shared``: the memories of the active agents of the same environment (the model's own pool);
    ``own``: each agent's own memory only; ``other``: ``donor_memory [G, A, D]`` of environment g's
    donor, masked by ``donor_active`` (agent a may always read donor entry a, so no softmax row is empty).
    """
    G, A, D = memory.shape
    if pool == "shared":
        return Pool.shared(memory[:, :, None], active)
    if pool == "own":
        return Pool.own(memory.reshape(G * A, 1, D))
    if pool == "other":
        if donor_memory is None or tuple(donor_memory.shape) != (G, A, D):
            got = None if donor_memory is None else tuple(donor_memory.shape)
            raise ValueError(f"pool='other' needs donor memories of shape {(G, A, D)}, got {got}")
        return Pool.shared(donor_memory[:, :, None].to(memory.dtype), donor_active)
    raise ValueError(f"unknown pool control {pool!r}; allowed: {', '.join(POOL_CONTROLS)}")


def core_memory(core: TransformerCore, state: Tensor, reset: Tensor | None = None) -> Tensor:
    """``[G, A, D]`` memories ``m(t-1)`` in ``state [G, A, S]`` after the episode resets in ``reset``."""
    memory, _, _ = core.unpack(core.reset_state(state, reset))
    if memory is None:
        raise ValueError("this core has no memory")
    return memory


@torch.no_grad()
def control_step(
    net: ActorCritic,
    obs: Tensor,
    state: Tensor,
    reset: Tensor | None = None,
    active: Tensor | None = None,
    *,
    pool: PoolControl = "shared",
    donor_state: Tensor | None = None,
    donor_reset: Tensor | None = None,
    donor_active: Tensor | None = None,
) -> ActorCriticOutput:
    """:meth:`ActorCritic.step` (evaluation only, no gradients) with the pool replaced by ``pool``.

    ``obs [G, A, *O]``, ``state [G, A, S]``, ``reset``/``active [G, A]``; for ``other`` also the
    donors' ``donor_state [G, A, S]`` (before their own step) and their ``donor_reset``/``donor_active``.
    """
    check_pool_control(net, pool)
    if pool == "shared":
        return net.step(obs, state, reset, active)
    core = net.core
    assert isinstance(core, TransformerCore)  # check_pool_control
    memory = core_memory(core, state, reset)  # m(t-1) after resets: what the pool is built from
    donor_memory = None if donor_state is None else core_memory(core, donor_state, donor_reset)
    entries = control_pool(core, memory, active, pool, donor_memory, donor_active)
    return net.step(obs, state, reset, active, pool=entries)
