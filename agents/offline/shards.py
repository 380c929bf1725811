"""Sharded, memory-mapped offline datasets: the on-disk format, atomic shard commits and validation.

A dataset is a folder::

    {dataset}/dataset.json              format + what was recorded (env config, expert, epsilon, seed)
    {dataset}/shard-000000000/          episodes 0.. of the recording (named by its first episode index)
        obs.npy actions.npy rewards.npy dones.npy active.npy
        episode_starts.npy episode_lengths.npy episode_returns.npy
        manifest.json                   shapes, dtypes, byte sizes and sha256 of the arrays, episode ids
    {dataset}/.tmp-*/                   a shard being written (ignored; removed when recording resumes)

Each shard holds whole episodes in the fields of :mod:`agents.offline.data` (one ``.npy`` per field, so
``np.load(mmap_mode='r')`` maps the big ``obs`` array instead of reading it). A shard is written into a
temp folder, every file fsynced, the manifest last, then the folder is renamed to its final name: a
killed recorder leaves only temp folders, never a half-written shard under a shard's name. Episodes are
identified by ``(seed, index)`` (``record.seed`` and the episode's index in the recording), so a resumed
recording records exactly the episodes no committed shard holds.

Opening checks every shard against its manifest (file sizes always, sha256 with ``verify='sha256'``,
dtypes and shapes from the ``.npy`` headers) and the data itself (:func:`agents.offline.data.validate`);
a problem is a one-line ``ValueError`` naming the shard.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.offline.data import OfflineDataset, returns_to_go, validate

FORMAT = "srmt-offline-shards-v1"
SHARD_FORMAT = "srmt-offline-shard-v1"
HEADER = "dataset.json"
MANIFEST = "manifest.json"
SHARD_PREFIX = "shard-"
TEMP_PREFIX = ".tmp-"
ARRAY_FIELDS = (
    "obs",
    "actions",
    "rewards",
    "dones",
    "active",
    "episode_starts",
    "episode_lengths",
    "episode_returns",
)
"""The ``.npy`` files of a shard (``num_actions`` and ``meta`` live in the manifest)."""
OPTIONAL_ARRAY_FIELDS = ("labels",)
"""``.npy`` files a shard may hold (listed in its manifest when it does): ``labels``, the expert's own
actions (absent in shards recorded before they were stored: the taken actions are the targets)."""
VERIFY = ("size", "sha256")


def shard_name(first_episode: int) -> str:
    return f"{SHARD_PREFIX}{first_episode:09d}"


class _HashingWriter:
    """A write-only file wrapper that hashes what passes through (``np.save`` then writes in chunks)."""

    def __init__(self, f) -> None:
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def write(self, data) -> int:
        data = memoryview(data).cast("B")
        self.sha.update(data)
        self.size += len(data)
        return self.f.write(data)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON to a temp file, fsync it, rename it over ``path``."""
    tmp = path.with_name(f"{TEMP_PREFIX}{path.name}-{os.getpid()}")
    with tmp.open("w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file; a missing file is a one-line ValueError."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"file {str(path)!r} not found")
    return _sha256(path)


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            sha.update(chunk)
    return sha.hexdigest()


def write_shard(
    root: str | Path,
    name: str,
    ds: OfflineDataset,
    episode_ids: np.ndarray,
) -> Path:
    """Commit ``ds`` (whole episodes) as shard ``name`` of the dataset folder ``root``, atomically.

    ``episode_ids`` int64 ``[E, 2]``: ``(seed, index)`` of each episode. ``ds.meta`` (per-episode seeds,
    epsilons, metrics) goes into the manifest.
    """
    root = Path(root)
    arrays = ds.arrays()
    validate(arrays, f"shard {name!r}")
    ids = np.asarray(episode_ids, dtype=np.int64)
    if ids.shape != (ds.num_episodes, 2):
        raise ValueError(
            f"shard {name!r}: episode_ids has shape {ids.shape}, expected {(ds.num_episodes, 2)}"
        )
    final = root / name
    if final.exists():
        raise ValueError(f"shard {str(final)!r} already exists; a shard is never overwritten")
    tmp = root / f"{TEMP_PREFIX}{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    files: dict[str, dict[str, Any]] = {}
    for key in (*ARRAY_FIELDS, *(k for k in OPTIONAL_ARRAY_FIELDS if k in arrays)):
        arr = np.ascontiguousarray(arrays[key])
        with (tmp / f"{key}.npy").open("wb") as f:
            w = _HashingWriter(f)
            np.lib.format.write_array(w, arr, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        files[key] = {
            "dtype": arr.dtype.str,
            "shape": list(arr.shape),
            "bytes": w.size,
            "sha256": w.sha.hexdigest(),
        }
    manifest = {
        "format": SHARD_FORMAT,
        "name": name,
        "num_episodes": ds.num_episodes,
        "num_steps": ds.num_steps,
        "num_agents": ds.num_agents,
        "num_actions": ds.num_actions,
        "obs_shape": list(ds.obs_shape),
        "episode_ids": ids.tolist(),
        "meta": ds.meta,
        "files": files,
    }
    with (tmp / MANIFEST).open("w") as f:  # last: a folder with a manifest has all its arrays
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(tmp)
    os.rename(tmp, final)  # atomic: the shard appears whole or not at all
    _fsync_dir(root)
    return final


def read_manifest(path: Path) -> dict[str, Any]:
    """A shard's manifest, checked for its keys; one-line ValueError naming the shard."""
    where = f"dataset shard {str(path)!r}"
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise ValueError(f"{where}: {MANIFEST} is missing (an incomplete shard: delete it and record again)")
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{where}: {MANIFEST} is not valid JSON ({type(e).__name__})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != SHARD_FORMAT:
        raise ValueError(f"{where}: {MANIFEST} is not an {SHARD_FORMAT} manifest")
    keys = ("num_episodes", "num_steps", "num_agents", "num_actions", "obs_shape", "episode_ids", "files")
    missing = [k for k in keys if k not in manifest]
    if missing:
        raise ValueError(f"{where}: {MANIFEST} lacks {', '.join(missing)}")
    ids = manifest["episode_ids"]
    if not isinstance(ids, list) or len(ids) != manifest["num_episodes"]:
        raise ValueError(
            f"{where}: {MANIFEST} lists {len(ids) if isinstance(ids, list) else '?'} episode ids "
            f"but num_episodes={manifest['num_episodes']}"
        )
    return manifest


def open_shard(path: str | Path, verify: str = "size") -> tuple[OfflineDataset, np.ndarray]:
    """Memory-map one shard and validate it; returns the episodes and their ids ``[E, 2]``."""
    path = Path(path)
    where = f"dataset shard {str(path)!r}"
    if verify not in VERIFY:
        raise ValueError(f"verify={verify!r} is unknown; allowed: {', '.join(VERIFY)}")
    manifest = read_manifest(path)
    arrays: dict[str, np.ndarray] = {}
    optional = [k for k in OPTIONAL_ARRAY_FIELDS if k in manifest["files"]]
    for key in (*ARRAY_FIELDS, *optional):
        info = manifest["files"].get(key)
        fpath = path / f"{key}.npy"
        if not isinstance(info, dict) or not {"dtype", "shape", "bytes"} <= set(info):
            raise ValueError(f"{where}: {MANIFEST} has no entry (dtype, shape, bytes) for {key}.npy")
        if not fpath.is_file():
            raise ValueError(f"{where}: {key}.npy is missing")
        size = fpath.stat().st_size
        if size != info["bytes"]:
            state = "truncated" if size < info["bytes"] else "longer than recorded"
            raise ValueError(
                f"{where}: {key}.npy is {state} ({size} bytes, the manifest says {info['bytes']})"
            )
        if verify == "sha256" and _sha256(fpath) != info.get("sha256"):
            raise ValueError(f"{where}: {key}.npy does not match its sha256 in {MANIFEST} (corrupt file)")
        try:
            arr = np.load(fpath, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ValueError(f"{where}: {key}.npy cannot be read: {reason}") from None
        if arr.dtype.str != info["dtype"] or list(arr.shape) != list(info["shape"]):
            raise ValueError(
                f"{where}: {key}.npy holds {arr.dtype.str} {list(arr.shape)}, "
                f"the manifest says {info['dtype']} {list(info['shape'])}"
            )
        arrays[key] = arr
    E, S = manifest["num_episodes"], manifest["num_steps"]
    expect = {"actions": (S, manifest["num_agents"]), "episode_lengths": (E,)}
    for key, shape in expect.items():
        if arrays[key].shape != shape:
            raise ValueError(
                f"{where}: {key}.npy has shape {arrays[key].shape}, but the manifest's num_episodes={E}, "
                f"num_steps={S}, num_agents={manifest['num_agents']} mean {shape}"
            )
    if list(arrays["obs"].shape[2:]) != list(manifest["obs_shape"]):
        raise ValueError(
            f"{where}: obs.npy has observations {arrays['obs'].shape[2:]}, manifest {manifest['obs_shape']}"
        )
    meta = manifest.get("meta", {})
    arrays["num_actions"] = np.asarray(manifest["num_actions"], dtype=np.int64)
    arrays["meta"] = np.asarray(json.dumps(meta))
    validate(arrays, where)  # reads actions, rewards and the bookkeeping (not the observations)
    ids = np.asarray(manifest["episode_ids"], dtype=np.int64).reshape(E, 2)
    ds = OfflineDataset(
        obs=arrays["obs"],
        actions=arrays["actions"],
        rewards=arrays["rewards"],
        dones=arrays["dones"],
        active=arrays["active"],
        episode_starts=np.asarray(arrays["episode_starts"], dtype=np.int64),
        episode_lengths=np.asarray(arrays["episode_lengths"], dtype=np.int64),
        episode_returns=np.asarray(arrays["episode_returns"], dtype=np.float32),
        num_actions=int(manifest["num_actions"]),
        meta=meta,
        labels=arrays.get("labels"),
    )
    return ds, ids


def shard_folders(root: Path) -> list[Path]:
    """Committed shard folders of a dataset folder (temp folders excluded), in name order."""
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(SHARD_PREFIX))


def read_header(root: Path) -> dict[str, Any]:
    where = f"dataset {str(root)!r}"
    hpath = root / HEADER
    if not hpath.is_file():
        raise ValueError(
            f"{where} has no {HEADER}; it is not an srmt sharded dataset (`srmt offline record`)"
        )
    try:
        header = json.loads(hpath.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{where}: {HEADER} is not valid JSON ({type(e).__name__})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{where}: {HEADER} is not an {FORMAT} header")
    return header


@dataclass
class ShardedDataset:
    """Episodes from one or more shards (arrays memory-mapped), indexed globally.

    Episode ``e`` lives in ``shards[episode_shard[e]]`` at steps ``episode_starts[e] ..
    + episode_lengths[e]`` of that shard.
    """

    shards: list[OfflineDataset]
    names: list[str]
    meta: dict[str, Any]
    """The dataset's header ``recording`` (env config, expert, ...) or a single file's meta."""
    episode_ids: np.ndarray = field(init=False)
    episode_shard: np.ndarray = field(init=False)
    episode_starts: np.ndarray = field(init=False)
    episode_lengths: np.ndarray = field(init=False)
    episode_returns: np.ndarray = field(init=False)
    ids: list[np.ndarray] = field(default_factory=list)
    _rtg: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _agent_steps: int | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.shards:
            raise ValueError("a dataset needs at least one shard")
        first = self.shards[0]
        for name, sh in zip(self.names, self.shards):
            for what, a, b in (
                ("agents", sh.num_agents, first.num_agents),
                ("observation shape", sh.obs_shape, first.obs_shape),
                ("num_actions", sh.num_actions, first.num_actions),
            ):
                if a != b:
                    raise ValueError(
                        f"dataset shard {name!r}: {what} {a} differs from {b} in {self.names[0]!r}"
                    )
        if not self.ids:
            self.ids = [
                np.stack([np.zeros(sh.num_episodes, np.int64), np.arange(sh.num_episodes)], 1)
                for sh in self.shards
            ]
        self.episode_ids = np.concatenate(self.ids)
        self.episode_shard = np.concatenate([np.full(sh.num_episodes, i) for i, sh in enumerate(self.shards)])
        self.episode_starts = np.concatenate([sh.episode_starts for sh in self.shards])
        self.episode_lengths = np.concatenate([sh.episode_lengths for sh in self.shards])
        self.episode_returns = np.concatenate([sh.episode_returns for sh in self.shards])
        seen: dict[tuple[int, int], str] = {}
        for name, ids in zip(self.names, self.ids):
            for sid, idx in ids.tolist():
                if (sid, idx) in seen:
                    raise ValueError(
                        f"dataset shard {name!r}: episode (seed {sid}, index {idx}) is also in {seen[(sid, idx)]!r}"
                    )
                seen[(sid, idx)] = name

    @classmethod
    def from_dataset(cls, ds: OfflineDataset, name: str = "memory") -> ShardedDataset:
        """One in-memory dataset (e.g. a legacy ``.npz``) as a dataset of one shard."""
        return cls([ds], [name], dict(ds.meta))

    @property
    def num_episodes(self) -> int:
        return int(self.episode_lengths.shape[0])

    @property
    def num_steps(self) -> int:
        return int(self.episode_lengths.sum())

    @property
    def num_agents(self) -> int:
        return self.shards[0].num_agents

    @property
    def num_actions(self) -> int:
        return self.shards[0].num_actions

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        return self.shards[0].obs_shape

    @property
    def agent_steps(self) -> int:
        """Steps in which an agent acted (the training targets)."""
        if self._agent_steps is None:
            self._agent_steps = sum(int(np.count_nonzero(sh.active)) for sh in self.shards)
        return self._agent_steps

    @property
    def nbytes(self) -> int:
        return sum(sum(a.nbytes for a in sh.arrays().values()) for sh in self.shards)

    def target_return(self, kind: str) -> float:
        """``best`` or ``mean`` per-agent episode return."""
        if kind == "best":
            return float(self.episode_returns.max())
        if kind == "mean":
            return float(self.episode_returns.mean())
        raise ValueError(f"unknown target return {kind!r}; allowed: best, mean")

    def rtg(self, shard: int) -> np.ndarray:
        """Returns-to-go ``[S, A]`` of one shard (computed once, kept in memory: 4 bytes per agent-step)."""
        if shard not in self._rtg:
            sh = self.shards[shard]
            self._rtg[shard] = returns_to_go(np.asarray(sh.rewards), sh.episode_starts, sh.episode_lengths)
        return self._rtg[shard]


def open_dataset(path: str | Path, verify: str = "size") -> ShardedDataset:
    """A sharded dataset folder, or a single ``.npz`` file (the earlier format, read as one shard)."""
    path = Path(path)
    if path.is_file():
        from agents.offline.data import load_dataset

        return ShardedDataset.from_dataset(load_dataset(path), path.name)
    if not path.is_dir():
        raise ValueError(f"dataset {str(path)!r} not found; record one with `srmt offline record CONFIG`")
    header = read_header(path)
    folders = shard_folders(path)
    if not folders:
        raise ValueError(
            f"dataset {str(path)!r} has no committed shards; record (or resume) with `srmt offline record`"
        )
    opened = [open_shard(p, verify) for p in folders]
    return ShardedDataset(
        shards=[ds for ds, _ in opened],
        names=[str(p) for p in folders],
        meta=dict(header.get("recording", {})),
        ids=[ids for _, ids in opened],
    )


def open_datasets(paths: list[str | Path], verify: str = "size") -> ShardedDataset:
    """Several datasets trained on together (e.g. the first recording and its DAgger rounds), as one
    :class:`ShardedDataset`; they must share the env they were recorded in (and agents, observations,
    actions), and no episode may appear twice."""
    opened = [open_dataset(p, verify) for p in paths]
    if len(opened) == 1:
        return opened[0]
    first = opened[0]
    for p, ds in zip(paths[1:], opened[1:]):
        if ds.meta.get("env") != first.meta.get("env"):
            raise ValueError(
                f"dataset {str(p)!r} was recorded in another env than {str(paths[0])!r}; "
                "train on datasets of one env"
            )
    return ShardedDataset(
        shards=[sh for ds in opened for sh in ds.shards],
        names=[n for ds in opened for n in ds.names],
        meta=dict(first.meta),
        ids=[i for ds in opened for i in ds.ids],
    )
