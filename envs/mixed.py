"""Mixed agent counts (``env.num_agents_choices``): each episode draws its number of agents, the env
shows a fixed number of agent slots.

A trainer's batched layout (sample-factory rows grouped ``[G, A]`` per env, ``agents.sf.layout``) needs
the same number of agent rows in every env instance for the whole run, while a policy that should play
32, 48 and 64 agents is best trained on all of them (issue 9). :class:`MixedCountEnv` presents
``A = max(choices)`` slots; an episode with ``n`` agents fills slots ``0..n-1`` from an ordinary env of
``n`` agents (``make_env`` with ``num_agents=n``, one instance per count, built up front so that a bad
count fails at construction), and slots ``n..A-1`` are padding:

- ``active`` False for the whole episode (the model keeps them out of the shared pool, the learner out of
  the loss), ``terminated`` True (they left, as finished agents in ``finish`` mode do), ``truncated`` as
  the episode's real agents at the step limit, reward 0, observation all zeros;
- their actions are checked for range and then ignored: the inner env has no such agents, so padding never
  appears in a real agent's observation, never blocks a cell and never collides;
- the episode's metrics are the inner env's (throughput, CSR, ... over its ``n`` agents), plus
  ``num_agents`` (``n``) and ``reward_per_agent`` (the episode return averaged over the ``n`` agents).

Seeding: ``reset(seed=s)`` starts the stream ``default_rng(s)``; episode ``j`` draws its count and then
(from the second episode on; the first plays ``s`` itself) its episode seed ``e_j`` from that stream, and
plays exactly what ``make_env(cfg with num_agents=n_j).reset(seed=e_j)`` plays (tested).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from envs.base import MultiAgentEnv, check_actions, check_seed
from envs.config import EnvConfig

_SEED_SPACE = 2**31 - 1


class MixedCountEnv(MultiAgentEnv):
    """``cfg.num_agents_choices`` counts behind ``max(choices)`` agent slots (module docstring)."""

    def __init__(self, cfg: EnvConfig, seed: int | None = None) -> None:
        from envs.registry import make_env

        if not cfg.num_agents_choices:
            raise ValueError("MixedCountEnv needs env.num_agents_choices (a list of agent counts)")
        self.cfg = cfg
        self.choices = tuple(int(n) for n in cfg.num_agents_choices)
        self.num_agents = max(self.choices)
        plain = dataclasses.replace(cfg, num_agents_choices=[], num_agents=None)
        self._envs: dict[int, MultiAgentEnv] = {}
        for n in sorted(self.choices):
            try:
                env = make_env(dataclasses.replace(plain, num_agents=n))
            except ValueError as e:
                raise ValueError(f"env.num_agents_choices: count {n}: {e}") from None
            if int(env.num_agents) != n:
                raise ValueError(
                    f"env.num_agents_choices: env {cfg.name!r} built {env.num_agents} agents for a count of {n}; "
                    "it does not take its agent count from num_agents"
                )
            self._envs[n] = env
        first = self._envs[min(self.choices)]
        self.observation_space = first.observation_space
        self.action_space = first.action_space
        for n, env in self._envs.items():
            if env.observation_space != self.observation_space or env.action_space != self.action_space:
                raise ValueError(
                    f"env.num_agents_choices: with {n} agents env {cfg.name!r} has other spaces than with "
                    f"{min(self.choices)} ({env.observation_space} vs {self.observation_space})"
                )
        self.binary_observations = all(getattr(e, "binary_observations", False) for e in self._envs.values())
        self._rng = np.random.default_rng(seed)
        self._pending_seed = seed
        self._n = 0
        self._env: MultiAgentEnv | None = None
        self._active = np.zeros(self.num_agents, dtype=bool)
        self._return = np.zeros(0)
        self._done = True
        self.episode_seed: int | None = None
        """The seed of the current episode's inner env (``make_env(..., num_agents=n).reset(seed=...)``)."""

    # ----------------------------------------------------------------- public state
    @property
    def active(self) -> np.ndarray:
        return self._active.copy()

    @property
    def episode_agents(self) -> int:
        """Real agents of the current episode (the first ``episode_agents`` slots)."""
        return self._n

    @property
    def inner(self) -> MultiAgentEnv:
        """The env of the current episode's count (planners and renderers read its state)."""
        if self._env is None:
            raise RuntimeError("no episode yet; call reset() first")
        return self._env

    # ----------------------------------------------------------------- gym API
    def reset(self, seed: int | None = None) -> tuple[np.ndarray, list[dict]]:
        if seed is None:
            seed = self._pending_seed
        self._pending_seed = None
        if seed is not None:
            ep_seed = check_seed(seed)
            self._rng = np.random.default_rng(ep_seed)
            n = self.choices[int(self._rng.integers(len(self.choices)))]
        else:
            n = self.choices[int(self._rng.integers(len(self.choices)))]
            ep_seed = int(self._rng.integers(_SEED_SPACE))
        self._n, self._env, self.episode_seed = n, self._envs[n], ep_seed
        obs, _ = self._env.reset(seed=ep_seed)
        self._active[:] = False
        self._active[:n] = self._env.active
        self._return = np.zeros(n, dtype=np.float64)
        self._done = False
        return self._pad(obs), [{} for _ in range(self.num_agents)]

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        if self._done or self._env is None:
            raise RuntimeError("the episode is over (or never started); call reset() before step()")
        a = check_actions(actions, self.num_agents, int(self.action_space.n))
        n, A = self._n, self.num_agents
        obs, rew, term, trunc, infos = self._env.step(a[:n])
        rewards = np.zeros(A, dtype=np.float32)
        rewards[:n] = rew
        self._return += np.asarray(rew, dtype=np.float64)
        terminated = np.ones(A, dtype=bool)
        terminated[:n] = term
        truncated = np.zeros(A, dtype=bool)
        truncated[:n] = trunc
        if n < A and np.all(np.asarray(trunc)):
            truncated[n:] = True  # the step limit ends the episode for every slot
        self._active[:n] = self._env.active
        out: list[dict] = [{} for _ in range(A)]
        if np.all(np.asarray(term) | np.asarray(trunc)):
            self._done = True
            metrics = dict(infos[0].get("metrics", {})) if infos else {}
            metrics["num_agents"] = float(n)
            metrics["reward_per_agent"] = float(self._return.mean())
            for info in out:
                info["metrics"] = dict(metrics)
        return self._pad(obs), rewards, terminated, truncated, out

    def render(self) -> Any:
        return self.inner.render()  # type: ignore[attr-defined]

    def close(self) -> None:
        for env in self._envs.values():
            env.close()

    # ----------------------------------------------------------------- internals
    def _pad(self, obs: np.ndarray) -> np.ndarray:
        """``[n, *obs_shape]`` -> ``[A, *obs_shape]`` with zeros in the padding slots."""
        if self._n == self.num_agents:
            return obs
        out = np.zeros((self.num_agents, *obs.shape[1:]), dtype=obs.dtype)
        out[: self._n] = obs
        return out
