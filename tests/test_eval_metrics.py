"""Episode metrics on tiny hand-built instances, and against pogema's own metric wrappers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.eval.benchmark import build_instances, load_map_set, resolve_map_set
from agents.eval.episode import Instance, PogemaEpisodeEnv, episode_metrics, run_episode
from agents.eval_config import EvalConfig
from agents.planners.base import WorldState
from agents.planners.pibt import PIBT
from agents.planners.random_agent import RandomAgent

BENCH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pogema-benchmark"


class Scripted:
    """Plays a fixed action list per agent (then waits)."""

    def __init__(self, plan: list[list[int]]) -> None:
        self.plan = plan

    def reset(self, state: WorldState, seed: int) -> None:
        self.t = 0

    def act(self, state: WorldState) -> np.ndarray:
        out = [p[self.t] if self.t < len(p) else 0 for p in self.plan]
        self.t += 1
        return np.array(out, dtype=np.int64)


R, L, U, D, W = 4, 3, 1, 2, 0  # pogema actions: right, left, up, down, wait


def _run(map_str, starts, goals, plan, on_target="nothing", steps=10):
    inst = Instance("t", "m", map_str, len(starts), 0, on_target, steps, "soft", 2, starts, goals)
    return run_episode(PogemaEpisodeEnv(inst), Scripted(plan), seed=0)[0]


def test_classic_corridor_by_hand():
    """Agent 0 walks 3 cells right; agent 1 walks 1 cell left then waits: solved at step 3."""
    m = _run("......", [[0, 0], [0, 5]], [[0, 3], [0, 4]], [[R, R, R], [L]])
    assert m["CSR"] == 1.0 and m["ISR"] == 1.0
    assert m["ep_length"] == 3  # classic episodes end when every agent stands on its goal
    assert m["SoC"] == 3 + 1 and m["makespan"] == 3


def test_classic_leaving_the_goal_counts_the_last_arrival():
    """Agent 1 arrives at step 1, steps off at 2, returns at 3: its cost is 3 (last arrival). Agent 0
    never reaches its goal (agent 1 blocks the way), so it costs the episode length."""
    m = _run(".....", [[0, 0], [0, 2]], [[0, 4], [0, 3]], [[R, R, W, R], [R, R, L]], steps=10)
    assert m["CSR"] == 0.0 and m["ISR"] == 0.5
    assert m["ep_length"] == 10
    assert m["SoC"] == 3 + 10 and m["makespan"] == 10


def test_lifelong_throughput_by_hand():
    """One agent shuttling between two goals one cell apart reaches one goal per step."""
    goals = [[[0, 1], [0, 0]] * 10]
    m = _run("..", [[0, 0]], goals, [[R, L, R, L, R, L]], on_target="restart", steps=6)
    assert m["avg_throughput"] == pytest.approx(6 / 6)
    m = _run("..", [[0, 0]], goals, [[R, W, L, W]], on_target="restart", steps=8)
    assert m["avg_throughput"] == pytest.approx(2 / 8)


def test_episode_metrics_from_arrays():
    on_goal = np.array([[0, 1], [1, 1], [1, 0], [1, 1]], dtype=bool)  # T=4, A=2
    m = episode_metrics("nothing", on_goal, 4)
    assert m == {"ISR": 1.0, "CSR": 1.0, "ep_length": 4.0, "SoC": 2 + 4, "makespan": 4.0}
    f = episode_metrics("finish", on_goal, 4)
    assert f["SoC"] == 2 + 1 and f["makespan"] == 2 and f["CSR"] == 1.0
    r = episode_metrics("restart", on_goal, 8)
    assert r["avg_throughput"] == 6 / 8
    with pytest.raises(ValueError, match="on_target"):
        episode_metrics("sometimes", on_goal, 4)


@pytest.mark.skipif(not BENCH.is_dir(), reason="benchmark data not available")
@pytest.mark.parametrize("mode", ["lifelong", "classic"])
def test_metrics_agree_with_pogemas_wrappers(mode):
    """Our metrics equal the ones pogema's own wrappers report (SoC only where CSR = 1: pogema keeps an
    agent's earlier arrival if it steps off its goal on the very last step, we do not)."""
    ms = load_map_set(resolve_map_set("02-mazes", mode, str(BENCH)))
    for inst in build_instances(ms, EvalConfig(num_agents=[8, 24], max_maps=2)):
        for algo in (PIBT(), RandomAgent()):
            env = PogemaEpisodeEnv(inst)
            ours, _ = run_episode(env, algo, seed=1)
            ref = env.last_infos[0]["metrics"]
            keys = ["avg_throughput"] if mode == "lifelong" else ["CSR", "ISR", "ep_length", "makespan"]
            if mode == "classic" and ref["CSR"] == 1.0:
                keys.append("SoC")
            for k in keys:
                assert ours[k] == pytest.approx(ref[k]), (
                    k,
                    inst.map_name,
                    inst.num_agents,
                    type(algo).__name__,
                )
