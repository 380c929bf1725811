"""The one place that maps sample-factory's flat rows to the memory core's ``[G, A, ...]`` layout and back.

Why the layout holds (sample-factory 2.1.1, batched sampling, one policy):

* Inference: a request is a slice of trajectory buffers owned by one worker split; its rows are that split's
  environments one after another, each environment's agents in order. Requests are concatenated, so
  ``N`` rows are ``G = N // A`` whole environments: ``rows.view(G, A, ...)``.
* Learning: the training batch is ``[num_traj, T]`` trajectories (``T = rollout``) copied slice-wise from
  the same buffers, so trajectory ``i`` is agent ``i % A`` of environment ``i // A``; the learner flattens
  it trajectory-major (row = ``i * T + t``) and cuts minibatches of ``batch_size`` consecutive rows
  (``shuffle_minibatches=False``), i.e. whole environments when ``batch_size % (A * T) == 0``. Its
  non-recurrent path hands the core the state at the start of each BPTT chunk of ``R`` steps
  (``rnn_states[::R]``), chunk ``c`` of trajectory ``i`` being row ``i * T / R + c``.

These invariants are checked at start-up (``agents.sf.sf_config.check_layout``) and, with
``train.debug_layout``, on every batch from ids the env adapter writes into the observations.
"""

from __future__ import annotations

import torch
from torch import Tensor


def rows_to_groups(x: Tensor, num_agents: int) -> Tensor:
    """Inference rows ``[N, ...]`` -> ``[G, A, ...]``."""
    N = x.shape[0]
    if N % num_agents:
        raise ValueError(
            f"batch of {N} rows is not a whole number of environments with {num_agents} agents each; "
            "sample-factory must run with batched_sampling=True"
        )
    return x.reshape(N // num_agents, num_agents, *x.shape[1:])


def groups_to_rows(x: Tensor) -> Tensor:
    """``[G, A, ...]`` -> rows ``[G * A, ...]``."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


def _check_learner_rows(num_rows: int, num_agents: int, rollout: int, bptt: int) -> int:
    if rollout % bptt:
        raise ValueError(f"rollout={rollout} must be a multiple of the BPTT window {bptt}")
    per_env = num_agents * rollout
    if num_rows % per_env:
        raise ValueError(
            f"learner minibatch of {num_rows} rows is not a whole number of environments x rollout "
            f"({num_agents} agents x {rollout} steps = {per_env}); set train.batch_size to a multiple of {per_env}"
        )
    return num_rows // per_env


def learner_rows_to_chunks(x: Tensor, num_agents: int, rollout: int, bptt: int) -> Tensor:
    """Learner rows ``[G*A*T, ...]`` (trajectory-major) -> ``[G * T/R, A, R, ...]`` BPTT chunks."""
    G = _check_learner_rows(x.shape[0], num_agents, rollout, bptt)
    A, R, C = num_agents, bptt, rollout // bptt
    rest = x.shape[1:]
    # (G, A, C, R, ...) -> (G, C, A, R, ...): chunks of one env side by side, agents kept together
    return x.reshape(G, A, C, R, *rest).transpose(1, 2).reshape(G * C, A, R, *rest)


def chunks_to_learner_rows(y: Tensor, num_agents: int, rollout: int, bptt: int) -> Tensor:
    """Inverse of :func:`learner_rows_to_chunks`: ``[G * T/R, A, R, ...]`` -> rows ``[G*A*T, ...]``."""
    A, R, C = num_agents, bptt, rollout // bptt
    GC = y.shape[0]
    if GC % C or y.shape[1] != A or y.shape[2] != R:
        raise ValueError(f"chunk tensor of shape {tuple(y.shape)} does not match A={A}, R={R}, chunks={C}")
    G = GC // C
    rest = y.shape[3:]
    return y.reshape(G, C, A, R, *rest).transpose(1, 2).reshape(G * A * C * R, *rest)


def chunk_states(states: Tensor, num_agents: int, rollout: int, bptt: int) -> Tensor:
    """States at chunk starts ``[G*A*T/R, S]`` (trajectory-major) -> ``[G * T/R, A, S]``."""
    A, C = num_agents, rollout // bptt
    N, S = states.shape
    if N % (A * C):
        raise ValueError(f"{N} chunk states do not split into environments of {A} agents x {C} chunks")
    G = N // (A * C)
    return states.reshape(G, A, C, S).transpose(1, 2).reshape(G * C, A, S)


# ---------------------------------------------------------------- debug checks (train.debug_layout=true)


class LayoutError(RuntimeError):
    """The rows sample-factory handed over are not grouped as the shared-memory core needs."""


def check_group_ids(env_id: Tensor, agent_id: Tensor, where: str) -> None:
    """``[G, A, ...]`` ids: one env per group (also along any time axis), agents 0..A-1 in order on dim 1."""
    A = agent_id.shape[1]
    expected = torch.arange(A, device=agent_id.device).view(1, A, *([1] * (agent_id.dim() - 2)))
    if not torch.equal(agent_id.long(), expected.expand_as(agent_id)):
        bad = (agent_id.long() != expected).nonzero()[0].tolist()
        raise LayoutError(
            f"{where}: agent ids out of order at index {bad}; rows are not grouped per environment"
        )
    flat = env_id.reshape(env_id.shape[0], -1)
    same_env = flat == flat[:, :1]
    if not bool(same_env.all()):
        bad = (~same_env).nonzero()[0].tolist()
        raise LayoutError(f"{where}: agents of different environments mixed in one group at index {bad}")


def check_chunk_steps(step: Tensor, where: str) -> None:
    """``[G', A, R]`` env step counters: the same for all agents, consecutive along R."""
    if not bool((step == step[:, :1]).all()):
        raise LayoutError(f"{where}: agents of one group are at different time steps")
    if step.shape[-1] > 1 and not bool((step[..., 1:] - step[..., :-1] == 1).all()):
        raise LayoutError(f"{where}: time steps within a BPTT chunk are not consecutive")
