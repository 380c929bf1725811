"""The grid runner and the ``srmt eval`` / ``srmt enjoy`` entry points: identical results for identical
seeds (whatever the number of workers), every algorithm kind runs, bad input is a one-line error."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agents import enjoy as enjoy_cmd
from agents import evaluate as eval_cmd
from agents.eval import api
from agents.eval.api import load_eval_config
from agents.eval.benchmark import build_instances, load_map_set, resolve_map_set
from agents.eval.results import read_results, same_metrics
from agents.eval.runner import drain, make_tasks, run_tasks
from agents.eval_config import AlgorithmConfig, EvalConfig

CKPT = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "follower-lite"
    / "checkpoint_000001248_20447232.pth"
)
ALGOS = ["PIBT", "AStar", "Random"] + (["FollowerLite"] if CKPT.is_file() else [])


def _tiny_tasks(algos=("PIBT", "AStar", "Random")):
    cfg = EvalConfig(map_sets=["tiny"])
    ms = load_map_set(resolve_map_set("tiny", "lifelong", cfg.benchmark_dir))
    return make_tasks(algos, build_instances(ms, cfg)), cfg.algorithms


def _key(r):
    return (r["algorithm"], r["map_name"], r["num_agents"], r["seed"])


def test_identical_seeds_identical_results_in_process():
    tasks, specs = _tiny_tasks()
    a = run_tasks(tasks, specs, workers=1, progress=False)
    b = run_tasks(tasks, specs, workers=1, progress=False)
    assert [_key(r) for r in a] == [
        (t.algorithm, t.instance.map_name, t.instance.num_agents, t.instance.seed) for t in tasks
    ]
    assert all(same_metrics(x["metrics"], y["metrics"]) for x, y in zip(a, b))


def test_worker_processes_give_the_same_results():
    tasks, specs = _tiny_tasks(("PIBT", "Random"))
    tasks = tasks[:6]
    serial = run_tasks(tasks, specs, workers=1, progress=False)
    parallel = run_tasks(tasks, specs, workers=2, progress=False)
    assert [_key(r) for r in serial] == [_key(r) for r in parallel]
    assert all(same_metrics(x["metrics"], y["metrics"]) for x, y in zip(serial, parallel))


def test_worker_errors_surface(tmp_path):
    tasks, specs = _tiny_tasks(("Broken",))
    specs = dict(specs, Broken=AlgorithmConfig(kind="follower_lite", checkpoint=str(tmp_path / "gone.pth")))
    with pytest.raises(ValueError, match="not found"):
        run_tasks(tasks, specs, workers=2, progress=False)


def test_results_are_collected_as_each_task_finishes():
    """The progress bar moves per episode: a result is collected while other tasks still run.

    Task 1 waits until task 0's result has been collected; collecting only after every task is done
    (the old FIRST_EXCEPTION wait) would leave it waiting, and it reports that it timed out.
    """
    collected = threading.Event()
    seen = []

    def first():
        return 0, "first"

    def second():
        return 1, "second" if collected.wait(timeout=10) else "second timed out"

    def collect(index, value):
        seen.append(value)
        collected.set()

    with ThreadPoolExecutor(2) as pool:
        drain(pool, [(first, ()), (second, ())], collect)
    assert seen == ["first", "second"]


def test_drain_reraises_the_first_error_at_once():
    release, slow_done = threading.Event(), threading.Event()

    def boom():
        raise RuntimeError("worker failed")

    def slow():
        release.wait(timeout=10)
        slow_done.set()
        return 1, "slow"

    with ThreadPoolExecutor(2) as pool:
        with pytest.raises(RuntimeError, match="worker failed"):
            drain(pool, [(slow, ()), (boom, ())], lambda *a: None)
        assert not slow_done.is_set()  # raised while the slow task was still running
        release.set()


def test_srmt_eval_smoke_writes_everything(tmp_path, capsys):
    out = tmp_path / "ev"
    rc = eval_cmd.main(["eval/smoke", f"out_dir={out}", f"run=[{','.join(ALGOS)}]", "max_episodes=2"])
    assert rc == 0, capsys.readouterr().err
    for algo in ALGOS:
        assert (out / "tiny-lmapf" / f"{algo}.json").is_file()
    for name in ("results.csv", "summary.md", "eval_config.yaml", "figures.json", "plots/tiny-lifelong.png"):
        assert (out / name).is_file(), name
    rows = read_results(out)
    assert len(rows) == 2 * len(ALGOS)
    assert "avg_throughput" in capsys.readouterr().out
    pibt = [r["metrics"]["avg_throughput"] for r in rows if r["algorithm"] == "PIBT"]
    rnd = [r["metrics"]["avg_throughput"] for r in rows if r["algorithm"] == "Random"]
    assert min(pibt) > max(rnd)


def test_report_only_rebuilds_the_tables_from_stored_results(tmp_path, capsys, monkeypatch):
    out = tmp_path / "ev"
    args = ["eval/smoke", f"out_dir={out}", "run=[PIBT,Random]", "max_episodes=2", "plots=false"]
    assert eval_cmd.main(args) == 0, capsys.readouterr().err
    capsys.readouterr()
    first = (out / "summary.md").read_text()
    (out / "summary.md").unlink()
    # results of another episode length are not this grid's (issue 15: 32-step rows shown as 64-step)
    assert eval_cmd.main([*args, "report_only=true", "max_episode_steps=64"]) == 2
    err = capsys.readouterr().err
    assert "max_episode_steps=32 stored, max_episode_steps=64 now" in err and err.count("\n") == 1

    def no_episodes(*a, **k):
        raise AssertionError("report_only ran episodes")

    monkeypatch.setattr(api, "run_tasks", no_episodes)
    assert eval_cmd.main([*args, "report_only=true"]) == 0
    again = (out / "summary.md").read_text()
    assert again.split("\n", 3)[3] == first.split("\n", 3)[3]  # every table, the header aside
    figures = (out / "figures.json").read_text()
    assert eval_cmd.main([*args, "report_only=true", "run=[PIBT]"]) == 0
    text = (out / "summary.md").read_text()
    assert "Random" not in text and "no wall time" in text  # a subset has no wall time of its own
    assert (out / "figures.json").read_text() == figures  # the run's timing is kept
    # the grid filters narrow the stored rows too
    assert eval_cmd.main([*args, "report_only=true", "max_episodes=1"]) == 0
    assert "2 episodes, re-reported" in (out / "summary.md").read_text()  # 1 per algorithm, not 2
    capsys.readouterr()
    # an algorithm with no stored results on this grid is an error, not silently dropped
    assert eval_cmd.main([*args, "report_only=true", "run=[PIBT,AStar]"]) == 2
    assert "AStar" in capsys.readouterr().err


def test_report_only_without_results_is_a_one_line_error(tmp_path, capsys):
    rc = eval_cmd.main(["eval/smoke", f"out_dir={tmp_path / 'none'}", "report_only=true"])
    err = capsys.readouterr().err
    assert rc == 2 and "report_only=true" in err and err.count("\n") == 1


def test_classic_mode_on_the_shipped_set(tmp_path, capsys):
    out = tmp_path / "cl"
    rc = eval_cmd.main(["eval/smoke", "mode=classic", f"out_dir={out}", "run=[PIBT]", "plots=false"])
    assert rc == 0, capsys.readouterr().err
    rows = read_results(out)
    assert {r["mode"] for r in rows} == {"classic"} and all("CSR" in r["metrics"] for r in rows)
    assert all(r["metrics"]["CSR"] == 1.0 for r in rows)  # PIBT solves these tiny instances


@pytest.mark.parametrize(
    "args, match",
    [
        (["run=[Nope]"], "Nope"),
        (["num_agents=[0]"], "num_agents"),
        (["mode=sideways"], "sideways"),
        (["run=[PIBT]", "map_sets=[no-such-set]"], "no-such-set"),
        (["run=[FollowerLite]", "algorithms.FollowerLite.checkpoint=/no/such.pth"], "not found"),
        (
            ["run=[M]", "algorithms.M.kind=srmt", "algorithms.M.checkpoint=/no/such.pth"],
            "srmt checkpoint|load_policy",
        ),
        (["run=[M]", "algorithms.M.kind=srmt"], "needs a checkpoint"),
    ],
)
def test_bad_input_is_a_one_line_error(tmp_path, capsys, args, match):
    rc = eval_cmd.main(["eval/smoke", f"out_dir={tmp_path}", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert pytest.importorskip("re").search(match, err), err


@pytest.mark.parametrize("algo", ALGOS)
def test_enjoy_writes_an_svg_animation(tmp_path, capsys, algo):
    out = tmp_path / f"{algo}.svg"
    rc = enjoy_cmd.main(["eval/smoke", f"enjoy.algorithm={algo}", "enjoy.num_agents=3", f"enjoy.out={out}"])
    assert rc == 0, capsys.readouterr().err
    root = ET.parse(out).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    circles = root.findall(f"{ns}circle")
    assert len(circles) == 2 * 3  # one disc and one goal ring per agent
    assert all(c.find(f"{ns}animate") is not None for c in circles)


def test_help_exits_zero(capsys):
    assert eval_cmd.main(["--help"]) == 0 and "srmt eval" in capsys.readouterr().out
    assert enjoy_cmd.main(["-h"]) == 0 and "srmt enjoy" in capsys.readouterr().out


def test_experiment_config_with_eval_section(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text("eval:\n  map_sets: [tiny]\n  run: [PIBT]\n")
    cfg = load_eval_config(p, ["eval.num_agents=[2]"])
    assert cfg.map_sets == ["tiny"] and cfg.run == ["PIBT"] and cfg.num_agents == [2]


def test_shipped_eval_presets_load():
    import configs

    for name in configs.available("eval"):
        if "/mapsets/" not in name:
            assert isinstance(load_eval_config(name), EvalConfig)


def test_srmt_checkpoint_plugs_in(tmp_path, monkeypatch):
    """A trained srmt model runs through the same grid (envs backend, its own observations): here an
    untrained one, handed over by a stand-in for ``agents.sf.load_policy``."""
    import agents.sf as sf
    from agents.config import load_experiment
    from envs import make_env
    from srmt import build_actor_critic

    exp = load_experiment(None, ["env.name=pogema", "env.obs_radius=3"])
    env = make_env(exp.env, seed=0)
    net = build_actor_critic(exp.model, tuple(env.observation_space.shape), int(env.action_space.n))
    monkeypatch.setattr(sf, "load_policy", lambda path, device: (net, exp))
    ckpt = tmp_path / "model.pth"
    ckpt.write_bytes(b"stand-in")
    cfg = EvalConfig(
        map_sets=["tiny"],
        max_episodes=2,
        algorithms={"M": AlgorithmConfig(kind="srmt", checkpoint=str(ckpt))},
    )
    ms = load_map_set(resolve_map_set("tiny", "lifelong", cfg.benchmark_dir))
    rows = run_tasks(make_tasks(["M"], build_instances(ms, cfg)), cfg.algorithms, workers=1, progress=False)
    assert len(rows) == 2 and all(r["metrics"]["ep_length"] == 32 for r in rows)
    again = run_tasks(make_tasks(["M"], build_instances(ms, cfg)), cfg.algorithms, workers=1, progress=False)
    assert all(same_metrics(a["metrics"], b["metrics"]) for a, b in zip(rows, again))
