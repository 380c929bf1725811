"""Every shape of pogema-toolbox evaluation config runs as-is, with its published results (issue 11).

Fixtures in ``tests/data/benchmark-shapes`` (a benchmark folder: ``experiments/`` + ``raw_data_*``), each
a tiny copy of one POGEMA benchmark shape with its published-result file in pogema-toolbox's format:

- ``03-warehouse`` (lifelong): ``map_name`` a single value, ``seed`` and ``num_agents`` grids, frozen
  scenarios per seed; published rows carry ``{seed, num_agents}`` only.
- ``05-puzzles`` (lifelong): 5x5 maps with dead ends, all three axes grids, no scenarios.
- ``06-pathfinding`` (classic): one agent (``num_agents`` a value), 2048-step episodes, a 256x256 map,
  ``seed`` grid; published rows carry ``{map_name, seed}`` only.

The shipped benchmark sets (``map_name`` grid, ``seed`` a value) are covered in test_eval_scenarios.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.eval.api import evaluate
from agents.eval.benchmark import build_instances, load_map_set, resolve_map_set
from agents.eval.published import grid_defaults, load_published
from agents.eval_config import EvalConfig

SHAPES = Path(__file__).resolve().parent / "data" / "benchmark-shapes"


def _set(name: str, mode: str):
    return load_map_set(resolve_map_set(name, mode, str(SHAPES)))


def test_single_map_name_with_seed_grid():
    ms = _set("03-warehouse", "lifelong")
    assert ms.map_names == ["wfi_warehouse"] and ms.seeds == [0, 1] and ms.num_agents == [2, 4]
    assert set(ms.scenarios) == {("wfi_warehouse", 0), ("wfi_warehouse", 1)}
    insts = build_instances(ms, EvalConfig())
    assert [(i.num_agents, i.seed) for i in insts] == [(2, 0), (2, 1), (4, 0), (4, 1)]
    # each seed replays its own frozen scenario
    assert insts[0].agents_xy != insts[1].agents_xy
    assert grid_defaults(ms) == {"map_name": "wfi_warehouse"}


def test_single_agent_pathfinding_shape():
    ms = _set("06-pathfinding", "classic")
    assert ms.mode == "classic" and ms.env["max_episode_steps"] == 2048
    assert ms.num_agents == [1] and ms.seeds == [0, 1] and ms.map_names == ["city-256"]
    rows = ms.maps["city-256"].split("\n")
    assert len(rows) == 256 and {len(r) for r in rows} == {256}
    assert grid_defaults(ms) == {"map_name": "city-256", "num_agents": 1}


def test_published_rows_get_the_single_valued_axes():
    ms = _set("03-warehouse", "lifelong")
    pub = load_published(str(SHAPES), ms.name, ms.mode, defaults=grid_defaults(ms))
    assert {(r["map_name"], r["num_agents"], r["seed"]) for r in pub} == {
        ("wfi_warehouse", n, s) for n in (2, 4) for s in (0, 1)
    }
    ms = _set("06-pathfinding", "classic")
    pub = load_published(str(SHAPES), ms.name, ms.mode, defaults=grid_defaults(ms))
    assert [(r["map_name"], r["num_agents"], r["seed"]) for r in pub] == [
        ("city-256", 1, 0),
        ("city-256", 1, 1),
    ]
    assert pub[1]["metrics"]["SoC"] == 301.0


def test_published_row_without_a_grid_key_that_is_a_grid_is_a_one_line_error(tmp_path):
    folder = tmp_path / "raw_data_LMAPF" / "05-puzzles"
    folder.mkdir(parents=True)
    # map_name is a grid of two maps in 05-puzzles: a row without it cannot be placed
    rows = [
        {
            "metrics": {"avg_throughput": 1.0},
            "env_grid_search": {"num_agents": 2, "seed": 0},
            "algorithm": "X",
        }
    ]
    (folder / "X.json").write_text(json.dumps(rows))
    ms = _set("05-puzzles", "lifelong")
    with pytest.raises(ValueError, match=r"entry 0 lacks env_grid_search.map_name") as e:
        load_published(str(tmp_path), ms.name, ms.mode, defaults=grid_defaults(ms))
    assert "\n" not in str(e.value)
    (folder / "X.json").write_text(json.dumps({"not": "a list"}))
    with pytest.raises(ValueError, match="must be a JSON list"):
        load_published(str(tmp_path), ms.name, ms.mode, defaults=grid_defaults(ms))


@pytest.mark.parametrize(
    ("name", "mode", "published", "episodes"),
    [
        ("03-warehouse", "lifelong", "RHCR", 4),
        ("05-puzzles", "lifelong", "Follower", 8),
        ("06-pathfinding", "classic", "Follower", 2),
    ],
)
def test_srmt_eval_runs_every_shape_with_its_published_results(tmp_path, name, mode, published, episodes):
    cfg = EvalConfig(
        benchmark_dir=str(SHAPES),
        map_sets=[name],
        mode=mode,
        run=["PIBT", "AStar"] if mode == "classic" else ["PIBT", "WPIBT"],
        workers=1,
        progress=False,
        plots=False,
        out_dir=str(tmp_path),
    )
    out = evaluate(cfg, echo=False)
    assert len(out["rows"]) == 2 * episodes
    assert len(out["published"]) == episodes  # every instance we ran has its published twin
    assert {r["algorithm"] for r in out["published"]} == {published}
    assert f"{published} (published)" in out["report"]
    if mode == "classic":  # one agent, 2048-step limit: PIBT and A* reach its goal on the 256x256 map
        assert all(r["metrics"]["CSR"] == 1.0 and r["metrics"]["ep_length"] < 2048 for r in out["rows"])
