"""Mixed agent counts (``env.num_agents_choices``, envs.mixed): padded slots against plain envs of the
real count, the vector paths, the sample-factory adapter, config errors, resume identity and evaluation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import configs
from envs import make_env, make_vector_env
from envs.config import EnvConfig
from envs.mixed import MixedCountEnv
from envs.vector import LoopVectorEnv

LIFELONG = dict(
    name="pogema",
    on_target="restart",
    collision_system="soft",
    generator="mixed",
    size=10,
    density=0.2,
    max_episode_steps=12,
    planner_path=True,
    reward="follower",
)
CHOICES = [3, 5, 8]


def _cfg(**kw) -> EnvConfig:
    return EnvConfig(**{**LIFELONG, "num_agents_choices": CHOICES, **kw})


def _reference(cfg: EnvConfig, n: int, seed: int):
    env = make_env(dataclasses.replace(cfg, num_agents_choices=[], num_agents=n))
    obs, _ = env.reset(seed=seed)
    return env, obs


@pytest.mark.parametrize(
    "kw",
    [
        {},
        dict(on_target="finish", collision_system="block_both", reward="sparse", planner_path=False, size=6),
    ],
    ids=["lifelong-guided", "finish"],
)
def test_real_agents_match_a_plain_env_of_their_count(kw):
    cfg = _cfg(**kw)
    env = make_env(cfg, seed=1)
    assert isinstance(env, MixedCountEnv) and env.num_agents == max(CHOICES)
    rng = np.random.default_rng(0)
    counts, finished_some = [], False
    obs, _ = env.reset()
    for _ in range(6):  # episodes
        n = env.episode_agents
        counts.append(n)
        ref, ref_obs = _reference(cfg, n, env.episode_seed)
        np.testing.assert_array_equal(obs[:n], ref_obs)
        assert not obs[n:].any()  # padding sees nothing and is seen by no one (ref has n agents only)
        assert env.active[:n].all() and not env.active[n:].any()
        while True:
            actions = rng.integers(0, 5, size=env.num_agents)
            obs, rew, term, trunc, infos = env.step(actions)
            r_obs, r_rew, r_term, r_trunc, r_infos = ref.step(actions[:n])
            np.testing.assert_array_equal(obs[:n], r_obs)
            assert not obs[n:].any()
            np.testing.assert_array_equal(rew[:n], r_rew)
            assert not rew[n:].any()
            np.testing.assert_array_equal(term[:n], r_term)
            np.testing.assert_array_equal(trunc[:n], r_trunc)
            assert term[n:].all()
            np.testing.assert_array_equal(env.active[:n], ref.active)
            assert not env.active[n:].any()
            finished_some |= not ref.active.all()
            if np.all(term | trunc):
                assert np.all(r_term | r_trunc)  # the episode ends exactly when the plain one does
                m, r_m = infos[0]["metrics"], r_infos[0]["metrics"]
                assert {k: m[k] for k in r_m} == r_m  # throughput / CSR ... of the real agents only
                assert m["num_agents"] == n
                break
        obs, _ = env.reset()
    assert set(counts) == set(CHOICES)  # every count is drawn (seed 1 covers all three in 6 episodes)
    if kw:
        assert finished_some  # the finish case exercises agents that leave early


def test_draws_are_reproducible_and_the_first_episode_plays_its_seed():
    def plan(env, episodes=8):
        out = [(env.reset()[0].sum(), env.episode_agents, env.episode_seed)]
        for _ in range(episodes - 1):
            env.reset()
            out.append((None, env.episode_agents, env.episode_seed))
        return out

    a, b = plan(make_env(_cfg(), seed=5)), plan(make_env(_cfg(), seed=5))
    assert a == b and a[0][2] == 5
    assert plan(make_env(_cfg(), seed=6)) != a
    env = make_env(_cfg())
    env.reset(seed=5)
    assert (env.episode_agents, env.episode_seed) == a[0][1:]  # reset(seed=s) == make_env(seed=s) + reset()


def test_padding_actions_are_ignored():
    cfg = _cfg()
    a, b = make_env(cfg, seed=1), make_env(cfg, seed=1)
    oa, _ = a.reset()
    ob, _ = b.reset()
    n = a.episode_agents
    assert n < a.num_agents  # seed 1 draws a padded episode (5 of 8)
    rng = np.random.default_rng(1)
    for _ in range(5):
        act = rng.integers(0, 5, size=a.num_agents)
        other = act.copy()
        other[n:] = rng.integers(0, 5, size=a.num_agents - n)
        ra, rb = a.step(act), b.step(other)
        for x, y in zip(ra[:4], rb[:4]):
            np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="out of range"):
        a.step(np.full(a.num_agents, 7))


@pytest.mark.parametrize("name", ["pogema", "bottleneck"])
def test_batched_and_loop_vector_paths_agree(name):
    if name == "pogema":
        cfg = _cfg(max_episode_steps=6)
    else:
        cfg = EnvConfig(name="bottleneck", num_agents_choices=[2, 4], max_episode_steps=6)
    seeds = [1, 2, 3]
    vecs = [make_vector_env(cfg, seeds, np.uint8, batched=b) for b in (True, False)]
    assert all(isinstance(v, LoopVectorEnv) for v in vecs)  # batched builders keep one count: the loop
    A = max(cfg.num_agents_choices)
    assert all(v.num_agents == A for v in vecs)
    o = [v.reset() for v in vecs]
    np.testing.assert_array_equal(o[0], o[1])
    np.testing.assert_array_equal(vecs[0].active, vecs[1].active)
    rng = np.random.default_rng(0)
    ended_total = 0
    for _ in range(15):  # two auto-resets per env
        act = rng.integers(0, 5, size=(len(seeds), A))
        r = [v.step(act) for v in vecs]
        for x, y in zip(r[0][:5], r[1][:5]):
            np.testing.assert_array_equal(x, y)
        assert r[0][5] == r[1][5]
        np.testing.assert_array_equal(vecs[0].active, vecs[1].active)
        ended_total += int(r[0][4].sum())
        for i in np.flatnonzero(r[0][4]):
            assert r[0][5][i]["num_agents"] in cfg.num_agents_choices
    assert ended_total >= len(seeds)


def test_sample_factory_adapter_masks_padding():
    from agents.sf.env import SFMultiEnv

    cfg = _cfg(max_episode_steps=4)
    sf = SFMultiEnv(make_vector_env(cfg, [3, 4]), [0, 1])
    A = max(CHOICES)
    obs, _ = sf.reset()
    real = [e.episode_agents for e in sf.envs]
    expected_active = np.concatenate([np.arange(A) < n for n in real])
    np.testing.assert_array_equal(obs["active"].astype(bool), expected_active)
    assert obs["first"].all()
    for _ in range(4):
        obs, rew, term, trunc, infos = sf.step(np.zeros(2 * A, dtype=np.int64))
        assert not rew[~expected_active].any()
    assert trunc.all() and "episode" in infos
    np.testing.assert_array_equal(infos["episode"]["num_agents"].numpy(), np.repeat(real, A))


@pytest.mark.parametrize(
    "override, match",
    [
        ("env.num_agents_choices=[4,null,8]", "num_agents_choices"),
        ("env.num_agents_choices=[4,0,8]", r"num_agents_choices\[1\]=0"),
        ("env.num_agents_choices=[-2]", r"num_agents_choices\[0\]=-2"),
        ("env.num_agents_choices=[4,4]", "twice"),
        ("env.num_agents_choices=[4,x]", "num_agents_choices"),
        ("env.num_agents_choices=[4,8] env.num_agents=6", "num_agents=6 conflicts"),
    ],
)
def test_bad_choices_are_one_line_config_errors(override, match):
    from agents.config import load_experiment

    with pytest.raises(configs.ConfigError, match=match) as e:
        load_experiment("lmapf-srmt-guided", override.split())
    assert "\n" not in str(e.value)


def test_num_agents_equal_to_the_largest_count_is_allowed():
    from agents.config import load_experiment

    exp = load_experiment("lmapf-srmt-guided", ["env.num_agents_choices=[4,8]", "env.num_agents=8"])
    assert exp.env.num_agents_choices == [4, 8]


def test_counts_beyond_the_map_fail_at_construction():
    with pytest.raises(
        ValueError, match=r"num_agents_choices: count 9: num_agents=9 is more than the 6 free"
    ):
        make_env(EnvConfig(name="pogema", map="...\n###\n...", num_agents_choices=[2, 9]))
    with pytest.raises(ValueError, match="count 20: num_agents=20 is more than the 16 cells"):
        make_env(EnvConfig(name="pogema", size=4, num_agents_choices=[2, 20]))


def test_choices_are_run_identity():
    from agents.config import load_experiment
    from agents.sf.training import identity_diff

    a = load_experiment("lmapf-srmt-guided")
    b = load_experiment("lmapf-srmt-guided", ["env.num_agents_choices=[48,64]"])
    assert any(d.startswith("env.num_agents_choices:") for d in identity_diff(a, b))
    assert identity_diff(a, load_experiment("lmapf-srmt-guided")) == []


def test_evaluation_plays_the_instance_count_without_padding():
    from agents.eval.episode import EnvsEpisodeEnv, Instance

    base = _cfg(num_agents=max(CHOICES))
    inst = Instance("t", "m", "....\n....\n....\n....", num_agents=2, seed=1, max_episode_steps=5)
    ep = EnvsEpisodeEnv(inst, base)
    assert not isinstance(ep.env, MixedCountEnv) and ep.env.num_agents == 2
    assert ep.env.observation_space.shape == make_env(base).observation_space.shape


def test_real_agent_share():
    from envs.config import real_agent_share

    assert real_agent_share([32, 48, 64]) == 0.75 and real_agent_share([]) == 1.0
    assert _cfg().real_agent_share == pytest.approx(16 / 24)


def test_runner_reports_real_agent_steps():
    """The progress line's rate and reward count real agents; the slot rate stands beside it."""
    import time
    from collections import deque

    from sample_factory.utils.attr_dict import AttrDict

    from agents.sf.runner import _SrmtRunnerMixin

    # the runners' reporting methods on their state alone (no sample-factory run, no event loop)
    runner = object.__new__(type("Reporting", (_SrmtRunnerMixin,), {}))
    now = time.time()
    runner.wall_start, runner.time_limit_s, runner.log_interval_s = now - 20, 0.0, 10.0
    runner.throughput_samples = [(now - 10 + i, 1000 * i) for i in range(11)]  # 1000 slot-steps/s
    runner.env_steps, runner.cfg = {0: 10_000}, AttrDict(train_for_env_steps=100_000)
    runner.policy_avg_stats = {"reward": [deque([0.3])], "episode/reward_per_agent": [deque([0.4])]}
    runner.real_share = 0.75
    assert runner.rate(window_s=10) == pytest.approx(750) and runner.rate(
        window_s=10, slots=True
    ) == pytest.approx(1000)
    line = runner.progress_line()
    assert "750 agent-steps/s (real agents; 1.00k slot-steps/s with padding)" in line
    assert "reward 0.400 per real agent" in line
    runner.real_share = 1.0
    line = runner.progress_line()
    assert "| 1.00k agent-steps/s |" in line and "reward 0.300" in line


def test_srmt_train_refuses_a_count_the_map_cannot_hold_in_one_line(tmp_path, capsys):
    from agents.train import main

    code = main(
        [
            "lmapf-srmt-guided",
            "device=cpu",
            "env.size=4",
            "env.num_agents_choices=[2,20]",
            f"train.train_dir={tmp_path}",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "env.num_agents_choices: count 20: num_agents=20 is more than the 16 cells of a 4x4 map" in err
    assert not any(tmp_path.iterdir())  # refused before a run folder exists
