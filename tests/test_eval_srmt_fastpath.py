"""SRMT's evaluation fast path (issue 9 item 4, decision time): ``SrmtPolicy.act`` under
``inference_mode`` with reset/active flags only where they matter plays exactly the actions of the
flags-every-step reference, the planner of the ``planner_path`` channel is counted in ``runtime`` (as
the POGEMA benchmark counts Follower's), and the allocator setting of the eval workers stops the
per-step page faults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.eval.algorithms import SrmtPolicy
from agents.eval.api import _map_sets, load_eval_config
from agents.eval.benchmark import build_instances
from agents.eval.episode import EnvsEpisodeEnv, Instance, make_episode_env, run_episode
from agents.eval.runner import episode_seed
from agents.eval_config import SRMT_LIFELONG_CHECKPOINT

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = ROOT.parent / "shared" / "data" / "pogema-benchmark"


class ReferencePolicy(SrmtPolicy):
    """The act() before the fast path: reset and active flags built and passed every step, no_grad."""

    def act(self, state):
        A = state.num_agents
        with torch.no_grad():
            obs = torch.as_tensor(np.asarray(state.observations), device=self.device)[None]
            reset = torch.full((1, A), self.first, dtype=torch.bool, device=self.device)
            active = torch.as_tensor(state.active, device=self.device)[None]
            logits, _, self.state = self.model.step(obs, self.state, reset, active, None)
            logits = logits.reshape(A, -1)
            if self.action_selection == "argmax":
                actions = logits.argmax(-1)
            else:
                probs = torch.softmax(logits.float(), -1)
                actions = torch.multinomial(probs, 1, generator=self.generator)[:, 0]
        self.first = False
        return actions.cpu().numpy().astype(np.int64)


class Recorder:
    def __init__(self, policy):
        self.policy, self.actions, self.inactive_steps = policy, [], 0

    def reset(self, state, seed):
        self.actions = []
        self.policy.reset(state, seed)

    def act(self, state):
        self.inactive_steps += int(not np.all(state.active))
        actions = self.policy.act(state)
        self.actions.append(actions)
        return actions


def _play(policy, instance):
    rec = Recorder(policy)
    env = make_episode_env(instance, "envs", policy.env_config)
    metrics, _ = run_episode(env, rec, episode_seed(instance))
    metrics.pop("runtime")
    return np.stack(rec.actions), metrics, rec.inactive_steps


def _tiny_instances():
    cfg = load_eval_config("eval/smoke", ["run=[SRMT]"])
    lifelong = build_instances(_map_sets(cfg)[0], cfg)
    # 'finish': agents leave the grid at their goals, so the active flags are passed on later steps
    finish = [
        Instance(
            map_set="t",
            map_name=i.map_name,
            map=i.map,
            num_agents=4,
            seed=s,
            on_target="finish",
            max_episode_steps=48,
        )
        for i in lifelong[:1]
        for s in (0, 1)
    ]
    return lifelong[:4] + finish


@pytest.mark.parametrize("selection", ["sample", "argmax"])
def test_fast_act_plays_the_reference_actions(selection):
    fast = SrmtPolicy(SRMT_LIFELONG_CHECKPOINT, "cpu", selection)
    ref = ReferencePolicy(SRMT_LIFELONG_CHECKPOINT, "cpu", selection)
    inactive = 0
    for inst in _tiny_instances():
        a_fast, m_fast, n_inactive = _play(fast, inst)
        a_ref, m_ref, _ = _play(ref, inst)
        assert np.array_equal(a_fast, a_ref), (inst.map_name, inst.on_target, inst.seed)
        assert m_fast == m_ref
        inactive += n_inactive
    assert inactive > 0  # the finish episodes did exercise the active flags


@pytest.mark.skipif(not BENCHMARK.is_dir(), reason="needs the POGEMA benchmark data in ../shared/data")
def test_fast_act_matches_the_reference_at_64_agents_on_a_benchmark_map():
    cfg = load_eval_config(
        "eval/lifelong",
        ["run=[SRMT]", "map_sets=[01-random]", "num_agents=[64]", "max_maps=1", "max_episode_steps=24"],
    )
    inst = build_instances(_map_sets(cfg)[0], cfg)[0]
    a_fast, m_fast, _ = _play(SrmtPolicy(SRMT_LIFELONG_CHECKPOINT, "cpu"), inst)
    a_ref, m_ref, _ = _play(ReferencePolicy(SRMT_LIFELONG_CHECKPOINT, "cpu"), inst)
    assert a_fast.shape == (24, 64) and np.array_equal(a_fast, a_ref)
    assert m_fast == m_ref


class Still:
    """Stands still, in no time: what remains of ``runtime`` is the env's planning."""

    def reset(self, state, seed):
        pass

    def act(self, state):
        return np.zeros(state.num_agents, dtype=np.int64)


def test_runtime_counts_the_planner_of_the_path_channel(monkeypatch):
    import types

    import envs.grid_env as grid_env

    ticks = iter(range(10**6))  # the env's clock: every reading one second later, so each plan costs 1 s
    monkeypatch.setattr(grid_env, "time", types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    policy = SrmtPolicy(SRMT_LIFELONG_CHECKPOINT, "cpu")
    assert policy.env_config.planner_path
    inst = _tiny_instances()[0]
    env = make_episode_env(inst, "envs", policy.env_config)
    metrics, _ = run_episode(env, Still(), 0)
    assert env.algorithm_seconds() == inst.max_episode_steps + 1  # the reset's plan and one per step
    assert metrics["runtime"] >= inst.max_episode_steps + 1
    env.reset()  # a fresh episode counts from zero
    assert env.algorithm_seconds() == 1.0
    from dataclasses import replace

    # without the path channel nothing is planned into the runtime (the follower reward still plans)
    plain = EnvsEpisodeEnv(inst, replace(policy.env_config, planner_path=False))
    metrics, _ = run_episode(plain, Still(), 0)
    assert plain.algorithm_seconds() == 0.0 and metrics["runtime"] < 1.0


_FAULTS = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from agents.eval.runner import keep_freed_memory
    assert keep_freed_memory()
np.ones(1 << 20).sum()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):  # what a policy step does: the same ~MB activations allocated and freed again
    a = np.ones(1 << 19, dtype=np.float32)
    b = np.ones(1 << 19, dtype=np.float32)
    del a, b
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keep_freed_memory_stops_the_page_faults_of_repeated_allocations():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def faults(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", _FAULTS, mode], env=env, capture_output=True, text=True, check=True
        )
        return int(out.stdout.split()[-1])

    kept = faults("keep")
    assert kept < 50  # glibc's defaults fault ~1000 times here (2 MB blocks trimmed and re-faulted)
    assert kept < faults("default")


def test_a_guided_policy_compiles_the_planner_when_it_is_built():
    from envs import compiled

    if not compiled.HAVE_NUMBA:
        pytest.skip("numba not installed: the planner runs as numpy")
    code = (
        "from envs import compiled as k\n"
        "assert not k.plan_step.signatures\n"
        "from agents.eval.algorithms import SrmtPolicy\n"
        f"SrmtPolicy({SRMT_LIFELONG_CHECKPOINT!r}, 'cpu')\n"
        "names = ('plan_step', 'bfs_sums', 'padded_goal_fields')\n"
        "print([n for n in names if not getattr(k, n).signatures])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"  # every kernel of a step is compiled before episode 1


def test_temperature_one_is_the_default_and_a_low_temperature_is_argmax():
    inst = _tiny_instances()[0]
    a_default, _, _ = _play(SrmtPolicy(SRMT_LIFELONG_CHECKPOINT, "cpu"), inst)
    a_one, _, _ = _play(SrmtPolicy(SRMT_LIFELONG_CHECKPOINT, "cpu", "sample", 1.0), inst)
    a_cold, _, _ = _play(SrmtPolicy(SRMT_LIFELONG_CHECKPOINT, "cpu", "sample", 1e-4), inst)
    a_argmax, _, _ = _play(SrmtPolicy(SRMT_LIFELONG_CHECKPOINT, "cpu", "argmax"), inst)
    a_hot, _, _ = _play(SrmtPolicy(SRMT_LIFELONG_CHECKPOINT, "cpu", "sample", 5.0), inst)
    assert np.array_equal(a_default, a_one)
    assert np.array_equal(a_cold, a_argmax)  # softmax(logits / 1e-4) puts all mass on the largest logit
    assert not np.array_equal(a_hot, a_one)  # the option does change the sampled actions


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), 1e-45, 9.9e-4])
def test_a_bad_temperature_is_one_line(bad):
    from agents.eval_config import AlgorithmConfig

    # 1e-45 overflowed softmax(logits / T) to NaN probabilities mid-episode (a traceback in multinomial)
    with pytest.raises(ValueError, match=r"temperature=.* is invalid; allowed: a number >= 0.001") as e:
        AlgorithmConfig(kind="srmt", checkpoint=SRMT_LIFELONG_CHECKPOINT, options={"temperature": bad})
    assert "\n" not in str(e.value)
    ok = AlgorithmConfig(kind="srmt", checkpoint=SRMT_LIFELONG_CHECKPOINT, options={"temperature": 1e-3})
    assert ok.opts.temperature == 1e-3  # the bound itself is allowed


def test_a_temperature_with_argmax_is_one_line():
    import configs
    from agents.eval_config import AlgorithmConfig, EvalConfig

    with pytest.raises(
        ValueError, match=r"options.temperature=0.5 has no effect with action_selection='argmax'"
    ) as e:
        AlgorithmConfig(
            "srmt", SRMT_LIFELONG_CHECKPOINT, action_selection="argmax", options={"temperature": 0.5}
        )
    assert "\n" not in str(e.value)
    overrides = ["algorithms.S.kind=srmt", f"algorithms.S.checkpoint={SRMT_LIFELONG_CHECKPOINT}"]
    overrides += ["algorithms.S.action_selection=argmax", "algorithms.S.options.temperature=2"]
    with pytest.raises(configs.ConfigError, match=r"options.temperature=2.0 has no effect") as e:
        configs.load(EvalConfig, None, overrides)
    assert "\n" not in str(e.value)
    # temperature 1 (the default, or spelled out) is fine with argmax
    AlgorithmConfig("srmt", SRMT_LIFELONG_CHECKPOINT, action_selection="argmax", options={"temperature": 1})


def test_pool_own_plays_the_control_step_and_differs_from_the_shared_pool():
    from srmt.controls import control_step

    class OwnReference(ReferencePolicy):
        """The reference act() (flags every step) with control_step(pool='own') for the model's step,
        sampling from softmax(logits / T) with the policy's seeded generator."""

        def act(self, state):
            A = state.num_agents
            with torch.no_grad():
                obs = torch.as_tensor(np.asarray(state.observations), device=self.device)[None]
                reset = torch.full((1, A), self.first, dtype=torch.bool, device=self.device)
                active = torch.as_tensor(state.active, device=self.device)[None]
                logits, _, self.state = control_step(self.model, obs, self.state, reset, active, pool="own")
                probs = torch.softmax(logits.reshape(A, -1).float() / self.temperature, -1)
                actions = torch.multinomial(probs, 1, generator=self.generator)[:, 0]
            self.first = False
            return actions.cpu().numpy().astype(np.int64)

    # argmax actions of these small episodes happen not to depend on the pool, so compare seeded draws
    # from a flat distribution (T = 5), where every logit matters: the same draws from the same
    # distribution give the same actions, and the shared pool's distribution gives other actions
    # distribution give the same actions, and the shared pool's distribution gives other actions. Whether
    # the draws of one small episode differ depends on the weights (with the 436M ones the 2-agent episode
    # draws the same actions under both pools), so the last check asks for a difference in any episode.
    instances = _tiny_instances()
    differs = []
    for inst in (instances[0], instances[-1]):  # 2 agents lifelong; 4 agents finishing (active flags)
        own, _, _ = _play(SrmtPolicy(SRMT_LIFELONG_CHECKPOINT, "cpu", "sample", 5.0, "own"), inst)
        ref, _, _ = _play(OwnReference(SRMT_LIFELONG_CHECKPOINT, "cpu", "sample", 5.0), inst)
        shared, _, _ = _play(SrmtPolicy(SRMT_LIFELONG_CHECKPOINT, "cpu", "sample", 5.0), inst)
        assert np.array_equal(own, ref), (inst.map_name, inst.on_target)
        differs.append(not np.array_equal(own, shared))
    assert any(differs), "pool=own drew the shared pool's actions in every episode"


def test_a_bad_pool_is_one_line():
    from agents.eval_config import AlgorithmConfig

    with pytest.raises(ValueError, match=r"pool='other' is invalid; allowed: shared, own") as e:
        AlgorithmConfig(kind="srmt", checkpoint=SRMT_LIFELONG_CHECKPOINT, options={"pool": "other"})
    assert "\n" not in str(e.value)
