"""The guided lifelong recipe (configs/experiment/lmapf-srmt-guided.yaml) on a tiny CPU budget: it trains
with the path channel and Follower's reward, and a run resumed on a "fresh host" (only the run's
config.yaml and latest checkpoint copied into an empty train_dir) counts its steps on. The two tiny
runs take about a minute on 2 cores, so that test is opt-in: ``SRMT_SLOW_TESTS=1 pytest ...``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from agents.config import load_experiment
from agents.sf import find_checkpoint, load_policy, read_checkpoint, train

TINY = [
    "device=cpu",
    "env.num_agents=8",
    "env.size=11",
    "env.max_episode_steps=32",
    "model.hidden_size=8",
    "model.num_heads=2",
    "model.num_filters=4",
    "model.num_res_blocks=0",
    "model.history_len=2",
    "train.serial=true",
    "train.num_workers=1",
    "train.policy_workers=1",
    "train.envs_per_worker=2",
    "train.double_buffer=false",
    "train.compile=off",  # the recipe compiles the learner step; seconds of compile time here
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
