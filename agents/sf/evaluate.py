"""Playing episodes with a trained (or untrained) srmt policy, and the Bottleneck corridor evaluation.

Several env instances run in lockstep and are batched through the model as ``[G, A]``; each env plays
its own episodes with reproducible seeds, so results do not depend on ``num_envs``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.config import ExperimentConfig
from envs.bottleneck import with_length
from srmt import ActorCritic, build_actor_critic

PolicySource = str | Path | tuple[ActorCritic, ExperimentConfig]


class EpisodeRunner:
    """Plays episodes of one env config with one policy; ``run(n)`` returns each episode's metrics."""

    def __init__(
        self,
        net: ActorCritic,
        env_cfg: Any,
        *,
        num_envs: int = 8,
        seed: int = 0,
        deterministic: bool = False,
        device: str | torch.device = "cpu",
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs} must be >= 1")
        self.net = net.to(device).eval()
        self.env_cfg = env_cfg
        self.num_envs = num_envs
        self.seed = seed
        self.deterministic = deterministic
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def episode_seed(self, episode: int) -> int:
        return (self.seed * 1_000_003 + episode) % (2**31 - 1)

    @torch.no_grad()
    def run(self, episodes: int) -> list[dict[str, float]]:
        from envs import make_env

        G = min(self.num_envs, episodes)
        envs = [make_env(self.env_cfg, seed=self.episode_seed(i)) for i in range(G)]
        A = envs[0].num_agents
        obs = np.stack([e.reset(seed=self.episode_seed(i))[0] for i, e in enumerate(envs)])  # (G, A, C, H, W)
        active = np.stack([e.active for e in envs])  # (G, A)
        reset = np.ones((G, A), dtype=bool)
        running = np.ones(G, dtype=bool)
        episode_of = list(range(G))  # which episode each env is playing
        next_episode = G
        state = self.net.initial_state(G, A, device=self.device)
        results: dict[int, dict[str, float]] = {}
        while running.any():
            out = self.net.step(
                torch.as_tensor(obs, device=self.device),
                state,
                reset=torch.as_tensor(reset, device=self.device),
                active=torch.as_tensor(active & running[:, None], device=self.device),
            )
            state = out.state
            actions = self._act(out.logits).cpu().numpy()  # (G, A)
            reset[:] = False
            for g in np.flatnonzero(running):
                o, _, term, trunc, infos = envs[g].step(actions[g])
                if np.all(np.asarray(term) | np.asarray(trunc)):
                    results[episode_of[g]] = {k: float(v) for k, v in infos[0]["metrics"].items()}
                    if next_episode < episodes:
                        episode_of[g] = next_episode
                        o, _ = envs[g].reset(seed=self.episode_seed(next_episode))
                        next_episode += 1
                        reset[g] = True
                    else:
                        running[g] = False
                obs[g] = o
                active[g] = envs[g].active
        for e in envs:
            e.close()
        return [results[i] for i in range(episodes)]

    def _act(self, logits: torch.Tensor) -> torch.Tensor:
        if self.deterministic:
            return logits.argmax(-1)
        probs = torch.softmax(logits.float(), dim=-1)
        flat = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=self.generator)
        return flat.reshape(probs.shape[:-1])


def run_episodes(
    net: ActorCritic,
    env_cfg: Any,
    episodes: int,
    *,
    num_envs: int = 8,
    seed: int = 0,
    deterministic: bool = False,
    device: str | torch.device = "cpu",
) -> list[dict[str, float]]:
    """Metrics of ``episodes`` episodes of ``env_cfg`` played by ``net`` (see :class:`EpisodeRunner`)."""
    runner = EpisodeRunner(
        net, env_cfg, num_envs=num_envs, seed=seed, deterministic=deterministic, device=device
    )
    return runner.run(episodes)


def untrained_policy(exp: ExperimentConfig, obs_shape: Sequence[int], num_actions: int) -> ActorCritic:
    """A freshly initialised model of ``exp.model`` (seeded by ``exp.seed``): the 'before training' row."""
    torch.manual_seed(exp.seed)
    return build_actor_critic(exp.model, tuple(obs_shape), num_actions)


def _resolve_policy(policy: PolicySource, device: str | torch.device) -> tuple[ActorCritic, ExperimentConfig]:
    if isinstance(policy, tuple):
        return policy
    from agents.sf.checkpoint import load_policy

    return load_policy(policy, device)


def evaluate_bottleneck(
    policy: PolicySource,
    lengths: Sequence[int],
    episodes: int = 10,
    device: str | torch.device = "cpu",
    *,
    seed: int = 12345,
    num_envs: int = 8,
    deterministic: bool = False,
) -> list[dict[str, float]]:
    """CSR / ISR per test-corridor length L: one row ``{L, CSR, ISR, episodes, steps}`` per length.

    ``policy`` is a checkpoint (file, checkpoint folder or run folder) or a ``(net, exp)`` pair; the env
    is the policy's training env switched to the Bottleneck ``test`` split with ``corridor_lengths=[L]``
    (``envs.bottleneck.with_length``).
    """
    net, exp = _resolve_policy(policy, device)
    rows = []
    for L in lengths:
        base = (
            exp.env
            if exp.env.name == "bottleneck"
            else dataclasses.replace(exp.env, name="bottleneck", options={})
        )
        env_cfg = with_length(base, int(L), "test")
        results = run_episodes(
            net,
            env_cfg,
            episodes,
            num_envs=num_envs,
            seed=seed + int(L),
            deterministic=deterministic,
            device=device,
        )
        rows.append(
            dict(
                L=int(L),
                CSR=float(np.mean([r.get("CSR", math.nan) for r in results])),
                ISR=float(np.mean([r.get("ISR", math.nan) for r in results])),
                episodes=len(results),
                steps=float(np.mean([r.get("episode_length", math.nan) for r in results])),
            )
        )
    return rows
