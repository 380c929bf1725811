"""The guided lifelong recipe (configs/experiment/lmapf-srmt-guided.yaml) on a tiny CPU budget: it trains
with the path channel and Follower's reward, and a run resumed on a "fresh host" (only the run's
config.yaml and latest checkpoint copied into an empty train_dir) counts its steps on. The two tiny
runs take about a minute on 2 cores, so that test is opt-in: ``SRMT_SLOW_TESTS=1 pytest ...``."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest
from tiny_model import TINY_SERIAL  # tests/tiny_model.py

from agents.config import load_experiment
from agents.sf import find_checkpoint, load_policy, read_checkpoint, train

TINY = [
    "device=cpu",
    "env.num_agents_choices=[4,8]",
    "env.size=11",
    "env.max_episode_steps=32",
    *TINY_SERIAL,
    "train.rollout=8",
    "train.batch_size=128",
    "train.train_for_seconds=0",
    "train.save_every_sec=3600",
    "train.log_interval_s=5",
    "train.summaries_interval_s=1",
    "train.stats_avg=2",
]


def _exp(train_dir: Path, steps: int):
    return load_experiment(
        "lmapf-srmt-guided", [*TINY, f"train.train_dir={train_dir}", f"train.train_for_env_steps={steps}"]
    )


def test_recipe_is_guided_on_generated_maps_only():
    exp = load_experiment("lmapf-srmt-guided")
    assert exp.env.planner_path and exp.env.reward == "follower" and exp.env.planner_costs == "follower"
    assert exp.env.generator == "mixed" and exp.env.map is None and exp.env.maps_file is None
    assert 0 < exp.train.train_for_seconds <= 480  # one session fits a 10-minute device call
    assert exp.env.num_agents_choices == [32, 48, 64] and exp.env.num_agents is None  # mixed counts, 64 slots
    assert exp.train.batch_size % (64 * exp.train.rollout) == 0


@pytest.mark.slow
def test_tiny_mixed_count_run_trains_and_evaluates(tmp_path):
    """A few hundred agent-steps of the recipe with mixed counts on CPU; the checkpoint then plays the
    real counts of map instances (2 and 5 agents: no padding) through the evaluation's env path."""
    from agents.eval.algorithms import SrmtPolicy
    from agents.eval.episode import EnvsEpisodeEnv, Instance

    result = train(_exp(tmp_path, 256), verbose=False)
    assert result.status == "success" and result.env_steps >= 256, result.error
    assert result.metrics.get("episode/num_agents") in (4.0, 6.0, 8.0)  # mean over two envs of 4 or 8
    assert result.metrics.get("episode/reward_per_agent") is not None
    # the reported rate counts real agents: slots x mean(4, 8) / 8
    assert math.isnan(result.slot_steps_per_s) or result.agent_steps_per_s == pytest.approx(
        0.75 * result.slot_steps_per_s
    )
    policy = SrmtPolicy(str(result.run_dir), "cpu")
    assert policy.env_config.num_agents_choices == [4, 8]
    for n in (2, 5):
        inst = Instance("t", "m", "\n".join(["." * 7] * 7), num_agents=n, seed=0, max_episode_steps=4)
        ep = EnvsEpisodeEnv(inst, policy.env_config)
        assert ep.env.num_agents == n
        state = ep.reset()
        policy.reset(state, seed=0)
        done, steps = False, 0
        while not done:
            actions = policy.act(state)
            assert actions.shape == (n,)
            state, done = ep.step(actions)
            steps += 1
        assert steps == 4


@pytest.mark.skipif(not os.environ.get("SRMT_SLOW_TESTS"), reason="opt-in: set SRMT_SLOW_TESTS=1")
def test_guided_run_resumes_on_a_fresh_host(tmp_path):
    first = train(_exp(tmp_path / "host1", 512), verbose=False)
    assert first.status == "success" and first.env_steps >= 512
    model, exp = load_policy(first.run_dir)
    assert exp.env.planner_path and model is not None
    # the "fresh host": only what the lead copies back, the config and the latest checkpoint
    ckpt = find_checkpoint(first.run_dir)
    fresh = tmp_path / "host2" / first.run_dir.name
    (fresh / ckpt.parent.name).mkdir(parents=True)
    shutil.copy(first.run_dir / "config.yaml", fresh / "config.yaml")
    shutil.copy(ckpt, fresh / ckpt.parent.name / ckpt.name)
    before = read_checkpoint(fresh)
    second = train(_exp(tmp_path / "host2", 2 * first.env_steps), verbose=False)
    assert second.status == "success"
    after = read_checkpoint(second.run_dir)
    assert after["env_steps"] >= 2 * first.env_steps  # counted on from the copied checkpoint
    assert after["train_step"] > before["train_step"]
