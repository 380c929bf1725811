"""Pool controls (srmt/controls.py): the replaced pool holds what it should, and the control path equals the
model's own step where it must (float64)."""

from __future__ import annotations

import pytest
import torch

from srmt import ModelConfig, build_actor_critic
from srmt.controls import control_pool, control_step, core_memory

OBS = (3, 5, 5)
G, A = 3, 4
SIZES = dict(hidden_size=8, num_heads=2, num_filters=4, num_res_blocks=1, history_len=3)


# the lifelong recipe's compact state (narrow history slots, bf16-rounded state) takes the same path
COMPACT = dict(history_dim=4, state_precision="bfloat16")


def make(core: str = "srmt", **extra):
    torch.manual_seed(0)
    return build_actor_critic(ModelConfig(core=core, **{**SIZES, **extra}), OBS, 5).double()


def inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    obs = torch.rand(G, A, *OBS, generator=g, dtype=torch.float64)
    reset = torch.rand(G, A, generator=g) < 0.2
    active = torch.rand(G, A, generator=g) < 0.8
    return obs, reset, active


def warm(net, seed: int):
    g = torch.Generator().manual_seed(seed)
    obs = torch.rand(G, A, 4, *OBS, generator=g, dtype=torch.float64)
    return net.sequence(obs, net.initial_state(G, A)).state.detach()


def close(a, b, tol=1e-10):
    torch.testing.assert_close(a, b, rtol=0, atol=tol)


@pytest.mark.parametrize("extra", [{}, COMPACT], ids=["full", "compact"])
def test_other_pool_of_the_same_episode_is_the_models_own_step(extra):
    """Donor = the environment itself: the control path must give exactly ActorCritic.step."""
    net = make(**extra)
    obs, reset, active = inputs(1)
    state = warm(net, 2)
    ref = net.step(obs, state, reset, active)
    out = control_step(
        net,
        obs,
        state,
        reset,
        active,
        pool="other",
        donor_state=state,
        donor_reset=reset,
        donor_active=active,
    )
    for a, b in zip(out, ref):
        close(a, b)


@pytest.mark.parametrize("extra", [{}, COMPACT], ids=["full", "compact"])
def test_own_pool_equals_an_rmt_core_with_the_same_weights(extra):
    """'own' is what rmt reads: an rmt model loaded with the srmt weights gives the same outputs."""
    net, rmt = make("srmt", **extra), make("rmt", **extra)
    rmt.load_state_dict(net.state_dict())
    obs, reset, active = inputs(3)
    state = warm(net, 4)
    out = control_step(net, obs, state, reset, active, pool="own")
    ref = rmt.step(obs, state, reset, active)
    for a, b in zip(out, ref):
        close(a, b)
    assert (out.logits - net.step(obs, state, reset, active).logits).abs().max() > 1e-6  # and not srmt's


def test_the_replaced_pool_holds_the_donor_or_own_memories():
    net = make()
    core = net.core
    state, donor = warm(net, 5), warm(net, 6)
    _, reset, active = inputs(7)
    mem, dmem = core_memory(core, state, reset), core_memory(core, donor)
    assert (mem - dmem).abs().max() > 1e-3  # two different episodes
    shared = control_pool(core, mem, active, "shared")
    other = control_pool(core, mem, active, "other", dmem, None)
    own = control_pool(core, mem, active, "own")
    close(shared.memory, mem.reshape(G, A, -1))
    close(other.memory, dmem.reshape(G, A, -1))  # the entries are the donor's, not this episode's
    assert other.mask is None
    assert own.memory.shape == (G * A, 1, 8)
    close(own.memory[:, 0], mem.reshape(G * A, -1))  # row i reads agent i's memory and nothing else
    assert torch.equal(mem[reset], torch.zeros_like(mem[reset]))  # resets applied before pooling


def test_outputs_follow_the_donor_and_ignore_the_other_agents_of_the_episode():
    net = make()
    obs, _, active = inputs(8)
    active[:] = True
    state, donor = warm(net, 9), warm(net, 10)
    D = net.cfg.hidden_size
    g = torch.Generator().manual_seed(12)
    state2 = state.clone()
    state2[0, 0, :D] += torch.randn(D, generator=g, dtype=torch.float64)  # agent 0 of episode 0
    donor2 = donor.clone()
    donor2[0, 0, :D] += torch.randn(D, generator=g, dtype=torch.float64)  # agent 0 of episode 0's donor

    def values(pool, s, d):
        return control_step(net, obs, s, active=active, pool=pool, donor_state=d, donor_active=active).value

    for pool in ("other", "own"):  # agents 1..3 no longer see agent 0 of their episode
        close(values(pool, state, donor)[0, 1:], values(pool, state2, donor)[0, 1:], tol=1e-12)
    assert (values("shared", state, donor)[0, 1:] - values("shared", state2, donor)[0, 1:]).abs().max() > 1e-6
    # with 'other' every agent of episode 0 reads the donor
    assert (values("other", state, donor)[0] - values("other", state, donor2)[0]).abs().min() > 1e-9
    close(values("other", state, donor)[1:], values("other", state, donor2)[1:], tol=1e-12)


@pytest.mark.parametrize(
    "core, pool, donor, match",
    [
        ("srmt", "mixed", True, "unknown pool control 'mixed'"),
        ("rmt", "other", True, "only the 'srmt' core"),
        ("none", "own", False, "only the 'srmt' core"),
        ("srmt", "other", False, "needs donor memories"),
    ],
)
def test_bad_controls_are_one_line_errors(core, pool, donor, match):
    net = make(core)
    obs, _, _ = inputs(11)
    state = net.initial_state(G, A)
    with pytest.raises(ValueError, match=match):
        control_step(net, obs, state, pool=pool, donor_state=state if donor else None)
