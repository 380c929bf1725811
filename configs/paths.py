"""One rule for every file or folder a command reads (configs, map sets, maps files, checkpoints,
benchmark data):

1. the path as given: absolute, or relative to the working directory (``~`` expanded);
2. relative to the user's data folder: ``$SRMT_DATA`` when set, else ``~/.cache/srmt/data`` (under
   ``$XDG_CACHE_HOME`` when that is set); ``srmt data fetch`` downloads into it;
3. relative to the package's own data: ``configs/data/`` (the FollowerLite checkpoint), then ``configs/``
   itself (the shipped presets and map sets), wherever the package is installed.

The first candidate that exists wins; a miss is one ``ValueError`` line naming every place tried.
Nothing here depends on the working directory being the source checkout.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

DATA_ENV = "SRMT_DATA"
"""Environment variable naming the user's data folder."""
CONFIG_DIR = Path(__file__).resolve().parent
PACKAGE_DATA = CONFIG_DIR / "data"
"""Data shipped inside the package (wheel included)."""
PACKAGE_ROOTS = (PACKAGE_DATA, CONFIG_DIR)
BENCHMARK = "pogema-benchmark"
"""Folder of the POGEMA benchmark data in the data folder (``srmt data fetch`` puts it there)."""
FETCH_HINT = f"get the POGEMA benchmark data with `srmt data fetch` (or set {DATA_ENV} to a folder holding {BENCHMARK}/)"


def data_dir() -> Path:
    """The user's data folder (it need not exist yet)."""
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(cache).expanduser() if cache else Path.home() / ".cache") / "srmt" / "data"


def candidates(path: str | Path, suffixes: Iterable[str] = ("",)) -> list[Path]:
    """Where ``path`` is looked for, in order (each place with each suffix, e.g. ``("", ".yaml")``)."""
    p = Path(path).expanduser()
    roots: list[Path | None] = [None] if p.is_absolute() else [None, data_dir(), *PACKAGE_ROOTS]
    out = []
    for root in roots:
        base = p if root is None else root / p
        out += [base.with_name(base.name + s) if s and base.name else base for s in suffixes]
    return out


def resolve(
    path: str | Path,
    what: str = "file",
    kind: Literal["file", "dir", "any"] = "file",
    suffixes: Iterable[str] = ("",),
    hint: str = "",
) -> Path:
    """The first existing candidate of ``path`` (see the module docstring), resolved to an absolute path.

    ``kind`` says what must exist (a file, a folder or either); ``hint`` ends the error line, e.g. how
    to get the data (``run `srmt data fetch```).
    """
    if str(path).strip() == "":
        raise ValueError(f"{what}: empty path")
    if not hint and Path(path).parts[:1] == (BENCHMARK,):
        hint = FETCH_HINT
    ok = {"file": Path.is_file, "dir": Path.is_dir, "any": Path.exists}[kind]
    for c in candidates(path, tuple(suffixes)):
        if ok(c):
            return c.resolve()
    raise ValueError(f"{what} {str(path)!r} not found ({where_tried(path)}){'; ' + hint if hint else ''}")


def where_tried(path: str | Path) -> str:
    """The places :func:`resolve` looks in, in words (for error messages)."""
    if Path(path).expanduser().is_absolute():
        return "an absolute path"
    env = f"${DATA_ENV}" if os.environ.get(DATA_ENV, "").strip() else "the data folder"
    return f"tried it as given, in {env} {data_dir()} and in the package data {CONFIG_DIR}"
