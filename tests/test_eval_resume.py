"""Evaluation keeps every finished episode (issue 15 item 4): an episode log written as episodes finish,
resume after a kill (SIGKILL, Ctrl-C, a failing episode) to the same results as an uninterrupted run,
refusal to mix results of another config into one out_dir, one-line errors for corrupt result files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents import evaluate as eval_cmd
from agents.eval import runner
from agents.eval.results import read_csv, read_results
from agents.eval.store import LOG_DIR, algorithm_settings, checkpoint_digest
from agents.eval_config import AlgorithmConfig

ROOT = Path(__file__).resolve().parents[1]
# 2 maps x 2 agent counts x 4 seeds x 2 algorithms = 32 episodes of 300 steps: about 1 s on one core
GRID = [
    "eval/smoke",
    "run=[PIBT,Random]",
    "seeds=[0,1,2,3]",
    "max_episode_steps=300",
    "plots=false",
    "progress=false",
]
TOTAL = 32


def _log_lines(out: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in (out / LOG_DIR).glob("*/*.jsonl"))


def _without_runtime(path: Path) -> list:
    items = json.loads(path.read_text())
    for it in items:
        it["metrics"].pop("runtime")
    return items


def _assert_same_results(a: Path, b: Path) -> None:
    """Same toolbox JSONs (same episodes, same order, same metrics but the timing) and results.csv."""
    files = sorted(p.relative_to(a) for p in a.glob("*-lmapf/*.json"))
    assert files and files == sorted(p.relative_to(b) for p in b.glob("*-lmapf/*.json"))
    for f in files:
        assert _without_runtime(a / f) == _without_runtime(b / f), f

    def strip(rows: list[dict]) -> list[dict]:
        return [{**r, "metrics": {k: v for k, v in r["metrics"].items() if k != "runtime"}} for r in rows]

    assert strip(read_csv(a / "results.csv")) == strip(read_csv(b / "results.csv"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run."""
    out = tmp_path_factory.mktemp("ref") / "ev"
    assert eval_cmd.main([*GRID, f"out_dir={out}", "workers=1"]) == 0
    assert _log_lines(out) == TOTAL
    return out


def _start(out: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "agents.cli", "eval", *GRID, f"out_dir={out}", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the signal reaches it and its workers only
    )


def _wait_for_episodes(proc: subprocess.Popen, out: Path, n: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = _log_lines(out) if (out / LOG_DIR).is_dir() else 0
        if done >= n:
            return done
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.01)
    raise AssertionError(f"fewer than {n} episodes after {timeout} s")


def test_sigkill_mid_grid_then_resume_gives_the_uninterrupted_results(tmp_path, reference, capsys):
    out = tmp_path / "ev"
    proc = _start(out, "workers=1")
    _wait_for_episodes(proc, out, 4)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    kept = _log_lines(out)
    assert 4 <= kept < TOTAL, kept  # killed mid-grid, the finished episodes are on disk
    assert not list(out.glob("*-lmapf/*.json"))  # the toolbox JSONs come at the end only
    assert eval_cmd.main([*GRID, f"out_dir={out}", "workers=1"]) == 0
    assert _log_lines(out) == TOTAL  # nothing ran twice
    summary = (out / "summary.md").read_text()
    assert f"{kept} of them kept from an interrupted run" in summary
    assert json.loads((out / "figures.json").read_text())["resumed"] == kept
    _assert_same_results(out, reference)
    capsys.readouterr()


def test_worker_processes_end_when_their_parent_is_killed(tmp_path):
    """SIGKILL to the ``srmt eval`` process alone (not its group): its worker processes exit too."""
    out = tmp_path / "ev"
    proc = _start(out, "workers=2")
    _wait_for_episodes(proc, out, 2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                os.killpg(proc.pid, 0)  # anyone left in its process group?
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, "worker processes outlived their killed parent"
            time.sleep(0.1)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # no orphans left behind by a failing test
        except ProcessLookupError:
            pass
    assert _log_lines(out) >= 2


def test_ctrl_c_ends_with_one_line_and_keeps_finished_episodes(tmp_path, reference):
    out = tmp_path / "ev"
    proc = _start(out, "workers=2")
    _wait_for_episodes(proc, out, 3)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    _, err = proc.communicate(timeout=30)
    text = err.decode()
    assert proc.returncode == 130, text
    assert "Traceback" not in text, text
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("srmt eval: interrupted;"), text
    kept = _log_lines(out)
    assert f"{kept} of {TOTAL} episodes are kept" in lines[0]
    assert eval_cmd.main([*GRID, f"out_dir={out}", "workers=1"]) == 0  # any worker count resumes
    _assert_same_results(out, reference)


def test_an_episode_that_fails_after_n_then_resume(tmp_path, reference, monkeypatch, capsys):
    out = tmp_path / "ev"
    real = runner.run_episode
    calls = []

    def failing(*args, **kwargs):
        if len(calls) == 5:
            raise RuntimeError("injected failure")
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_episode", failing)
    with pytest.raises(RuntimeError, match="injected failure"):
        eval_cmd.main([*GRID, f"out_dir={out}", "workers=1"])
    assert _log_lines(out) == 5
    monkeypatch.setattr(runner, "run_episode", real)
    assert eval_cmd.main([*GRID, f"out_dir={out}", "workers=1"]) == 0
    _assert_same_results(out, reference)
    capsys.readouterr()


def test_a_wider_grid_reuses_the_episodes_it_shares(tmp_path, reference, capsys):
    out = tmp_path / "ev"
    assert eval_cmd.main([*GRID, f"out_dir={out}", "workers=1", "max_maps=1"]) == 0
    assert _log_lines(out) == TOTAL // 2
    assert eval_cmd.main([*GRID, f"out_dir={out}", "workers=1"]) == 0
    assert _log_lines(out) == TOTAL
    _assert_same_results(out, reference)
    # the narrower grid again: its tables hold its own episodes only
    assert eval_cmd.main([*GRID, f"out_dir={out}", "workers=1", "max_maps=1"]) == 0
    assert len(read_results(out)) == TOTAL // 2 and _log_lines(out) == TOTAL
    capsys.readouterr()


SMALL = ["eval/smoke", "run=[PIBT]", "max_episodes=2", "plots=false", "progress=false", "workers=1"]


@pytest.mark.parametrize(
    "change, named",
    [
        ("max_episode_steps=16", "max_episode_steps=32 stored, max_episode_steps=16 now"),
        ("algorithms.PIBT.kind=random", "kind='pibt' stored, kind='random' now"),
        ("scenarios=false", None),  # the tiny set has no frozen scenarios: the same episodes
    ],
)
def test_results_of_another_config_are_refused_unless_overwrite(tmp_path, capsys, change, named):
    out = tmp_path / "ev"
    assert eval_cmd.main([*SMALL, f"out_dir={out}"]) == 0
    capsys.readouterr()
    rc = eval_cmd.main([*SMALL, f"out_dir={out}", change])
    err = capsys.readouterr().err
    if named is None:
        assert rc == 0, err
        return
    assert rc == 2 and err.count("\n") == 1 and named in err and "eval.restart=overwrite" in err, err
    before = (out / "tiny-lmapf" / "PIBT.json").read_text()
    assert eval_cmd.main([*SMALL, f"out_dir={out}", change, "restart=overwrite"]) == 0
    assert (out / "tiny-lmapf" / "PIBT.json").read_text() != before
    assert _log_lines(out) == 2  # the old episodes are gone, not mixed in


def test_result_jsons_without_a_log_are_refused(tmp_path, capsys):
    out = tmp_path / "ev"
    (out / "tiny-lmapf").mkdir(parents=True)
    (out / "tiny-lmapf" / "PIBT.json").write_text("[]")
    assert eval_cmd.main([*SMALL, f"out_dir={out}"]) == 2
    err = capsys.readouterr().err
    assert "without an episode log" in err and err.count("\n") == 1
    assert eval_cmd.main([*SMALL, f"out_dir={out}", "restart=overwrite"]) == 0


def test_a_torn_last_line_is_dropped_and_cut_off(tmp_path, capsys):
    out = tmp_path / "ev"
    assert eval_cmd.main([*SMALL, f"out_dir={out}"]) == 0
    log = out / LOG_DIR / "tiny-lmapf" / "PIBT.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(lines[0] + lines[1][:40])  # a kill in the middle of writing the second record
    assert eval_cmd.main([*SMALL, f"out_dir={out}"]) == 0
    again = log.read_bytes().splitlines(keepends=True)
    assert len(again) == 2 and again[0] == lines[0] and all(json.loads(x) for x in again)
    capsys.readouterr()


def test_a_corrupt_log_line_is_one_line_naming_the_file(tmp_path, capsys):
    out = tmp_path / "ev"
    assert eval_cmd.main([*SMALL, f"out_dir={out}"]) == 0
    log = out / LOG_DIR / "tiny-lmapf" / "PIBT.jsonl"
    log.write_bytes(b'{"not": "a record"}\n' + log.read_bytes())
    capsys.readouterr()
    for extra in ([], ["report_only=true"]):
        assert eval_cmd.main([*SMALL, f"out_dir={out}", *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"results file {log} line 1 is corrupt" in err, err


def test_a_corrupt_results_json_names_the_file(tmp_path):
    bad = tmp_path / "tiny-lmapf" / "PIBT.json"
    bad.parent.mkdir()
    bad.write_text('[{"metrics": ')
    with pytest.raises(ValueError, match=f"results file {bad} cannot be read"):
        read_results(tmp_path)


def test_episode_settings_follow_what_changes_an_episode(tmp_path):
    ckpt = tmp_path / "a.pth"
    ckpt.write_bytes(b"weights v1")
    spec = AlgorithmConfig(kind="follower_lite", checkpoint=str(ckpt))
    first = algorithm_settings(spec)
    assert first == algorithm_settings(AlgorithmConfig(kind="follower_lite", checkpoint=str(ckpt)))
    assert algorithm_settings(AlgorithmConfig("follower_lite", str(ckpt), action_selection="argmax")) != first
    moved = tmp_path / "b.pth"
    moved.write_bytes(b"weights v1")
    assert algorithm_settings(AlgorithmConfig("follower_lite", str(moved))) == first  # content, not path
    ckpt.write_bytes(b"weights v2")
    assert algorithm_settings(spec) != first
    # a planner ignores checkpoint / action_selection
    assert algorithm_settings(AlgorithmConfig("pibt", action_selection="argmax")) == algorithm_settings(
        AlgorithmConfig("pibt")
    )
    run = tmp_path / "run" / "checkpoint_p0"
    run.mkdir(parents=True)
    (run / "c1.pth").write_bytes(b"x")
    d1 = checkpoint_digest(tmp_path / "run")
    (run / "c2.pth").write_bytes(b"y")
    assert checkpoint_digest(tmp_path / "run") != d1  # a run folder: its latest checkpoint changed
    with pytest.raises(ValueError, match="not found"):
        algorithm_settings(AlgorithmConfig("follower_lite", str(tmp_path / "gone.pth")))
    assert (
        algorithm_settings(AlgorithmConfig("follower_lite", str(tmp_path / "gone.pth")), missing_ok=True)[
            "checkpoint"
        ]
        is None
    )


def test_srmt_options_are_in_the_settings_only_where_they_differ_from_their_defaults():
    from agents.eval_config import SRMT_LIFELONG_CHECKPOINT

    def settings(**options):
        return algorithm_settings(AlgorithmConfig("srmt", SRMT_LIFELONG_CHECKPOINT, options=options))

    default = settings()
    assert "options" not in default  # as logs written before options were in the settings
    assert settings(temperature=1.0, pool="shared") == default
    assert settings(temperature=0.5) == {**default, "options": {"temperature": 0.5}}
    assert settings(pool="own") == {**default, "options": {"pool": "own"}}
    assert settings(pool="own", temperature=2.0)["options"] == {"temperature": 2.0, "pool": "own"}
    # None matches a stored value only as a checkpoint not here (report_only), not as an option's value
    from agents.eval.store import same_settings

    assert same_settings({"checkpoint": "ab12", "kind": "srmt"}, {"checkpoint": None, "kind": "srmt"})
    assert not same_settings({"options": {"x": 5}}, {"options": {"x": None}})


SRMT_SMALL = ["eval/smoke", "run=[SRMT]", "max_episodes=1", "max_episode_steps=16", "plots=false"]
SRMT_SMALL += ["progress=false", "workers=1"]


def test_an_srmt_option_changed_in_the_same_out_dir_does_not_reuse_its_episodes(tmp_path, capsys):
    out = tmp_path / "ev"
    assert eval_cmd.main([*SRMT_SMALL, f"out_dir={out}"]) == 0
    log = out / LOG_DIR / "tiny-lmapf" / "SRMT.jsonl"
    first = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(first) == 1 and "options" not in first[0]["settings"]["algorithm"]
    assert eval_cmd.main([*SRMT_SMALL, f"out_dir={out}", "algorithms.SRMT.options.pool=shared"]) == 0
    assert len(log.read_text().splitlines()) == 1  # the default spelled out: the same episode, reused
    capsys.readouterr()
    own = [*SRMT_SMALL, f"out_dir={out}", "algorithms.SRMT.options.pool=own"]
    assert eval_cmd.main(own) == 2  # not served the episodes of the shared pool
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no options stored, options={'pool': 'own'} now" in err, err
    assert eval_cmd.main([*own, "restart=overwrite"]) == 0
    again = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(again) == 1 and again[0]["settings"]["algorithm"]["options"] == {"pool": "own"}
    capsys.readouterr()


def test_a_worker_rebuilds_an_algorithm_whose_checkpoint_was_replaced(tmp_path, monkeypatch):
    """Workers keep built algorithms between tasks (a dask worker lives across runs); a checkpoint
    rewritten at the same path is loaded again, not served from that cache."""
    import agents.sf as sf
    from agents.config import load_experiment
    from agents.eval.benchmark import build_instances, load_map_set, resolve_map_set
    from agents.eval.runner import make_tasks, run_tasks
    from agents.eval_config import EvalConfig
    from envs import make_env
    from srmt import build_actor_critic

    exp = load_experiment(None, ["env.name=pogema", "env.obs_radius=3"])
    env = make_env(exp.env, seed=0)
    net = build_actor_critic(exp.model, tuple(env.observation_space.shape), int(env.action_space.n))
    loads = []
    monkeypatch.setattr(sf, "load_policy", lambda path, device: (loads.append(path), (net, exp))[1])
    ckpt = tmp_path / "model.pth"
    ckpt.write_bytes(b"v1")
    cfg = EvalConfig(map_sets=["tiny"], max_episodes=2, algorithms={"M": AlgorithmConfig("srmt", str(ckpt))})
    ms = load_map_set(resolve_map_set("tiny", "lifelong", cfg.benchmark_dir))
    tasks = make_tasks(["M"], build_instances(ms, cfg))
    run_tasks(tasks, cfg.algorithms, workers=1, progress=False)
    run_tasks(tasks, cfg.algorithms, workers=1, progress=False)
    assert len(loads) == 1  # built once, kept for the second run
    ckpt.write_bytes(b"v2, retrained")
    run_tasks(tasks, cfg.algorithms, workers=1, progress=False)
    assert len(loads) == 2
