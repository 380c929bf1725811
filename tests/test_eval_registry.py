"""register_algorithm: evaluation algorithms by kind, built-in and from plugins (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

import configs
from agents import evaluate as eval_cmd
from agents.eval.algorithms import (
    algorithm_spec,
    build_algorithm,
    register_algorithm,
    registered_algorithms,
    unregister_algorithm,
)
from agents.eval.results import read_results
from agents.eval_config import AlgorithmConfig, EvalConfig

PLANNER = """
from dataclasses import dataclass

import numpy as np

from agents.eval.algorithms import register_algorithm
from agents.planners.pibt import PIBT


@dataclass
class LazyOptions:
    wait_every: int = 2
    '''Wait (action 0) on every n-th step instead of following PIBT.'''


class LazyPIBT:
    def __init__(self, wait_every):
        self.inner, self.wait_every = PIBT(), wait_every

    def reset(self, state, seed):
        self.inner.reset(state, seed)

    def act(self, state):
        actions = np.asarray(self.inner.act(state), dtype=np.int64)
        return np.zeros_like(actions) if state.step % self.wait_every == 0 else actions


register_algorithm("lazy_pibt", lambda cfg: LazyPIBT(cfg.opts.wait_every), LazyOptions)
"""


def test_builtin_kinds_are_registered_with_their_backends():
    assert {"astar", "pibt", "follower_lite", "random", "srmt", "rate"} <= set(registered_algorithms())
    assert algorithm_spec("pibt").backend == "pogema" and algorithm_spec("srmt").backend == "envs"
    assert algorithm_spec("srmt").needs_checkpoint and not algorithm_spec("astar").needs_checkpoint
    assert build_algorithm(AlgorithmConfig(kind="random")).backend == "pogema"


def test_planner_kinds_of_the_planner_work_are_registered_too():
    from agents.eval_config import BUILTIN_KINDS
    from agents.planners.astar import PogemaAStar
    from agents.planners.pibt import PIBT
    from agents.planners.windowed import WindowedPIBT

    assert set(BUILTIN_KINDS) <= set(registered_algorithms())
    assert isinstance(build_algorithm(AlgorithmConfig(kind="astar_pogema")).algorithm, PogemaAStar)
    assert isinstance(build_algorithm(AlgorithmConfig(kind="wpibt")).algorithm, WindowedPIBT)
    paper = build_algorithm(AlgorithmConfig(kind="pibt_paper")).algorithm
    assert isinstance(paper, PIBT) and (paper.pull, paper.stuck_steps) == (False, 0)
    default = build_algorithm(AlgorithmConfig(kind="pibt")).algorithm
    assert (default.pull, default.stuck_steps) == (True, 16)
    for kind in ("astar_pogema", "pibt_paper", "wpibt"):
        assert algorithm_spec(kind).backend == "pogema" and not algorithm_spec(kind).needs_checkpoint


def test_unknown_kind_and_bad_options_are_one_line_errors():
    with pytest.raises(
        ValueError, match=r"unknown algorithm kind 'cbs'; registered: astar, .*pibt.*plugin"
    ) as e:
        AlgorithmConfig(kind="cbs")
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match=r"algorithm kind 'pibt' takes no options; got options.depth"):
        AlgorithmConfig(kind="pibt", options={"depth": 3})
    with pytest.raises(ValueError, match=r"algorithm kind 'srmt' needs a checkpoint path"):
        AlgorithmConfig(kind="srmt")
    with pytest.raises(configs.ConfigError, match=r"unknown algorithm kind 'cbs'"):
        configs.load(EvalConfig, {"algorithms": {"X": {"kind": "cbs"}}})


def test_register_in_code_with_typed_options():
    from dataclasses import dataclass

    from agents.planners.random_agent import RandomAgent

    @dataclass
    class Opts:
        temperature: float = 1.0

    register_algorithm("test_random", lambda cfg: RandomAgent(), Opts, backend="envs")
    try:
        cfg = AlgorithmConfig(kind="test_random", options={"temperature": 0.5})
        assert cfg.opts.temperature == 0.5
        assert build_algorithm(cfg).backend == "envs"
        with pytest.raises(
            ValueError, match=r"options.temp is not an option of algorithm kind 'test_random'"
        ):
            AlgorithmConfig(kind="test_random", options={"temp": 1})
        with pytest.raises(ValueError, match=r"algorithm 'test_random' is already registered"):
            register_algorithm("test_random", lambda cfg: RandomAgent())
    finally:
        unregister_algorithm("test_random")


def test_plugin_planner_runs_in_srmt_eval_worker_processes(tmp_path, capsys):
    plugin = tmp_path / "lazy_plugin.py"
    plugin.write_text(PLANNER)
    out = tmp_path / "ev"
    args = [
        "eval/smoke",
        f"out_dir={out}",
        "algorithms.Lazy.kind=lazy_pibt",
        f"algorithms.Lazy.plugin={plugin}",
        "algorithms.Lazy.options.wait_every=2",
        "run=[Lazy,PIBT]",
        "max_episodes=2",
        "workers=2",  # spawned workers import the plugin from the algorithm's config
        "plots=false",
        "progress=false",
    ]
    assert eval_cmd.main(args) == 0, capsys.readouterr().err
    rows = read_results(out)
    lazy = [r["metrics"]["avg_throughput"] for r in rows if r["algorithm"] == "Lazy"]
    pibt = [r["metrics"]["avg_throughput"] for r in rows if r["algorithm"] == "PIBT"]
    assert len(lazy) == len(pibt) == 2
    assert np.mean(lazy) < np.mean(pibt)  # waiting every other step costs throughput
