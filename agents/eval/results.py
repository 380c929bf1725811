"""Result files: one JSON per algorithm and map set in pogema-toolbox's format, plus one CSV of all rows.

A *row* (in memory) is ``{source, algorithm, map_set, mode, map_name, num_agents, seed, metrics}`` with
``source`` ``ours`` or ``published``. On disk (``{out_dir}/{map_set}-{lmapf|mapf}/{algorithm}.json``)
each episode is pogema-toolbox's ``{"metrics": {...}, "env_grid_search": {"map_name", "num_agents",
"seed"}, "algorithm": name}``, so the files read like the benchmark's ``raw_data_*`` (which lack
``seed``: their whole grid used seed 0).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

ID_COLUMNS = ("source", "algorithm", "map_set", "mode", "map_name", "num_agents", "seed")
SUFFIX = {"lifelong": "lmapf", "classic": "mapf", "env": "env"}
"""Results folder suffix per mode; ``env``: an env task (seeded episodes of a registered env)."""
MODE_OF_SUFFIX = {v: k for k, v in SUFFIX.items()}


def folder_name(map_set: str, mode: str) -> str:
    return f"{map_set}-{SUFFIX[mode]}"


def safe_name(name: str) -> str:
    """An algorithm name as a file name (display names may hold spaces or slashes)."""
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in name)


def to_toolbox(rows: list[dict]) -> list[dict]:
    return [
        {
            "metrics": dict(r["metrics"]),
            "env_grid_search": {"map_name": r["map_name"], "num_agents": r["num_agents"], "seed": r["seed"]},
            "algorithm": r["algorithm"],
        }
        for r in rows
    ]


def from_toolbox(
    items: list[dict], map_set: str, mode: str, source: str, default_seed: int = 0
) -> list[dict]:
    rows = []
    for it in items:
        try:
            grid, metrics, algo = it["env_grid_search"], it["metrics"], it["algorithm"]
            rows.append(
                {
                    "source": source,
                    "algorithm": str(algo),
                    "map_set": map_set,
                    "mode": mode,
                    "map_name": str(grid["map_name"]),
                    "num_agents": int(grid["num_agents"]),
                    "seed": int(grid.get("seed", default_seed)),
                    "metrics": {k: float(v) for k, v in metrics.items()},
                }
            )
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"{map_set}: result entry {str(it)[:80]!r} lacks metrics / env_grid_search(map_name, num_agents) / "
                "algorithm (pogema-toolbox format)"
            ) from None
    return rows


def write_results(rows: list[dict], out_dir: str | Path) -> list[Path]:
    """Our rows as toolbox JSONs (one per map set and algorithm) and ``results.csv``; returns the paths."""
    out = Path(out_dir)
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["map_set"], r["mode"], r["algorithm"]), []).append(r)
    paths = []
    for (map_set, mode, algo), group in groups.items():
        p = out / folder_name(map_set, mode) / f"{safe_name(algo)}.json"
        write_atomic(p, json.dumps(to_toolbox(group), indent=1))
        paths.append(p)
    paths.append(write_csv(rows, out / "results.csv"))
    return paths


def read_results(out_dir: str | Path, source: str = "ours") -> list[dict]:
    """Rows back from the JSONs that :func:`write_results` wrote."""
    rows = []
    for p in sorted(Path(out_dir).glob("*/*.json")):
        stem, _, suffix = p.parent.name.rpartition("-")
        if suffix not in MODE_OF_SUFFIX:
            continue
        try:
            items = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            reason = getattr(e, "strerror", None) or str(e).splitlines()[0]
            raise ValueError(f"results file {p} cannot be read: {reason}") from None
        if not isinstance(items, list):
            raise ValueError(f"results file {p}: expected a list of episodes (pogema-toolbox format)")
        rows += from_toolbox(items, stem, MODE_OF_SUFFIX[suffix], source)
    return rows


def write_atomic(path: Path, text: str) -> Path:
    """Write to a temporary file beside ``path``, fsync, then rename over it: a reader (or a kill)
    sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_csv(rows: list[dict], path: str | Path) -> Path:
    metric_names = sorted({k for r in rows for k in r["metrics"]})
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow([*ID_COLUMNS, *metric_names])
    for r in rows:
        w.writerow([*(r[c] for c in ID_COLUMNS), *(r["metrics"].get(m, "") for m in metric_names)])
    return write_atomic(Path(path), buf.getvalue())


def read_csv(path: str | Path) -> list[dict]:
    rows = []
    with Path(path).open(newline="") as f:
        for rec in csv.DictReader(f):
            ids = {c: rec.pop(c) for c in ID_COLUMNS}
            ids["num_agents"], ids["seed"] = int(ids["num_agents"]), int(ids["seed"])
            ids["metrics"] = {k: float(v) for k, v in rec.items() if v != ""}
            rows.append(ids)
    return rows


def same_metrics(a: dict, b: dict, ignore: tuple[str, ...] = ("runtime",)) -> bool:
    """Whether two metric dicts agree (NaN equals NaN), apart from timing keys."""
    keys = (set(a) | set(b)) - set(ignore)
    return all(k in a and k in b and (a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k]))) for k in keys)
