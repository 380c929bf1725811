"""envs.fast_grid against pogema's own grids: identical instances, seed by seed."""

from __future__ import annotations

import numpy as np
import pytest
from pogema import GridConfig
from pogema.generator import bfs
from pogema.grid import Grid, GridLifeLong

from envs.fast_grid import FastGrid, FastGridLifeLong, label_components
from envs.maps import maze_map

CASES = [(6, 0.2, 4), (8, 0.45, 10), (16, 0.3, 40), (20, 0.4, 150), (32, 0.3, 64)]


def _build(cls, gc):
    try:
        return cls(gc), None
    except OverflowError as e:
        return None, str(e)


@pytest.mark.parametrize("size,density,agents", CASES)
@pytest.mark.parametrize("lifelong", [False, True])
def test_same_instances_as_pogema(size, density, agents, lifelong):
    slow_cls, fast_cls = (GridLifeLong, FastGridLifeLong) if lifelong else (Grid, FastGrid)
    failures = 0
    for seed in range(12):
        gc = GridConfig(
            size=size,
            density=density,
            num_agents=agents,
            seed=seed,
            obs_radius=3,
            on_target="restart" if lifelong else "finish",
        )
        slow, slow_err = _build(slow_cls, gc)
        fast, fast_err = _build(fast_cls, gc)
        assert (slow_err is None) == (fast_err is None), f"seed {seed}: {slow_err} vs {fast_err}"
        if slow is None:
            failures += 1
            continue
        assert slow.starts_xy == fast.starts_xy and slow.finishes_xy == fast.finishes_xy, f"seed {seed}"
        np.testing.assert_array_equal(slow.obstacles, fast.obstacles)
        np.testing.assert_array_equal(slow.positions, fast.positions)
        assert slow.is_active == fast.is_active and slow._initial_xy == fast._initial_xy
        if lifelong:  # same component (same cells, same order) for every cell of the bordered grid
            H, W = slow.obstacles.shape
            for x in range(H):
                for y in range(W):
                    assert (
                        slow.component_to_points[slow.point_to_component[x, y]]
                        == fast.component_to_points[fast.point_to_component[x, y]]
                    )
    if size == 20:
        assert failures > 0  # the overcrowded case does exercise pogema's "can't create task"


def test_fixed_positions_fall_back_to_pogema():
    gc = GridConfig(map="....\n....", agents_xy=[[0, 0]], targets_xy=[[1, 3]], num_agents=1, seed=0)
    g = FastGrid(gc)
    assert g.starts_xy == [(5, 5)] and g.finishes_xy == [(6, 8)]


@pytest.mark.parametrize("seed", range(5))
def test_labels_match_pogema_bfs(seed):
    rng = np.random.default_rng(seed)
    grid = maze_map(15, 17, rng, 0.1) if seed % 2 else rng.random((15, 17)) < 0.4
    obstacles = grid.astype(np.int64)
    ref = obstacles.copy()
    sizes_ref = bfs(ref, ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)), 2, free_cell=0)
    labels, sizes = label_components(~grid, 2)
    np.testing.assert_array_equal(np.where(labels > 0, labels, obstacles), ref)
    assert sizes == sizes_ref
