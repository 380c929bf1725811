"""Map strings, pogema-toolbox map sets and seeded map generators.

A map is a numpy bool array ``[H, W]`` (True = obstacle), row-major, row index first: the same
``(x, y) = (row, column)`` convention pogema uses. Map strings follow pogema's syntax, one row per line:
``.`` free, ``#`` obstacle, ``@`` / ``$`` / ``!`` free cells marked as possible starts / goals / both,
``a``-``z`` the start of agent k and ``A``-``Z`` its goal.

Map sets are pogema-toolbox ``maps.yaml`` files: a mapping ``name -> map string``, e.g.
``pogema-benchmark/experiments/01-random/maps.yaml`` in the data folder (``srmt data fetch``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import yaml

from configs import paths

FREE_CHARS = ".@$!"
OBSTACLE_CHARS = "#"
ALLOWED = "'.' free, '#' obstacle, '@' '$' '!' possible starts/goals, a-z agent start, A-Z its goal"


def _is_marker(ch: str) -> bool:
    return ch.isascii() and ch.isalpha()


def parse_map(text: str, name: str = "map") -> np.ndarray:
    """Obstacle grid ``[H, W]`` bool of a pogema map string; ValueError (one line) on bad input."""
    if not isinstance(text, str):
        raise ValueError(f"{name}: a map must be a string, got {type(text).__name__}")
    rows = text.split()
    if not rows:
        raise ValueError(f"{name}: empty map string; give at least one row of {ALLOWED}")
    width = len(rows[0])
    grid = np.zeros((len(rows), width), dtype=bool)
    for r, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(
                f"{name}: row {r} has {len(row)} cells, row 0 has {width}; rows must be equally wide"
            )
        for c, ch in enumerate(row):
            if ch in OBSTACLE_CHARS:
                grid[r, c] = True
            elif ch not in FREE_CHARS and not _is_marker(ch):
                raise ValueError(
                    f"{name}: illegal character {ch!r} at row {r}, column {c}; allowed: {ALLOWED}"
                )
    return grid


def has_markers(text: str) -> bool:
    """Whether a map string fixes starts/goals itself (letters or ``@ $ !``), which pogema then uses."""
    return any(_is_marker(ch) or ch in "@$!" for ch in text)


def to_string(grid: np.ndarray) -> str:
    """A bool obstacle grid as a pogema map string (``.`` / ``#``)."""
    return "\n".join("".join("#" if v else "." for v in row) for row in np.asarray(grid, dtype=bool))


def resolve_path(path: str | Path) -> Path:
    """A maps file by the path rule of :mod:`configs.paths` (as given, the data folder, the package)."""
    return paths.resolve(path, "maps file")


_MAPS_CACHE: dict[Path, dict[str, str]] = {}


def load_maps(path: str | Path) -> dict[str, str]:
    """``name -> map string`` from a pogema-toolbox ``maps.yaml`` (cached per file; do not mutate)."""
    p = resolve_path(path)
    if p not in _MAPS_CACHE:
        try:
            data = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise ValueError(f"maps file {p}: invalid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(data, dict) or not data:
            raise ValueError(f"maps file {p}: expected a non-empty mapping name -> map string")
        for k, v in data.items():
            if not isinstance(v, str):
                raise ValueError(f"maps file {p}: map {k!r} is a {type(v).__name__}, expected a map string")
        _MAPS_CACHE[p] = {str(k): v for k, v in data.items()}
    return _MAPS_CACHE[p]


def select_maps(names: Iterable[str], selectors: Iterable[str], where: str = "maps file") -> list[str]:
    """Names matching any selector, in file order. A selector is an exact name or a regex (full match).

    A selector that matches nothing is an error naming it, so a typo never silently shrinks a map set.
    """
    names = list(names)
    chosen: set[str] = set()
    for sel in selectors:
        if sel in names:
            chosen.add(sel)
            continue
        try:
            pattern = re.compile(sel)
        except re.error:
            pattern = None
        hits = [n for n in names if pattern is not None and pattern.fullmatch(n)]
        if not hits:
            examples = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            raise ValueError(
                f"unknown map name {sel!r}: no map in {where} has that name or fully matches it as a regex "
                f"({len(names)} maps: {examples})"
            )
        chosen.update(hits)
    return [n for n in names if n in chosen]


def random_map(height: int, width: int, density: float, rng: np.random.Generator) -> np.ndarray:
    """Obstacles drawn i.i.d. with probability ``density`` (pogema's own random maps do the same)."""
    return rng.random((height, width)) < density


def maze_map(height: int, width: int, rng: np.random.Generator, loops: float = 0.15) -> np.ndarray:
    """A seeded maze with one-cell corridors and walls, plus a share ``loops`` of inner walls removed.

    Carved by a randomised depth-first search over the cells at even coordinates (a perfect maze: one
    path between any two cells), then ``loops`` of the remaining walls that separate two corridor cells
    are opened, because a tree maze deadlocks any two agents that meet head-on.
    """
    if height < 1 or width < 1:
        raise ValueError(f"maze size {height}x{width} is too small; height and width must be >= 1")
    if not 0.0 <= loops <= 1.0:
        raise ValueError(f"maze_loops={loops} is out of range; allowed: 0 <= maze_loops <= 1")
    grid = np.ones((height, width), dtype=bool)
    ch, cw = (height + 1) // 2, (width + 1) // 2  # cells live at even coordinates
    seen = np.zeros((ch, cw), dtype=bool)
    start = (int(rng.integers(ch)), int(rng.integers(cw)))
    stack = [start]
    seen[start] = True
    grid[2 * start[0], 2 * start[1]] = False
    steps = ((0, 1), (1, 0), (0, -1), (-1, 0))
    while stack:
        r, c = stack[-1]
        nbrs = [
            (r + dr, c + dc)
            for dr, dc in steps
            if 0 <= r + dr < ch and 0 <= c + dc < cw and not seen[r + dr, c + dc]
        ]
        if not nbrs:
            stack.pop()
            continue
        nr, nc = nbrs[int(rng.integers(len(nbrs)))]
        seen[nr, nc] = True
        grid[2 * nr, 2 * nc] = False
        grid[r + nr, c + nc] = False  # the wall between the two cells: (2r + 2nr) / 2
        stack.append((nr, nc))
    # Walls between two free cells, horizontally or vertically: opening one adds a loop.
    inner = np.zeros_like(grid)
    inner[1:-1, :] |= grid[1:-1, :] & ~grid[:-2, :] & ~grid[2:, :]
    inner[:, 1:-1] |= grid[:, 1:-1] & ~grid[:, :-2] & ~grid[:, 2:]
    candidates = np.flatnonzero(inner)
    if candidates.size and loops > 0:
        opened = rng.choice(candidates, size=int(round(loops * candidates.size)), replace=False)
        grid.flat[opened] = False
    return grid
