"""FollowerLite's results do not change with the rewritten envs.guidance: the released network acting
through the current planner and through the implementation before the rewrite (tests/guidance_reference.py,
scipy static costs and goal fields) takes the same actions at every step of lifelong and classic
episodes on benchmark maps, and so reaches the same metrics."""

from __future__ import annotations

from pathlib import Path

import guidance_reference as ref
import numpy as np
import pytest

from agents.eval.benchmark import build_instances, load_map_set, resolve_map_set
from agents.eval.episode import PogemaEpisodeEnv
from agents.eval_config import EvalConfig
from agents.planners.follower_lite import FollowerLite, load_follower_lite

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CKPT = SHARED / "follower-lite" / "checkpoint_000001248_20447232.pth"
BENCH = SHARED / "pogema-benchmark"


@pytest.mark.skipif(not (CKPT.is_file() and BENCH.is_dir()), reason="../shared/data not available")
@pytest.mark.parametrize(
    "map_set, mode", [("01-random", "lifelong"), ("02-mazes", "lifelong"), ("01-random", "classic")]
)
def test_follower_lite_acts_as_with_the_old_planner(map_set, mode):
    net, spec = load_follower_lite(CKPT)
    ms = load_map_set(resolve_map_set(map_set, mode, str(BENCH)))
    inst = build_instances(ms, EvalConfig(num_agents=[24], max_maps=1, max_episode_steps=48))[0]
    new, old = FollowerLite(net, spec, "sample"), FollowerLite(net, spec, "sample")
    costs = "follower" if spec.use_dynamic_cost else "static" if spec.use_static_cost else "unit"
    old.planner = ref.AStarPlanner(spec.obs_radius, costs, reset_dynamic=spec.reset_dynamic_cost)
    env_new, env_old = PogemaEpisodeEnv(inst), PogemaEpisodeEnv(inst)
    s_new, s_old = env_new.reset(), env_old.reset()
    new.reset(s_new, seed=3)
    old.reset(s_old, seed=3)
    done = False
    steps = 0
    while not done:
        a, b = new.act(s_new), old.act(s_old)
        np.testing.assert_array_equal(a, b, err_msg=f"step {steps}")
        s_new, done = env_new.step(a)
        s_old, _ = env_old.step(b)
        steps += 1
    assert steps == 48 or mode == "classic"
