"""The sample-factory adapter pieces without running sample-factory's processes: the env vector, the
model's row <-> [G, A, T] plumbing against per-env step loops, and the learner's finished-agent mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sample_factory.algo.utils.env_info import extract_env_info
from sample_factory.algo.utils.make_env import make_env_func_batched
from sample_factory.algo.utils.model_sharing import ParameterServer
from sample_factory.algo.utils.shared_buffers import alloc_trajectory_tensors
from sample_factory.utils.attr_dict import AttrDict

from agents.config import load_experiment
from agents.sf.env import SFMultiEnv
from agents.sf.layout import LayoutError
from agents.sf.learner import SrmtLearner
from agents.sf.model import SFActorCritic
from agents.sf.sf_config import make_sf_config
from agents.sf.training import probe_env, register_with_sample_factory
from envs import make_env
from envs.config import EnvConfig


def _experiment(tmp_path, core="srmt", **train):
    train = {"train_dir": str(tmp_path), "rollout": 4, "batch_size": 16, "normalize_returns": False, **train}
    return load_experiment(
        {
            "name": "adapter",
            "env": {"name": "bottleneck", "max_episode_steps": 16},
            "model": {"core": core, "hidden_size": 8, "num_heads": 2, "num_filters": 4, "history_len": 2},
            "train": train,
        }
    )


def _sf_cfg(exp):
    A, obs_shape, n = probe_env(exp)
    from agents.sf.model import transport_size
    from srmt import build_actor_critic

    S = build_actor_critic(exp.model, obs_shape, n).state_size
    return make_sf_config(exp, A, transport_size(S, exp.model.state_precision))


def _model(exp, debug=False):
    cfg = _sf_cfg(exp)
    cfg.srmt_debug_layout = debug
    env = SFMultiEnv([make_env(exp.env, seed=0)], [0], debug_ids=debug)
    torch.manual_seed(0)
    model = SFActorCritic(env.observation_space, env.action_space, cfg)
    return model.double(), cfg


# ------------------------------------------------------------------ env vector


def test_env_vector_reports_one_episode_per_agent_and_metrics_as_tensors():
    cfg = EnvConfig(name="bottleneck", max_episode_steps=8)
    envs = [make_env(cfg, seed=s) for s in (1, 2)]
    vec = SFMultiEnv(envs, env_uids=[10, 11], seeds=[1, 2], debug_ids=True)
    obs, _ = vec.reset()
    assert vec.num_agents == 4 and obs["obs"].shape == (4, *envs[0].observation_space.shape)
    assert obs["first"].tolist() == [1, 1, 1, 1] and obs["env_id"].tolist() == [10, 10, 11, 11]
    assert obs["agent_id"].tolist() == [0, 1, 0, 1]
    for t in range(1, 9):
        obs, rew, term, trunc, infos = vec.step(np.zeros(4, dtype=np.int64))
        done = term | trunc
        if t < 8:
            assert not done.any() and infos == {} and obs["first"].sum() == 0
        assert obs["step"].tolist() == [t] * 4
    # the step limit ends both envs: every agent done at once, metrics per agent, envs reset
    assert done.all() and trunc.all()
    assert set(infos["episode"]) >= {"CSR", "ISR", "SoC", "episode_length"}
    assert isinstance(infos["episode"]["CSR"], torch.Tensor) and infos["episode"]["CSR"].shape == (4,)
    assert infos["episode"]["episode_length"].tolist() == [8.0] * 4
    assert obs["first"].tolist() == [1, 1, 1, 1]


def test_binary_observations_travel_as_uint8_with_the_same_values():
    cfg = EnvConfig(name="pogema", num_agents=8, size=12, on_target="restart", max_episode_steps=12)
    env, ref = make_env(cfg, seed=3), make_env(cfg, seed=3)
    assert env.binary_observations
    vec = SFMultiEnv([env], env_uids=[0], seeds=[3], debug_ids=True)
    assert vec.observation_space["obs"].dtype == np.uint8
    obs, _ = vec.reset()
    expected, _ = ref.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(12):
        assert obs["obs"].dtype == np.uint8 and obs["obs"].sum() > 0
        np.testing.assert_array_equal(obs["obs"].astype(np.float32), expected)
        actions = rng.integers(0, 5, 8)
        obs, *_ = vec.step(actions)
        expected, *_ = ref.step(actions)
        # a step-limit end resets both the same way (their episode streams are seeded alike)
        if ref._done:
            expected, _ = ref.reset()


class _NonBinaryEnv:
    """Wraps a grid env but scales its observations: an env that does not declare binary observations."""

    def __init__(self, env, scale=0.5):
        self.env, self.scale = env, scale
        self.num_agents, self.action_space = env.num_agents, env.action_space
        self.observation_space = env.observation_space

    active = property(lambda self: self.env.active)

    def reset(self, seed=None):
        obs, infos = self.env.reset(seed=seed)
        return obs * self.scale, infos

    def step(self, actions):
        obs, *rest = self.env.step(actions)
        return (obs * self.scale, *rest)


def test_uint8_observations_can_be_switched_off():
    cfg = EnvConfig(name="bottleneck", max_episode_steps=8)
    vec = SFMultiEnv([make_env(cfg, seed=0)], env_uids=[0], seeds=[0], uint8_observations=False)
    obs, _ = vec.reset()
    assert vec.observation_space["obs"].dtype == np.float32 and obs["obs"].dtype == np.float32


def test_other_observations_stay_float32_and_a_false_binary_claim_is_caught_in_debug_mode():
    cfg = EnvConfig(name="bottleneck", max_episode_steps=8)
    vec = SFMultiEnv([_NonBinaryEnv(make_env(cfg, seed=0))], env_uids=[0], seeds=[0])
    obs, _ = vec.reset()
    assert vec.observation_space["obs"].dtype == np.float32 and obs["obs"].dtype == np.float32
    assert set(np.unique(obs["obs"])) <= {0.0, 0.5} and obs["obs"].max() == 0.5
    liar = _NonBinaryEnv(make_env(cfg, seed=0))
    liar.binary_observations = True
    vec = SFMultiEnv([liar], env_uids=[0], seeds=[0], debug_ids=True)
    with pytest.raises(ValueError, match="binary_observations"):
        vec.reset()


def test_finished_agent_is_inactive_earns_nothing_and_is_not_done_until_the_env_ends():
    # agent 0 walks a shortest path to its goal while agent 1 waits: agent 0 finishes first
    cfg = EnvConfig(name="bottleneck", options={"corridor_lengths": [3]}, max_episode_steps=64)
    env = make_env(cfg, seed=0)
    # a layout where agent 1 (which never moves) does not stand on agent 0's goal
    seed = next(
        s for s in range(50) if env.reset(seed=s) and not (env.agents_xy()[1] == env.targets_xy()[0]).all()
    )
    vec = SFMultiEnv([env], env_uids=[0], seeds=[seed])
    vec.reset()
    finished_at = None
    for t in range(64):
        obs, rew, term, trunc, _ = vec.step(np.array([_greedy_action(env, 0), 0]))
        done = term | trunc
        if finished_at is None and obs["active"][0] == 0:
            finished_at = t
            assert rew[0] > 0 and not done.any()  # reward on arrival, but no episode end for anyone
        elif finished_at is not None and not done.any():
            assert rew[0] == 0 and obs["active"].tolist() == [0, 1]
        if done.any():
            break
    assert finished_at is not None and finished_at < 20
    assert done.all() and trunc.all()  # agent 1 never moved: the step limit ends the env for both


def _greedy_action(env, agent: int) -> int:
    """A pogema action (0 wait, 1 up, 2 down, 3 left, 4 right) that shortens agent's distance to its goal."""
    from envs.rewards import bfs_distances

    free = ~env.obstacles
    pos, goal = env.agents_xy()[agent], env.targets_xy()[agent]
    dist = bfs_distances(free, (int(goal[0]), int(goal[1])))
    for action, (dr, dc) in enumerate([(-1, 0), (1, 0), (0, -1), (0, 1)], start=1):
        r, c = pos[0] + dr, pos[1] + dc
        if 0 <= r < free.shape[0] and 0 <= c < free.shape[1] and 0 <= dist[r, c] < dist[pos[0], pos[1]]:
            return action
    return 0


# ------------------------------------------------------------------ model plumbing vs per-env loops


def _rows(model, G, T, seed=0):
    """Random learner rows in sample-factory's order (trajectory g*A+a, row traj*T+t) plus the [G, A, T] tensors."""
    g = torch.Generator().manual_seed(seed)
    A, S = model.num_agents, model.net.state_size
    obs = torch.randn(G, A, T, *model.obs_shape, generator=g, dtype=torch.float64)
    first = torch.rand(G, A, T, generator=g) < 0.15
    first[:, :, 0] |= torch.rand(G, 1, generator=g) < 0.5
    first = first.any(1, keepdim=True).expand(G, A, T).clone()  # an env starts an episode for all agents
    active = torch.rand(G, A, T, generator=g) > 0.2
    state = torch.randn(G, A, T, S, generator=g, dtype=torch.float64)
    flat = {}
    for name, x in dict(obs=obs, first=first.to(torch.uint8), active=active.to(torch.uint8)).items():
        flat[name] = x.reshape(G * A * T, *x.shape[3:])  # (g, a, t) -> row (g*A + a)*T + t
    return flat, state.reshape(G * A * T, S), obs, first, active, state


@pytest.mark.parametrize("core", ["srmt", "gru", "attention"])
def test_inference_rows_equal_one_step_per_env(core, tmp_path):
    model, _ = _model(_experiment(tmp_path, core))
    G, A = 3, model.num_agents
    flat, rnn, obs, first, active, state = _rows(model, G, 1)
    with torch.no_grad():
        out = model(flat, rnn)
        for g in range(G):
            ref = model.net.step(
                obs[g : g + 1, :, 0], state[g : g + 1, :, 0], first[g : g + 1, :, 0], active[g : g + 1, :, 0]
            )
            rows = slice(g * A, (g + 1) * A)
            torch.testing.assert_close(out["action_logits"][rows], ref.logits[0])
            torch.testing.assert_close(out["values"][rows], ref.value[0])
            torch.testing.assert_close(out["new_rnn_states"][rows], ref.state[0])
    assert out["actions"].shape == (G * A,) and out["log_prob_actions"].shape == (G * A,)


@pytest.mark.parametrize(
    "core,T,R", [("srmt", 4, 4), ("srmt", 6, 2), ("rmt", 4, 2), ("gru", 4, 4), ("none", 4, 4)]
)
def test_learner_rows_equal_a_step_loop_per_env(core, T, R, tmp_path):
    model, cfg = _model(_experiment(tmp_path, core, rollout=T, recurrence=R, batch_size=2 * T))
    G, A = 2, model.num_agents
    flat, rnn, obs, first, active, state = _rows(model, G, T, seed=1)
    # sample-factory's non-recurrent learner path: head on all rows, core with rnn_states[::recurrence]
    head = model.forward_head(flat)
    core_out, _ = model.forward_core(head, rnn[::R])
    result = model.forward_tail(core_out, values_only=False, sample_actions=False)
    logits = result["action_logits"].reshape(G, A, T, -1)
    values = result["values"].reshape(G, A, T)
    with torch.no_grad():
        for g in range(G):
            for t in range(T):
                if t % R == 0:  # each BPTT chunk starts from the state stored at its first step
                    s = state[g : g + 1, :, t]
                ref = model.net.step(obs[g : g + 1, :, t], s, first[g : g + 1, :, t], active[g : g + 1, :, t])
                s = ref.state
                torch.testing.assert_close(logits[g, :, t], ref.logits[0])
                torch.testing.assert_close(values[g, :, t], ref.value[0])
    dist = model.action_distribution()
    assert dist.log_prob(torch.zeros(G * A * T, 1, dtype=torch.long)).shape == (G * A * T,)


def test_gradients_flow_through_shared_memory_within_an_env_only(tmp_path):
    model, _ = _model(_experiment(tmp_path, "srmt", rollout=4, batch_size=8))
    G, A, T = 2, model.num_agents, 4
    flat, rnn, *_ = _rows(model, G, T, seed=2)
    flat["first"].zero_()
    flat["active"].fill_(1)
    flat["obs"].requires_grad_(True)
    core_out, _ = model.forward_core(model.forward_head(flat), rnn[::T])
    last_row_agent1_env0 = (0 * A + 1) * T + (T - 1)
    core_out[last_row_agent1_env0].sum().backward()
    grad = flat["obs"].grad.reshape(G, A, T, -1).abs().sum(-1)
    assert grad[0, 0, 0] > 0  # agent 0's first observation reaches agent 1's last step via the memories
    assert grad[0, 1, 0] > 0  # and agent 1's own first observation, through its memory
    assert torch.all(grad[1] == 0)  # nothing leaks from another environment


def test_rmt_does_not_share_between_agents(tmp_path):
    model, _ = _model(_experiment(tmp_path, "rmt", rollout=4, batch_size=8))
    G, A, T = 1, model.num_agents, 4
    flat, rnn, *_ = _rows(model, G, T, seed=3)
    flat["first"].zero_()
    flat["active"].fill_(1)
    flat["obs"].requires_grad_(True)
    core_out, _ = model.forward_core(model.forward_head(flat), rnn[::T])
    core_out[1 * T + T - 1].sum().backward()
    grad = flat["obs"].grad.reshape(G, A, T, -1).abs().sum(-1)
    assert grad[0, 1, 0] > 0 and torch.all(grad[0, 0] == 0)


def test_debug_layout_rejects_rows_out_of_env_order(tmp_path):
    model, _ = _model(_experiment(tmp_path, "srmt", rollout=4, batch_size=8), debug=True)
    G, A, T = 2, model.num_agents, 4
    flat, rnn, *_ = _rows(model, G, T)
    env_id = torch.arange(G).view(G, 1, 1).expand(G, A, T).reshape(-1)
    agent_id = torch.arange(A).view(1, A, 1).expand(G, A, T).reshape(-1)
    step = torch.arange(T).view(1, 1, T).expand(G, A, T).reshape(-1)
    good = dict(flat, env_id=env_id, agent_id=agent_id, step=step)
    model.forward_head(good)
    # sample-factory with shuffled minibatches would hand over rows like these
    perm = torch.randperm(G * A * T, generator=torch.Generator().manual_seed(0))
    with pytest.raises(LayoutError):
        model.forward_head({k: v[perm] for k, v in good.items()})
    with pytest.raises(LayoutError, match="inference/bootstrap rows"):
        model({k: v[perm][: G * A] for k, v in good.items()}, rnn[: G * A])


# ------------------------------------------------------------------ learner: finished agents are masked out


def _learner(exp):
    cfg = _sf_cfg(exp)
    register_with_sample_factory()
    env = make_env_func_batched(cfg, env_config=None)
    env_info = extract_env_info(env, cfg)
    server = ParameterServer(0, torch.zeros(1, dtype=torch.int32), serial_mode=True)
    learner = SrmtLearner(cfg, env_info, server.policy_versions, 0, server)
    learner.init()
    return learner, env_info


def _batch(learner, env_info, seed):
    cfg = learner.cfg
    num_traj, T = cfg.batch_size // cfg.rollout, cfg.rollout
    b = alloc_trajectory_tensors(env_info, num_traj, T, cfg.rnn_size, torch.device("cpu"), False)
    g = torch.Generator().manual_seed(seed)
    b["obs"]["obs"][:] = torch.randn(b["obs"]["obs"].shape, generator=g)
    b["obs"]["first"][:] = 0
    b["obs"]["active"][:] = 1
    b["obs"]["active"][1::2, T // 2 :] = 0  # agent 1 of every env finishes halfway
    b["rnn_states"][:] = 0
    b["actions"][:] = torch.randint(0, 5, b["actions"].shape, generator=g).float()
    b["action_logits"][:] = 0
    b["log_prob_actions"][:] = float(np.log(1 / 5))
    b["values"][:] = 0
    b["policy_version"][:] = 0
    b["rewards"][:] = torch.rand(b["rewards"].shape, generator=g)
    b["dones"][:] = False
    b["time_outs"][:] = False
    b["policy_id"][:] = 0
    return b


def _loss_and_grads(learner, batch):
    buff, size, num_invalids = learner._prepare_batch(batch)
    mb = AttrDict(buff)
    _, policy_loss, exploration_loss, _, _, value_loss, _ = learner._calculate_losses(mb, num_invalids)
    loss = policy_loss + exploration_loss + value_loss
    learner.actor_critic.zero_grad()
    loss.backward()
    grads = [p.grad.clone() for p in learner.actor_critic.parameters() if p.grad is not None]
    return buff, num_invalids, loss.detach(), grads


def test_finished_agents_add_no_loss_and_no_gradient(tmp_path):
    learner, env_info = _learner(_experiment(tmp_path, "srmt", rollout=4, batch_size=16))
    a = _batch(learner, env_info, seed=0)
    b = _batch(learner, env_info, seed=0)
    T = learner.cfg.rollout
    # change everything the finished agents 'did' after finishing: rewards, actions, observations
    b["rewards"][1::2, T // 2 :] += 100.0
    b["actions"][1::2, T // 2 :] = (b["actions"][1::2, T // 2 :] + 1) % 5
    b["obs"]["obs"][1::2, T // 2 : T] = 1 - b["obs"]["obs"][1::2, T // 2 : T]  # flip the 0/1 cells
    buff_a, invalid_a, loss_a, grads_a = _loss_and_grads(learner, a)
    buff_b, invalid_b, loss_b, grads_b = _loss_and_grads(learner, b)
    assert invalid_a == invalid_b == (16 // T // 2) * (T // 2)
    valids = buff_a["valids"].reshape(-1, T)
    assert valids[0::2].all() and valids[1::2, : T // 2].all() and not valids[1::2, T // 2 :].any()
    torch.testing.assert_close(loss_a, loss_b)
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(ga, gb)
    assert any(bool(g.abs().sum() > 0) for g in grads_a)
