"""Tiny real training runs through sample-factory: every model variant, parallel mode with the per-batch
layout checks, and the upstream gaps closed in our code (wall-clock limit, resume, failing workers)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from agents.config import load_experiment
from agents.sf import evaluate_bottleneck, find_checkpoint, load_policy, read_checkpoint, train
from srmt import CORE_NAMES

SMALL_MODEL = {"hidden_size": 8, "num_heads": 2, "num_filters": 4, "num_res_blocks": 0, "history_len": 2}


def _exp(tmp_path: Path, name: str, core: str = "srmt", **train_overrides):
    train_cfg = {
        "train_dir": str(tmp_path / "runs"),
        "serial": True,
        "num_workers": 1,
        "envs_per_worker": 2,
        "rollout": 8,
        "batch_size": 32,
        "train_for_env_steps": 1200,
        "stats_avg": 2,
        "summaries_interval_s": 1,
        "log_interval_s": 5,
        "debug_layout": True,
        "save_every_sec": 3600,
        **train_overrides,
    }
    return load_experiment(
        {
            "name": name,
            "env": {"name": "bottleneck", "max_episode_steps": 24, "reward": "directional"},
            "model": {"core": core, **SMALL_MODEL},
            "train": train_cfg,
        }
    )


def _cli(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "agents.cli", "train", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )


@pytest.mark.parametrize("core", CORE_NAMES)
def test_every_variant_trains_and_saves_a_loadable_policy(core, tmp_path):
    exp = _exp(tmp_path, f"smoke-{core}", core, train_for_env_steps=3000)  # "a few thousand steps"
    result = train(exp, verbose=False)
    assert result.status == "success", result.error
    assert result.env_steps >= exp.train.train_for_env_steps
    # pogema's episode metrics reached sample-factory's stats in batched mode
    assert "episode/CSR" in result.metrics and "episode/ISR" in result.metrics
    net, loaded = load_policy(result.run_dir, device="cpu")
    assert loaded == exp and net.cfg.core == core
    ckpt = read_checkpoint(result.run_dir)
    assert ckpt["env_steps"] == result.env_steps and ckpt["srmt"]["num_agents"] == 2
    assert load_experiment(result.run_dir / "config.yaml") == exp


def test_parallel_run_checks_the_layout_of_every_batch_and_logs_episode_metrics(tmp_path):
    # two inference workers: each request is still a whole worker split, so every batch keeps the layout
    exp = _exp(tmp_path, "parallel", serial=False, num_workers=2, policy_workers=2, train_for_env_steps=3000)
    result = train(exp, verbose=False)
    assert result.status == "success", result.error
    assert result.env_steps >= 3000 and result.agent_steps_per_s > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(result.run_dir / ".summary" / "0"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"episode/CSR", "episode/ISR", "reward/reward"} <= tags
    assert any(t.startswith("train/") for t in tags)


def test_trained_policy_plays_bottleneck_test_corridors(tmp_path):
    exp = _exp(tmp_path, "eval", "gru")
    result = train(exp, verbose=False)
    rows = evaluate_bottleneck(result.run_dir, lengths=[3, 5], episodes=3, device="cpu", num_envs=2)
    assert [r["L"] for r in rows] == [3, 5]
    for r in rows:
        assert 0.0 <= r["CSR"] <= r["ISR"] <= 1.0 and r["episodes"] == 3
        assert r["steps"] <= 2 * r["L"] + 100
    again = evaluate_bottleneck(result.run_dir, lengths=[3, 5], episodes=3, device="cpu", num_envs=3)
    assert again == rows  # per-episode seeds: results do not depend on how many envs run in lockstep


def test_wall_clock_limit_ends_the_run(tmp_path):
    exp = _exp(tmp_path, "wall", train_for_env_steps=10**9, train_for_seconds=8)
    cfg_file = tmp_path / "wall.yaml"
    cfg_file.write_text(yaml.safe_dump({k: v for k, v in _as_dict(exp).items()}))
    proc = _cli([str(cfg_file)], timeout=240)  # sample-factory alone would train for 10**9 steps
    assert proc.returncode == 0, proc.stderr[-2000:]
    steps = read_checkpoint(tmp_path / "runs" / "wall")["env_steps"]
    assert 0 < steps < 10**9


def _as_dict(exp):
    import dataclasses

    return dataclasses.asdict(exp)


def test_resume_continues_the_step_counter_from_the_checkpoint_weights(tmp_path):
    first = train(_exp(tmp_path, "resume", "gru"), verbose=False)
    assert first.status == "success"
    ckpt = read_checkpoint(first.run_dir)

    # the learner of a resumed run starts from exactly the checkpoint: weights, steps, optimiser
    from test_train_adapter import _learner

    learner, _ = _learner(_exp(tmp_path, "resume", "gru"))
    assert learner.env_steps == ckpt["env_steps"] and learner.train_step == ckpt["train_step"]
    for key, value in learner.actor_critic.state_dict().items():
        torch.testing.assert_close(value, ckpt["model"][key])

    second = train(_exp(tmp_path, "resume", "gru", train_for_env_steps=2 * first.env_steps), verbose=False)
    assert second.status == "success"
    assert second.env_steps >= 2 * first.env_steps  # counted on from the checkpoint, not from 0
    assert read_checkpoint(second.run_dir)["train_step"] > ckpt["train_step"]


def test_checkpoints_load_weights_only_even_with_numpy_scalars_in_the_state(tmp_path):
    from test_train_adapter import _learner

    learner, _ = _learner(_exp(tmp_path, "numpy", "none"))
    learner.best_performance = np.float64(0.25)  # what np.mean of the best metric gives
    learner.curr_lr = np.float64(1e-4)
    assert learner.save()
    ckpt = torch.load(find_checkpoint(tmp_path / "runs" / "numpy"), weights_only=True)
    assert type(ckpt["best_performance"]) is float and type(ckpt["curr_lr"]) is float


def test_an_unreadable_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    from test_train_adapter import _learner

    folder = tmp_path / "runs" / "broken" / "checkpoint_p0"
    folder.mkdir(parents=True)
    (folder / "checkpoint_000000099_1000.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(Exception, match="pickle|load|invalid|magic|zip"):
        _learner(_exp(tmp_path, "broken", "none"))


def test_resuming_a_run_with_another_model_is_refused(tmp_path):
    first = train(_exp(tmp_path, "mixed", "none", train_for_env_steps=200), verbose=False)
    assert first.status == "success"
    with pytest.raises(ValueError, match=r"holds another run \(model.core: .none. -> .gru.\)"):
        train(_exp(tmp_path, "mixed", "gru"), verbose=False)


# worker and learner failures: tests/test_train_faults.py


def test_cli_usage_and_bad_keys():
    proc = _cli(["--help"], timeout=60)
    assert proc.returncode == 0 and "srmt train CONFIG" in proc.stdout
    proc = _cli(["bottleneck-srmt", "train.no_such_key=1"], timeout=60)
    assert proc.returncode == 2
    assert "no_such_key" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_nan_free_metrics(tmp_path):
    result = train(_exp(tmp_path, "metrics", "none", train_for_env_steps=600), verbose=False)
    assert all(not math.isnan(v) for v in result.metrics.values())


def test_demo_entry_point_trains_evaluates_and_prints_the_table(tmp_path, capsys):
    from agents import demo

    overrides = [
        f"train.train_dir={tmp_path / 'runs'}",
        "train.serial=true",
        "train.num_workers=1",
        "train.envs_per_worker=2",
        "train.batch_size=64",
        "train.train_for_env_steps=400",
        "model.hidden_size=8",
        "model.num_heads=2",
        "model.num_filters=4",
    ]
    code = demo.main(["bottleneck-srmt", *overrides, "--lengths", "3,4", "--episodes", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "CSR untrained" in out and "CSR trained" in out
    rows = [ln for ln in out.splitlines() if ln.strip().startswith(("3 |", "4 |"))]
    assert len(rows) == 2


def test_bench_train_entry_point_prints_ratios(tmp_path, capsys):
    from agents.bench import train as bench

    args = ["--agents", "4", "--size", "8", "--workers", "1", "--envs-per-worker", "2", "--seconds", "3"]
    args += ["--startup", "20", "--model", "srmt-bottleneck", "--serial"]
    args += [
        "--run",
        "tiny:model.core=none;train.learning_rate=0.001",
        "--json",
        str(tmp_path / "bench.json"),
    ]
    code = bench.main(args)
    out = capsys.readouterr().out
    assert code == 0
    assert "raw env (1 processes)" in out and "train tiny" in out
    assert "run tiny: model.core=none train.learning_rate=0.001" in out
    data = __import__("json").loads((tmp_path / "bench.json").read_text())
    assert data["raw_env"] > 0 and data["train"]["tiny"]["agent_steps_per_s"] > 0


def test_bench_train_run_specs():
    from agents.bench.train import main, parse_run

    assert parse_run("gru") == ("gru", ["model.core=gru"])
    assert parse_run("b:model.core=srmt; train.batch_size=4096") == (
        "b",
        ["model.core=srmt", "train.batch_size=4096"],
    )
    with pytest.raises(ValueError, match="not KEY=VALUE"):
        parse_run("b:train.batch_size")
    with pytest.raises(ValueError, match="give a label"):
        parse_run(":model.core=gru")
    assert main(["--run", "b:nonsense"]) == 2  # before any process starts
    assert main(["--run", "b:train.no_such_key=1"]) == 2  # unknown keys too, before the raw-env measurement
    assert main(["--run", "srmt", "--run", "srmt"]) == 2  # duplicate labels


def test_wandb_offline_mirrors_the_tensorboard_metrics(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)  # offline must not need a login
    monkeypatch.setenv("WANDB_SILENT", "true")
    exp = _exp(tmp_path, "wandb-offline", wandb="offline", wandb_group="grp-xyz", wandb_tags=["tag-abc"])
    result = train(exp, verbose=False)
    assert result.status == "success", result.error
    runs = list((tmp_path / "runs" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    data = runs[0].read_bytes()
    assert b"train/policy_loss" in data or b"train/value_loss" in data  # a scalar SF wrote to TensorBoard
    # metric names carry no run name / summary folder (runs overlay); env steps are the x-axis
    assert b"wandb-offline/.summary" not in data and b".summary/0/" not in data
    assert b"global_step" in data
    assert b"grp-xyz" in data and b"tag-abc" in data
