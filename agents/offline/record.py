"""``srmt offline record``: play an expert (PIBT by default, optionally epsilon-greedy) in srmt's env and
write every agent's trajectory to a sharded, memory-mapped dataset folder (:mod:`agents.offline.shards`).

Episodes are recorded by ``record.workers`` spawned processes (or this process when it is 1), one shard
of ``record.episodes_per_shard`` episodes per task. Episode i of a recording with ``record.seed`` s is
reset with seed ``s + i`` and draws its epsilon and its exploration from ``np.random.default_rng((s, i))``,
so it is the same episode whichever worker plays it and in whatever order. Every shard is committed
atomically; a recording that was killed or interrupted is resumed by running the same command again: it
records only the episodes no committed shard holds (and refuses to mix in episodes of other settings).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import multiprocessing
import shutil
import signal
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.offline import shards
from agents.offline.data import OfflineDataset
from agents.offline.rollout import Transition, build_expert, make_eval_env, play_episode

if TYPE_CHECKING:  # the config imports srmt (torch); the worker processes never need torch
    from agents.offline_config import OfflineConfig

LOCK = ".lock"


def recording_spec(cfg: OfflineConfig) -> dict[str, Any]:
    """What determines the recorded episodes: two recordings resume each other only if these agree."""
    rc = cfg.record
    spec = {
        "env": dataclasses.asdict(cfg.env),
        "algorithm": rc.algorithm,
        "epsilon": rc.epsilon,
        "epsilon_mode": rc.epsilon_mode,
        "seed": rc.seed,
    }
    if rc.policy:  # DAgger: the acting checkpoint (by content: a retrained file is another policy)
        spec.update(
            policy=rc.policy,
            policy_sha256=shards.file_sha256(rc.policy),
            policy_target=rc.policy_target,
            policy_action_selection=rc.policy_action_selection,
            policy_temperature=rc.policy_temperature,
        )
    return json.loads(json.dumps(spec))  # as the header stores it (lists, not tuples)


def plan_shards(todo: list[int], per_shard: int) -> list[tuple[str, list[int]]]:
    """Runs of consecutive missing episode indices, cut into shards of at most ``per_shard`` episodes,
    each named by its first index (unique: a committed shard never holds a missing index)."""
    tasks: list[tuple[str, list[int]]] = []
    run: list[int] = []
    for i in todo:
        if run and (i != run[-1] + 1 or len(run) == per_shard):
            tasks.append((shards.shard_name(run[0]), run))
            run = []
        run.append(i)
    if run:
        tasks.append((shards.shard_name(run[0]), run))
    return tasks


class EpisodeRecorder:
    """One env + expert; records lists of episodes into a shard (runs in each worker process)."""

    def __init__(self, env_fields: dict[str, Any], rc: dict[str, Any]) -> None:
        from envs.config import EnvConfig

        # rebuilt from plain fields, so that a plugin env is imported (and registered) in this process too
        self.env_cfg = EnvConfig(**env_fields)
        self.seed, self.epsilon, self.epsilon_mode = int(rc["seed"]), float(rc["epsilon"]), rc["epsilon_mode"]
        self.env = make_eval_env(self.env_cfg, seed=self.seed)
        self.expert = build_expert(rc["algorithm"], self.env_cfg)
        self.policy = None  # DAgger: a RATE checkpoint acts, the expert labels
        if rc.get("policy"):
            from agents.offline.policy import RATEPolicy  # imports torch: only in DAgger rounds

            target = rc["policy_target"]
            self.policy = RATEPolicy(
                rc["policy"],
                rc.get("policy_device", "cpu"),
                target if target in ("best", "mean") else float(target),
                rc["policy_action_selection"],
                rc["policy_temperature"],
            )

    def episode(self, index: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        rng = np.random.default_rng((self.seed, index))  # per episode: independent of worker and order
        eps = self.epsilon if self.epsilon_mode == "fixed" else float(rng.uniform(0.0, self.epsilon))
        obs, actions, rewards, dones, active, labels = [], [], [], [], [], []

        def on_step(tr: Transition) -> None:
            obs.append(np.asarray(tr.obs).astype(np.uint8))  # pogema observations are 0/1
            actions.append(tr.actions.astype(np.int8))
            rewards.append(tr.rewards.astype(np.float32))
            dones.append(tr.dones)
            active.append(np.asarray(tr.active, dtype=bool))
            labels.append(tr.labels.astype(np.int8))

        if self.policy is None:
            metrics = play_episode(
                self.env, self.expert, self.seed + index, epsilon=eps, rng=rng, on_step=on_step
            )
        else:
            from agents.offline.train import torch_threads

            with torch_threads(1):  # one small step per env step: one thread (workers share the cores)
                metrics = play_episode(
                    self.env,
                    self.policy,
                    self.seed + index,
                    epsilon=eps,
                    rng=rng,
                    on_step=on_step,
                    labeler=self.expert,
                )
        arrays = {
            "obs": np.stack(obs),
            "actions": np.stack(actions),
            "rewards": np.stack(rewards),
            "dones": np.stack(dones),
            "active": np.stack(active),
            "labels": np.stack(labels),
        }
        return arrays, {"seed": self.seed + index, "epsilon": eps, "metrics": metrics}

    def shard(self, root: str, name: str, indices: list[int]) -> dict[str, Any]:
        t0 = time.perf_counter()
        eps = [self.episode(i) for i in indices]
        lengths = np.asarray([a["actions"].shape[0] for a, _ in eps], dtype=np.int64)
        cat = {k: np.concatenate([a[k] for a, _ in eps]) for k in eps[0][0]}
        ds = OfflineDataset(
            **cat,
            episode_starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
            episode_lengths=lengths,
            episode_returns=np.stack([a["rewards"].sum(0) for a, _ in eps]).astype(np.float32),
            num_actions=int(self.env.action_space.n),
            meta={
                "episode_seeds": [m["seed"] for _, m in eps],
                "episode_epsilons": [m["epsilon"] for _, m in eps],
                "episode_metrics": [m["metrics"] for _, m in eps],
            },
        )
        ids = np.stack([np.full(len(indices), self.seed), np.asarray(indices)], axis=1)
        shards.write_shard(root, name, ds, ids)
        return {
            "name": name,
            "episodes": len(indices),
            "steps": ds.num_steps,
            "agent_steps": ds.num_steps * ds.num_agents,
            "seconds": time.perf_counter() - t0,
            "metrics": ds.meta["episode_metrics"],
        }


_WORKER: EpisodeRecorder | None = None


def _init_worker(env_fields: dict[str, Any], rc: dict[str, Any]) -> None:
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the pool
    _WORKER = EpisodeRecorder(env_fields, rc)


def _record_task(task: tuple[str, str, list[int]]) -> dict[str, Any]:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.shard(*task)


@contextmanager
def dataset_lock(root: Path):
    """One recorder per dataset folder at a time (its temp folders are removed on start)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / LOCK).open("w") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"dataset {str(root)!r} is being recorded by another process") from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def prepare(root: Path, spec: dict[str, Any]) -> set[int]:
    """Create or check the dataset header, remove temp folders of a killed recorder, and return the
    episode indices already committed (a corrupt committed shard is an error naming it)."""
    hpath = root / shards.HEADER
    if hpath.exists():
        recorded = shards.read_header(root).get("recording", {})
        for key in spec:
            if recorded.get(key) != spec[key]:
                raise ValueError(
                    f"dataset {str(root)!r} was recorded with {key}={recorded.get(key)!r}, not {spec[key]!r}; "
                    "record to a new record.dataset folder or delete this one"
                )
    else:
        shards.write_json_atomic(hpath, {"format": shards.FORMAT, "recording": spec})
    for p in root.iterdir():
        if p.name.startswith(shards.TEMP_PREFIX) and p.is_dir():
            shutil.rmtree(p)
    done: set[int] = set()
    for folder in shards.shard_folders(root):
        for seed, index in shards.read_manifest(folder)["episode_ids"]:
            if seed != spec["seed"]:
                raise ValueError(
                    f"dataset shard {str(folder)!r} holds episodes of seed {seed}, not {spec['seed']}"
                )
            done.add(int(index))
    return done


def record(cfg: OfflineConfig, log=print) -> tuple[shards.ShardedDataset, Path]:
    """Record (or resume) ``cfg.record.episodes`` episodes of ``cfg.env``; returns the dataset and its folder."""
    rc = cfg.record
    root = cfg.dataset_path
    if root.suffix == ".npz" or root.is_file():
        raise ValueError(f"record.dataset={str(root)!r}: the recorder writes a dataset folder, not a file")
    spec = recording_spec(cfg)
    t0 = time.perf_counter()
    with dataset_lock(root):
        done = prepare(root, spec)
        todo = [i for i in range(rc.episodes) if i not in done]
        tasks = plan_shards(todo, rc.episodes_per_shard)
        if cfg.progress and done:
            log(f"[offline record] resuming {root}: {len(done)} episodes committed, {len(todo)} to record")
        _run_tasks(cfg, root, tasks, log)
    ds = shards.open_dataset(root, cfg.train.verify)
    if cfg.progress:
        log(
            f"[offline record] {root} ({ds.nbytes / 2**20:.1f} MiB, {len(ds.shards)} shards): {ds.num_episodes} "
            f"episodes, {ds.num_steps} steps x {ds.num_agents} agents, {ds.agent_steps} active agent-steps, "
            f"return mean {ds.episode_returns.mean():.3f} best {ds.episode_returns.max():.3f} "
            f"in {time.perf_counter() - t0:.1f} s"
        )
    return ds, root


def _run_tasks(cfg: OfflineConfig, root: Path, tasks: list[tuple[str, list[int]]], log) -> None:
    if not tasks:
        return
    rc = cfg.record
    env_fields = {f.name: getattr(cfg.env, f.name) for f in dataclasses.fields(cfg.env)}
    args = (env_fields, dataclasses.asdict(rc))
    jobs = [(str(root), name, idx) for name, idx in tasks]
    total = sum(len(idx) for _, idx in tasks)
    t0 = last = time.perf_counter()
    episodes = agent_steps = 0
    metrics: list[dict[str, float]] = []

    def report(res: dict[str, Any], n_shards: int) -> None:
        nonlocal episodes, agent_steps, last
        episodes += res["episodes"]
        agent_steps += res["agent_steps"]
        metrics.extend(res["metrics"])
        now = time.perf_counter()
        if cfg.progress and (now - last >= 5.0 or n_shards == len(jobs)):
            last = now
            log(
                f"[offline record] shard {n_shards}/{len(jobs)} | {episodes}/{total} episodes | "
                f"{agent_steps:,} agent-steps | {agent_steps / (now - t0):,.0f} agent-steps/s | "
                f"{rc.workers} worker(s) | {_summary(metrics)}"
            )

    workers = min(rc.workers, len(jobs))
    if workers == 1:
        recorder = EpisodeRecorder(*args)
        try:
            for n, job in enumerate(jobs, 1):
                report(recorder.shard(*job), n)
        finally:
            recorder.env.close()
        return
    ctx = multiprocessing.get_context("spawn")  # no fork: a forked child can inherit a held lock
    before = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(workers, ctx, initializer=_init_worker, initargs=args)
    try:
        futures = [pool.submit(_record_task, job) for job in jobs]
        for n, fut in enumerate(as_completed(futures), 1):
            report(fut.result(), n)
    except BaseException as e:
        # an error or Ctrl-C: stop the other workers now, not after their current shard (the shard they
        # were writing stays a temp folder, removed on resume)
        for proc in set(multiprocessing.active_children()) - before:
            proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        if isinstance(e, BrokenProcessPool):  # multiprocessing.Pool would wait for the lost task forever
            raise ValueError(
                f"a recording worker died or failed to start ({str(e).rstrip('.')[:120]}); the shards committed "
                f"in {str(root)!r} are kept: run the same command again to resume"
            ) from None
        raise
    pool.shutdown(wait=True)


def _summary(metrics: list[dict[str, float]]) -> str:
    keys = [k for k in ("CSR", "ISR", "throughput") if metrics and k in metrics[0]]
    return ", ".join(f"{k} {np.mean([m[k] for m in metrics]):.3f}" for k in keys)
