"""FollowerLite: the released checkpoint loads weights-only into our module, bad checkpoints are one-line
errors, the observation draws the shared planner's path (envs.guidance, tested against slow references
in test_envs_guidance.py), and the agent clearly beats random."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from agents.eval.benchmark import build_instances, load_map_set, resolve_map_set
from agents.eval.episode import Instance, PogemaEpisodeEnv, run_episode
from agents.eval_config import EvalConfig
from agents.planners.follower_lite import FollowerLite, FollowerLiteNet, FollowerLiteSpec, load_follower_lite
from agents.planners.random_agent import RandomAgent

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CKPT = SHARED / "follower-lite" / "checkpoint_000001248_20447232.pth"
BENCH = SHARED / "pogema-benchmark"
needs_ckpt = pytest.mark.skipif(not CKPT.is_file(), reason="../shared/data/follower-lite not available")
needs_bench = pytest.mark.skipif(not BENCH.is_dir(), reason="../shared/data/pogema-benchmark not available")


@pytest.fixture(scope="module")
def follower():
    return load_follower_lite(CKPT)


@needs_ckpt
def test_checkpoint_loads_weights_only_with_every_key(follower):
    net, spec = follower
    assert (spec.obs_radius, spec.input_radius, spec.num_filters) == (5, 3, 8)
    assert spec.use_static_cost and spec.use_dynamic_cost and spec.reset_dynamic_cost
    logits, value = net(torch.zeros(3, 2, 7, 7))
    assert logits.shape == (3, 5) and value.shape == (3,)


def test_missing_checkpoint_is_one_line_error(tmp_path):
    with pytest.raises(ValueError, match="not found") as e:
        load_follower_lite(tmp_path / "nope.pth")
    assert "\n" not in str(e.value)


@needs_ckpt
@pytest.mark.parametrize("content", [b"not a zip file at all", b""])
def test_corrupt_checkpoint_is_one_line_error(tmp_path, content):
    shutil.copy(CKPT.parent / "config.json", tmp_path / "config.json")
    bad = tmp_path / "broken.pth"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match="could not be loaded weights-only") as e:
        load_follower_lite(bad)
    assert "\n" not in str(e.value)


@needs_ckpt
def test_checkpoint_with_wrong_shapes_is_one_line_error(tmp_path):
    shutil.copy(CKPT.parent / "config.json", tmp_path / "config.json")
    net = FollowerLiteNet(FollowerLiteSpec(num_filters=4))
    torch.save({"model": net.state_dict()}, tmp_path / "small.pth")
    with pytest.raises(ValueError, match="does not match config") as e:
        load_follower_lite(tmp_path / "small.pth")
    assert "\n" not in str(e.value)


class _OriginalStyleBlock(nn.Module):
    """The learn-to-follow residual block as written there: in-place activation first, then x + core(x)."""

    def __init__(self, core: nn.Sequential) -> None:
        super().__init__()
        self.core = nn.Sequential(nn.ReLU(inplace=True), core[1], nn.ReLU(inplace=True), core[3])

    def forward(self, x):
        identity = x
        out = self.core(x)  # the in-place ReLU rewrites x, hence identity, too
        return out + identity


@needs_ckpt
def test_residual_block_matches_the_in_place_original(follower):
    net, _ = follower
    block = net.encoder.conv_head[1]
    x = torch.randn(4, 8, 7, 7)
    ref = _OriginalStyleBlock(block.res_block_core)(x.clone())
    torch.testing.assert_close(block(x), ref)


@needs_ckpt
def test_observation_layout(follower):
    net, spec = follower
    agent = FollowerLite(net, spec, "argmax")
    inst = Instance("t", "m", "\n".join(["........"] * 8), 4, 0, "restart", 16, "soft", 5)
    state = PogemaEpisodeEnv(inst).reset()
    agent.reset(state, seed=0)
    plan = agent._plan(state)
    obs = agent.observations(state, plan)
    r, R = spec.input_radius, spec.obs_radius
    assert obs.shape == (4, 2, 2 * r + 1, 2 * r + 1)
    assert set(np.unique(obs[:, 0])) <= {-1.0, 0.0, 1.0}
    assert (obs[:, 0, r, r] == 1.0).all()  # the path starts on the agent's own cell
    assert (obs[:, 1, r, r] == 1.0).all()  # the agent sees itself
    # the path channel is the planner's (envs.guidance) drawn path, cut to the network's window
    np.testing.assert_array_equal(obs[:, 0] == 1.0, plan.mask[:, R - r : R + r + 1, R - r : R + r + 1])
    for i, cells in enumerate(plan.cells):  # path length within the window is at least min(len, r+1)
        assert (obs[i, 0] == 1.0).sum() >= min(int((cells >= 0).sum()), r + 1)


@needs_ckpt
@needs_bench
def test_follower_lite_clearly_beats_random(follower):
    """Classic MAPF on three benchmark maps with 8 agents: FollowerLite solves most, random none."""
    ms = load_map_set(resolve_map_set("01-random", "classic", str(BENCH)))
    instances = build_instances(ms, EvalConfig(num_agents=[8], max_maps=3, max_episode_steps=64))
    fl, rnd = FollowerLite(*follower), RandomAgent()
    isr_fl = np.mean([run_episode(PogemaEpisodeEnv(i), fl, seed=0)[0]["ISR"] for i in instances])
    isr_rnd = np.mean([run_episode(PogemaEpisodeEnv(i), rnd, seed=0)[0]["ISR"] for i in instances])
    assert isr_fl >= 0.8 and isr_fl > isr_rnd + 0.5, (isr_fl, isr_rnd)


@needs_ckpt
def test_sampling_is_seeded(follower):
    inst = Instance("t", "m", "\n".join(["........"] * 8), 12, 1, "restart", 32, "soft", 5)
    agent = FollowerLite(*follower)
    a = run_episode(PogemaEpisodeEnv(inst), agent, seed=5)[0]
    b = run_episode(PogemaEpisodeEnv(inst), agent, seed=5)[0]
    assert a["avg_throughput"] == b["avg_throughput"]
