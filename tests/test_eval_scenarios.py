"""Benchmark protocol: the frozen scenarios are replayed exactly (starts, goals, lifelong goal sequences),
on both env backends, and map-set files are read and narrowed as configured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.eval.benchmark import build_instances, load_map_set, resolve_map_set
from agents.eval.episode import PogemaEpisodeEnv, make_episode_env, run_episode
from agents.eval_config import EvalConfig
from agents.planners.pibt import PIBT

BENCH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pogema-benchmark"
needs_bench = pytest.mark.skipif(not BENCH.is_dir(), reason="benchmark data not available")


@pytest.fixture(scope="module")
def random_sets():
    return {
        mode: load_map_set(resolve_map_set("01-random", mode, str(BENCH))) for mode in ("lifelong", "classic")
    }


@needs_bench
def test_benchmark_map_sets_as_published(random_sets):
    ll, cl = random_sets["lifelong"], random_sets["classic"]
    assert len(ll.map_names) == 128 and ll.num_agents == [8, 16, 24, 32, 48, 64] and ll.seeds == [0]
    assert ll.env == {
        "on_target": "restart",
        "max_episode_steps": 256,
        "collision_system": "soft",
        "obs_radius": 5,
    }
    assert cl.env["on_target"] == "nothing" and cl.env["max_episode_steps"] == 128
    assert len(ll.scenarios) == 128 and (ll.map_names[0], 0) in ll.scenarios
    assert len(build_instances(ll, EvalConfig())) == 128 * 6


@needs_bench
@pytest.mark.parametrize("n", [8, 64])
def test_classic_scenario_replay(random_sets, n):
    ms = random_sets["classic"]
    for inst in build_instances(ms, EvalConfig(num_agents=[n], max_maps=3)):
        sc = ms.scenarios[(inst.map_name, 0)]
        state = PogemaEpisodeEnv(inst).reset()
        r = inst.obs_radius
        np.testing.assert_array_equal(state.positions - r, np.array(sc["agents_xy"][:n]))
        np.testing.assert_array_equal(state.goals - r, np.array(sc["targets_xy"][:n]))


@needs_bench
@pytest.mark.parametrize("backend", ["pogema", "envs"])
def test_lifelong_scenario_replay_follows_the_goal_sequences(random_sets, backend):
    """Every goal an agent gets is the next one of its frozen sequence, in order."""
    ms = random_sets["lifelong"]
    inst = build_instances(ms, EvalConfig(num_agents=[16], max_maps=1, max_episode_steps=96))[0]
    seqs = ms.scenarios[(inst.map_name, 0)]["targets_xy"][:16]
    _, traj = run_episode(make_episode_env(inst, backend), PIBT(), seed=0, record=True)
    r = inst.obs_radius
    np.testing.assert_array_equal(
        traj.positions[0] - r, np.array(ms.scenarios[(inst.map_name, 0)]["agents_xy"][:16])
    )
    reached = 0
    for a in range(16):
        goals = [tuple(g[a] - r) for g in traj.goals]
        distinct = [goals[0]] + [g for prev, g in zip(goals, goals[1:]) if g != prev]
        assert distinct == [tuple(x) for x in seqs[a][: len(distinct)]], f"agent {a}"
        reached += len(distinct) - 1
    assert reached > 16  # the sequences were actually exercised


@needs_bench
def test_scenarios_equal_pogemas_own_generation_for_seed_0(random_sets):
    """The frozen scenarios are what pogema generates from seed 0 (so unfrozen runs pair up too)."""
    ms = random_sets["classic"]
    frozen = build_instances(ms, EvalConfig(num_agents=[24], max_maps=2))
    generated = build_instances(ms, EvalConfig(num_agents=[24], max_maps=2, scenarios=False))
    for f, g in zip(frozen, generated):
        assert g.agents_xy is None
        sf, sg = PogemaEpisodeEnv(f).reset(), PogemaEpisodeEnv(g).reset()
        np.testing.assert_array_equal(sf.positions, sg.positions)
        np.testing.assert_array_equal(sf.goals, sg.goals)


@needs_bench
@pytest.mark.parametrize("mode", ["lifelong", "classic"])
def test_backends_give_identical_episodes(mode):
    """pogema itself and srmt's vectorised env run the same instance to the same metrics."""
    ms = load_map_set(resolve_map_set("02-mazes", mode, str(BENCH)))
    for inst in build_instances(ms, EvalConfig(num_agents=[8, 48], max_maps=1)):
        a, _ = run_episode(make_episode_env(inst, "pogema"), PIBT(), seed=2)
        b, _ = run_episode(make_episode_env(inst, "envs"), PIBT(), seed=2)
        a.pop("runtime"), b.pop("runtime")
        assert a == b


def test_shipped_tiny_set_and_narrowing():
    ms = load_map_set(resolve_map_set("tiny", "lifelong", "/nonexistent"))
    assert ms.map_names == ["tiny-open", "tiny-wall"] and ms.num_agents == [2, 4] and ms.seeds == [0, 1]
    full = build_instances(ms, EvalConfig(map_sets=["tiny"]))
    assert len(full) == 2 * 2 * 2
    assert [(i.map_name, i.num_agents, i.seed) for i in full[:3]] == [
        ("tiny-open", 2, 0),
        ("tiny-open", 2, 1),
        ("tiny-open", 4, 0),
    ]
    some = build_instances(ms, EvalConfig(map_sets=["tiny"], maps=["tiny-w.*"], seeds=[5], num_agents=[3]))
    assert [(i.map_name, i.num_agents, i.seed) for i in some] == [("tiny-wall", 3, 5)]
    assert len(build_instances(ms, EvalConfig(map_sets=["tiny"], max_episodes=3))) == 3
    assert build_instances(ms, EvalConfig(map_sets=["tiny"], max_episode_steps=7))[0].max_episode_steps == 7


def test_map_set_errors_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="map set 'nope'") as e:
        resolve_map_set("nope", "lifelong", str(tmp_path))
    assert "\n" not in str(e.value)
    ms = load_map_set(resolve_map_set("tiny", "classic", str(tmp_path)))
    with pytest.raises(ValueError, match="unknown map name 'missing'"):
        build_instances(ms, EvalConfig(maps=["missing"]))
    bad = tmp_path / "bad.yaml"
    bad.write_text("environment:\n  density: 0.3\nmaps: {a: '..'}\n")
    with pytest.raises(ValueError, match="unsupported environment key.*density"):
        load_map_set(bad)
