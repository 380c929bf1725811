"""``srmt eval backend=dask`` (issue 13): the grid on a Dask cluster (a local one, or one at
``scheduler=``) gives the local backend's results, logs episodes as they finish, resumes across
backends, runs the biggest episodes first; without dask installed it says how to install it."""

from __future__ import annotations

import importlib.util
import json
import sys
from concurrent.futures import Executor, Future
from pathlib import Path

import pytest

from agents import evaluate as eval_cmd
from agents.eval.benchmark import build_instances, load_map_set, resolve_map_set
from agents.eval.runner import make_tasks, run_tasks
from agents.eval.store import LOG_DIR
from agents.eval_config import EvalConfig

needs_dask = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None, reason="dask not installed (pip install 'srmt[dask]')"
)
GRID = ["eval/smoke", "run=[PIBT,Random]", "seeds=[0,1]", "max_episode_steps=64", "plots=false"]
TOTAL = 16


def _results(out: Path) -> dict:
    found = {}
    for p in sorted(out.glob("*-lmapf/*.json")):
        items = json.loads(p.read_text())
        for it in items:
            it["metrics"].pop("runtime")
        found[p.name] = items
    return found


def _log_lines(out: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in (out / LOG_DIR).glob("*/*.jsonl"))


@pytest.fixture(scope="module")
def local_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "ev"
    assert eval_cmd.main([*GRID, f"out_dir={out}", "workers=1", "progress=false"]) == 0
    return _results(out)


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 single-threaded worker processes, as a remote cluster would be used."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as c:
        yield c


@needs_dask
def test_default_local_dask_cluster_gives_the_local_results(tmp_path, local_results, capsys):
    out = tmp_path / "ev"
    assert eval_cmd.main([*GRID, f"out_dir={out}", "backend=dask", "workers=2"]) == 0
    err = capsys.readouterr().err
    assert f"{TOTAL}/{TOTAL}" in err  # the progress bar moved to the end
    assert _results(out) == local_results
    assert _log_lines(out) == TOTAL
    figures = json.loads((out / "figures.json").read_text())
    assert figures["backend"] == "dask" and figures["workers"] == 2


@needs_dask
def test_scheduler_address_runs_there_and_resumes_a_local_run(tmp_path, local_results, cluster, capsys):
    out = tmp_path / "ev"
    # half of the grid locally (as if interrupted), the rest on the cluster: one set of results
    assert eval_cmd.main([*GRID, f"out_dir={out}", "workers=1", "max_maps=1", "progress=false"]) == 0
    assert _log_lines(out) == TOTAL // 2
    args = [*GRID, f"out_dir={out}", "backend=dask", f"scheduler={cluster.scheduler_address}"]
    assert eval_cmd.main(args) == 0
    assert f"{TOTAL // 2} of {TOTAL} episodes already in" in capsys.readouterr().err
    assert _log_lines(out) == TOTAL
    assert _results(out) == local_results
    assert json.loads((out / "figures.json").read_text())["resumed"] == TOTAL // 2


def _tiny_tasks():
    cfg = EvalConfig(map_sets=["tiny"], seeds=[0, 1], max_episode_steps=16)
    ms = load_map_set(resolve_map_set("tiny", "lifelong", cfg.benchmark_dir))
    return make_tasks(["PIBT", "Random"], build_instances(ms, cfg)), cfg


class _Recording(Executor):
    def __init__(self) -> None:
        self.submitted: list[int] = []

    def submit(self, fn, /, *args, **kwargs):
        self.submitted.append(args[0])
        fut: Future = Future()
        fut.set_result(fn(*args, **kwargs))
        return fut


def test_every_backend_gets_the_biggest_episodes_first():
    tasks, cfg = _tiny_tasks()
    from agents.eval.executors import Pool

    rec = _Recording()
    rows = run_tasks(tasks, cfg.algorithms, progress=False, pool=Pool(rec, 1))
    costs = [tasks[i].instance.cost for i in rec.submitted]
    assert costs == sorted(costs, reverse=True) and len(set(costs)) > 1
    assert len(rows) == len(tasks)


@needs_dask
def test_dask_runs_the_biggest_first(cluster):
    """On one worker thread the episodes finish in the runner's order of cost (dask alone would not:
    submissions that arrive together run in the order of their random keys)."""
    import threading
    import time
    import uuid

    import distributed

    from agents.eval.executors import Pool

    tasks, cfg = _tiny_tasks()
    finished: list[int] = []
    with distributed.Client(cluster) as client:
        one = sorted(client.nthreads())[:1]
        # The worker's thread is held until every episode has reached it: the scheduler may take
        # separate submissions in another order (it unpacks each graph off its event loop), so a small
        # episode could otherwise start on an idle worker before a big one has arrived (one CI run of
        # five failed so). What this checks is that queued episodes run by the priority the runner gives.
        gate = distributed.Event(f"hold-{uuid.uuid4().hex}", client=client)

        def hold(name: str) -> None:
            distributed.Event(name).wait(60)

        held = client.submit(
            hold, gate.name, workers=one, allow_other_workers=False, priority=10**9, pure=False
        )

        def release() -> None:
            deadline = time.time() + 60
            while time.time() < deadline and len(client.processing(workers=one)[one[0]]) < len(tasks) + 1:
                time.sleep(0.05)
            gate.set()

        releaser = threading.Thread(target=release, daemon=True)
        releaser.start()
        pool = client.get_executor(pure=False, workers=one, allow_other_workers=False)
        rows = run_tasks(tasks, cfg.algorithms, progress=False, pool=Pool(pool, 1, priorities=True),
                         on_result=lambda row: finished.append(row["num_agents"]))  # fmt: skip
        releaser.join()
        held.result()
    assert len(rows) == len(tasks) and len(set(finished)) > 1
    assert finished == sorted(finished, reverse=True)  # same episode length: cost = agents


@needs_dask
def test_unreachable_scheduler_is_one_line(tmp_path, capsys):
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        rc = eval_cmd.main([*GRID, f"out_dir={tmp_path}", "backend=dask", "scheduler=tcp://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert (
        rc == 2 and err.count("\n") == 1 and "cannot reach the dask scheduler at 'tcp://127.0.0.1:9'" in err
    )


def test_without_dask_backend_dask_says_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now fails: not installed
    rc = eval_cmd.main([*GRID, f"out_dir={tmp_path}", "backend=dask", "progress=false"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "pip install 'srmt[dask]'" in err, err
    assert not (tmp_path / LOG_DIR).exists() or _log_lines(tmp_path) == 0


@pytest.mark.parametrize(
    "args, match",
    [
        (["scheduler=tcp://h:8786"], "needs backend=dask"),
        (["backend=dask", "scheduler=h:8786"], "not a scheduler address"),
        (["backend=slurm"], "slurm"),
    ],
)
def test_bad_backend_settings_are_one_line(tmp_path, capsys, args, match):
    assert eval_cmd.main([*GRID, f"out_dir={tmp_path}", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err, err


class _FakeClient:
    def __init__(self, answer) -> None:
        self.answer = answer

    def run(self, fn):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_workers_of_another_environment_are_refused():
    from agents.eval.executors import check_workers, versions

    here = versions()
    check_workers(_FakeClient({"tcp://w1:1": dict(here), "tcp://w2:1": dict(here)}), "tcp://s:8786")
    other = dict(here, pogema="1.3.0")
    with pytest.raises(
        ValueError, match="dask worker tcp://w2:1 has another environment \\(pogema 1.3.0 there"
    ):
        check_workers(_FakeClient({"tcp://w1:1": dict(here), "tcp://w2:1": other}), "tcp://s:8786")
    missing = ModuleNotFoundError("No module named 'agents'")
    with pytest.raises(
        ValueError, match="cannot run srmt's evaluation \\(No module named 'agents'\\); install"
    ):
        check_workers(_FakeClient(missing), "tcp://s:8786")
