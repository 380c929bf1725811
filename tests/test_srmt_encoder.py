"""Encoders chosen from the observation shape, the MLP encoder and input normalisation (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srmt import MLPEncoder, ModelConfig, ResNetEncoder, RunningNorm, build_actor_critic, build_encoder

SIZES = dict(hidden_size=8, num_heads=2, num_filters=4, history_len=2, mlp_encoder_size=16)


@pytest.mark.parametrize(
    "obs_shape, encoder, expected",
    [
        ((18,), "auto", MLPEncoder),
        ((4, 6), "auto", MLPEncoder),
        ((3, 5, 5), "auto", ResNetEncoder),
        ((3, 5, 5), "mlp", MLPEncoder),
        ((1, 1, 18), "conv", ResNetEncoder),
    ],
)
def test_encoder_is_chosen_from_the_observation_space(obs_shape, encoder, expected):
    enc = build_encoder(ModelConfig(encoder=encoder, **SIZES), obs_shape)
    assert type(enc) is expected
    assert enc(torch.rand(2, 3, *obs_shape)).shape == (2, 3, 8)


def test_conv_encoder_on_a_vector_is_one_line_error():
    with pytest.raises(
        ValueError, match=r"obs_shape=\(18,\) must be \(channels, height, width\).*model.encoder=mlp"
    ):
        build_encoder(ModelConfig(encoder="conv", **SIZES), (18,))


def test_mlp_layers_follow_the_config():
    enc = build_encoder(ModelConfig(mlp_encoder_layers=3, **SIZES), (18,))
    linears = [m for m in enc.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(18, 16), (16, 16), (16, 16), (16, 8)]
    enc0 = build_encoder(ModelConfig(mlp_encoder_layers=0, **SIZES), (18,))
    assert [(m.in_features, m.out_features) for m in enc0.modules() if isinstance(m, torch.nn.Linear)] == [
        (18, 8)
    ]


@pytest.mark.parametrize("core", ["srmt", "gru"])
def test_vector_observations_step_equals_sequence(core):
    torch.manual_seed(0)
    model = build_actor_critic(ModelConfig(core=core, **SIZES), (7,), 4).double()
    G, A, T = 2, 3, 4
    g = torch.Generator().manual_seed(1)
    obs = torch.rand(G, A, T, 7, generator=g, dtype=torch.float64)
    active = torch.rand(G, A, T, generator=g) < 0.8
    seq = model.sequence(obs, model.initial_state(G, A), active=active)
    state = model.initial_state(G, A)
    for t in range(T):
        out = model.step(obs[:, :, t], state, active=active[:, :, t])
        torch.testing.assert_close(out.logits, seq.logits[:, :, t], rtol=0, atol=1e-9)
        state = out.state
    torch.testing.assert_close(state, seq.state, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match=r"step: obs shape \(2, 3, 8\) must be \[G, A, 7\]"):
        model.step(torch.zeros(G, A, 8, dtype=torch.float64), model.initial_state(G, A))


def test_running_norm_matches_numpy_over_many_batches():
    norm = RunningNorm((3,)).train()
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=[1.0, -2.0, 5.0], scale=[0.5, 3.0, 1.0], size=(n, 3)) for n in (5, 1, 17, 40)]
    for b in batches:
        norm(torch.tensor(b, dtype=torch.float32).requires_grad_(True))  # training pass: updates
    data = np.concatenate(batches)
    np.testing.assert_allclose(norm.mean.numpy(), data.mean(0), rtol=1e-6)
    np.testing.assert_allclose(norm.var.numpy(), data.var(0), rtol=1e-5)
    assert int(norm.count) == len(data)
    x = torch.tensor(data[:4], dtype=torch.float32)
    expected = np.clip((data[:4] - data.mean(0)) / np.sqrt(data.var(0) + 1e-5), -5, 5)
    with torch.no_grad():
        np.testing.assert_allclose(norm(x).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_running_norm_updates_only_in_training_passes():
    norm = RunningNorm((2,))
    x = torch.ones(4, 2) * 3
    norm.eval()
    norm(x)
    assert int(norm.count) == 0  # acting (eval mode) reads the statistics only
    norm.train()
    with torch.no_grad():
        norm(x)
    assert int(norm.count) == 0  # value bootstrap under no_grad does not count samples
    norm(x)
    assert int(norm.count) == 4 and torch.allclose(norm.mean, torch.full((2,), 3.0, dtype=torch.float64))


def test_normalize_input_statistics_are_saved_with_the_weights():
    cfg = ModelConfig(normalize_input=True, **SIZES)
    a = build_actor_critic(cfg, (5,), 3).train()
    a.sequence(torch.rand(1, 2, 3, 5) * 10, a.initial_state(1, 2))
    b = build_actor_critic(cfg, (5,), 3)
    b.load_state_dict(a.state_dict())
    assert int(b.encoder.norm.count) == 6
    torch.testing.assert_close(b.encoder.norm.mean, a.encoder.norm.mean)


def test_without_normalize_input_the_conv_encoder_keeps_its_checkpoint_keys():
    """Checkpoints written before issue 12 (encoder.convs.*, encoder.fc.*) still load."""
    enc = build_encoder(ModelConfig(**SIZES), (3, 5, 5))
    assert all(k.startswith(("convs.", "fc.")) for k in enc.state_dict())
    old = ResNetEncoder((3, 5, 5), 4, 1, 8)
    enc.load_state_dict(old.state_dict())


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(encoder="resnet"), r"encoder='resnet' is not one of auto, conv, mlp"),
        (dict(mlp_encoder_size=0), r"mlp_encoder_size=0 must be >= 1"),
        (dict(mlp_encoder_layers=-1), r"mlp_encoder_layers=-1 must be >= 0"),
    ],
)
def test_bad_encoder_settings(bad, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(**bad)
