"""Pool controls as evaluation options (agents/sf/evaluate.py): the evaluated agents read the donors'
memories under ``other``, their own under ``own``; wrong combinations are one-line errors."""

from __future__ import annotations

import pytest
import torch

import agents.sf.evaluate as ev
from agents.config import load_experiment
from envs.bottleneck import bottleneck_config
from srmt import ModelConfig, build_actor_critic

SIZES = dict(hidden_size=8, num_heads=2, num_filters=4, num_res_blocks=0, history_len=2)


def _net(core="srmt"):
    torch.manual_seed(0)
    return build_actor_critic(ModelConfig(core=core, **SIZES), (3, 5, 5), 5)


def test_other_pool_reads_donor_episodes_not_its_own(monkeypatch):
    calls = []
    real = ev.control_step

    def spy(net, obs, state, reset=None, active=None, **kw):
        calls.append((state.clone(), {k: v.clone() if torch.is_tensor(v) else v for k, v in kw.items()}))
        return real(net, obs, state, reset, active, **kw)

    monkeypatch.setattr(ev, "control_step", spy)
    net, env = _net(), bottleneck_config(5, obs_radius=2, max_episode_steps=16)
    runner = ev.EpisodeRunner(net, env, num_envs=2, seed=3, pool="other")
    results = runner.run(3)
    assert len(results) == 3 and all(0.0 <= r["CSR"] <= 1.0 for r in results)
    assert all(kw["pool"] == "other" and kw["donor_state"] is not None for _, kw in calls)
    D = net.cfg.hidden_size
    later = calls[5:]  # after a few steps both have memories, from different episodes
    assert any((s[..., :D] - kw["donor_state"][..., :D]).abs().max() > 1e-4 for s, kw in later)
    calls.clear()
    ev.EpisodeRunner(net, env, num_envs=2, seed=3).run(1)
    assert all(kw["pool"] == "shared" and "donor_state" not in kw for _, kw in calls)


def test_donor_seeds_are_apart_from_the_evaluated_ones():
    runner = ev.EpisodeRunner(_net(), bottleneck_config(3, obs_radius=2), num_envs=2, seed=0, pool="other")
    donors = ev._Donors(runner, 2)
    evaluated = {runner.episode_seed(i) for i in range(1000)}
    assert not evaluated & {donors._seed() for _ in range(1000)}


def test_evaluate_bottleneck_passes_the_control_and_refuses_it_without_a_shared_pool():
    exp = load_experiment(
        "bottleneck-srmt", [f"model.{k}={v}" for k, v in SIZES.items()] + ["env.obs_radius=2"]
    )
    rows = ev.evaluate_bottleneck((_net(), exp), [3], episodes=2, pool="own", num_envs=2)
    assert rows[0]["L"] == 3 and rows[0]["episodes"] == 2
    rmt = load_experiment("bottleneck-rmt", [f"model.{k}={v}" for k, v in SIZES.items()])
    with pytest.raises(ValueError, match="only the 'srmt' core has; this model's core is 'rmt'"):
        ev.evaluate_bottleneck((_net("rmt"), rmt), [3], episodes=1, pool="other")
    with pytest.raises(ValueError, match="unknown pool control 'none'"):
        ev.run_episodes(_net(), bottleneck_config(3), 1, pool="none")


def test_a_cue_policy_is_evaluated_on_its_own_task(monkeypatch):
    seen = []
    monkeypatch.setattr(
        ev, "run_episodes", lambda net, cfg, n, **kw: seen.append(cfg) or [dict(CSR=1.0, ISR=1.0)]
    )
    exp = load_experiment("cue-srmt", [f"model.{k}={v}" for k, v in SIZES.items()])
    ev.evaluate_bottleneck((_net(), exp), [3, 7], episodes=1)
    assert [(c.name, c.opts.split, c.opts.corridor_lengths, c.max_episode_steps) for c in seen] == [
        ("cue", "test", [3], None),
        ("cue", "test", [7], None),
    ]
    pogema = load_experiment("lmapf-srmt")
    ev.evaluate_bottleneck((_net(), pogema), [3], episodes=1)
    assert seen[-1].name == "bottleneck"  # any other task: the Bottleneck corridors, as before
