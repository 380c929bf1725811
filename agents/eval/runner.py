"""The evaluation grid: one task per (algorithm, instance), run on an executor with a progress bar.

Results do not depend on the number of workers, the backend or scheduling: every episode is seeded from
its own instance (map, agent count, seed), never from a shared random stream. The executor is this
process, spawned worker processes or a Dask cluster (:mod:`agents.eval.executors`); the runner has one
code path for all of them. Each worker builds its algorithms once and keeps them (and their per-map
caches) for all its tasks.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from agents.eval.algorithms import BuiltAlgorithm, build_algorithm
from agents.eval.episode import EnvInstance, Instance, make_episode_env, run_episode
from agents.eval.executors import Pool, open_pool
from agents.eval.store import checkpoint_digest
from agents.eval_config import AlgorithmConfig


@dataclass
class Task:
    algorithm: str
    instance: Instance | EnvInstance
    """A map-set instance, or an env task's episode (:mod:`agents.eval.tasks`)."""


def episode_seed(inst: Instance | EnvInstance) -> int:
    """The algorithm's seed for one instance: the same in every process and on every run."""
    key = [inst.seed, inst.num_agents, zlib.crc32(f"{inst.map_set}/{inst.map_name}".encode())]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def result_row(task: Task, metrics: dict[str, float]) -> dict:
    inst = task.instance
    return {
        "source": "ours",
        "algorithm": task.algorithm,
        "map_set": inst.map_set,
        "mode": inst.mode,
        "map_name": inst.map_name,
        "num_agents": inst.num_agents,
        "seed": inst.seed,
        "metrics": metrics,
    }


# ---------------------------------------------------------------------------------- worker side

# Per worker thread (a dask worker may run several threads; algorithms keep per-episode state): the
# built algorithms, keyed by display name and config, kept for all the tasks the thread runs.
_LOCAL = threading.local()
_TORCH_THREADS_SET = False


def _file_version(path: str) -> tuple:
    """A checkpoint file's (or run folder's) size and modification time: a long-lived worker rebuilds an
    algorithm whose checkpoint was replaced at the same path."""
    try:
        if os.path.isdir(path):  # an srmt run folder: the .pth files under it
            return (checkpoint_digest(Path(path)),)
        st = os.stat(path)
    except OSError:
        return ()
    return (st.st_size, st.st_mtime_ns)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MALLOC_MMAP_THRESHOLD = 32 << 20
"""Blocks up to this size come from malloc's heap, not from their own ``mmap`` (glibc's default is
dynamic, 128 KB at start)."""
MALLOC_TRIM_THRESHOLD = 128 << 20
"""Freed heap memory is kept for reuse until this much lies free at the top of the heap."""


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed memory for reuse instead of returning it to the system at once
    (``mallopt``: fixed mmap and trim thresholds, process-wide; False where the C library has no
    ``mallopt``, e.g. off Linux). A policy step allocates and frees the same activations every step
    (SRMT at 64 agents: conv outputs of ~1 MB each); with glibc's dynamic thresholds those pages went
    back to the system after each step and were faulted in again on the next one, ~900 minor page
    faults and about 15-25% of SRMT's decision time (docs/benchmarks.md). Only allocation changes:
    the computed values are the same."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD) == 1
    return mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD) == 1 and ok


def _built(name: str, spec: dict) -> BuiltAlgorithm:
    global _TORCH_THREADS_SET
    cache: dict = getattr(_LOCAL, "built", None) or {}
    _LOCAL.built = cache
    key = (
        name,
        json.dumps(spec, sort_keys=True),
        _file_version(spec["checkpoint"]) if spec["checkpoint"] else (),
    )
    if key not in cache:
        if spec["kind"] in ("follower_lite", "srmt", "rate") and not _TORCH_THREADS_SET:
            import torch  # only learned policies need it; planners' workers start faster without

            torch.set_num_threads(1)  # one core per worker; intra-op threads would fight over the cores
            keep_freed_memory()
            _TORCH_THREADS_SET = True
        cache[key] = build_algorithm(AlgorithmConfig(**spec))
    return cache[key]


def run_task(index: int, task: Task, spec: dict) -> tuple[int, dict]:
    """One episode, in whichever process the executor picked; ``spec`` is the algorithm's config as a
    plain dict (it travels with the task, so a long-lived dask worker needs no set-up)."""
    built = _built(task.algorithm, spec)
    env = make_episode_env(task.instance, built.backend, built.env_base)
    metrics, _ = run_episode(env, built.algorithm, episode_seed(task.instance))
    return index, result_row(task, metrics)


# ---------------------------------------------------------------------------------- parent side


class _Progress:
    """tqdm when installed, else one updating console line; ``initial`` episodes were done before."""

    def __init__(self, total: int, enabled: bool, desc: str = "eval", initial: int = 0) -> None:
        self.total, self.done, self.enabled = total, initial, enabled
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, initial=initial, desc=desc, unit="ep", dynamic_ncols=True)
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


def drain(
    pool: Executor,
    calls: list[tuple[Callable, tuple]] | list[tuple[Callable, tuple, dict]],
    collect: Callable[..., None],
    max_pending: int | None = None,
    stop: Callable[[], None] | None = None,
) -> None:
    """Submit the calls to ``pool`` in order and hand each result to ``collect`` as soon as it is done.

    Results arrive in completion order (the progress bar moves with every episode); a worker's
    exception is re-raised here at once, not after the rest of the grid, and so is Ctrl-C: what is not
    running yet is cancelled and ``stop`` (when given) ends what is. ``max_pending`` bounds the
    submitted-and-unfinished calls (1 for an in-process executor, so each result is collected, i.e.
    saved, before the next call starts). A call's optional third item holds keyword arguments for
    ``pool.submit`` (dask's ``priority``).
    """
    queue = iter(calls)
    pending: set[Future] = set()

    def top_up() -> None:
        while max_pending is None or len(pending) < max_pending:
            nxt = next(queue, None)
            if nxt is None:
                return
            fn, args, *options = nxt
            pending.add(pool.submit(fn, *args, **(options[0] if options else {})))

    try:
        top_up()
        while pending:
            done, rest = wait(pending, return_when=FIRST_COMPLETED)
            pending.clear()
            pending.update(rest)
            for fut in done:
                collect(*fut.result())  # re-raises a worker's exception here
            top_up()
    except BaseException:
        if stop is not None:
            stop()  # the pool fails what it had left (cancelling first upsets ProcessPoolExecutor in 3.11)
        else:
            for fut in pending:
                fut.cancel()
        raise


def schedule(tasks: list[Task]) -> list[int]:
    """Task indices, biggest episodes first (by :attr:`Instance.cost`): the pool's tail then holds only
    short ones. Every backend gets them in this order; dask, which does not run client submissions in
    submission order, also gets the cost as each task's priority."""
    return sorted(range(len(tasks)), key=lambda i: -tasks[i].instance.cost)


def run_tasks(
    tasks: list[Task],
    specs: dict[str, AlgorithmConfig],
    workers: int = 0,
    progress: bool = True,
    on_result: Callable[[dict], None] | None = None,
    backend: str = "local",
    scheduler: str = "",
    done_before: int = 0,
    pool: Pool | None = None,
) -> list[dict]:
    """Run every task; result rows come back in task order, and each also goes to ``on_result`` (e.g.
    the episode log) as soon as it is finished. ``workers=1`` runs in this process; ``backend=dask``
    on a Dask cluster (``scheduler`` or a local one); ``pool`` overrides both (tests, embedding)."""
    plain = {name: asdict(specs[name]) for name in {t.algorithm for t in tasks}}
    rows: list[dict | None] = [None] * len(tasks)
    bar = _Progress(done_before + len(tasks), progress, initial=done_before)

    def collect(index: int, row: dict) -> None:
        rows[index] = row
        if on_result is not None:
            on_result(row)
        bar.update(f"{row['algorithm']} {row['map_name']} n={row['num_agents']}")

    def calls(priorities: bool) -> list[tuple[Callable, tuple, dict]]:
        return [
            (
                run_task,
                (i, tasks[i], plain[tasks[i].algorithm]),
                {"priority": tasks[i].instance.cost} if priorities else {},
            )
            for i in schedule(tasks)
        ]

    try:
        if not tasks:
            pass
        elif pool is not None:
            drain(pool.executor, calls(pool.priorities), collect, pool.max_pending, pool.stop)
        else:
            with open_pool(backend, workers, len(tasks), scheduler) as opened:
                drain(opened.executor, calls(opened.priorities), collect, opened.max_pending, opened.stop)
    finally:
        bar.close()
    return [r for r in rows if r is not None]


def make_tasks(algorithms: Iterable[str], instances: Iterable[Instance | EnvInstance]) -> list[Task]:
    instances = list(instances)
    return [Task(name, inst) for name in algorithms for inst in instances]
