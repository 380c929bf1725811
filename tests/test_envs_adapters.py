"""The PettingZoo Parallel and gymnasium-style multi-agent adapters (issue 12)."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import configs
from envs import GymMultiAgentEnv, PettingZooEnv, make_env
from envs.config import EnvConfig

Box = gymnasium.spaces.Box
Discrete = gymnasium.spaces.Discrete


class FakeParallel:
    """A PettingZoo-style ParallelEnv without pettingzoo: agent 'b' leaves after ``b_leaves`` steps
    (terminated, then dropped from ``agents``); 'a' and 'c' run until ``limit`` (truncated)."""

    def __init__(self, b_leaves: int = 2, limit: int = 4, obs_space=None):
        self.possible_agents = ["a", "b", "c"]
        self.agents: list[str] = []
        self.b_leaves, self.limit = b_leaves, limit
        self._space = obs_space or Box(-1, 1, (2,), np.float32)
        self.sent: list[dict] = []
        self.seeds: list[int | None] = []

    def observation_space(self, agent):
        return self._space

    def action_space(self, agent):
        return Discrete(3)

    def _obs(self, agent, t):
        return np.array([t / 10, self.possible_agents.index(agent) / 10], np.float32)

    def reset(self, seed=None, options=None):
        self.seeds.append(seed)
        self.t = 0
        self.agents = list(self.possible_agents)
        return {a: self._obs(a, 0) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        assert set(actions) == set(self.agents), (actions, self.agents)  # only live agents get actions
        self.sent.append(dict(actions))
        self.t += 1
        obs = {a: self._obs(a, self.t) for a in self.agents}
        rew = {a: 1.0 + actions[a] for a in self.agents}
        term = {a: a == "b" and self.t >= self.b_leaves for a in self.agents}
        trunc = {a: self.t >= self.limit for a in self.agents}
        infos = {a: {"note": a} for a in self.agents}
        self.agents = [a for a in self.agents if not (term[a] or trunc[a])]
        return obs, rew, term, trunc, infos

    def close(self):
        pass


def test_agent_that_leaves_early_is_masked_and_stays_terminated():
    inner = FakeParallel(b_leaves=2, limit=4)
    env = PettingZooEnv(inner, seed=7)
    assert env.num_agents == 3 and env.observation_space.shape == (2,) and env.action_space.n == 3
    obs, infos = env.reset()
    assert inner.seeds == [7] and obs.shape == (3, 2) and env.active.all()
    acts = np.array([0, 1, 2])
    _, rew, term, trunc, infos = env.step(acts)
    np.testing.assert_array_equal(rew, [1, 2, 3])
    obs, rew, term, trunc, infos = env.step(acts)  # 'b' terminates here
    np.testing.assert_array_equal(term, [False, True, False])
    assert infos[1]["note"] == "b" and list(env.active) == [True, False, True]
    obs, rew, term, trunc, infos = env.step(acts)
    assert inner.sent[-1] == {"a": 0, "c": 2}  # no action for the agent that left
    np.testing.assert_array_equal(rew, [1, 0, 3])
    np.testing.assert_array_equal(obs[1], [0, 0])  # zero observation, masked by `active`
    np.testing.assert_array_equal(term, [False, True, False])  # stays terminated
    assert "metrics" not in infos[0]
    obs, rew, term, trunc, infos = env.step(acts)  # the limit truncates 'a' and 'c'
    assert list(term) == [False, True, False] and trunc.all() and not env.active.any()
    # return per agent: a = 4 x 1, b = 2 x 2, c = 4 x 3 -> mean 20/3
    assert all(i["metrics"] == pytest.approx({"return": 20 / 3, "episode_length": 4.0}) for i in infos)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(acts)


def test_step_limit_and_seed_stream():
    inner = FakeParallel(b_leaves=100, limit=100)
    env = PettingZooEnv(inner, max_episode_steps=3, seed=1)
    env.reset()
    for _ in range(2):
        assert not env.step(np.zeros(3, int))[3].any()
    *_, trunc, infos = env.step(np.zeros(3, int))
    assert trunc.all() and infos[0]["metrics"]["episode_length"] == 3.0
    env.reset()
    env.reset(seed=1)
    env.reset()
    s = inner.seeds
    assert s[0] == 1 and s[2] == 1 and s[1] == s[3] != 1  # reset(seed=s) restarts the episode-seed stream


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_agents=2), r"env.num_agents=2 but the PettingZoo env has 3 agents \(a, b, c\)"),
        (
            dict(obs_space=gymnasium.spaces.Dict({"image": Box(0, 1, (3, 5, 5)), "vector": Box(0, 1, (4,))})),
            r"observation space Dict\(image: Box\(3, 5, 5\), vector: Box\(4,\)\) has several parts.*dict_obs=flatten",
        ),
    ],
)
def test_refusals_are_one_line(kwargs, match):
    obs_space = kwargs.pop("obs_space", None)
    with pytest.raises(ValueError, match=match) as e:
        PettingZooEnv(FakeParallel(obs_space=obs_space), **kwargs)
    assert "\n" not in str(e.value)


def test_image_plus_vector_observations_flatten_on_request():
    space = gymnasium.spaces.Dict({"image": Box(0, 1, (2, 3, 3)), "vector": Box(-1, 1, (4,))})

    class DictObs(FakeParallel):
        def _obs(self, agent, t):
            return {"image": np.full((2, 3, 3), 0.5, np.float32), "vector": np.full(4, -0.5, np.float32)}

    env = PettingZooEnv(DictObs(obs_space=space), dict_obs="flatten")
    assert env.observation_space.shape == (22,)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 22) and sorted(set(obs[0].tolist())) == [-0.5, 0.5]


def test_simple_spread_through_the_config():
    pytest.importorskip("pettingzoo.mpe")
    cfg = configs.load(
        EnvConfig,
        {"name": "pettingzoo"},
        ["options.id=mpe.simple_spread_v3", "options.N=3", "options.max_cycles=5"],
    )
    assert cfg.opts.kwargs == {"N": 3, "max_cycles": 5}
    env = make_env(cfg, seed=0)
    assert env.num_agents == 3 and env.observation_space.shape == (18,)
    obs, _ = env.reset()
    first = obs.copy()
    for _ in range(5):
        obs, rew, term, trunc, infos = env.step(np.zeros(3, int))
    assert trunc.all() and infos[0]["metrics"]["episode_length"] == 5.0
    assert np.isclose(infos[0]["metrics"]["return"], infos[2]["metrics"]["return"])
    np.testing.assert_array_equal(make_env(cfg, seed=0).reset()[0], first)  # seeded
    with pytest.raises(ValueError, match=r"unexpected keyword argument 'M'"):
        make_env(EnvConfig(name="pettingzoo", options={"id": "mpe.simple_spread_v3", "M": 3}))
    with pytest.raises(ValueError, match=r"Discrete\(n\) from 0 \(MPE envs: continuous_actions=False\)"):
        make_env(
            EnvConfig(name="pettingzoo", options={"id": "mpe.simple_spread_v3", "continuous_actions": True})
        )
    with pytest.raises(
        ValueError, match=r"env.options.id='mpe.nope_v1': cannot import 'pettingzoo.mpe.nope_v1'"
    ):
        make_env(EnvConfig(name="pettingzoo", options={"id": "mpe.nope_v1"}))
    with pytest.raises(ValueError, match=r"env.options.id is required for env 'pettingzoo'"):
        make_env(EnvConfig(name="pettingzoo"))


def test_gym_style_env_with_list_observations_and_leaving_agents():
    cfg = EnvConfig(name="gym_multiagent", options={"id": "envs.toy:LineWorld", "num_agents": 3, "length": 4})
    env = make_env(cfg, seed=3)
    assert isinstance(env, GymMultiAgentEnv) and env.num_agents == 3 and env.observation_space.shape == (8,)
    obs, _ = env.reset()
    goals = obs[:, 4:].argmax(1)
    pos = obs[:, :4].argmax(1)
    steps = 0
    while True:
        # walk each agent straight to its goal (2 = right, 0 = left)
        acts = np.where(goals > pos, 2, np.where(goals < pos, 0, 1))
        obs, rew, term, trunc, infos = env.step(acts)
        steps += 1
        pos = np.where(env.active, obs[:, :4].argmax(1), pos)
        assert ((obs.sum(1) == 0) == ~env.active).all()  # agents that left see zeros
        if (term | trunc).all():
            break
    assert term.all() and not trunc.any() and steps <= 3
    assert infos[0]["metrics"]["episode_length"] == steps and 0.9 < infos[0]["metrics"]["return"] <= 1.0


class DictGym(gymnasium.Env):
    """Dict observations keyed by agent, one shared bool for terminated."""

    def __init__(self):
        self.observation_space = gymnasium.spaces.Dict({"x": Box(0, 1, (1, 2, 2)), "y": Box(0, 1, (1, 2, 2))})
        self.action_space = gymnasium.spaces.Dict({"x": Discrete(2), "y": Discrete(2)})

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return {a: np.zeros((1, 2, 2), np.float32) for a in "xy"}, {}

    def step(self, actions):
        assert set(actions) == {"x", "y"}
        self.t += 1
        return {a: np.ones((1, 2, 2), np.float32) for a in "xy"}, {"x": 1.0, "y": 0.0}, self.t >= 2, False, {}


def test_gym_style_env_with_dict_observations_and_one_done_flag():
    env = GymMultiAgentEnv(DictGym())
    assert env.observation_space.shape == (1, 2, 2)  # an image: the conv encoder will take it
    env.reset(seed=0)
    _, rew, term, _, _ = env.step(np.array([1, 0]))
    assert not term.any() and list(rew) == [1.0, 0.0]
    _, _, term, _, infos = env.step(np.array([1, 0]))
    assert term.all() and infos[1]["metrics"] == {"return": 1.0, "episode_length": 2.0}


def test_gym_style_env_needs_per_agent_spaces():
    class Flat(DictGym):
        def __init__(self):
            self.observation_space = Box(0, 1, (4,))
            self.action_space = Discrete(2)

    with pytest.raises(ValueError, match=r"observation_space must be a Dict \(agent -> space\) or a Tuple"):
        GymMultiAgentEnv(Flat())


def test_an_id_module_in_the_working_directory_is_found_as_under_the_console_script(tmp_path, monkeypatch):
    """``env.options.id=my_mod:Factory`` with ``my_mod.py`` in the working directory: the ``srmt`` console
    script does not put that folder on sys.path, the adapter finds it as it finds plugin modules."""
    import os
    import sys

    (tmp_path / "line_factory_in_cwd.py").write_text("from envs.toy import LineWorld as Env\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd(), str(tmp_path))])
    monkeypatch.delitem(sys.modules, "line_factory_in_cwd", raising=False)
    env = make_env(
        EnvConfig(name="gym_multiagent", options={"id": "line_factory_in_cwd:Env", "num_agents": 2})
    )
    assert env.num_agents == 2 and env.observation_space.shape == (10,)
    with pytest.raises(
        ValueError, match=r"^env.options.id='no_such_mod_x:Env': plugin module 'no_such_mod_x' not found"
    ):
        make_env(EnvConfig(name="gym_multiagent", options={"id": "no_such_mod_x:Env"}))
    monkeypatch.delitem(sys.modules, "line_factory_in_cwd", raising=False)
