"""``srmt sweep``: statistics against references, argument routing, one-line errors, and two tiny real runs
(local subprocesses; then a LocalCluster) with their own run folders, table, reuse and refusal to resume
another config."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

import configs
from agents.config import load_experiment
from agents.sweep import parse_args, plan, run_sweep, stats
from agents.sweep.jobs import steps_to_csr

TINY = [
    "train.serial=true",
    "train.num_workers=1",
    "train.envs_per_worker=2",
    "train.rollout=8",
    "train.batch_size=32",
    "train.train_for_env_steps=64",
    "train.summaries_interval_s=1",
    "train.stats_avg=2",
    "train.save_every_sec=3600",
    "env.max_episode_steps=24",
    "model.hidden_size=8",
    "model.num_heads=2",
    "model.num_filters=4",
    "model.num_res_blocks=0",
    "model.history_len=2",
    "device=cpu",
]
EVAL = ["lengths=[3,4]", "episodes=2", "eval_envs=2"]


# ----------------------------------------------------------------------------------- statistics


def test_iqm_is_the_mean_of_the_middle_half():
    x = [0.0, 0.1, 0.5, 0.6, 1.0, 1.0, 0.2, 0.9]  # 8 values: drop the 2 lowest and the 2 highest
    assert stats.iqm(x) == pytest.approx(np.mean(sorted(x)[2:6]))
    assert stats.iqm([0, 0.2, 0.4, 0.6, 1.0]) == pytest.approx(0.4)  # 5 seeds: the middle 3


def test_bootstrap_ci_matches_a_plain_resampling_reference():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=6)
    lo, hi = stats.bootstrap_ci(x, np.mean, 0.95, 20000)
    ref = np.mean(rng.choice(x, size=(20000, len(x))), axis=1)
    assert lo == pytest.approx(np.quantile(ref, 0.025), abs=0.01)
    assert hi == pytest.approx(np.quantile(ref, 0.975), abs=0.01)
    assert lo < x.mean() < hi
    assert stats.bootstrap_ci([1.0, 1.0, 1.0]) == (1.0, 1.0)
    assert all(math.isnan(v) for v in stats.bootstrap_ci([0.5]))


def _run(core, seed, csr, steps=None, control_csr=None):
    rows = [dict(L=L, CSR=c, ISR=c, episodes=4, steps=10.0) for L, c in zip((3, 4), csr)]
    ev = {"shared": rows}
    if control_csr is not None:
        ev["other"] = [dict(r, CSR=c) for r, c in zip(rows, control_csr)]
    return dict(core=core, seed=seed, status="ok", eval=ev, steps_to_train_csr=steps, env_steps=100)


def test_summary_counts_solved_lengths_drops_and_failures():
    runs = [_run("srmt", s, [1.0, 1.0 if s else 0.5], 1000 * (s + 1), [0.5, 0.5]) for s in range(5)]
    runs += [_run("none", 0, [0.0, 0.0]), dict(core="none", seed=1, status="failed", error="x")]
    summary, lengths = stats.summarise(runs, solve_threshold=0.9, resamples=2000)
    s, o, n = summary
    assert (s.core, s.control, o.control, n.core) == ("srmt", "shared", "other", "none")
    assert s.csr_mean == pytest.approx((4 * 1.0 + 0.75) / 5)
    assert s.csr_iqm == pytest.approx(1.0)  # 5 seeds: the middle three are all 1.0
    assert s.solved_share == pytest.approx(0.9) and s.seeds_solving_all == 4
    assert s.steps_to_train_csr == 3000 and s.seeds_reaching_train_csr == 5
    assert o.drop == pytest.approx(s.csr_mean - 0.5) and o.drop_ci[0] <= o.drop <= o.drop_ci[1]
    assert n.seeds == [0] and n.missing == ["1 failed"] and math.isnan(n.csr_iqm) and math.isnan(n.csr_ci[0])
    assert lengths[1]["srmt"]["solved"] == 4 and lengths[1]["srmt"]["seeds"] == 5
    md = stats.markdown(
        summary,
        lengths,
        dict(
            name="x",
            experiment="e",
            num_lengths=2,
            episodes=4,
            eval_seed=1,
            action_selection="sample",
            confidence=0.95,
            bootstrap_resamples=2000,
            train_csr=0.9,
        ),
        0.9,
    )
    assert "| `none` | shared | 0 (missing: 1 failed) |" in md and "| 4 | 4/5," in md


def test_steps_to_csr_reads_the_first_point_at_the_threshold(tmp_path):
    from tensorboardX import SummaryWriter

    w = SummaryWriter(str(tmp_path / ".summary" / "0"))
    for step, v in [(100, 0.1), (200, 0.95), (300, 0.5), (400, 1.0)]:
        w.add_scalar("episode/CSR", v, step)
    w.close()
    assert steps_to_csr(tmp_path, 0.9) == (200, 1.0)
    assert steps_to_csr(tmp_path, 0.99) == (400, 1.0)
    assert steps_to_csr(tmp_path / "none", 0.9) == (None, None)


# ----------------------------------------------------------------------------------- arguments


def test_arguments_route_to_sweep_keys_and_experiment_overrides(tmp_path):
    cfg = parse_args(
        ["bottleneck-srmt", "cores=[srmt,none]", "seeds=[3]", "parallel=2", "train.rollout=8", "device=cpu"]
    )
    assert cfg.experiment == "bottleneck-srmt" and cfg.cores == ["srmt", "none"] and cfg.seeds == [3]
    assert cfg.overrides == ["train.rollout=8", "device=cpu"] and cfg.parallel == 2
    sweep_yaml = tmp_path / "s.yaml"
    sweep_yaml.write_text(
        "experiment: bottleneck-rmt\ncores: [rmt]\nseeds: [0, 1]\noverrides: [train.rollout=8]\n"
    )
    cfg = parse_args([str(sweep_yaml), "episodes=3", "model.hidden_size=8"])
    assert (cfg.experiment, cfg.cores, cfg.episodes) == ("bottleneck-rmt", ["rmt"], 3)
    assert cfg.overrides == ["train.rollout=8", "model.hidden_size=8"]
    name, jobs = plan(
        parse_args(["bottleneck-srmt", "cores=[srmt,rmt]", "seeds=[0,1]", f"out_dir={tmp_path}"])
    )
    # seed-major: a sweep cut short has compared the cores on the same seeds
    assert [j.run for j in jobs] == [f"{name}-{c}-s{s}" for s in (0, 1) for c in ("srmt", "rmt")]
    assert len({j.run_dir for j in jobs}) == 4 and all(f"seed: {j.seed}" in j.config_yaml for j in jobs)
    _, jobs = plan(
        parse_args(
            [
                "bottleneck-srmt",
                "cores=[srmt,gru]",
                "seeds=[0,1]",
                "core_seeds.gru=[5,6,7]",
                f"out_dir={tmp_path}",
            ]
        )
    )
    assert [(j.core, j.seed) for j in jobs] == [("srmt", 0), ("gru", 5), ("srmt", 1), ("gru", 6), ("gru", 7)]


def test_a_run_may_resume_under_another_wall_clock_limit_but_not_another_training_config():
    from agents.sweep.jobs import config_digest

    a = "seed: 0\ndevice: auto\ntrain:\n  train_for_seconds: 300\n  restart: resume\n  learning_rate: 0.001\n"
    assert config_digest(a) == config_digest(a.replace("300", "60").replace("auto", "cuda"))
    assert config_digest(a) != config_digest(a.replace("0.001", "0.002"))
    # keys that srmt gained after a run was trained count with their defaults; eval keys never count
    full = configs.to_dict(load_experiment("bottleneck-srmt-paper"))
    older = json.loads(json.dumps(full))
    del older["train"]["batched_envs"], older["env"]["planner_replan_every"], older["eval"]
    assert config_digest(yaml.safe_dump(full)) == config_digest(yaml.safe_dump(older))
    full["train"]["batched_envs"] = False  # the same episodes, stepped one env after another
    assert config_digest(yaml.safe_dump(full)) == config_digest(yaml.safe_dump(older))
    full["env"]["planner_replan_every"] = 4
    assert config_digest(yaml.safe_dump(full)) != config_digest(yaml.safe_dump(older))


@pytest.mark.parametrize(
    "argv, match",
    [
        (["cores=[srmt,lstm]"], "unknown core 'lstm'"),
        (["seeds=[]"], "seeds is empty"),
        (["seeds=[1,1]"], "must be distinct"),
        (["core_seeds.gru=[0]"], "'gru' is not one of cores"),
        (["parallel=0"], "parallel=0 must be >= 1"),
        (["backend=slurm"], "backend"),
        (["scheduler=tcp://x:1"], "needs backend=dask"),
        (["train.restart=resume"], "the sweep sets train.restart"),
        (["colour=red"], "colour"),
        (["seeds"], "must look like key=value"),
        (["finish_by_s=-5"], r"finish_by_s=-5\.0 must be >= 0"),
        (["finish_reserve_s=-1"], r"finish_reserve_s=-1\.0 must be >= 0"),
    ],
)
def test_bad_arguments_are_one_line_errors(argv, match):
    with pytest.raises(configs.ConfigError, match=match):
        parse_args(["bottleneck-srmt", *argv])


def test_an_env_without_a_sweep_evaluation_fails_before_training(tmp_path):
    # corridor tasks play their test split, POGEMA envs map sets (tests/test_sweep_mapsets.py); a
    # PettingZoo env neither
    spread = Path(__file__).resolve().parents[1] / "examples" / "pettingzoo_spread" / "train.yaml"
    with pytest.raises(configs.ConfigError, match="env.name='pettingzoo' is neither"):
        plan(parse_args([str(spread), f"out_dir={tmp_path}"]))
    with pytest.raises(configs.ConfigError, match="max_maps=4 applies to map sets"):
        plan(parse_args(["bottleneck-srmt", "max_maps=4", f"out_dir={tmp_path}"]))


def test_cli_reports_errors_in_one_line(capsys):
    from agents import cli

    assert cli.main(["sweep"]) == 2 and "usage: srmt sweep" in capsys.readouterr().out
    assert cli.main(["sweep", "bottleneck-srmt", "cores=[gpt]"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("srmt sweep:") and "unknown core 'gpt'" in err and "\n" not in err


def test_budget_steps_leaves_a_short_run_incomplete_and_stop_after_starts_nothing(tmp_path, monkeypatch):
    import time

    from agents.sweep import jobs

    name, (spec,) = plan(parse_args(["bottleneck-srmt", f"out_dir={tmp_path}", "cores=[srmt]", "seeds=[0]"]))
    trained = []

    def fake_train(cmd, log, timeout_s):  # a training process stopped by its wall-clock limit
        trained.append(cmd[-1])
        Path(spec.run_dir).mkdir(parents=True, exist_ok=True)
        Path(spec.run_dir, "config.yaml").write_text(spec.config_yaml)
        return 0, ""

    monkeypatch.setattr(jobs, "_run", fake_train)
    monkeypatch.setattr("agents.sf.checkpoint.find_checkpoint", lambda d: Path(d) / "ckpt.pth")
    monkeypatch.setattr("agents.sf.checkpoint.read_checkpoint", lambda p: {"env_steps": 1000})
    r = jobs.run_job(spec)
    budget = load_experiment(yaml.safe_load(spec.config_yaml)).train.train_for_env_steps
    assert r["status"] == "incomplete" and f"1,000 of {budget:,}" in r["error"]
    assert not Path(spec.run_dir, jobs.TRAIN_MARKER).exists()
    assert jobs.folder_state(Path(spec.run_dir), spec.config_yaml) == "partial"
    jobs.run_job(spec)  # the next invocation resumes the same run from its own checkpoint
    assert trained == ["train.restart=overwrite", "train.restart=resume"]
    late = jobs.JobSpec(**{**jobs.spec_dict(spec), "start_before": time.time() - 1})
    assert jobs.run_job(late)["status"] == "not_started" and len(trained) == 2


@pytest.mark.parametrize("limit", [0.0, 100.0])
def test_finish_by_cuts_a_late_runs_wall_clock_limit_and_starts_none_without_a_minute_left(
    tmp_path, monkeypatch, limit
):
    import time

    from agents.sweep import jobs

    args = ["bottleneck-srmt", f"out_dir={tmp_path}", "cores=[srmt]", "seeds=[0]", "finish_by_s=500"]
    name, (spec,) = plan(parse_args([*args, f"train.train_for_seconds={limit}"]))
    assert time.time() + 490 < spec.finish_by <= time.time() + 500 and spec.finish_reserve_s == 60
    seen = []

    def fake_train(cmd, log, timeout_s):
        seen.append(Path(cmd[4]).read_text())  # the config the training process reads
        Path(spec.run_dir).mkdir(parents=True, exist_ok=True)
        Path(spec.run_dir, "config.yaml").write_text(seen[-1])
        return 0, ""

    monkeypatch.setattr(jobs, "_run", fake_train)
    monkeypatch.setattr("agents.sf.checkpoint.find_checkpoint", lambda d: Path(d) / "ckpt.pth")
    monkeypatch.setattr("agents.sf.checkpoint.read_checkpoint", lambda p: {"env_steps": 1000})
    late = jobs.JobSpec(**{**jobs.spec_dict(spec), "finish_by": time.time() + 200})
    assert jobs.run_job(late)["status"] == "incomplete"  # cut short: the next invocation resumes it
    cut = load_experiment(yaml.safe_load(seen[-1])).train.train_for_seconds
    assert (cut == limit) if limit else (130 <= cut <= 140)  # a shorter limit of its own is kept
    assert jobs.config_digest(seen[-1]) == jobs.config_digest(spec.config_yaml)  # the same run
    assert jobs.folder_state(Path(spec.run_dir), spec.config_yaml) == "partial"
    too_late = jobs.JobSpec(**{**jobs.spec_dict(spec), "finish_by": time.time() + 100})
    r = jobs.run_job(too_late)
    assert r["status"] == "not_started" and "under 60 s" in r["error"] and len(seen) == 1


STUBBORN_JOB = """
import os, signal, subprocess, sys, time
if sys.argv[1] == "ignore":  # a job that does not stop on SIGTERM (wedged)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
# a child that ignores SIGTERM: it ends only when killed (as srmt train's workers outlived it before)
child = subprocess.Popen([sys.executable, "-c", "import signal, time; "
                          "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
time.sleep(600)
"""


@contextlib.contextmanager
def _stubborn_job(tmp_path: Path, main: str):
    """A running STUBBORN_JOB: its Popen and its processes (the job, its child). On the way out whatever is
    left of the job's own tree is killed, and only that: this process's other children (torch's
    torch_shm_manager, multiprocessing's resource tracker) serve the later tests in the same run."""
    import subprocess
    import sys
    import time

    import psutil

    pids = tmp_path / "pids"
    proc = subprocess.Popen([sys.executable, "-c", STUBBORN_JOB, main, str(pids)])
    started: list[psutil.Process] = []
    try:
        deadline = time.time() + 60
        while not pids.exists():
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.05)
        started = [psutil.Process(int(pid)) for pid in pids.read_text().split()]
        yield proc, started
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            started += psutil.Process(proc.pid).children(recursive=True)
        for p in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.parametrize("main", ["ignore", "default"])
def test_a_stopped_job_leaves_no_process_behind(tmp_path, main):
    """``_stop_job`` (the sweep's timeout): SIGTERM, and after the grace SIGKILL to the job and to every
    process it started, also to an orphan of a job that died at once on SIGTERM."""
    import time

    import psutil

    from agents.sweep import jobs

    with _stubborn_job(tmp_path, main) as (proc, started):
        t0 = time.time()
        jobs._stop_job(proc, grace_s=1.0)
        assert time.time() - t0 < 20
        assert proc.returncode == (-9 if main == "ignore" else -15)
        gone, alive = psutil.wait_procs(started, timeout=5)
        assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], alive


def test_a_stopped_job_leaves_the_callers_other_processes_alone(tmp_path):
    """Stopping a job (and this file's cleanup after it) ends the job's own process tree and nothing else
    of the caller's: not another child of the caller, not torch's torch_shm_manager, which the caller's
    every later ``share_memory_()`` needs (sample-factory shares tensors by file name; once the manager is
    killed, every later training in the process fails with ``RuntimeError: Broken pipe``)."""
    import subprocess
    import sys

    import torch
    import torch.multiprocessing as torch_mp

    from agents.sweep import jobs

    strategy = torch_mp.get_sharing_strategy()
    torch_mp.set_sharing_strategy("file_system")  # as sample-factory does: shared via torch_shm_manager
    # another child of the caller: it echoes its input once that is closed, unless it was killed
    echo = "import sys; sys.stdout.write(sys.stdin.read())"
    bystander = subprocess.Popen(
        [sys.executable, "-c", echo], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        torch.zeros(4).share_memory_()  # starts this process's torch_shm_manager (once per process)
        with _stubborn_job(tmp_path, "ignore") as (proc, _):
            jobs._stop_job(proc, grace_s=0.5)
        assert torch.zeros(4).share_memory_().is_shared()  # RuntimeError (broken pipe) without the manager
        assert bystander.communicate("alive", timeout=60) == ("alive", None), bystander.returncode
    finally:
        torch_mp.set_sharing_strategy(strategy)
        if bystander.poll() is None:
            bystander.kill()
            bystander.wait()


def test_a_job_past_its_timeout_is_stopped_with_exit_code_124(tmp_path):
    import sys
    import time

    from agents.sweep import jobs

    t0 = time.time()
    rc, err = jobs._run([sys.executable, "-c", "import time; time.sleep(600)"], tmp_path / "job.log", 0.5)
    assert (rc, err) == (124, "stopped after timeout_s=0.5 s") and time.time() - t0 < 30


def test_an_interrupted_local_sweep_starts_no_queued_job(monkeypatch):
    """Ctrl-C reaches the running trainings (the terminal signals the whole process group), and the jobs
    still queued must not start after it (ThreadPoolExecutor's exit would run every one of them)."""
    import time

    import agents.sweep as sweep

    started = []

    def fake_job(spec):
        started.append(spec)
        time.sleep(0.2)
        return {"run": spec}

    monkeypatch.setattr(sweep, "run_job", fake_job)
    results = sweep.run_local(list(range(10)), parallel=2)
    next(results)
    results.close()  # what an exception in the consumer (KeyboardInterrupt) does to the generator
    time.sleep(0.5)
    assert len(started) <= 4, started


# ----------------------------------------------------------------------------------- real runs


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    cfg = parse_args(
        [
            "bottleneck-srmt",
            "name=tiny",
            f"out_dir={out}",
            "cores=[srmt,none]",
            "seeds=[0]",
            "parallel=2",
            "controls=[other]",
            *EVAL,
            *TINY,
        ]
    )
    return cfg, run_sweep(cfg, log=lambda s: None)


def test_two_tiny_runs_train_in_their_own_folders_and_give_one_table(local_sweep):
    cfg, out = local_sweep
    root = out["dir"]
    runs = {r["run"]: r for r in out["runs"]}
    assert set(runs) == {"tiny-srmt-s0", "tiny-none-s0"} and all(r["status"] == "ok" for r in runs.values())
    for run, r in runs.items():
        saved = configs.load(
            __import__("agents.config", fromlist=["x"]).ExperimentConfig, root / "runs" / run / "config.yaml"
        )
        assert saved.name == run and saved.model.core == r["core"] and saved.seed == 0
        assert r["env_steps"] >= 64 and [row["L"] for row in r["eval"]["shared"]] == [3, 4]
        assert all(row["episodes"] == 2 for row in r["eval"]["shared"])
    assert set(runs["tiny-srmt-s0"]["eval"]) == {"shared", "other"}  # the control only for srmt
    assert set(runs["tiny-none-s0"]["eval"]) == {"shared"}
    table = (root / "table.md").read_text()
    assert (
        "| `srmt` | shared | 0 |" in table
        and "| `srmt` | other | 0 |" in table
        and "| `none` | shared | 0 |" in table
    )
    data = json.loads((root / "sweep.json").read_text())
    assert {r["core"] for r in data["summary"]} == {"srmt", "none"} and data["meta"]["episodes"] == 2
    assert (root / "summary.csv").read_text().startswith("core,control,seeds,csr_mean")
    assert len((root / "runs.csv").read_text().splitlines()) == 1 + 2 * 2 + 2  # header, srmt x2 pools, none


def test_a_sweep_without_controls_reuses_an_evaluation_made_with_them(local_sweep):
    # the eleventh session's GPU call ran a sweep without controls= over runs evaluated with them: each srmt
    # run was evaluated again and its stored controls overwritten; an evaluation with more controls
    # answers a request with fewer
    import dataclasses

    cfg, first = local_sweep
    stored = Path(cfg.out_dir) / "tiny" / "results" / "tiny-srmt-s0.eval.json"
    before = stored.read_bytes()
    plain = run_sweep(dataclasses.replace(cfg, controls=[]), log=lambda s: None)
    runs = {r["run"]: r for r in plain["runs"]}
    assert all(not r["trained"] for r in runs.values())
    assert set(runs["tiny-srmt-s0"]["eval"]) == {"shared"}  # what was asked for, not what is stored
    assert (
        runs["tiny-srmt-s0"]["eval"]["shared"]
        == {r["run"]: r for r in first["runs"]}["tiny-srmt-s0"]["eval"]["shared"]
    )
    assert stored.read_bytes() == before  # not evaluated again, the controls kept
    # a control that is not stored is evaluated
    from agents.sweep import jobs

    key = json.loads(before)["key"]
    assert jobs._covers(key, {**key, "controls": []}) and not jobs._covers(key, {**key, "controls": ["own"]})
    assert not jobs._covers(key, {**key, "controls": [], "episodes": key["episodes"] + 1})
    # a control that is not stored is evaluated beside the stored ones, which the file keeps
    more = run_sweep(dataclasses.replace(cfg, controls=["own"]), log=lambda s: None)
    srmt = {r["run"]: r for r in more["runs"]}["tiny-srmt-s0"]
    assert srmt["status"] == "ok" and set(srmt["eval"]) == {"shared", "own"}
    after = json.loads(stored.read_text())
    assert after["key"]["controls"] == ["other", "own"] and set(after["eval"]) == {"shared", "other", "own"}
    assert after["eval"]["other"] == json.loads(before)["eval"]["other"]  # the same seeded episodes


def test_same_command_reuses_finished_runs_and_refuses_another_config(local_sweep):
    cfg, first = local_sweep
    again = run_sweep(cfg, log=lambda s: None)  # nothing retrained, evaluations reused
    assert all(not r["trained"] for r in again["runs"])
    assert [r["eval"] for r in again["runs"]] == [r["eval"] for r in first["runs"]]
    # stop_after_s stops new work only: finished, evaluated runs are still reported (tables from results
    # brought back from another machine)
    import time

    from agents.sweep import jobs

    name, specs = plan(cfg)
    late = [jobs.JobSpec(**{**jobs.spec_dict(sp), "start_before": time.time() - 1}) for sp in specs]
    assert [jobs.run_job(sp)["status"] for sp in late] == ["ok", "ok"]
    # a sweep folder moved elsewhere (carried to a GPU host and back) is the same sweep
    import shutil

    moved = Path(cfg.out_dir).parent / "moved"
    shutil.copytree(Path(cfg.out_dir), moved)
    import dataclasses

    moved_cfg = dataclasses.replace(cfg, out_dir=str(moved))
    _, specs = plan(moved_cfg)
    late = [jobs.JobSpec(**{**jobs.spec_dict(sp), "start_before": time.time() - 1}) for sp in specs]
    assert [jobs.run_job(sp)["status"] for sp in late] == ["ok", "ok"]
    # a marker written by an older srmt (its digest from an older schema) still marks a finished run
    marker = Path(specs[0].run_dir, jobs.TRAIN_MARKER)
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "config": "0123456789abcdef"}))
    again = run_sweep(moved_cfg, log=lambda s: None)
    assert all(not r["trained"] for r in again["runs"])
    other = parse_args(
        [
            "bottleneck-srmt",
            "name=tiny",
            f"out_dir={cfg.out_dir}",
            "cores=[srmt]",
            "seeds=[0]",
            *EVAL,
            *TINY,
            "train.learning_rate=0.001",
        ]
    )
    with pytest.raises(configs.ConfigError, match="holds another config; nothing is resumed"):
        plan(other)


@pytest.mark.slow
def test_dask_local_cluster_runs_two_tiny_runs(tmp_path):
    pytest.importorskip("dask.distributed")
    cfg = parse_args(
        [
            "bottleneck-srmt",
            "name=dask",
            f"out_dir={tmp_path}",
            "cores=[srmt,rmt]",
            "seeds=[1]",
            "backend=dask",
            "parallel=2",
            "lengths=[3]",
            "episodes=1",
            "eval_envs=1",
            *TINY,
        ]
    )
    out = run_sweep(cfg, log=lambda s: None)
    assert sorted(r["run"] for r in out["runs"]) == ["dask-rmt-s1", "dask-srmt-s1"]
    assert all(r["status"] == "ok" and r["trained"] for r in out["runs"])
    assert all(Path(r["run_dir"], "config.yaml").is_file() for r in out["runs"])
    assert "| `rmt` | shared | 1 |" in (out["dir"] / "table.md").read_text()


def test_docs_list_every_sweep_key():
    from agents.config_docs import rows
    from agents.sweep.config import SweepConfig

    doc = (Path(__file__).resolve().parents[1] / "docs" / "sweeps.md").read_text()
    missing = [k for k, *_ in rows(SweepConfig) if f"| `{k}` |" not in doc]
    assert not missing, f"docs/sweeps.md lacks {missing}"
    assert all(doc for *_, doc in rows(SweepConfig)), "every sweep key needs a docstring"


def test_controls_change_only_the_srmt_evaluations(tmp_path):
    _, jobs = plan(
        parse_args(
            ["bottleneck-srmt", "cores=[srmt,none]", "seeds=[0]", "controls=[own]", f"out_dir={tmp_path}"]
        )
    )
    assert [j.eval["controls"] for j in jobs] == [["own"], []]
