"""Playing episodes with a trained (or untrained) srmt policy, and the Bottleneck corridor evaluation.

Several env instances run in lockstep and are batched through the model as ``[G, A]``; each env plays
its own episodes with reproducible seeds, so results do not depend on ``num_envs``.

``pool`` runs an SRMT policy under a pool control (:mod:`srmt.controls`): ``own`` (each agent reads its own
memory only) or ``other`` (each env reads the pool of a donor env that plays its own episodes, seeded
apart from the evaluated ones, with the unmodified policy).
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
from srmt.controls import PoolControl, check_pool_control, control_step

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
        pool: PoolControl = "shared",
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs} must be >= 1")
        check_pool_control(net, pool)
        self.pool = pool
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
        donors = _Donors(self, G) if self.pool == "other" else None
        results: dict[int, dict[str, float]] = {}
        while running.any():
            out = control_step(
                self.net,
                torch.as_tensor(obs, device=self.device),
                state,
                reset=torch.as_tensor(reset, device=self.device),
                active=torch.as_tensor(active & running[:, None], device=self.device),
                pool=self.pool,
                **(donors.pool_source() if donors is not None else {}),
            )
            if donors is not None:
                donors.step()
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
        if donors is not None:
            donors.close()
        return [results[i] for i in range(episodes)]

    def _act(self, logits: torch.Tensor) -> torch.Tensor:
        if self.deterministic:
            return logits.argmax(-1)
        probs = torch.softmax(logits.float(), dim=-1)
        flat = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=self.generator)
        return flat.reshape(probs.shape[:-1])


class _Donors:
    """``pool='other'``: G donor envs, one per evaluated env, whose pool the evaluated agents read.

    Donors are played by the same policy with its own shared pool and restart when their episode ends,
    so a donor pool always exists; their seeds come from a stream disjoint from the evaluated episodes'.
    """

    SEED_OFFSET = 7_919_191

    def __init__(self, runner: EpisodeRunner, G: int) -> None:
        from envs import make_env

        self.runner, self.G = runner, G
        self.next_seed = 0
        self.envs = [make_env(runner.env_cfg, seed=self._seed()) for _ in range(G)]
        self.obs = np.stack([e.reset(seed=self._seed())[0] for e in self.envs])
        self.active = np.stack([e.active for e in self.envs])
        self.reset = np.ones(self.active.shape, dtype=bool)
        self.state = runner.net.initial_state(G, self.active.shape[1], device=runner.device)

    def _seed(self) -> int:
        self.next_seed += 1
        return (self.runner.episode_seed(self.next_seed) + self.SEED_OFFSET) % (2**31 - 1)

    def _t(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, device=self.runner.device)

    def pool_source(self) -> dict[str, torch.Tensor]:
        return dict(
            donor_state=self.state, donor_reset=self._t(self.reset), donor_active=self._t(self.active)
        )

    def step(self) -> None:
        out = self.runner.net.step(
            self._t(self.obs), self.state, reset=self._t(self.reset), active=self._t(self.active)
        )
        self.state = out.state
        actions = self.runner._act(out.logits).cpu().numpy()
        self.reset[:] = False
        for g, env in enumerate(self.envs):
            o, _, term, trunc, _ = env.step(actions[g])
            if np.all(np.asarray(term) | np.asarray(trunc)):
                o, _ = env.reset(seed=self._seed())
                self.reset[g] = True
            self.obs[g] = o
            self.active[g] = env.active

    def close(self) -> None:
        for e in self.envs:
            e.close()


def run_episodes(
    net: ActorCritic,
    env_cfg: Any,
    episodes: int,
    *,
    num_envs: int = 8,
    seed: int = 0,
    deterministic: bool = False,
    device: str | torch.device = "cpu",
    pool: PoolControl = "shared",
) -> list[dict[str, float]]:
    """Metrics of ``episodes`` episodes of ``env_cfg`` played by ``net`` (see :class:`EpisodeRunner`)."""
    runner = EpisodeRunner(
        net, env_cfg, num_envs=num_envs, seed=seed, deterministic=deterministic, device=device, pool=pool
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
    pool: PoolControl = "shared",
) -> list[dict[str, float]]:
    """CSR / ISR per test-corridor length L: one row ``{L, CSR, ISR, episodes, steps}`` per length.

    ``policy`` is a checkpoint (file, checkpoint folder or run folder) or a ``(net, exp)`` pair; the env
    is the policy's training env switched to the Bottleneck ``test`` split with ``corridor_lengths=[L]``
    (``envs.bottleneck.with_length``; a policy trained on a corridor task of the Bottleneck family, e.g.
    ``cue``, keeps its task). ``pool`` evaluates an SRMT policy under a pool control (module docstring).
    """
    from envs.cue import CORRIDOR_TASKS

    net, exp = _resolve_policy(policy, device)
    rows = []
    for L in lengths:
        base = (
            exp.env
            if exp.env.name in CORRIDOR_TASKS
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
            pool=pool,
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
        if all("trapped" in r for r in results):  # the Cue Bottleneck's share of agents lost to the trap
            rows[-1]["trapped"] = float(np.mean([r["trapped"] for r in results]))
    return rows
