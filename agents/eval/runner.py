"""The evaluation grid: one task per (algorithm, instance), run in worker processes with a progress bar.

Results do not depend on the number of workers or on scheduling: every episode is seeded from its own
instance (map, agent count, seed), never from a shared random stream. Workers are *spawned* (not
forked) so that a parent that already touched torch or threads cannot deadlock them; each builds its
algorithms once and keeps them (and their per-map caches) for all its tasks.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass

import numpy as np

from agents.eval.algorithms import BuiltAlgorithm, build_algorithm
from agents.eval.episode import Instance, make_episode_env, run_episode
from agents.eval_config import AlgorithmConfig


@dataclass
class Task:
    algorithm: str
    instance: Instance


def episode_seed(inst: Instance) -> int:
    """The algorithm's seed for one instance: the same in every process and on every run."""
    key = [inst.seed, inst.num_agents, zlib.crc32(f"{inst.map_set}/{inst.map_name}".encode())]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def result_row(task: Task, metrics: dict[str, float]) -> dict:
    inst = task.instance
    return {
        "source": "ours",
        "algorithm": task.algorithm,
        "map_set": inst.map_set,
        "mode": "lifelong" if inst.lifelong else "classic",
        "map_name": inst.map_name,
        "num_agents": inst.num_agents,
        "seed": inst.seed,
        "metrics": metrics,
    }


# ---------------------------------------------------------------------------------- worker side

_SPECS: dict[str, AlgorithmConfig] = {}
_BUILT: dict[str, BuiltAlgorithm] = {}


def _init_worker(specs: dict[str, dict]) -> None:
    if any(spec["kind"] in ("follower_lite", "srmt", "rate") for spec in specs.values()):
        import torch  # only learned policies need it; planners' workers start faster without

        torch.set_num_threads(1)  # one core per worker; intra-op threads would fight over the same cores
    _SPECS.clear()
    _SPECS.update({name: AlgorithmConfig(**spec) for name, spec in specs.items()})
    _BUILT.clear()


def _run_task(index: int, task: Task) -> tuple[int, dict]:
    built = _BUILT.get(task.algorithm)
    if built is None:
        built = _BUILT[task.algorithm] = build_algorithm(_SPECS[task.algorithm])
    env = make_episode_env(task.instance, built.backend, built.env_base)
    metrics, _ = run_episode(env, built.algorithm, episode_seed(task.instance))
    return index, result_row(task, metrics)


# ---------------------------------------------------------------------------------- parent side


class _Progress:
    """tqdm when installed, else one updating console line."""

    def __init__(self, total: int, enabled: bool, desc: str = "eval") -> None:
        self.total, self.done, self.enabled = total, 0, enabled
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=desc, unit="ep", dynamic_ncols=True)
            except ImportError:
                pass

    def update(self, text: str = "") -> None:
        self.done += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
        else:
            print(f"\r[{self.done}/{self.total}] {text}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            print(file=sys.stderr)


def drain(pool: Executor, calls: list[tuple[Callable, tuple]], collect: Callable[..., None]) -> None:
    """Submit every call to ``pool`` and hand each result to ``collect`` as soon as it is done.

    Results arrive in completion order (the progress bar moves with every episode); a worker's
    exception is re-raised here at once, not after the rest of the grid.
    """
    pending: set[Future] = {pool.submit(fn, *args) for fn, args in calls}
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for fut in done:
            collect(*fut.result())  # re-raises a worker's exception here


def run_tasks(
    tasks: list[Task],
    specs: dict[str, AlgorithmConfig],
    workers: int = 0,
    progress: bool = True,
    on_result: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Run every task; result rows come back in task order. ``workers=1`` runs in this process."""
    used = {t.algorithm for t in tasks}
    plain = {name: asdict(specs[name]) for name in used}
    workers = workers or os.cpu_count() or 1
    rows: list[dict | None] = [None] * len(tasks)
    bar = _Progress(len(tasks), progress)
    # biggest episodes first: the pool's tail then holds only short ones
    order = sorted(range(len(tasks)), key=lambda i: -tasks[i].instance.cost)

    def collect(index: int, row: dict) -> None:
        rows[index] = row
        if on_result is not None:
            on_result(row)
        bar.update(f"{row['algorithm']} {row['map_name']} n={row['num_agents']}")

    try:
        if workers == 1 or len(tasks) <= 1:
            _init_worker(plain)
            for i in order:
                collect(*_run_task(i, tasks[i]))
        else:
            ctx = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(min(workers, len(tasks)), ctx, _init_worker, (plain,))
            try:
                drain(pool, [(_run_task, (i, tasks[i])) for i in order], collect)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)  # do not sit out the remaining grid
                raise
            pool.shutdown()
    finally:
        bar.close()
    return [r for r in rows if r is not None]


def make_tasks(algorithms: Iterable[str], instances: Iterable[Instance]) -> list[Task]:
    instances = list(instances)
    return [Task(name, inst) for name in algorithms for inst in instances]
