"""Offline datasets: the fields of recorded episodes, validation, returns-to-go, segments and batches.

The recorder writes shards (one ``.npy`` per field, memory-mapped; :mod:`agents.offline.shards`); the
earlier single-file ``.npz`` (the same fields plus ``num_actions`` and ``meta``) still loads. One shard or
file holds E recorded episodes of one env with A agents each, concatenated along the step axis
(S = total steps); the agents of one environment stay together on the second axis:

==================  ====================  ============================================================
field               dtype, shape          meaning
==================  ====================  ============================================================
``obs``             uint8 [S, A, C, H, W] observation the action was chosen on (pogema obs are 0/1)
``actions``         int8 [S, A]           action taken, 0..num_actions-1
``rewards``         float32 [S, A]        the env's reward for that step
``dones``           bool [S, A]           terminated or truncated after that step
``active``          bool [S, A]           the agent acted in that step (False once finished)
``episode_starts``  int64 [E]             first step of each episode (0, then cumulative lengths)
``episode_lengths`` int64 [E]             steps of each episode (>= 1)
``episode_returns`` float32 [E, A]        each agent's undiscounted episode return
``num_actions``     int64 []              size of the action space
``meta``            str []                JSON: env config, expert, epsilon, episode seeds, metrics
``labels``          int8 [S, A]           optional: the expert's own action in that step (before the
                                          epsilon replacement, or while another policy acted): the
                                          training target; absent = the taken action
==================  ====================  ============================================================

No object arrays: ``np.load(path, allow_pickle=False)`` reads it.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FIELDS: dict[str, tuple[str, str]] = {
    # name -> (numpy dtype kinds allowed, shape description)
    "obs": ("u", "uint8 [S, A, C, H, W]"),
    "actions": ("iu", "integer [S, A]"),
    "rewards": ("f", "float [S, A]"),
    "dones": ("b", "bool [S, A]"),
    "active": ("b", "bool [S, A]"),
    "episode_starts": ("iu", "integer [E]"),
    "episode_lengths": ("iu", "integer [E]"),
    "episode_returns": ("f", "float [E, A]"),
    "num_actions": ("iu", "integer scalar"),
    "meta": ("U", "JSON string scalar"),
}
OPTIONAL_FIELDS: dict[str, tuple[str, str]] = {
    "labels": ("iu", "integer [S, A]"),
}


@dataclass
class OfflineDataset:
    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    active: np.ndarray
    episode_starts: np.ndarray
    episode_lengths: np.ndarray
    episode_returns: np.ndarray
    num_actions: int
    meta: dict[str, Any] = field(default_factory=dict)
    labels: np.ndarray | None = None
    """The expert's own actions ``[S, A]`` (the training targets), or None: the taken ``actions`` are."""

    @property
    def targets(self) -> np.ndarray:
        """The training targets: ``labels`` when recorded, else the taken ``actions``."""
        return self.actions if self.labels is None else self.labels

    @property
    def num_steps(self) -> int:
        return int(self.actions.shape[0])

    @property
    def num_agents(self) -> int:
        return int(self.actions.shape[1])

    @property
    def num_episodes(self) -> int:
        return int(self.episode_lengths.shape[0])

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.obs.shape[2:])  # type: ignore[return-value]

    @property
    def agent_steps(self) -> int:
        """Steps in which an agent acted (the training targets)."""
        return int(self.active.sum())

    def target_return(self, kind: str) -> float:
        """``best`` or ``mean`` per-agent episode return."""
        if kind == "best":
            return float(self.episode_returns.max())
        if kind == "mean":
            return float(self.episode_returns.mean())
        raise ValueError(f"unknown target return {kind!r}; allowed: best, mean")

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        validate(self.arrays(), str(path))
        with path.open("wb") as f:  # a file object: savez_compressed would append .npz to a str path
            np.savez_compressed(f, **self.arrays())
        return path

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "obs": self.obs,
            "actions": self.actions,
            "rewards": self.rewards,
            "dones": self.dones,
            "active": self.active,
            "episode_starts": self.episode_starts,
            "episode_lengths": self.episode_lengths,
            "episode_returns": self.episode_returns,
            "num_actions": np.asarray(self.num_actions, dtype=np.int64),
            "meta": np.asarray(json.dumps(self.meta, sort_keys=True)),
            **({} if self.labels is None else {"labels": self.labels}),
        }


def load_dataset(path: str | Path) -> OfflineDataset:
    """Read and validate a dataset; any problem is a one-line ValueError naming the file and field."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"dataset {str(path)!r} not found; record one with `srmt offline record CONFIG`")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ValueError(f"dataset {str(path)!r} could not be read: {reason}") from None
    validate(arrays, str(path))
    meta = json.loads(str(arrays["meta"]))
    return OfflineDataset(
        obs=arrays["obs"],
        actions=arrays["actions"],
        rewards=arrays["rewards"].astype(np.float32, copy=False),
        dones=arrays["dones"],
        active=arrays["active"],
        episode_starts=arrays["episode_starts"].astype(np.int64, copy=False),
        episode_lengths=arrays["episode_lengths"].astype(np.int64, copy=False),
        episode_returns=arrays["episode_returns"].astype(np.float32, copy=False),
        num_actions=int(arrays["num_actions"]),
        meta=meta,
        labels=arrays.get("labels"),
    )


def validate(arrays: dict[str, np.ndarray], where: str = "dataset") -> None:
    """Check fields, dtypes, shapes and contents; raise a one-line ValueError on the first problem."""

    def bad(name: str, problem: str) -> ValueError:
        allowed = {**FIELDS, **OPTIONAL_FIELDS}[name][1]
        return ValueError(f"{where}: field {name!r} {problem}; allowed: {allowed}")

    for name, (kinds, _) in FIELDS.items():
        if name not in arrays:
            return_missing = ", ".join(sorted(set(FIELDS) - set(arrays)))
            raise ValueError(f"{where}: missing field(s) {return_missing}; required: {', '.join(FIELDS)}")
        if arrays[name].dtype.kind not in kinds:
            raise bad(name, f"has dtype {arrays[name].dtype}")
    obs, actions = arrays["obs"], arrays["actions"]
    if actions.ndim != 2 or actions.shape[0] < 1 or actions.shape[1] < 1:
        raise bad("actions", f"has shape {actions.shape}")
    S, A = actions.shape
    if obs.ndim != 5 or obs.shape[:2] != (S, A):
        raise bad("obs", f"has shape {obs.shape} (actions: {actions.shape})")
    for name in ("rewards", "dones", "active"):
        if arrays[name].shape != (S, A):
            raise bad(name, f"has shape {arrays[name].shape}, expected {(S, A)}")
    for name in ("num_actions", "meta"):
        if arrays[name].ndim != 0:
            raise bad(name, f"has shape {arrays[name].shape}")
    n = int(arrays["num_actions"])
    if n < 1:
        raise bad("num_actions", f"is {n}")
    for name in ("actions", "labels"):
        if name not in arrays:
            continue  # labels are optional
        a = arrays[name]
        if a.dtype.kind not in OPTIONAL_FIELDS.get(name, FIELDS.get(name, ("iu", "")))[0]:
            raise bad(name, f"has dtype {a.dtype}")
        if a.shape != (S, A):
            raise bad(name, f"has shape {a.shape}, expected {(S, A)}")
        if a.min() < 0 or a.max() >= n:
            raise bad(name, f"has values {int(a.min())}..{int(a.max())} outside 0..{n - 1}")
    if not np.isfinite(arrays["rewards"]).all():
        raise bad("rewards", "has non-finite values")
    starts, lengths = arrays["episode_starts"], arrays["episode_lengths"]
    if lengths.ndim != 1 or lengths.shape[0] < 1 or lengths.min() < 1:
        raise bad("episode_lengths", f"has shape {lengths.shape} or a length < 1")
    if int(lengths.sum()) != S:
        raise bad("episode_lengths", f"sums to {int(lengths.sum())}, but there are {S} steps")
    expected = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    if starts.shape != lengths.shape or not np.array_equal(starts, expected):
        raise bad("episode_starts", "is not 0 followed by the cumulative episode lengths")
    E = lengths.shape[0]
    returns = arrays["episode_returns"]
    if returns.shape != (E, A):
        raise bad("episode_returns", f"has shape {returns.shape}, expected {(E, A)}")
    sums = np.add.reduceat(arrays["rewards"].astype(np.float64), starts, axis=0)
    if not np.allclose(sums, returns, atol=1e-3):
        raise bad("episode_returns", "differs from the sum of each episode's rewards")
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict):
        raise bad("meta", "is not a JSON object")


def returns_to_go(rewards: np.ndarray, episode_starts: np.ndarray, episode_lengths: np.ndarray) -> np.ndarray:
    """``R_t = sum_{t' >= t in the same episode} r_t'`` for ``rewards [S, A]`` -> float32 ``[S, A]``.

    Vectorised: a reverse cumulative sum over the whole file minus the sum beyond each episode's end.
    """
    S, A = rewards.shape
    tail = np.zeros((S + 1, A), dtype=np.float64)
    tail[:S] = np.cumsum(rewards[::-1].astype(np.float64), axis=0)[::-1]  # tail[t] = sum_{t' >= t}
    ends = np.repeat(episode_starts + episode_lengths, episode_lengths)  # (S,) exclusive end per step
    return (tail[:S] - tail[ends]).astype(np.float32)


def timesteps_in_episode(episode_starts: np.ndarray, episode_lengths: np.ndarray) -> np.ndarray:
    """int64 [S]: the step's index within its episode."""
    S = int(episode_lengths.sum())
    return np.arange(S) - np.repeat(episode_starts, episode_lengths)


@dataclass
class Batch:
    """G whole episodes padded to ``num_segments`` x K steps; all arrays are ``[G, A, T, ...]``."""

    obs: np.ndarray
    """uint8 [G, A, T, C, H, W]."""
    actions: np.ndarray
    """int64 [G, A, T] (0 on padded steps)."""
    rtg: np.ndarray
    """float32 [G, A, T] returns-to-go."""
    timesteps: np.ndarray
    """int64 [G, A, T] step index within the episode."""
    valid: np.ndarray
    """bool [G, A, T]: a real step in which the agent acted (the loss mask)."""
    segment_len: int
    labels: np.ndarray | None = None
    """int64 [G, A, T] training targets (the expert's actions; 0 on padded steps); None = ``actions``."""

    def __post_init__(self) -> None:
        if self.labels is None:
            self.labels = self.actions

    @property
    def num_segments(self) -> int:
        return self.actions.shape[2] // self.segment_len

    def segment(self, i: int) -> tuple[np.ndarray, ...]:
        """``(obs, actions, rtg, timesteps, valid, labels)`` of segment i, each ``[G, A, K, ...]``."""
        s = slice(i * self.segment_len, (i + 1) * self.segment_len)
        assert self.labels is not None
        return (
            self.obs[:, :, s],
            self.actions[:, :, s],
            self.rtg[:, :, s],
            self.timesteps[:, :, s],
            self.valid[:, :, s],
            self.labels[:, :, s],
        )


SamplingMode = ("episodes", "windows")


class SegmentSampler:
    """Batches of G samples, cut into segments of K steps, with padding masks, read from the (memory-mapped)
    shards of a :class:`~agents.offline.shards.ShardedDataset` (an :class:`OfflineDataset` is one shard).

    - ``mode='episodes'``: G whole episodes per batch. Episodes of similar length share a batch (sorted
      by length with a random tie-break, then the batch order is shuffled), so little compute is spent
      on padding; :meth:`next_batch` walks through the epochs.
    - ``mode='windows'``: G random windows of ``window_segments`` x K steps each, drawn uniformly from
      every window that fits in an episode (an episode shorter than the window gives one, padded);
      timesteps are the steps' indices in their episode (RATE's sampling, for datasets too big to pass
      over whole episodes).

    All agents of an environment stay together. Reads are contiguous slices of the shards' arrays.
    """

    def __init__(
        self,
        ds,
        batch_envs: int,
        segment_len: int,
        seed: int = 0,
        mode: str = "episodes",
        window_segments: int = 1,
    ) -> None:
        from agents.offline.shards import ShardedDataset

        if mode not in SamplingMode:
            raise ValueError(f"sampling mode {mode!r} is unknown; allowed: {', '.join(SamplingMode)}")
        self.ds = ds if isinstance(ds, ShardedDataset) else ShardedDataset.from_dataset(ds)
        self.mode = mode
        self.G = min(batch_envs, self.ds.num_episodes) if mode == "episodes" else batch_envs
        self.K = segment_len
        self.window = window_segments * segment_len
        self.rng = np.random.default_rng(seed)
        self._queue: list[np.ndarray] = []
        # windows: episode e has max(L_e - T + 1, 1) windows; sampling e by that weight and then a start
        # uniformly is uniform over all windows
        self._weights = np.maximum(self.ds.episode_lengths - self.window + 1, 1).astype(np.float64)

    def epoch(self) -> list[np.ndarray]:
        """Episode indices of every batch of one pass over the dataset (``episodes`` mode)."""
        lengths = self.ds.episode_lengths
        order = np.lexsort((self.rng.random(len(lengths)), lengths))
        batches = [order[i : i + self.G] for i in range(0, len(order), self.G)]
        self.rng.shuffle(batches)
        return batches

    def sample_windows(self) -> tuple[np.ndarray, np.ndarray]:
        """``(episodes [G], starts [G])`` of G random windows (``windows`` mode)."""
        p = self._weights / self._weights.sum()
        episodes = self.rng.choice(len(p), size=self.G, p=p)
        starts = (self.rng.random(self.G) * self._weights[episodes]).astype(np.int64)
        return episodes, starts

    def next_batch(self) -> Batch:
        """The next batch: the next group of the current epoch, or G fresh random windows."""
        if self.mode == "windows":
            episodes, starts = self.sample_windows()
            return self.gather(episodes, starts, self.window)
        if not self._queue:
            self._queue = self.epoch()[::-1]
        return self.batch(self._queue.pop())

    def batch(self, episodes: np.ndarray) -> Batch:
        """Whole episodes, padded to a multiple of K steps."""
        lengths = self.ds.episode_lengths[episodes]  # (G,)
        T = int(math.ceil(lengths.max() / self.K)) * self.K
        return self.gather(episodes, np.zeros(len(episodes), dtype=np.int64), T)

    def gather(self, episodes: np.ndarray, starts: np.ndarray, T: int) -> Batch:
        """Steps ``starts[g] .. starts[g] + T`` of episode ``episodes[g]`` (padded past its end)."""
        ds = self.ds
        G, A, T = len(episodes), ds.num_agents, int(T)
        obs = np.zeros((G, A, T, *ds.obs_shape), dtype=np.uint8)
        actions = np.zeros((G, A, T), dtype=np.int64)
        labels = np.zeros((G, A, T), dtype=np.int64)
        rtg = np.zeros((G, A, T), dtype=np.float32)
        valid = np.zeros((G, A, T), dtype=bool)
        for g, (e, t0) in enumerate(zip(episodes.tolist(), starts.tolist())):
            k = int(ds.episode_shard[e])
            sh = ds.shards[k]
            s = int(ds.episode_starts[e]) + t0
            n = min(T, int(ds.episode_lengths[e]) - t0)
            v = sh.active[s : s + n].T  # (A, n)
            obs[g, :, :n] = np.swapaxes(sh.obs[s : s + n], 0, 1)
            valid[g, :, :n] = v
            actions[g, :, :n] = np.where(v, sh.actions[s : s + n].T, 0)
            labels[g, :, :n] = np.where(v, sh.targets[s : s + n].T, 0)
            rtg[g, :, :n] = np.where(v, ds.rtg(k)[s : s + n].T, 0.0)
        timesteps = starts[:, None, None] + np.arange(T)[None, None, :]
        return Batch(
            obs=obs,
            actions=actions,
            rtg=rtg,
            timesteps=np.broadcast_to(timesteps, (G, A, T)).astype(np.int64),
            valid=valid,
            segment_len=self.K,
            labels=labels,
        )
