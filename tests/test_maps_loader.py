"""pogema-toolbox map sets: loading the shared POGEMA benchmark files, selecting maps, frozen scenarios."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from envs import make_env
from envs.config import EnvConfig
from envs.maps import load_maps, parse_map, resolve_path, select_maps

BENCH = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "pogema-benchmark" / "experiments"
SETS = {"01-random": "validation-random-seed-", "02-mazes": "validation-mazes-seed-"}
pytestmark = pytest.mark.skipif(not BENCH.is_dir(), reason="../shared/data/pogema-benchmark is not present")


@pytest.mark.parametrize("name", sorted(SETS))
def test_benchmark_maps_load_and_parse(name):
    maps = load_maps(BENCH / name / "maps.yaml")
    assert len(maps) == 128 and all(k.startswith(SETS[name]) for k in maps)
    densities = [parse_map(text, name=key).mean() for key, text in maps.items()]
    assert max(densities) < 0.6 and np.mean(densities) > 0.1  # (two maze maps are empty on purpose)


def test_relative_path_from_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # presets name pogema-benchmark/...: found in the data folder ($SRMT_DATA)
    monkeypatch.setenv("SRMT_DATA", str(BENCH.parent.parent))
    assert resolve_path("pogema-benchmark/experiments/01-random/maps.yaml").is_file()


def test_select_by_name_list_and_regex():
    names = list(load_maps(BENCH / "01-random" / "maps.yaml"))
    assert select_maps(names, ["validation-random-seed-007"]) == ["validation-random-seed-007"]
    assert select_maps(names, ["validation-random-seed-00[0-4]"]) == names[:5]
    # a list keeps file order and merges overlaps
    assert select_maps(names, ["validation-random-seed-003", "validation-random-seed-00[0-3]"]) == names[:4]
    assert select_maps(names, ["validation-random-seed-.*"]) == names
    # a regex must match the whole name
    with pytest.raises(ValueError, match=r"unknown map name 'random-seed-000'"):
        select_maps(names, ["random-seed-000"])


def test_unknown_map_name_is_one_line_error():
    cfg = EnvConfig(name="pogema", maps_file=str(BENCH / "02-mazes" / "maps.yaml"), map_name="no-such-map")
    with pytest.raises(ValueError, match=r"unknown map name 'no-such-map'.*128 maps") as e:
        make_env(cfg)
    assert "\n" not in str(e.value)


def test_map_set_draws_maps_per_episode():
    cfg = EnvConfig(
        name="pogema",
        num_agents=4,
        maps_file=str(BENCH / "01-random" / "maps.yaml"),
        map_name="validation-random-seed-00[0-3]",
        on_target="restart",
    )
    env = make_env(cfg, seed=0)
    seen = set()
    for _ in range(12):
        env.reset()
        name = env.episode.labels["map_name"]
        seen.add(name)
        expected = parse_map(load_maps(cfg.maps_file)[name])
        np.testing.assert_array_equal(env.obstacles, expected)
    assert seen == {f"validation-random-seed-00{i}" for i in range(4)}


def _top_level_block(text: str, key: str) -> str:
    start = text.index(f"\n{key}:\n") + 1
    nxt = re.search(r"\n\S", text[start + len(key) + 2 :])
    return text[start : start + len(key) + 2 + nxt.start()] if nxt else text[start:]


def _scenarios(set_name: str, kind: str, count: int):
    """The env settings and ``count`` evenly spread frozen scenarios of a benchmark config.

    The files are 1-2 MB of YAML (10-35 s to parse whole), so only the needed blocks are parsed.
    """
    text = (BENCH / set_name / f"{set_name}-{kind}.yaml").read_text()
    env_cfg = yaml.safe_load(_top_level_block(text, "environment"))["environment"]
    body = _top_level_block(text, "scenarios")
    blocks = re.split(r"\n(?=  \S)", body)[1:]  # one block per scenario (2-space indented keys)
    step = max(1, len(blocks) // count)
    picked = yaml.safe_load("scenarios:\n" + "\n".join(blocks[::step][:count]))["scenarios"]
    return env_cfg, list(picked.values())


@pytest.mark.parametrize("set_name", sorted(SETS))
@pytest.mark.parametrize("kind", ["lmapf", "mapf"])
def test_reset_reproduces_benchmark_scenarios(set_name, kind):
    """reset(seed=s) on a benchmark map builds exactly the benchmark's frozen instance (starts, goals and,
    for lifelong, the goal sequence an agent then follows)."""
    env_cfg, scenarios = _scenarios(set_name, kind, 4)
    for sc in scenarios:
        A = len(sc["agents_xy"])
        cfg = EnvConfig(
            name="pogema",
            num_agents=A,
            on_target=env_cfg["on_target"],
            collision_system=env_cfg["collision_system"],
            max_episode_steps=env_cfg["max_episode_steps"],
            maps_file=str(BENCH / set_name / "maps.yaml"),
            map_name=sc["map_name"],
        )
        env = make_env(cfg)
        env.reset(seed=sc["seed"])
        np.testing.assert_array_equal(env.agents_xy(), sc["agents_xy"])
        if kind == "mapf":
            np.testing.assert_array_equal(env.targets_xy(), sc["targets_xy"])
            continue
        goals_seen = [[list(g)] for g in env.targets_xy().tolist()]
        rng = np.random.default_rng(0)
        done = False
        while not done:  # random play; record each agent's goals as they change
            *_, term, trunc, _ = env.step(rng.integers(0, 5, size=A))
            for i, g in enumerate(env.targets_xy().tolist()):
                if g != goals_seen[i][-1]:
                    goals_seen[i].append(g)
            done = trunc.all()
        for i in range(A):
            seq = sc["targets_xy"][i]
            assert goals_seen[i] == seq[: len(goals_seen[i])], f"agent {i} of {sc['map_name']}"
