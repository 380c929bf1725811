"""The rows <-> [G, A, T] layout of the sample-factory adapter, against explicit index loops, and the
start-up checks of the layout invariants."""

from __future__ import annotations

import pytest
import torch

from agents.config import load_experiment
from agents.sf import layout
from agents.sf.sf_config import check_layout, make_sf_config

# ------------------------------------------------------------------ reshapes vs loops


@pytest.mark.parametrize("G,A,T,R", [(1, 1, 4, 4), (3, 2, 8, 8), (2, 3, 8, 4), (2, 4, 6, 2)])
def test_learner_chunks_match_index_loop(G, A, T, R):
    # sample-factory's learner order: trajectory i = env g agent a (i = g*A + a), row = i*T + t
    rows = torch.arange(G * A * T * 2, dtype=torch.float64).reshape(G * A * T, 2)
    chunks = layout.learner_rows_to_chunks(rows, A, T, R)
    C = T // R
    assert chunks.shape == (G * C, A, R, 2)
    for g in range(G):
        for a in range(A):
            for t in range(T):
                row = (g * A + a) * T + t
                assert torch.equal(chunks[g * C + t // R, a, t % R], rows[row])
    assert torch.equal(layout.chunks_to_learner_rows(chunks, A, T, R), rows)


@pytest.mark.parametrize("G,A,T,R", [(2, 3, 8, 4), (1, 2, 4, 4)])
def test_chunk_states_match_index_loop(G, A, T, R):
    C = T // R
    # rnn_states[::R] of the learner rows: one state per (trajectory, chunk)
    states = torch.randn(G * A * C, 5)
    chunked = layout.chunk_states(states, A, T, R)
    for g in range(G):
        for a in range(A):
            for c in range(C):
                assert torch.equal(chunked[g * C + c, a], states[(g * A + a) * C + c])


def test_inference_rows_group_whole_envs():
    x = torch.arange(12).reshape(6, 2)
    groups = layout.rows_to_groups(x, 3)
    assert groups.shape == (2, 3, 2)
    assert torch.equal(groups[1, 2], x[5])
    assert torch.equal(layout.groups_to_rows(groups), x)
    with pytest.raises(ValueError, match="not a whole number of environments"):
        layout.rows_to_groups(torch.zeros(5, 2), 3)


def test_learner_rows_must_be_whole_envs():
    with pytest.raises(ValueError, match="batch_size to a multiple of 16"):
        layout.learner_rows_to_chunks(torch.zeros(24, 1), 2, 8, 8)
    with pytest.raises(ValueError, match="multiple of the BPTT window"):
        layout.learner_rows_to_chunks(torch.zeros(32, 1), 2, 8, 3)


# ------------------------------------------------------------------ debug id checks


def _ids(G, A, R, start=0):
    env_id = torch.arange(G).view(G, 1, 1).expand(G, A, R).clone()
    agent_id = torch.arange(A).view(1, A, 1).expand(G, A, R).clone()
    step = (start + torch.arange(R)).view(1, 1, R).expand(G, A, R).clone()
    return env_id, agent_id, step


def test_id_checks_accept_a_good_layout():
    env_id, agent_id, step = _ids(3, 2, 4)
    layout.check_group_ids(env_id, agent_id, "here")
    layout.check_chunk_steps(step, "here")


def test_id_checks_catch_swapped_agents_mixed_envs_and_gaps():
    env_id, agent_id, step = _ids(3, 2, 4)
    with pytest.raises(layout.LayoutError, match="agent ids out of order"):
        layout.check_group_ids(env_id, agent_id.flip(1), "here")
    mixed = env_id.clone()
    mixed[1, 1] = 0
    with pytest.raises(layout.LayoutError, match="different environments"):
        layout.check_group_ids(mixed, agent_id, "here")
    gap = step.clone()
    gap[..., 2:] += 1
    with pytest.raises(layout.LayoutError, match="not consecutive"):
        layout.check_chunk_steps(gap, "here")
    skew = step.clone()
    skew[0, 1] += 1
    with pytest.raises(layout.LayoutError, match="different time steps"):
        layout.check_chunk_steps(skew, "here")


# ------------------------------------------------------------------ start-up invariants


def _cfg(**train):
    exp = load_experiment({"name": "t", "env": {"name": "bottleneck"}, "train": train})
    return make_sf_config(exp, agents_per_env=2, state_size=8)


def test_default_mapping_satisfies_the_invariants():
    cfg = _cfg(rollout=8, batch_size=64, envs_per_worker=4)
    check_layout(cfg)
    assert cfg.batched_sampling and not cfg.shuffle_minibatches and cfg.num_policies == 1
    assert cfg.rnn_size == 8 and cfg.recurrence == 8 and cfg.num_envs_per_worker == 2
    assert cfg.srmt_envs_per_split == 2 and cfg.srmt["train"]["batch_size"] == 64


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("batched_sampling", False, "batched_sampling must be True"),
        ("shuffle_minibatches", True, "shuffle_minibatches must be False"),
        ("num_policies", 2, "num_policies=2 is not supported"),
        ("batch_size", 40, "batch_size=40 must be a multiple of num_agents x rollout"),
        ("recurrence", 3, "recurrence=3 must be >= 2 and divide"),
        ("recurrence", 1, "recurrence=1 must be >= 2"),
        ("rnn_type", "lstm", "state buffers"),
    ],
)
def test_broken_invariants_are_one_line_errors(key, value, match):
    cfg = _cfg(rollout=8, batch_size=64)
    cfg[key] = value
    with pytest.raises(ValueError, match=match) as e:
        check_layout(cfg)
    assert "\n" not in str(e.value)


def test_sync_mode_needs_whole_rollouts_per_iteration():
    with pytest.raises(ValueError, match="async_rl=false needs"):
        check_layout(_cfg(async_rl=False, rollout=8, batch_size=48, num_workers=2, envs_per_worker=2))
    check_layout(_cfg(async_rl=False, rollout=8, batch_size=64, num_workers=2, envs_per_worker=2))


def test_sf_overrides_pass_through_but_not_layout_keys():
    assert _cfg(sf_overrides={"heartbeat_interval": 7}).heartbeat_interval == 7
    with pytest.raises(ValueError, match="'shuffle_minibatches' is set by srmt"):
        _cfg(sf_overrides={"shuffle_minibatches": True})
    with pytest.raises(ValueError, match="'no_such_arg' is not a sample-factory argument"):
        _cfg(sf_overrides={"no_such_arg": 1})


def test_policy_workers_reach_sample_factory_and_must_be_positive():
    assert _cfg().policy_workers_per_policy == 1
    assert _cfg(policy_workers=2).policy_workers_per_policy == 2
    with pytest.raises(ValueError, match="policy_workers"):
        _cfg(policy_workers=0)
    with pytest.raises(ValueError, match="use train.policy_workers instead"):
        _cfg(sf_overrides={"policy_workers_per_policy": 2})


def test_bad_device_is_a_one_line_error():
    exp = load_experiment({"name": "t", "device": "tpu"})
    with pytest.raises(ValueError, match="device='tpu' is not one of auto, cpu, cuda, cuda:N"):
        make_sf_config(exp, 2, 8)


def test_sf_normalize_input_points_to_the_model_key():
    with pytest.raises(
        ValueError, match=r"'normalize_input' has a typed key; use model.normalize_input instead"
    ):
        _cfg(sf_overrides={"normalize_input": True})
