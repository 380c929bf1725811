"""Where evaluation episodes run: one ``concurrent.futures.Executor`` per backend, so the runner has one
code path (submit every task, collect each result as it completes).

- ``inline`` (``workers=1``): this process, one task at a time.
- ``local``: a ``ProcessPoolExecutor`` of *spawned* worker processes on this machine.
- ``dask``: a Dask cluster through ``distributed.Client.get_executor()`` (a concurrent.futures
  executor): a ``LocalCluster`` of ``workers`` single-threaded processes, or the scheduler at
  ``scheduler=tcp://host:port``. dask is an optional extra (``pip install 'srmt[dask]'``).

Worker processes ignore SIGINT: Ctrl-C reaches the parent, which cancels what is left and stops its
workers, so a terminal's interrupt ends the command with one line instead of one traceback per worker.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

DASK_INSTALL_HINT = (
    "backend=dask needs dask's distributed scheduler, which is not installed: "
    "pip install 'srmt[dask]' (or pip install 'dask[distributed]')"
)


class InlineExecutor(Executor):
    """Runs each call in this process when it is submitted (``workers=1``; debugging, tiny grids)."""

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as e:  # KeyboardInterrupt / SystemExit propagate as they are
            fut.set_exception(e)
        return fut


@dataclass
class Pool:
    executor: Executor
    workers: int
    """Tasks that run at once (worker processes, or the dask cluster's worker threads)."""
    max_pending: int | None = None
    """At most this many submitted and unfinished tasks (None = submit everything at once)."""
    stop: Callable[[], None] | None = None
    """Ends running tasks at once (used on Ctrl-C and errors); None = let them finish."""
    priorities: bool = False
    """``submit`` takes ``priority=`` (dask: higher runs first)."""


def _init_local_worker(parent: int) -> None:
    """Ctrl-C is the parent's to handle; and a worker exits when its parent is gone (a SIGKILLed
    ``srmt eval``): ProcessPoolExecutor's workers would otherwise wait on their task queue forever,
    since each holds a write end of it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Children started inside inherit an ignored SIGINT (Python keeps it ignored at start-up)."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to inherit
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _quiet_worker_log() -> None:
    """On the workers of our own local cluster: closing it under running tasks (Ctrl-C) is expected,
    not worth a warning per cancelled task from dask's worker state machine."""
    import logging

    logging.getLogger("distributed.worker.state_machine").setLevel(logging.ERROR)


def versions() -> dict[str, str]:
    """What a worker must share with the parent for identical episodes (run on each dask worker)."""
    import platform
    from importlib import metadata

    found = {"python": ".".join(platform.python_version_tuple()[:2])}
    for dist in ("srmt", "pogema", "numpy", "torch"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    return found


def check_workers(client: Any, scheduler: str) -> None:
    """Every worker of a cluster we did not start can import srmt, with the versions of this process."""
    try:
        remote = client.run(versions)
    except Exception as e:  # a worker without srmt cannot even unpickle the probe
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise ValueError(
            f"backend=dask: the workers of {scheduler} cannot run srmt's evaluation ({reason}); install srmt "
            "in the same environment on every worker (docs/distributed.md)"
        ) from None
    here = versions()
    for worker, theirs in sorted(remote.items()):
        diff = [f"{k} {theirs.get(k)} there, {v} here" for k, v in here.items() if theirs.get(k) != v]
        if diff:
            raise ValueError(
                f"backend=dask: dask worker {worker} has another environment ({'; '.join(diff)}); "
                "episodes would differ: install the same versions on every worker"
            )


def import_distributed() -> Any:
    """``distributed`` or a one-line ValueError saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise ValueError(DASK_INSTALL_HINT) from None
    return distributed


@contextmanager
def open_pool(backend: str, workers: int, num_tasks: int, scheduler: str = "") -> Iterator[Pool]:
    """The executor for ``backend`` (``local`` or ``dask``); ``workers`` 0 = one per CPU core."""
    workers = workers or os.cpu_count() or 1
    if backend == "dask":
        with _dask_pool(workers, scheduler) as pool:
            yield pool
        return
    if backend != "local":
        raise ValueError(f"backend={backend!r} is unknown; allowed: local, dask")
    if workers == 1 or num_tasks <= 1:
        yield Pool(InlineExecutor(), 1, max_pending=1)
        return
    n = min(workers, num_tasks)
    before = set(multiprocessing.active_children())
    ctx = multiprocessing.get_context("spawn")
    executor = ProcessPoolExecutor(n, ctx, initializer=_init_local_worker, initargs=(os.getpid(),))

    def stop() -> None:
        # this pool's processes (children started since it was made): a running episode is not waited for
        for proc in set(multiprocessing.active_children()) - before:
            proc.terminate()

    try:
        yield Pool(executor, n, stop=stop)
    finally:
        executor.shutdown(wait=True)


def _connect_error(scheduler: str, e: BaseException) -> ValueError:
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    return ValueError(f"backend=dask: cannot reach the dask scheduler at {scheduler!r} ({reason})")


@contextmanager
def _dask_pool(workers: int, scheduler: str) -> Iterator[Pool]:
    distributed = import_distributed()
    cluster = None
    try:
        if scheduler:
            try:
                client = distributed.Client(scheduler)
            except (OSError, TimeoutError, ValueError) as e:
                raise _connect_error(scheduler, e) from None
            try:
                check_workers(client, scheduler)
            except BaseException:
                client.close()
                raise
        else:
            with _sigint_ignored():  # the cluster's processes leave Ctrl-C to us
                # one single-threaded process per core (episodes hold the GIL); ":0": the scheduler's
                # HTTP server on a free port, not a warning when 8787 is taken
                cluster = distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
                )
            client = distributed.Client(cluster)
            client.run(_quiet_worker_log)
    except BaseException:
        if cluster is not None:
            cluster.close()
        raise
    try:
        threads = sum(client.nthreads().values())
        if threads == 0:
            raise ValueError(
                f"backend=dask: the dask scheduler at {scheduler!r} has no workers; start some with "
                f"`dask worker {scheduler}` (docs/distributed.md)"
            )
        # pure=False: every episode runs, even two with equal arguments (dask would otherwise dedupe)
        yield Pool(client.get_executor(pure=False), threads, priorities=True)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
