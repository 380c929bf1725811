"""The examples/ folder, run in CI (issue 12): a custom env trained by ``srmt train``, the PettingZoo
config, and the cleanrl-style PPO loop learning a tiny task."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import configs
from agents.config import load_experiment

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _python(args: list[str], cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_custom_env_example_is_short_and_trains_with_srmt_train(tmp_path):
    env_file = EXAMPLES / "custom_env" / "beacon.py"
    assert len(env_file.read_text().splitlines()) < 60
    runs = tmp_path / "runs"
    # as the README says: `srmt train train.yaml` in the example's folder (a process of its own, so that
    # sample-factory's threads and the plugin's registration stay out of the test process)
    overrides = [f"train.train_dir={runs}", "train.serial=true", "train.train_for_env_steps=1152"]
    proc = _python(["-m", "agents.cli", "train", "train.yaml", *overrides], cwd=EXAMPLES / "custom_env")
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = runs / "beacon-srmt"
    assert list((run / "checkpoint_p0").glob("checkpoint_*.pth"))
    # from another folder, with no plugin flags: the saved config names the plugin file
    check = (
        f"from agents.sf import load_policy; from agents import cli; net, exp = load_policy({str(run)!r}); "
        "print(exp.env.name, exp.env.plugin, type(net.encoder).__name__, net.obs_shape); "
        f"cli.main(['envs', 'play', {str(run)!r}])"
    )
    proc = _python(["-c", check], cwd=tmp_path)  # a fresh process: the plugin is not imported yet
    assert proc.returncode == 0, proc.stderr[-2000:]
    first, *rest = proc.stdout.splitlines()
    assert first.split() == ["beacon", str(env_file), "MLPEncoder", "(3,)"]
    assert "beacon" in rest[0] and "return=" in rest[-1]  # srmt envs play on the run folder
    # srmt eval / srmt enjoy / srmt envs play --render on the checkpoint, each in a fresh process with no
    # plugin flag: the policy plays its own (non-grid) env, seeded, with the env's metrics
    algo = ["algorithms.B.kind=srmt", f"algorithms.B.checkpoint={run}", "workers=1", "out_dir=ev"]
    proc = _python(
        ["-m", "agents.cli", "eval", *algo, "run=[B]", "episodes=3", "progress=false"], cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [
        json.loads(line) for line in (tmp_path / "ev/episodes/beacon-env/B.jsonl").read_text().splitlines()
    ]
    assert [r["seed"] for r in rows] == [0, 1, 2] and all(0 <= r["metrics"]["return"] <= 8 for r in rows)
    assert all(r["metrics"]["episode_length"] == 8 for r in rows) and "`return`" in proc.stdout
    proc = _python(["-m", "agents.cli", "enjoy", *algo, "enjoy.algorithm=B"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (
        "no grid to draw" in proc.stdout
        and len((tmp_path / "ev/enjoy/B-beacon-3.txt").read_text().splitlines()) == 11
    )
    proc = _python(["-m", "agents.cli", "envs", "play", str(run / "checkpoint_p0"), "--render"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "per-step actions and rewards" in proc.stdout and proc.stdout.splitlines()[-1].startswith(
        "return per agent"
    )


def test_pettingzoo_example_config_builds_env_and_model():
    pytest.importorskip("pettingzoo.mpe")
    from agents.sf.evaluate import untrained_policy
    from envs import make_env

    exp = load_experiment(str(EXAMPLES / "pettingzoo_spread" / "train.yaml"))
    assert exp.env.opts.kwargs == {"N": 3, "max_cycles": 25} and exp.model.normalize_input
    env = make_env(exp.env, seed=0)
    assert env.num_agents == 3 and env.observation_space.shape == (18,)
    assert exp.train.batch_size % (env.num_agents * exp.train.rollout) == 0  # whole environments
    net = untrained_policy(exp, env.observation_space.shape, env.action_space.n)
    evaluate = _load(EXAMPLES / "pettingzoo_spread" / "evaluate.py")
    assert evaluate.mean_return(net, configs.load(type(exp.env), configs.to_dict(exp.env)), 4) < 0


def test_ppo_loop_learns_the_tiny_task():
    ppo = _load(EXAMPLES / "ppo_loop.py")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        frozen = ppo.train(updates=4, lr=0.0, log=lambda *_: None)  # the untrained policy's returns
        learned = ppo.train(updates=16, log=lambda *_: None)
    finally:
        torch.set_num_threads(threads)
    # mean return of the episodes ending in each update; walking straight to the goal gives ~0.92
    # (1 - 0.05 x steps), an untrained policy's random walk about 0 (measured 0.0-0.3 per update)
    before, after = float(np.mean(frozen[1:])), float(np.mean(learned[-3:]))
    assert before < 0.45 and after > 0.7, (frozen, learned)
