"""Map strings (fuzzed against pogema's own parser) and the seeded map generators."""

from __future__ import annotations

import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pogema import GridConfig

from envs.maps import ALLOWED, has_markers, maze_map, parse_map, random_map, to_string
from envs.rewards import bfs_distances

grids = st.integers(1, 12).flatmap(
    lambda h: st.integers(1, 12).flatmap(
        lambda w: st.lists(st.lists(st.booleans(), min_size=w, max_size=w), min_size=h, max_size=h)
    )
)


@given(grids)
def test_roundtrip_and_agrees_with_pogema(rows):
    grid = np.array(rows, dtype=bool)
    text = to_string(grid)
    np.testing.assert_array_equal(parse_map(text), grid)
    obstacles, *_ = GridConfig.str_map_to_list(text, 0, 1)  # pogema's parser: the reference
    np.testing.assert_array_equal(np.array(obstacles, dtype=bool), grid)


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(".#@$!aAbBzZ \n\t%*0-~é"), max_size=60))
def test_fuzz_any_text_parses_or_fails_with_one_line(text):
    try:
        grid = parse_map(text)
    except ValueError as e:
        msg = str(e)
        assert "\n" not in msg
        assert (
            ("illegal character" in msg and "allowed" in msg)
            or "rows must be equally wide" in msg
            or "empty map" in msg
        )
        return
    rows = text.split()
    assert grid.shape == (len(rows), len(rows[0]))
    for r, row in enumerate(rows):
        for c, ch in enumerate(row):
            assert grid[r, c] == (ch == "#")


@given(
    st.sampled_from(sorted(set(string.printable) - set(".#@$!" + string.ascii_letters + string.whitespace)))
)
def test_illegal_character_is_named(ch):
    with pytest.raises(ValueError, match="illegal character") as e:
        parse_map(f"...\n.{ch}.\n...", name="m")
    assert repr(ch) in str(e.value) and "row 1, column 1" in str(e.value) and ALLOWED in str(e.value)


def test_ragged_and_empty_maps():
    with pytest.raises(ValueError, match=r"row 1 has 2 cells, row 0 has 3"):
        parse_map("...\n..")
    with pytest.raises(ValueError, match="empty map"):
        parse_map("  \n ")


def test_markers_are_free_cells():
    assert has_markers("a..\n..A") and has_markers(".@.") and not has_markers("..#\n#..")
    np.testing.assert_array_equal(parse_map("a.#\n$!A"), [[False, False, True], [False, False, False]])


@pytest.mark.parametrize("seed", range(5))
def test_random_map_is_seeded(seed):
    a = random_map(20, 30, 0.3, np.random.default_rng(seed))
    b = random_map(20, 30, 0.3, np.random.default_rng(seed))
    assert a.shape == (20, 30) and np.array_equal(a, b) and 0.2 < a.mean() < 0.4


def _edges(free: np.ndarray) -> int:
    return int((free[1:] & free[:-1]).sum() + (free[:, 1:] & free[:, :-1]).sum())


@pytest.mark.parametrize("h,w", [(1, 1), (2, 5), (9, 9), (15, 21), (20, 20)])
@pytest.mark.parametrize("seed", range(3))
def test_maze_is_a_connected_tree_without_loops(h, w, seed):
    grid = maze_map(h, w, np.random.default_rng(seed), loops=0.0)
    free = ~grid
    assert grid.shape == (h, w)
    start = tuple(np.argwhere(free)[0])
    assert (bfs_distances(free, start)[free] >= 0).all()  # connected
    assert _edges(free) == free.sum() - 1  # a tree: one path between any two cells


@pytest.mark.parametrize("seed", range(3))
def test_maze_loops_open_walls_and_stay_connected(seed):
    tree = maze_map(21, 21, np.random.default_rng(seed), loops=0.0)
    looped = maze_map(21, 21, np.random.default_rng(seed), loops=0.3)
    assert (looped <= tree).all() and looped.sum() < tree.sum()  # only walls removed
    free = ~looped
    assert _edges(free) > free.sum() - 1
    assert (bfs_distances(free, tuple(np.argwhere(free)[0]))[free] >= 0).all()
    assert np.array_equal(looped, maze_map(21, 21, np.random.default_rng(seed), loops=0.3))


def test_maze_bad_input():
    with pytest.raises(ValueError, match=r"maze_loops=1.5 is out of range"):
        maze_map(9, 9, np.random.default_rng(0), loops=1.5)
