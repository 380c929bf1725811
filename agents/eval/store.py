"""The episode log: every finished episode is on disk the moment it is collected, with its settings.

``{out_dir}/episodes/{map_set}-{lmapf|mapf|env}/{algorithm}.jsonl`` (``env``: an env task) holds one JSON object per line::

    {"algorithm", "map_set", "mode", "map_name", "num_agents", "seed", "metrics": {...},
     "settings": {"algorithm": {...}, "map_set": {...}, "instance": {...}}}

``settings`` is everything that changes the episode besides its key (algorithm, map set, map, agent
count, seed): the algorithm's kind, checkpoint digest, action selection, device, env backend and the
options that differ from their defaults (``options``, only when some do); the map
set's episode length, collision system, observation radius, ``on_target``; the map's and the frozen
scenario's digests. A line is appended with one ``write`` and ``fsync`` by the one process that collects
results, so a kill loses at most the episode being written, whose torn line (no newline yet) is dropped
and cut off before the next append. The final pogema-toolbox JSONs and ``results.csv`` are built from
this log; ``resume`` skips every episode already in it with the same settings, and a run whose settings
differ from what the log holds for the same algorithm, map set or instance is refused (one line naming
the setting) unless ``restart=overwrite``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.eval.episode import EnvInstance, Instance, env_digest
from agents.eval.results import MODE_OF_SUFFIX, folder_name, safe_name
from agents.eval_config import AlgorithmConfig

LOG_DIR = "episodes"
KEY_FIELDS = ("algorithm", "map_set", "mode", "map_name", "num_agents", "seed")
LEARNED = ("follower_lite", "srmt", "rate")

Key = tuple[str, str, str, str, int, int]


class ResultsConflict(ValueError):
    """``out_dir`` holds results of another config (one line); ``what`` and ``difference`` name them."""

    def __init__(self, message: str, what: str = "", difference: str = "") -> None:
        super().__init__(message)
        self.what, self.difference = what, difference


def _digest(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()[:16]


def checkpoint_digest(path: Path) -> str:
    """Content digest of a checkpoint file; for a folder (an srmt run: the latest checkpoint inside is
    loaded), of the names, sizes and modification times of the ``.pth`` files under it."""
    if path.is_dir():
        parts = [
            f"{p.relative_to(path)}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
            for p in sorted(path.rglob("*.pth"))
        ]
        return "dir:" + _digest("\n".join(parts))
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def algorithm_settings(spec: AlgorithmConfig, missing_ok: bool = False) -> dict[str, Any]:
    """What of an algorithm's config changes its episodes (the checkpoint by content, not by path).
    With ``missing_ok`` a checkpoint that is not here has digest None, which matches any stored one
    (``report_only`` on a machine that has the results but not the checkpoint)."""
    from agents.eval.algorithms import resolve_file

    out: dict[str, Any] = {"kind": spec.kind, "env_backend": spec.env_backend}
    if spec.kind in LEARNED:
        try:
            path = resolve_file(spec.checkpoint, f"{spec.kind} checkpoint", folders=spec.kind == "srmt")
            digest: str | None = checkpoint_digest(path)
        except ValueError:
            if not missing_ok:
                raise
            digest = None
        out.update(checkpoint=digest, action_selection=spec.action_selection, device=spec.device)
    if spec.kind == "rate":
        out["target_return"] = spec.target_return
    options = changed_options(spec.opts)
    if options:  # only when some differ from their defaults, so logs written before options match
        out["options"] = options
    return out


def changed_options(opts: Any) -> dict[str, Any]:
    """The fields of an algorithm's typed options (a dataclass, or None) that differ from their defaults,
    as JSON values (a field without a default is always listed)."""
    if opts is None:
        return {}
    out: dict[str, Any] = {}
    for f in dataclasses.fields(opts):
        value = _json_value(getattr(opts, f.name))
        if f.default is not dataclasses.MISSING:
            default: Any = _json_value(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = _json_value(f.default_factory())
        else:
            default = dataclasses.MISSING
        if value != default:
            out[f.name] = value
    return out


def _json_value(value: Any) -> Any:
    """``value`` as it reads back from the log (tuples as lists, dataclasses as dicts)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=str))


def map_set_settings(inst: Instance | EnvInstance) -> dict[str, Any]:
    if isinstance(inst, EnvInstance):  # an env task: its config is in the instance's name and settings
        return {"task": "env"}
    return {
        "on_target": inst.on_target,
        "max_episode_steps": inst.max_episode_steps,
        "collision_system": inst.collision_system,
        "obs_radius": inst.obs_radius,
    }


def instance_settings(inst: Instance | EnvInstance) -> dict[str, Any]:
    if isinstance(inst, EnvInstance):
        return {"env": env_digest(inst.env)}
    frozen = inst.agents_xy is not None or inst.targets_xy is not None
    scenario = _digest(json.dumps([inst.agents_xy, inst.targets_xy])) if frozen else "generated"
    return {"map": _digest(inst.map), "scenario": scenario}


def episode_key(algorithm: str, inst: Instance | EnvInstance) -> Key:
    return (algorithm, inst.map_set, inst.mode, inst.map_name, inst.num_agents, inst.seed)


def row_key(row: dict) -> Key:
    return tuple(row[f] for f in KEY_FIELDS)  # type: ignore[return-value]


@dataclass
class Planned:
    """One episode a run wants: its key and its settings."""

    key: Key
    settings: dict[str, dict[str, Any]]


def plan(
    tasks: Iterable[tuple[str, Instance | EnvInstance]], algo_settings: dict[str, dict]
) -> list[Planned]:
    return [
        Planned(
            episode_key(name, inst),
            {
                "algorithm": algo_settings[name],
                "map_set": map_set_settings(inst),
                "instance": instance_settings(inst),
            },
        )
        for name, inst in tasks
    ]


def same_settings(stored: dict, now: dict) -> bool:
    """Equal settings; a checkpoint of None in ``now`` (a checkpoint not here) matches any stored one."""
    if set(stored) != set(now):
        return False
    return all(
        same_settings(stored[k], v) if isinstance(v, dict) and isinstance(stored[k], dict) else
        (v is None and k == "checkpoint") or stored[k] == v
        for k, v in now.items()
    )  # fmt: skip


def _first_difference(stored: dict, now: dict) -> str:
    for k in sorted(set(stored) | set(now)):
        if k not in now:
            return f"{k}={stored[k]!r} stored, no {k} now"
        if k not in stored:
            return f"no {k} stored, {k}={now[k]!r} now"
        if not (now[k] is None and k == "checkpoint") and stored[k] != now[k]:
            return f"{k}={stored[k]!r} stored, {k}={now[k]!r} now"
    return "settings differ"


class EpisodeLog:
    """Append-only per-(map set, algorithm) JSON-lines files under ``{out_dir}/episodes/``."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.root = self.out_dir / LOG_DIR
        self.records: dict[Key, dict] = {}
        self.appended = 0
        self._repaired: set[Path] = set()

    def path_of(self, key: Key) -> Path:
        algorithm, map_set, mode = key[0], key[1], key[2]
        return self.root / folder_name(map_set, mode) / f"{safe_name(algorithm)}.jsonl"

    def exists(self) -> bool:
        return self.root.is_dir()

    def load(self) -> dict[Key, dict]:
        """Every complete record on disk (a torn last line is ignored); a corrupt line is an error
        naming the file and line."""
        self.records = {}
        if not self.root.is_dir():
            return self.records
        for path in sorted(self.root.glob("*/*.jsonl")):
            if path.parent.name.rpartition("-")[2] not in MODE_OF_SUFFIX:
                continue
            try:
                data = path.read_bytes()
            except OSError as e:
                raise ValueError(f"results file {path} cannot be read ({e.strerror})") from None
            lines = data.split(b"\n")
            complete = lines[:-1]  # what follows the last newline is a torn write (or nothing)
            for lineno, raw in enumerate(complete, 1):
                if not raw.strip():
                    continue
                try:
                    rec = json.loads(raw)
                    key = row_key(rec)
                    if not isinstance(rec["metrics"], dict) or not isinstance(rec["settings"], dict):
                        raise TypeError
                except (ValueError, KeyError, TypeError):
                    raise ValueError(
                        f"results file {path} line {lineno} is corrupt (not an episode record); "
                        "delete the file or rerun with eval.restart=overwrite"
                    ) from None
                self.records[key] = rec  # a later line for the same episode (a re-run) wins
        return self.records

    def check(self, planned: list[Planned], what_to_do: str) -> None:
        """Refuse when the log holds the same algorithm, map set or instance with other settings."""
        by_algo: dict[str, dict] = {}
        by_set: dict[tuple[str, str], dict] = {}
        by_inst: dict[tuple, dict] = {}
        for key, rec in self.records.items():
            s = rec["settings"]
            by_algo.setdefault(key[0], s.get("algorithm", {}))
            by_set.setdefault((key[1], key[2]), s.get("map_set", {}))
            by_inst.setdefault(key[1:], s.get("instance", {}))
        for p in planned:
            algo, (map_set, mode), inst = p.key[0], p.key[1:3], p.key[1:]
            label = folder_name(map_set, mode)
            checks = (
                (by_algo.get(algo), p.settings["algorithm"], f"algorithm {algo}"),
                (by_set.get((map_set, mode)), p.settings["map_set"], f"map set {label}"),
                (by_inst.get(inst), p.settings["instance"], f"{label} {inst[2]} n={inst[3]} seed={inst[4]}"),
            )
            for stored, now, what in checks:
                if stored is not None and not same_settings(stored, now):
                    diff = _first_difference(stored, now)
                    raise ResultsConflict(
                        f"{self.out_dir} holds results of another config for {what} ({diff}); {what_to_do}",
                        what,
                        diff,
                    )

    def done(self, p: Planned) -> dict | None:
        rec = self.records.get(p.key)
        return rec if rec is not None and same_settings(rec["settings"], p.settings) else None

    def _repair(self, path: Path) -> None:
        """Cut a torn last line (a write killed half-way) so that the next record starts a line."""
        if path in self._repaired:
            return
        self._repaired.add(path)
        if not path.is_file():
            return
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with path.open("r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
                f.flush()
                os.fsync(f.fileno())

    def append(self, row: dict, settings: dict) -> None:
        """One finished episode: one line written, flushed and fsynced before this returns."""
        key = row_key(row)
        rec = {**{f: row[f] for f in KEY_FIELDS}, "metrics": row["metrics"], "settings": settings}
        path = self.path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._repair(path)
        line = (json.dumps(rec, separators=(",", ":")) + "\n").encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            while written < len(line):  # a short write (rare; e.g. a signal) continues, not restarts
                written += os.write(fd, line[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        self.records[key] = rec
        self.appended += 1


def row_of(rec: dict) -> dict:
    return {"source": "ours", **{f: rec[f] for f in KEY_FIELDS}, "metrics": dict(rec["metrics"])}


def has_foreign_results(out_dir: Path) -> bool:
    """Result JSONs in ``out_dir`` that no episode log describes (an older srmt or copied files)."""
    return not (out_dir / LOG_DIR).is_dir() and any(
        p.parent.name.rpartition("-")[2] in MODE_OF_SUFFIX for p in out_dir.glob("*/*.json")
    )


OUTPUT_FILES = ("results.csv", "comparison.csv", "summary.md", "figures.json")


def clear_results(out_dir: Path) -> None:
    """``restart=overwrite``: remove what ``srmt eval`` wrote in ``out_dir`` (and nothing else): the
    episode log, the per-map-set result JSONs, the CSVs, the summary, figures and plots."""
    if (out_dir / LOG_DIR).is_dir():
        shutil.rmtree(out_dir / LOG_DIR)
    for p in out_dir.glob("*/*.json"):
        if p.parent.name.rpartition("-")[2] in MODE_OF_SUFFIX:
            p.unlink()
    for name in OUTPUT_FILES:
        (out_dir / name).unlink(missing_ok=True)
    for p in (out_dir / "plots").glob("*.png"):
        p.unlink()
