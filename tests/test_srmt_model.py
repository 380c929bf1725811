"""The actor-critic and its memory cores: step == sequence, equivariance, resets, masks, gradients.

float64 wherever exactness matters; tiny sizes so the whole file runs in seconds on 2 CPU cores.
"""

from __future__ import annotations

import pytest
import torch

from srmt import CORE_NAMES, ActorCritic, ModelConfig, ResNetEncoder, build_actor_critic

OBS = (3, 5, 5)
N_ACT = 5
G, A, T = 2, 4, 5
MEMORY_CORES = ("srmt", "rmt")


def make(core: str, **kw) -> ActorCritic:
    torch.manual_seed(0)
    sizes = dict(hidden_size=8, num_heads=2, num_filters=4, num_res_blocks=1, history_len=3)
    cfg = ModelConfig(core=core, **{**sizes, **kw})
    return build_actor_critic(cfg, OBS, N_ACT).double()


def rand_inputs(seed: int = 1, t: int | None = T):
    """Random obs, flags and action masks; ``t=None`` gives step-shaped inputs."""
    g = torch.Generator().manual_seed(seed)
    lead = (G, A) if t is None else (G, A, t)
    obs = torch.rand(*lead, *OBS, generator=g, dtype=torch.float64)
    reset = torch.rand(*lead, generator=g) < 0.2
    active = torch.rand(*lead, generator=g) < 0.8
    mask = torch.rand(*lead, N_ACT, generator=g) < 0.7
    mask[..., 0] = True
    return obs, reset, active, mask


def warm_state(model: ActorCritic, seed: int = 2) -> torch.Tensor:
    """A realistic non-initial state: the result of a few steps from the initial state."""
    obs, *_ = rand_inputs(seed, t=4)
    return model.sequence(obs, model.initial_state(G, A)).state.detach()


def memory(model: ActorCritic, state: torch.Tensor) -> torch.Tensor:
    return model.core.unpack(state)[0]


def assert_close(a, b, tol=1e-6):
    torch.testing.assert_close(a, b, rtol=0, atol=tol)


@pytest.mark.parametrize("core", CORE_NAMES)
def test_initial_state_and_shapes(core):
    model = make(core)
    assert model.state_size >= 1
    s = model.initial_state(G, A)
    assert s.shape == (G, A, model.state_size) and s.dtype == torch.float64 and not s.any()
    obs, reset, active, mask = rand_inputs(t=None)
    out = model.step(obs, s, reset, active, mask)
    assert out.logits.shape == (G, A, N_ACT) and out.value.shape == (G, A) and out.state.shape == s.shape


SEQ_CASES = [
    *CORE_NAMES,
    "srmt-2-layers",
    "srmt-dropout-eval",
    "srmt-no-history",
    "attention-no-history",
    "srmt-narrow-history",
    "srmt-bf16-state",
    "gru-bf16-state",
]


@pytest.mark.parametrize("core", SEQ_CASES)
def test_sequence_equals_loop_of_steps(core):
    variants = {
        "srmt-2-layers": lambda: make("srmt", num_layers=2),
        "srmt-dropout-eval": lambda: make("srmt", dropout=0.5).eval(),
        "srmt-no-history": lambda: make("srmt", history_len=0),
        "attention-no-history": lambda: make("attention", history_len=0),  # a 1-float placeholder state
        "srmt-narrow-history": lambda: make("srmt", history_dim=3),
        "srmt-bf16-state": lambda: make("srmt", history_dim=3, state_precision="bfloat16"),
        "gru-bf16-state": lambda: make("gru", state_precision="bfloat16"),
    }
    model = variants[core]() if core in variants else make(core)
    obs, reset, active, mask = rand_inputs()
    state0 = warm_state(model)
    if model.state_size == 1:  # a placeholder state stays zero from zeros; make the reset bookkeeping visible
        state0 = torch.randn_like(state0)
    seq = model.sequence(obs, state0, reset, active, mask)
    state, logits, values = state0, [], []
    for t in range(T):
        out = model.step(obs[:, :, t], state, reset[:, :, t], active[:, :, t], mask[:, :, t])
        state = out.state
        logits.append(out.logits)
        values.append(out.value)
    assert_close(seq.logits, torch.stack(logits, 2))
    assert_close(seq.value, torch.stack(values, 2))
    assert_close(seq.state, state)
    if core not in ("none", "attention-no-history"):  # the state evolves, so equality is not trivial
        assert not torch.allclose(seq.state, state0)


@pytest.mark.parametrize("obs_shape, blocks", [((3, 11, 11), 0), ((2, 7, 9), 2)])
def test_encoder_sizes_are_computed(obs_shape, blocks):
    enc = ResNetEncoder(obs_shape, num_filters=4, num_res_blocks=blocks, out_size=6)
    assert enc(torch.rand(2, 3, *obs_shape)).shape == (2, 3, 6)
    assert enc.fc.in_features == 4 * obs_shape[1] * obs_shape[2]
    with pytest.raises(ValueError, match=r"must end with \(2, 7, 9\)|must end with \(3, 11, 11\)"):
        enc(torch.rand(2, 3, 5, 5))


@pytest.mark.parametrize("core", CORE_NAMES)
def test_permuting_agents_permutes_outputs(core):
    model = make(core)
    obs, reset, active, mask = rand_inputs()
    state = warm_state(model)
    perm = torch.tensor([2, 0, 3, 1])
    out = model.sequence(obs, state, reset, active, mask)
    out_p = model.sequence(obs[:, perm], state[:, perm], reset[:, perm], active[:, perm], mask[:, perm])
    assert_close(out_p.logits, out.logits[:, perm])
    assert_close(out_p.value, out.value[:, perm])
    assert_close(out_p.state, out.state[:, perm])


@pytest.mark.parametrize("core", CORE_NAMES)
def test_reset_restores_initial_state_for_that_agent_only(core):
    model = make(core)
    obs, *_ = rand_inputs(t=None)
    state = warm_state(model)
    reset = torch.zeros(G, A, dtype=torch.bool)
    reset[1, 2] = True
    by_flag = model.step(obs, state, reset)
    by_hand = state.clone()
    by_hand[1, 2] = model.initial_state(1, 1)[0, 0]
    expected = model.step(obs, by_hand)
    for a, b in zip(by_flag, expected):
        assert_close(a, b)
    if core != "none":  # the reset matters: without it agent (1, 2) would act differently
        assert not torch.allclose(model.step(obs, state).state[1, 2], by_flag.state[1, 2])


@pytest.mark.parametrize("core", MEMORY_CORES)
def test_current_observation_changes_the_new_memory(core):
    model = make(core)
    obs, *_ = rand_inputs(t=None)
    state = warm_state(model)
    obs2 = obs.clone()
    obs2[0, 1] = torch.rand(OBS, dtype=torch.float64)
    m1, m2 = memory(model, model.step(obs, state).state), memory(model, model.step(obs2, state).state)
    assert (m1[0, 1] - m2[0, 1]).abs().max() > 1e-4
    # the others read m_1(t-1) through the pool, not e_1(t): their step is unchanged
    others = torch.ones(G, A, dtype=torch.bool)
    others[0, 1] = False
    assert_close(m1[others], m2[others], tol=1e-12)


@pytest.mark.parametrize("core", CORE_NAMES)
def test_masked_agent_does_not_change_the_others(core):
    model = make(core)
    obs, reset, _, mask = rand_inputs()
    state = warm_state(model)
    active = torch.ones(G, A, T, dtype=torch.bool)
    active[0, 3] = False
    out = model.sequence(obs, state, reset, active, mask)
    # garbage in the inactive agent's observations and state
    obs2, state2 = obs.clone(), state.clone()
    obs2[0, 3] = 100 * torch.rand_like(obs2[0, 3])
    state2[0, 3] = 100 * torch.randn_like(state2[0, 3])
    reset2 = reset.clone()
    reset2[0, 3] = False
    out2 = model.sequence(obs2, state2, reset2, active, mask)
    others = torch.ones(G, A, dtype=torch.bool)
    others[0, 3] = False
    assert_close(out2.logits[others], out.logits[others], tol=1e-12)
    assert_close(out2.value[others], out.value[others], tol=1e-12)
    assert_close(out2.state[others], out.state[others], tol=1e-12)
    assert torch.equal(out2.state[0, 3], state2[0, 3])  # carried through unchanged


def test_shared_pool_is_read_and_masked():
    """In srmt an agent's outputs depend on another active agent's memory; not in rmt, not if inactive."""
    obs, *_ = rand_inputs(t=None)
    for core, depends in (("srmt", True), ("rmt", False)):
        model = make(core)
        state = warm_state(model)
        state2 = state.clone()
        state2[0, 0, : model.cfg.hidden_size] += torch.randn(
            model.cfg.hidden_size, dtype=torch.float64
        )  # agent 0 only
        v1, v2 = model.step(obs, state).value, model.step(obs, state2).value
        assert ((v1[0, 1:] - v2[0, 1:]).abs().max() > 1e-6) == depends, core
        active = torch.ones(G, A, dtype=torch.bool)
        active[0, 0] = False
        v1, v2 = model.step(obs, state, active=active).value, model.step(obs, state2, active=active).value
        assert_close(v1[0, 1:], v2[0, 1:], tol=1e-12)


@pytest.mark.parametrize("core", CORE_NAMES)
def test_all_agents_inactive_outputs_are_finite(core):
    model = make(core)
    obs, reset, _, mask = rand_inputs()
    active = torch.zeros(G, A, T, dtype=torch.bool)
    out = model.sequence(obs, warm_state(model), reset, active, mask)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.value).all()


@pytest.mark.parametrize("core", ("srmt", "rmt", "attention"))
def test_empty_history_slots_are_masked_not_attended(core):
    model = make(core)
    obs, *_ = rand_inputs(t=None)
    state = model.initial_state(G, A)
    garbage = state.clone()
    m, K, D = model.core.mem_size, model.core.history_len, model.core.hidden_size
    garbage[..., m : m + K * D] = torch.randn(G, A, K * D, dtype=torch.float64)  # flags stay 0
    a, b = model.step(obs, state), model.step(obs, garbage)
    assert_close(a.logits, b.logits, tol=1e-12)
    assert_close(a.value, b.value, tol=1e-12)


@pytest.mark.parametrize("core", MEMORY_CORES)
def test_loss_at_step_T_reaches_memory_parameters_and_step_1_memory(core):
    model = make(core)
    obs, reset, _, mask = rand_inputs()
    reset[:] = False  # a reset would cut the gradient path on purpose
    D = model.cfg.hidden_size
    step1 = model.step(obs[:, :, 0], warm_state(model))
    m1 = step1.state.detach().requires_grad_(True)  # the memory after step 1
    out = model.sequence(obs[:, :, 1:], m1, reset[:, :, 1:], None, mask[:, :, 1:])
    loss = out.value[:, :, -1].sum() + out.logits[:, :, -1].logsumexp(-1).sum()
    loss.backward()
    assert m1.grad[..., :D].abs().sum() > 0
    tr = model.core.transformer
    memory_params = {"write_emb": tr.write_emb, "read_emb": tr.read_emb, "norm_mem": tr.norm_mem.weight}
    memory_params["pool_kv"] = tr.layers[0].cross_attn.kv.weight
    for name, p in memory_params.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradient_flows_through_the_shared_pool_across_steps():
    """Agent 1's loss at step T depends on agent 0's memory at step 1 in srmt, not in rmt."""
    obs, *_ = rand_inputs()
    for core, shared in (("srmt", True), ("rmt", False)):
        model = make(core)
        state = warm_state(model).requires_grad_(True)
        model.sequence(obs, state).value[0, 1, -1].backward()
        g = state.grad[0, 0, : model.cfg.hidden_size].abs().sum()
        assert (g > 0) == shared, core


@pytest.mark.parametrize("core", CORE_NAMES)
def test_action_mask(core):
    model = make(core)
    obs, reset, active, mask = rand_inputs()
    mask[0, 0, 0] = False  # an agent with no allowed action
    out = model.sequence(obs, model.initial_state(G, A), reset, active, mask)
    dist = model.distribution(out.logits, mask)
    probs = dist.probs
    allowed = mask.clone()
    allowed[0, 0, 0] = True  # no allowed action: uniform over all of them, finite
    assert (probs[~allowed] < 1e-30).all() and (probs[mask] > 0).all()
    assert_close(probs[0, 0, 0], torch.full((N_ACT,), 1 / N_ACT, dtype=torch.float64))
    assert torch.isfinite(dist.entropy()).all()
    a = dist.sample()
    assert allowed.gather(-1, a[..., None]).all()
    assert torch.isfinite(dist.log_prob(a)).all()


def test_narrow_history_shrinks_the_state_and_is_attended():
    wide, narrow = make("srmt"), make("srmt", history_dim=3)
    D, K = 8, 3
    assert wide.state_size == D + K * D + K and narrow.state_size == D + K * 3 + K
    # the stored slot is down(e) of the current embedding; changing an old slot changes the output
    obs, *_ = rand_inputs(t=None)
    state = warm_state(narrow)
    _, history, valid = narrow.core.unpack(state)
    assert history.shape == (G, A, K, 3) and valid.all()
    out = narrow.step(obs, state)
    x = narrow.encoder(obs)
    assert_close(narrow.core.unpack(out.state)[1][:, :, -1], narrow.core.hist_down(x))
    bumped = state.clone()
    bumped[..., D : D + 3] += 1.0  # oldest history slot
    assert not torch.allclose(narrow.step(obs, bumped).logits, out.logits)


@pytest.mark.parametrize("core", ("srmt", "gru"))
def test_bf16_state_is_bf16_exact_after_every_step(core):
    model = make(core, state_precision="bfloat16")
    obs, reset, active, mask = rand_inputs()
    out = model.sequence(obs, model.initial_state(G, A), reset, active, mask)
    assert torch.equal(out.state, out.state.to(torch.bfloat16).to(out.state.dtype))
    assert out.state.abs().sum() > 0
    full = make(core).sequence(obs, model.initial_state(G, A), reset, active, mask)
    # same weights (same seed): rounding is the only difference, and it is small
    assert_close(out.state, full.state, tol=0.05)


def test_bf16_autocast_runs_and_keeps_state_dtype():
    torch.manual_seed(0)
    model = build_actor_critic(ModelConfig(hidden_size=8, num_heads=2, history_len=2), OBS, N_ACT)
    obs, reset, active, mask = (x.float() if x.is_floating_point() else x for x in rand_inputs())
    state = model.initial_state(G, A)
    with torch.autocast(device_type=obs.device.type, dtype=torch.bfloat16):
        out = model.sequence(obs, state, reset, active, mask)
    assert out.state.dtype == out.logits.dtype == out.value.dtype == torch.float32
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.state).all()
    (out.value.sum() + out.logits.clamp(min=-1e4).sum()).backward()


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(obs=torch.zeros(G, A, 3, 5, 6)), r"obs shape .*\[G, A, 3, 5, 5\]"),
        (dict(state=torch.zeros(G, A, 3)), r"state shape \(2, 4, 3\)"),
        (dict(reset=torch.zeros(G, A)), "reset must be a bool"),
        (dict(active=torch.ones(G, 1, dtype=torch.bool)), "active must be a bool"),
        (dict(action_mask=torch.ones(G, A, 4, dtype=torch.bool)), "action_mask must be a bool"),
    ],
)
def test_bad_inputs_are_one_line_errors(bad, match):
    model = make("srmt")
    args = dict(obs=torch.zeros(G, A, *OBS, dtype=torch.float64), state=model.initial_state(G, A))
    args.update(bad)
    with pytest.raises(ValueError, match=match) as e:
        model.step(**args)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("scope", ["step", "sequence"])
def test_compiled_sequence_step_matches_eager_and_is_not_shared_by_copies(scope):
    """``compile_sequence`` (train.compile, train.compile_scope): torch.compile of the BPTT step, or of
    the whole unrolled window, gives the eager sequence's outputs, final state and gradients; ``step``
    stays eager; a deep copy compiles its own (a compiled callable bound to the original would silently
    run the original's parameters)."""
    import copy

    eager, compiled = make("srmt"), make("srmt")
    compiled.core.compile_sequence(scope=scope)
    obs, reset, active, mask = rand_inputs()
    state = warm_state(eager)
    outs = [m.sequence(obs, state, reset, active, mask) for m in (eager, compiled)]
    for a, b in zip(outs[0], outs[1]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    for o in outs:
        (o.logits.masked_fill(~mask, 0).sum() + o.value.sum() + o.state.sum()).backward()
    for (name, p), q in zip(eager.named_parameters(), compiled.parameters()):
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-8, atol=1e-9, msg=name)
    assert "_compiled_step" in compiled.core.__dict__
    twin = copy.deepcopy(compiled)
    assert twin.core.compile_mode == "default" and "_compiled_step" not in twin.core.__dict__
    assert twin.core.compile_scope == scope
    if scope == "sequence":
        return  # a copy drops its compiled callable the same way for both scopes (__getstate__); running
        # it again would only repeat the slowest compile of the suite (about 25 s on the CI machine)
    with torch.no_grad():
        for p in twin.parameters():
            p.add_(0.1)
        moved = twin.sequence(obs, state, reset, active, mask)
        assert not torch.allclose(moved.logits, outs[1].logits.detach())
        torch.testing.assert_close(moved.logits, make_shifted_eager(obs, state, reset, active, mask))


def test_compile_scope_is_checked():
    with pytest.raises(ValueError, match=r"compile scope 'loop' is not one of 'step', 'sequence'") as e:
        make("srmt").core.compile_sequence(scope="loop")
    assert "\n" not in str(e.value)


def make_shifted_eager(obs, state, reset, active, mask):
    m = make("srmt")
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1)
        return m.sequence(obs, state, reset, active, mask).logits
