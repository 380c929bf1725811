"""A cleanrl-style PPO loop around ``srmt.ActorCritic``, no sample-factory: ``python examples/ppo_loop.py``.

The task is ``envs.toy.LineWorld`` through the ``gym_multiagent`` adapter: agents walk to their own goal
on a line and leave the episode there, so the ``active`` masks matter. The model contract in four lines:
``step`` acts on ``[G, A]`` agents; the rollout keeps the state at the chunk start; ``sequence`` replays
the chunk (BPTT through memory and shared pool); a minibatch holds whole environments, never a part of
one environment's agents (the shared pool reads across them).
"""

import argparse

import numpy as np
import torch

from envs import make_env
from envs.config import EnvConfig
from srmt import ActorCritic, ModelConfig


def train(updates=60, G=16, T=16, seed=0, core="srmt", minibatches=2, epochs=4, lr=3e-3, log=print):
    torch.manual_seed(seed)
    cfg = EnvConfig(
        name="gym_multiagent",
        options={
            "id": "envs.toy:LineWorld",
            "num_agents": 3,
            "length": 7,
            "step_cost": 0.05,
            "max_steps": 30,
        },
    )
    envs = [make_env(cfg, seed=seed * 1000 + g) for g in range(G)]
    A, n = envs[0].num_agents, int(envs[0].action_space.n)
    net = ActorCritic(
        ModelConfig(core=core, hidden_size=32, num_heads=2, history_len=2), envs[0].observation_space.shape, n
    )
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    obs = torch.as_tensor(np.stack([e.reset()[0] for e in envs]))  # (G, A, D)
    active = torch.ones(G, A, dtype=torch.bool)
    first = torch.ones(G, A, dtype=torch.bool)  # first step of an episode: the model resets that state
    state = net.initial_state(G, A)
    returns, history = [], []
    for update in range(updates):
        state0 = state.detach()  # the state at the chunk start: sequence() replays from here
        done_before = len(returns)
        buf = {k: [] for k in ("obs", "act", "logp", "val", "rew", "active", "first")}
        for _ in range(T):
            with torch.no_grad():
                out = net.step(obs, state, reset=first, active=active)
            dist = net.distribution(out.logits)
            act = dist.sample()  # (G, A)
            for k, v in zip(
                ("obs", "act", "logp", "val", "active", "first"),
                (obs, act, dist.log_prob(act), out.value, active, first),
            ):
                buf[k].append(v)
            state, rew, nxt_first = out.state, torch.zeros(G, A), torch.zeros(G, A, dtype=torch.bool)
            nxt_obs, nxt_active = obs.clone(), active.clone()
            for g, env in enumerate(envs):
                o, r, term, trunc, infos = env.step(act[g].numpy())
                rew[g] = torch.as_tensor(r)
                if (term | trunc).all():  # episode over: record it and start the next one
                    returns.append(infos[0]["metrics"]["return"])
                    o, _ = env.reset()
                    nxt_first[g] = True
                nxt_obs[g], nxt_active[g] = torch.as_tensor(o), torch.as_tensor(env.active)
            buf["rew"].append(rew)
            obs, active, first = nxt_obs, nxt_active, nxt_first
        with torch.no_grad():
            last_val = net.step(obs, state, reset=first, active=active).value
        b = {k: torch.stack(v, dim=2) for k, v in buf.items()}  # (G, A, T, ...)
        # GAE per agent; an agent's trajectory stops when it leaves (inactive next) or the episode resets
        cont = torch.cat(
            [b["active"][:, :, 1:] & ~b["first"][:, :, 1:], (active & ~first)[:, :, None]], 2
        ).float()
        nxt_val = torch.cat([b["val"][:, :, 1:], last_val[:, :, None]], 2)
        delta = b["rew"] + 0.95 * nxt_val * cont - b["val"]
        adv, gae = torch.zeros_like(delta), torch.zeros(G, A)
        for t in reversed(range(T)):
            gae = delta[:, :, t] + 0.95 * 0.9 * cont[:, :, t] * gae
            adv[:, :, t] = gae
        ret, mask = adv + b["val"], b["active"].float()  # finished agents' rows add no loss
        for _ in range(epochs):
            for envs_mb in torch.randperm(G).chunk(minibatches):  # whole environments per minibatch
                mb = {k: v[envs_mb] for k, v in b.items()}
                out = net.sequence(mb["obs"], state0[envs_mb], reset=mb["first"], active=mb["active"])
                dist = net.distribution(out.logits)
                ratio = (dist.log_prob(mb["act"]) - mb["logp"]).exp()
                a, m = adv[envs_mb], mask[envs_mb]
                a = (a - a[m > 0].mean()) / (a[m > 0].std() + 1e-8)
                pg = -torch.min(ratio * a, ratio.clamp(0.8, 1.2) * a)
                v_loss = 0.5 * (out.value - ret[envs_mb]) ** 2
                loss = ((pg + 0.5 * v_loss - 0.01 * dist.entropy()) * m).sum() / m.sum().clamp(min=1)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
        recent = float(np.mean(returns[done_before:])) if len(returns) > done_before else float("nan")
        history.append(recent)  # mean return of the episodes that ended during this update's rollout
        if update % 10 == 0 or update == updates - 1:
            log(f"update {update:3d}  episodes {len(returns):5d}  mean return {recent:.3f}")
    return history


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--updates", type=int, default=60)
    p.add_argument("--core", default="srmt")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(1)
    train(a.updates, core=a.core, seed=a.seed)
