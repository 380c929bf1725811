"""``srmt sweep checkpoint=``: which checkpoint of each run is evaluated (``latest``, the default, or
sample-factory's ``best_*.pth``), on finished run folders made by hand (no training, no evaluation
process: ``agents.sweep.jobs._run`` is replaced by a fake that writes the evaluation JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import configs
from agents.sweep import jobs, parse_args, plan, run_sweep

EVAL = ["lengths=[3,4]", "episodes=2", "eval_envs=2"]
LATEST = "checkpoint_p0/checkpoint_000000020_1280.pth"
BEST = "checkpoint_p0/best_000000015_960_reward_0.970.pth"


def _args(tmp_path: Path, *more: str) -> list[str]:
    return [
        "bottleneck-srmt",
        "name=ck",
        f"out_dir={tmp_path}",
        "cores=[srmt,none]",
        "seeds=[0]",
        *EVAL,
        *more,
    ]


def _finished(spec: jobs.JobSpec, files: list[str], **marker: object) -> Path:
    """A run folder as a finished sweep run leaves it: its config, the training marker and ``files``
    (empty: only their names count here)."""
    run_dir = Path(spec.run_dir)
    (run_dir / "checkpoint_p0").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(spec.config_yaml)
    for f in files:
        (run_dir / f).write_bytes(b"")
    data = dict(config=jobs.config_digest(spec.config_yaml), env_steps=1280, wall_s=1.0, **marker)
    (run_dir / jobs.TRAIN_MARKER).write_text(json.dumps(data))
    assert jobs.folder_state(run_dir, spec.config_yaml) == "done"
    return run_dir


def _with(spec: jobs.JobSpec, **changes: object) -> jobs.JobSpec:
    return jobs.JobSpec(**{**jobs.spec_dict(spec), **changes})


@pytest.fixture
def fake_eval(monkeypatch):
    """``_run`` replaced: an evaluation writes ``{key, eval}`` with CSR 1.0 (``latest``) or 0.5 (``best``)
    and is recorded; training must not happen (every run folder here is finished)."""
    calls: list[dict] = []

    def fake_run(cmd, log, timeout_s):
        assert cmd[2] == "agents.sweep.evaluate", cmd
        key = json.loads(cmd[5])
        calls.append(key)
        csr = 0.5 if "best_" in key["checkpoint"] else 1.0
        rows = [dict(L=L, CSR=csr, ISR=csr, episodes=2, steps=10.0) for L in (3, 4)]
        Path(cmd[4]).parent.mkdir(parents=True, exist_ok=True)  # as the evaluation process does
        Path(cmd[4]).write_text(json.dumps(dict(key=key, eval={"shared": rows}, wall_s=0.1)))
        return 0, ""

    monkeypatch.setattr(jobs, "_run", fake_run)
    return calls


def test_default_eval_key_is_unchanged_for_an_existing_folder(tmp_path):
    cfg = parse_args(_args(tmp_path))
    assert cfg.checkpoint == "latest"
    _, (spec, _) = plan(cfg)
    assert spec.checkpoint == "latest"
    _finished(spec, [LATEST, BEST], checkpoint=LATEST)
    # exactly the key of the sweeps before checkpoint= existed (a best file next to it changes nothing)
    key = dict(
        checkpoint=LATEST,
        lengths=[3, 4],
        episodes=2,
        eval_seed=12345,
        eval_envs=2,
        eval_threads=1,
        eval_device="cpu",
        action_selection="sample",
        controls=[],
    )
    assert jobs._eval_key(spec) == key and list(jobs._eval_key(spec)) == list(key)
    eval_path = Path(spec.result_path).with_suffix(".eval.json")
    eval_path.parent.mkdir(parents=True)
    eval_path.write_text(json.dumps(dict(key=key, eval={"shared": []}, wall_s=1.0)))
    assert jobs._eval_cached(spec, eval_path)  # an existing evaluation is reused
    # a marker of an earlier srmt without the checkpoint: the folder's latest, never its best
    marker = Path(spec.run_dir, jobs.TRAIN_MARKER)
    marker.write_text(
        json.dumps({k: v for k, v in json.loads(marker.read_text()).items() if k != "checkpoint"})
    )
    Path(spec.run_dir, "checkpoint_p0/checkpoint_000000010_640.pth").write_bytes(b"")
    assert jobs._eval_key(spec)["checkpoint"] == LATEST and jobs._eval_cached(spec, eval_path)


def test_checkpoint_best_picks_the_best_file(tmp_path):
    _, (spec, _) = plan(parse_args(_args(tmp_path, "checkpoint=best")))
    assert spec.checkpoint == "best"
    older_best = "checkpoint_p0/best_000000005_320_reward_0.400.pth"  # sample-factory keeps one; newest wins
    run_dir = _finished(spec, [LATEST, older_best, BEST, "checkpoint_p0/best_temp"], checkpoint=LATEST)
    key = jobs._eval_key(spec)
    assert key["checkpoint"] == BEST and (run_dir / key["checkpoint"]).is_file()
    assert {k: v for k, v in key.items() if k != "checkpoint"} == spec.eval
    # the file a marker records (written at the end of training) is evaluated even where the checkpoint
    # files stayed behind on another host
    marker = run_dir / jobs.TRAIN_MARKER
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "best_checkpoint": older_best}))
    for f in (LATEST, older_best, BEST):
        (run_dir / f).unlink()
    assert jobs._eval_key(spec)["checkpoint"] == older_best
    assert jobs._eval_key(_with(spec, checkpoint="latest"))["checkpoint"] == LATEST


def test_a_finished_training_records_both_checkpoints_in_its_marker(tmp_path, monkeypatch, fake_eval):
    _, (spec, _) = plan(parse_args(_args(tmp_path, "checkpoint=best")))
    evaluate = jobs._run

    def fake_run(cmd, log, timeout_s):  # a training that saved a periodic and a best checkpoint
        if cmd[2] != "agents.cli":
            return evaluate(cmd, log, timeout_s)
        run_dir = Path(spec.run_dir)
        (run_dir / "checkpoint_p0").mkdir(parents=True)
        (run_dir / "config.yaml").write_text(spec.config_yaml)
        for f in (LATEST, BEST):
            (run_dir / f).write_bytes(b"")
        return 0, ""

    monkeypatch.setattr(jobs, "_run", fake_run)
    monkeypatch.setattr("agents.sf.checkpoint.read_checkpoint", lambda p: {"env_steps": spec.target_steps})
    r = jobs.run_job(spec)
    assert r["status"] == "ok" and r["trained"] and r["checkpoint_file"] == BEST
    marker = json.loads(Path(spec.run_dir, jobs.TRAIN_MARKER).read_text())
    assert (marker["checkpoint"], marker["best_checkpoint"]) == (LATEST, BEST)
    assert [k["checkpoint"] for k in fake_eval] == [BEST]


def test_switching_latest_to_best_re_evaluates(tmp_path, fake_eval):
    _, (spec, _) = plan(parse_args(_args(tmp_path)))
    _finished(spec, [LATEST, BEST], checkpoint=LATEST)
    best = _with(spec, checkpoint="best")
    eval_path = Path(spec.result_path).with_suffix(".eval.json")

    first = jobs.run_job(spec)
    assert first["status"] == "ok" and [k["checkpoint"] for k in fake_eval] == [LATEST]
    assert "checkpoint" not in first and "checkpoint_file" not in first  # latest: today's result record
    assert jobs._eval_cached(spec, eval_path) and not jobs._eval_cached(best, eval_path)
    assert jobs.run_job(spec)["eval"] == first["eval"] and len(fake_eval) == 1  # reused

    after = jobs.run_job(best)  # a best run after a latest run evaluates again
    assert after["status"] == "ok" and [k["checkpoint"] for k in fake_eval] == [LATEST, BEST]
    assert after["eval"]["shared"][0]["CSR"] == 0.5 and after["eval"] != first["eval"]
    assert (after["checkpoint"], after["checkpoint_file"]) == ("best", BEST)
    saved = json.loads(Path(spec.result_path).read_text())
    assert saved["checkpoint_file"] == BEST and json.loads(eval_path.read_text())["key"]["checkpoint"] == BEST
    assert jobs._eval_cached(best, eval_path) and not jobs._eval_cached(spec, eval_path)
    jobs.run_job(best)
    assert len(fake_eval) == 2  # best reused in turn
    back = jobs.run_job(spec)  # and back: the best evaluation is not taken for the latest
    assert [k["checkpoint"] for k in fake_eval] == [LATEST, BEST, LATEST]
    assert back["eval"] == first["eval"]


def test_a_run_without_a_best_checkpoint_fails_in_one_line(tmp_path, fake_eval):
    cfg = parse_args(_args(tmp_path, "checkpoint=best"))
    _, (srmt, none) = plan(cfg)
    _finished(srmt, [LATEST, BEST], checkpoint=LATEST)
    run_dir = _finished(none, [LATEST], checkpoint=LATEST)
    with pytest.raises(
        FileNotFoundError, match=r"^checkpoint=best: run folder .*ck-none-s0 has no best_\*\.pth"
    ):
        jobs._eval_key(none)
    # in a sweep: that run is reported as failed in one line, the other one is evaluated and tabled
    logged: list[str] = []
    out = run_sweep(cfg, log=logged.append)
    runs = {r["run"]: r for r in out["runs"]}
    assert runs["ck-srmt-s0"]["status"] == "ok" and runs["ck-srmt-s0"]["checkpoint_file"] == BEST
    bad = runs["ck-none-s0"]
    assert bad["status"] == "failed" and "\n" not in bad["error"]
    assert f"run folder {run_dir} has no best_*.pth" in bad["error"]
    assert "allowed: checkpoint=latest" in bad["error"]
    assert [k["checkpoint"] for k in fake_eval] == [BEST]
    assert any(line.endswith(f"ck-none-s0: FAILED: {bad['error']}") for line in logged)
    header = (Path(out["dir"]) / "table.md").read_text().splitlines()[0]
    assert header == "## Sweep `ck`: bottleneck-srmt (each run's best checkpoint by training reward)"
    assert "| `srmt` | shared | 0 | 0.500 " in out["table"]  # the best checkpoint's numbers
    assert "none,0,failed," in (Path(out["dir"]) / "runs.csv").read_text()
    assert json.loads((Path(out["dir"]) / "sweep.json").read_text())["meta"]["checkpoint"] == "best"


def test_the_table_header_names_the_checkpoint_only_when_it_is_best():
    from agents.sweep import stats

    meta = dict(
        name="x",
        experiment="e",
        num_lengths=2,
        episodes=4,
        eval_seed=1,
        action_selection="sample",
        confidence=0.95,
        bootstrap_resamples=100,
        train_csr=0.9,
    )
    for kind, note in [
        (None, ""),
        ("latest", ""),
        ("best", " (each run's best checkpoint by training reward)"),
    ]:
        m = meta if kind is None else dict(meta, checkpoint=kind)
        assert stats.markdown([], [], m, 0.9).splitlines()[0] == f"## Sweep `x`: e{note}"
        assert stats.cells_markdown([], m).splitlines()[0] == f"## Sweep `x`: e{note}"


def test_a_bad_checkpoint_value_is_refused_in_one_line(capsys):
    with pytest.raises(configs.ConfigError, match=r"checkpoint.*'foo'.*\['latest', 'best'\]") as e:
        parse_args(["bottleneck-srmt", "checkpoint=foo"])
    assert "\n" not in str(e.value)
    from agents import cli

    assert cli.main(["sweep", "bottleneck-srmt", "checkpoint=foo"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("srmt sweep:") and "'foo'" in err and "'best'" in err and "\n" not in err
