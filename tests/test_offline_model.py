"""RATE model (srmt.rate): segment forward vs step-mode acting, causality, padding, memory across
segments, agent-permutation equivariance with the shared pool, inactive agents never read."""

from __future__ import annotations

import pytest
import torch

from srmt.rate import RATEConfig, RATEModel

OBS = (3, 5, 5)
N_ACT = 5


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tensors are tiny: one torch thread is fastest, and on a busy machine extra threads stall."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def make_model(shared: bool = True, K: int = 4, M: int = 2, layers: int = 2) -> RATEModel:
    cfg = RATEConfig(
        hidden_size=16,
        num_heads=2,
        num_layers=layers,
        num_filters=4,
        segment_len=K,
        memory_tokens=M,
        shared_memory=shared,
        max_timestep=64,
    )
    return RATEModel(cfg, OBS, N_ACT).double().eval()


def inputs(G=2, A=3, K=4, t0=0):
    obs = (torch.rand(G, A, K, *OBS) < 0.3).double()
    actions = torch.randint(0, N_ACT, (G, A, K))
    rtg = torch.randn(G, A, K, dtype=torch.float64)
    timesteps = (t0 + torch.arange(K)).expand(G, A, K).clone()
    valid = torch.ones(G, A, K, dtype=torch.bool)
    return obs, actions, rtg, timesteps, valid


def close(a, b, tol=1e-6):
    torch.testing.assert_close(a, b, rtol=0, atol=tol)


@pytest.mark.parametrize("shared", [True, False])
def test_segment_forward_equals_step_mode(shared):
    """Two segments in one forward each (memory carried) vs acting one step at a time."""
    model = make_model(shared)
    G, A, K = 2, 3, 4
    seg1, seg2 = inputs(G, A, K, 0), inputs(G, A, K, K)
    # agent 2 of env 1 leaves after step 1 of segment 1 (finish mode): invalid afterwards
    seg1[4][1, 2, 2:] = False
    seg2[4][1, 2, :] = False
    out1 = model(*seg1)
    out2 = model(*seg2, memory=out1.memory)
    state = model.initial_step_state(G, A)
    for seg, out in ((seg1, out1), (seg2, out2)):
        obs, actions, rtg, ts, valid = seg
        for t in range(K):
            logits, state = model.step_logits(state, obs[:, :, t], rtg[:, :, t], ts[:, :, t], valid[:, :, t])
            close(logits[valid[:, :, t]], out.logits[:, :, t][valid[:, :, t]])
            state = model.step_commit(state, actions[:, :, t])
        close(state.memory, out.memory)  # memory written after the K-th step equals the forward's


def test_step_commit_order_is_enforced():
    model = make_model()
    obs, actions, rtg, ts, valid = inputs(1, 2, 4)
    state = model.initial_step_state(1, 2)
    with pytest.raises(RuntimeError, match="step_logits first"):
        model.step_commit(state, actions[:, :, 0])
    _, state = model.step_logits(state, obs[:, :, 0], rtg[:, :, 0], ts[:, :, 0], valid[:, :, 0])
    with pytest.raises(RuntimeError, match="step_commit"):
        model.step_logits(state, obs[:, :, 0], rtg[:, :, 0], ts[:, :, 0], valid[:, :, 0])


@pytest.mark.parametrize("what", ["obs_next", "action_now", "rtg_next", "action_later"])
def test_causality(what):
    """Logits at t never depend on a_t, o_{t+1}, R_{t+1} or anything later."""
    model = make_model()
    obs, actions, rtg, ts, valid = inputs()
    base = model(obs, actions, rtg, ts, valid).logits
    t = 1
    obs2, actions2, rtg2 = obs.clone(), actions.clone(), rtg.clone()
    if what == "obs_next":
        obs2[:, :, t + 1 :] = 1 - obs2[:, :, t + 1 :]
    elif what == "action_now":
        actions2[:, :, t:] = (actions2[:, :, t:] + 1) % N_ACT
    elif what == "rtg_next":
        rtg2[:, :, t + 1 :] += 5.0
    else:
        actions2[:, :, t + 1 :] = (actions2[:, :, t + 1 :] + 2) % N_ACT
    out = model(obs2, actions2, rtg2, ts, valid).logits
    close(out[:, :, : t + 1], base[:, :, : t + 1], tol=1e-10)
    if what in ("obs_next", "action_now", "rtg_next"):  # and the change is seen later: the test can fail
        assert (out[:, :, t + 1 :] - base[:, :, t + 1 :]).abs().max() > 1e-6


def test_padded_steps_change_neither_loss_nor_gradients():
    from agents.offline.train import sequence_loss

    model = make_model()
    obs, actions, rtg, ts, valid = inputs()
    valid[0, 1, 2:] = False
    valid[1, :, 3:] = False

    def loss_and_grads(o, a, r):
        model.zero_grad()
        out = model(o, a, r, ts, valid)
        loss, _ = sequence_loss(out.logits, a, valid)
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    l1, g1 = loss_and_grads(obs, actions, rtg)
    obs2, actions2, rtg2 = obs.clone(), actions.clone(), rtg.clone()
    pad = ~valid
    obs2[pad] = 1 - obs2[pad]
    actions2[pad] = (actions2[pad] + 3) % N_ACT
    rtg2[pad] = 1e3
    l2, g2 = loss_and_grads(obs2, actions2, rtg2)
    close(l2, l1, tol=1e-10)
    assert g1.keys() == g2.keys() and g1
    for n in g1:
        close(g2[n], g1[n], tol=1e-10)


def test_memory_carries_information_across_segments():
    model = make_model(shared=False)
    seg1, seg2 = inputs(1, 2, 4, 0), inputs(1, 2, 4, 4)
    obs1 = seg1[0].clone().requires_grad_(True)
    out1 = model(obs1, *seg1[1:])
    logits2 = model(*seg2, memory=out1.memory).logits
    # segment 2's logits depend on segment 1's observations only through the memory
    alt = seg1[0].clone()
    alt[:, :, 0] = 1 - alt[:, :, 0]
    logits2_alt = model(*seg2, memory=model(alt, *seg1[1:]).memory).logits
    assert (logits2_alt - logits2).abs().max() > 1e-6
    # gradient reaches the first segment through the memory (no detach) ...
    logits2.sum().backward()
    assert obs1.grad is not None and obs1.grad.abs().sum() > 0
    # ... and not when the memory is detached
    obs1.grad = None
    out1 = model(obs1, *seg1[1:])
    model(*seg2, memory=out1.memory.detach()).logits.sum().backward()
    assert obs1.grad is None


def test_permutation_equivariance_over_agents_with_shared_memory():
    model = make_model(shared=True)
    obs, actions, rtg, ts, valid = inputs(2, 4, 4)
    memory = torch.randn(2, 4, 2, 16, dtype=torch.float64)
    active = torch.tensor([[True, False, True, True], [True, True, True, False]])
    out = model(obs, actions, rtg, ts, valid, memory, active)
    perm = torch.tensor([2, 0, 3, 1])
    outp = model(
        obs[:, perm],
        actions[:, perm],
        rtg[:, perm],
        ts[:, perm],
        valid[:, perm],
        memory[:, perm],
        active[:, perm],
    )
    close(outp.logits, out.logits[:, perm], tol=1e-10)
    close(outp.memory, out.memory[:, perm], tol=1e-10)
    # and the agents do interact through the pool (equivariance is not trivial independence)
    memory2 = memory.clone()
    memory2[:, 0] += torch.randn(2, 2, 16, dtype=torch.float64)  # not a constant: the pool is LayerNormed
    out2 = model(obs, actions, rtg, ts, valid, memory2, active)
    assert (out2.logits[:, 2] - out.logits[:, 2]).abs().max() > 1e-6


def test_inactive_agents_memory_is_never_read():
    model = make_model(shared=True)
    obs, actions, rtg, ts, valid = inputs(1, 3, 4)
    memory = torch.randn(1, 3, 2, 16, dtype=torch.float64)
    active = torch.tensor([[True, True, False]])
    out = model(obs, actions, rtg, ts, valid, memory, active)
    memory2 = memory.clone()
    memory2[0, 2] = 1e3 * torch.randn(2, 16, dtype=torch.float64)
    out2 = model(obs, actions, rtg, ts, valid, memory2, active)
    close(out2.logits[0, :2], out.logits[0, :2], tol=1e-10)
    close(out2.memory[0, :2], out.memory[0, :2], tol=1e-10)
    close(out2.memory[0, 2], memory2[0, 2], tol=0)  # an inactive agent keeps its memory


def test_config_errors_are_one_line():
    with pytest.raises(ValueError, match="divisible"):
        RATEConfig(hidden_size=10, num_heads=4)
    with pytest.raises(ValueError, match="segment_len"):
        RATEConfig(segment_len=0)
    model = make_model()
    obs, actions, rtg, ts, valid = inputs()
    with pytest.raises(ValueError, match="obs shape"):
        model(obs[..., :3], actions, rtg, ts, valid)
