"""Env tasks (issue 12): ``srmt eval`` / ``srmt enjoy`` on registered envs that are not POGEMA grids,
with the env's own metrics, through the same grid runner, episode log and tables."""

from __future__ import annotations

import json

import numpy as np
import pytest

import configs
from agents.eval.api import enjoy, evaluate
from agents.eval.episode import EnvInstance, make_episode_env, run_episode
from agents.eval.runner import episode_seed
from agents.eval.tables import env_metrics, report
from agents.eval.tasks import env_instances, task_note
from agents.eval_config import AlgorithmConfig, EvalConfig
from envs import make_env
from envs.config import EnvConfig

LINE = ["env.name=gym_multiagent", "env.options.id=envs.toy:LineWorld", "env.options.num_agents=3"]


def _cfg(tmp_path, *overrides: str) -> EvalConfig:
    base = [*LINE, "run=[Random]", "episodes=6", "workers=1", "progress=false", f"out_dir={tmp_path / 'out'}"]
    return configs.load(EvalConfig, None, [*base, *overrides])


def _reference_returns(env_cfg: EnvConfig, inst: EnvInstance) -> tuple[float, int]:
    """The Random algorithm's episode, stepped by hand: the mean summed reward per agent and the length."""
    env = make_env(env_cfg, seed=inst.seed)
    env.reset(seed=inst.seed)
    rng = np.random.default_rng(episode_seed(inst))  # RandomAgent.reset(state, seed)
    total, steps = np.zeros(env.num_agents), 0
    while True:
        _, rew, term, trunc, _ = env.step(rng.integers(env.action_space.n, size=env.num_agents))
        total += rew
        steps += 1
        if (term | trunc).all():
            return float(total.mean()), steps


def test_env_task_reports_the_envs_own_metrics_equal_to_a_hand_stepped_episode(tmp_path, capsys):
    cfg = _cfg(tmp_path)
    res = evaluate(cfg, echo=False)
    rows = res["rows"]
    assert [r["seed"] for r in rows] == list(range(6))
    assert {r["mode"] for r in rows} == {"env"} and {r["map_set"] for r in rows} == {"gym_multiagent"}
    assert {r["num_agents"] for r in rows} == {3}
    insts = env_instances(cfg.env, cfg)
    for r, inst in zip(rows, insts):
        ret, steps = _reference_returns(cfg.env, inst)
        m = r["metrics"]
        assert m["return"] == pytest.approx(ret, abs=1e-6) and m["ep_length"] == m["episode_length"] == steps
    assert len({r["metrics"]["return"] for r in rows}) > 1  # seeds differ: not one episode six times
    out = tmp_path / "out"
    summary = (out / "summary.md").read_text()
    assert "`return`" in summary and "`episode_length`" in summary and "`ep_length`" not in summary
    assert (
        "Random plays env 'gym_multiagent'" in summary
        and "num_agents, scenarios, published do not apply" in summary
    )
    saved = json.loads((out / "gym_multiagent-env" / "Random.json").read_text())
    assert len(saved) == 6 and saved[0]["env_grid_search"]["map_name"] == rows[0]["map_name"]
    assert res["plots"] == [] and not list(out.glob("*/*.yaml"))  # no plot, no pogema-toolbox config
    # the same command resumes every episode; other env options are another instance, not a resume
    again = evaluate(cfg, echo=False)
    log = out / "episodes" / "gym_multiagent-env" / "Random.jsonl"
    assert again["rows"] == rows and len(log.read_text().splitlines()) == 6  # nothing re-run
    other = evaluate(_cfg(tmp_path, "env.options.length=6", "episodes=2"), echo=False)
    assert other["rows"][0]["map_name"] != rows[0]["map_name"] and len(log.read_text().splitlines()) == 8


def test_env_task_seeds_caps_and_step_limit(tmp_path):
    cfg = _cfg(tmp_path, "seeds=[7,9,11]", "max_episodes=2", "max_episode_steps=2")
    insts = env_instances(cfg.env, cfg)
    assert [i.seed for i in insts] == [7, 9] and all(i.env["max_episode_steps"] == 2 for i in insts)
    assert "plays env 'gym_multiagent' (id=envs.toy:LineWorld, num_agents=3) (eval.env): 2 seeded episodes (seeds, " \
        "capped by max_episodes=2)" in task_note(cfg, "R", cfg.env)  # fmt: skip
    metrics, _ = run_episode(make_episode_env(insts[0]), _random(), episode_seed(insts[0]))
    assert metrics["ep_length"] <= 2


def _random():
    from agents.eval.algorithms import build_algorithm

    return build_algorithm(AlgorithmConfig(kind="random")).algorithm


def test_a_planner_on_an_env_task_and_bad_episodes_are_one_line_errors(tmp_path):
    with pytest.raises(
        ValueError, match=r"^algorithm PIBT \(kind pibt\) needs a POGEMA grid.*cannot play eval.env"
    ):
        evaluate(_cfg(tmp_path, "run=[PIBT]"), echo=False)
    with pytest.raises(ValueError, match="episodes=0 must be >= 1"):
        _cfg(tmp_path, "episodes=0")


def test_env_metrics_tables_list_what_the_env_reports():
    rows = [
        {"source": "ours", "algorithm": "A", "map_set": "e", "mode": "env", "map_name": "e:1", "num_agents": 2,
         "seed": s, "metrics": {"score": float(s), "episode_length": 4.0, "ep_length": 4.0, "runtime": 0.1}}
        for s in range(6)
    ]  # fmt: skip
    assert env_metrics(rows) == ["score", "episode_length"]
    text = report(rows)
    assert "`score`: mean" in text and "2.50 [" in text  # mean of 0..5; no 'higher is better' guess
    rows2 = [{**r, "metrics": {"score": 1.0, "ep_length": 3.0}} for r in rows]
    assert env_metrics(rows2) == ["score", "ep_length"]


@pytest.fixture
def line_policy(monkeypatch):
    """An untrained srmt model of LineWorld, handed over by a stand-in for ``agents.sf.load_policy``
    (the checkpoint path of a real run is tested in test_examples.py)."""
    import agents.sf as sf
    from agents.config import load_experiment
    from srmt import build_actor_critic

    exp = load_experiment(None, LINE + ["model.hidden_size=16", "model.history_len=0"])
    env = make_env(exp.env, seed=0)
    net = build_actor_critic(exp.model, tuple(env.observation_space.shape), int(env.action_space.n))
    monkeypatch.setattr(sf, "load_policy", lambda path, device: (net, exp))
    return exp


def test_a_policy_of_a_non_grid_env_plays_its_own_env_and_enjoy_writes_a_text_trace(
    tmp_path, line_policy, capsys
):
    ckpt = tmp_path / "model.pth"
    ckpt.write_bytes(b"stand-in")
    over = ["algorithms.M.kind=srmt", f"algorithms.M.checkpoint={ckpt}", "workers=1", "progress=false",
            f"out_dir={tmp_path / 'out'}", "episodes=3"]  # fmt: skip
    # no eval.env and the default map sets (whose benchmark data is not here): M plays its training env
    res = evaluate(configs.load(EvalConfig, None, [*over, "run=[M]"]), echo=False)
    assert [r["seed"] for r in res["rows"]] == [0, 1, 2] and res["rows"][0]["map_set"] == "gym_multiagent"
    assert (
        "M plays env 'gym_multiagent' (id=envs.toy:LineWorld" in (tmp_path / "out" / "summary.md").read_text()
    )
    path = enjoy(configs.load(EvalConfig, None, [*over, "enjoy.algorithm=M", "enjoy.seed=2"]))
    out = capsys.readouterr().out
    assert path.suffix == ".txt" and "not a POGEMA grid, so there is no grid to draw" in out
    lines = path.read_text().splitlines()
    assert lines[1].startswith("step  actions  |  rewards") and lines[-1].startswith("return per agent:")
    # one line per step, 3 actions and 3 rewards each; the summed rewards are the row's return
    acts, rews = zip(*(ln.split("|") for ln in lines[2:-1]))
    assert all(len(a.split()) == 4 and len(r.split()) == 3 for a, r in zip(acts, rews))
    total = np.sum([[float(x) for x in r.split()] for r in rews], axis=0)
    assert np.allclose(total, [float(x) for x in lines[-1].split(":")[1].split()])


def test_a_policy_on_an_env_of_another_observation_shape_is_one_line(tmp_path, line_policy):
    ckpt = tmp_path / "model.pth"
    ckpt.write_bytes(b"stand-in")
    cfg = configs.load(
        EvalConfig,
        None,
        ["algorithms.M.kind=srmt", f"algorithms.M.checkpoint={ckpt}", "run=[M]", "workers=1", "progress=false",
         f"out_dir={tmp_path / 'out'}", "episodes=1", *LINE, "env.options.length=7"],
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"observes \(10,\) per agent, but this episode's env gives \(14,\)"):
        evaluate(cfg, echo=False)
