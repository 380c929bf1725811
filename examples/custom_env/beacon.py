"""Beacon: one agent sees a signal, every agent is rewarded for naming it (shared memory helps).

At every reset a target t in 0..n-1 is drawn. Agent 0 observes one-hot(t); the others observe zeros.
Each step, every agent earns +1 if its action equals t. Agents 1.. can only learn t from agent 0,
e.g. through SRMT's shared memory. Registered as ``beacon`` with typed options; see README.md.
"""

from dataclasses import dataclass

import gymnasium
import numpy as np

from envs import MultiAgentEnv, register_env


@dataclass
class BeaconOptions:
    targets: int = 3
    """Number of possible targets (= actions)."""
    steps: int = 8
    """Episode length."""


class Beacon(MultiAgentEnv):
    def __init__(self, cfg, seed=None):
        self.num_agents = cfg.num_agents or 2
        self.n, self.steps = cfg.opts.targets, cfg.opts.steps
        self.observation_space = gymnasium.spaces.Box(0, 1, (self.n,), np.float32)
        self.action_space = gymnasium.spaces.Discrete(self.n)
        self._rng = np.random.default_rng(seed)
        self._t, self._return = 0, 0.0

    @property
    def active(self):
        return np.ones(self.num_agents, dtype=bool)  # nobody leaves early

    def _obs(self):
        obs = np.zeros((self.num_agents, self.n), np.float32)
        obs[0, self.target] = 1.0
        return obs

    def reset(self, seed=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.target, self._t, self._return = int(self._rng.integers(self.n)), 0, 0.0
        return self._obs(), [{} for _ in range(self.num_agents)]

    def step(self, actions):
        rewards = (np.asarray(actions) == self.target).astype(np.float32)
        self._t += 1
        self._return += float(rewards.mean())
        done = np.full(self.num_agents, self._t >= self.steps)
        metrics = {"return": self._return, "episode_length": float(self._t)}
        infos = [{"metrics": dict(metrics)} if done[0] else {} for _ in range(self.num_agents)]
        return self._obs(), rewards, done, np.zeros_like(done), infos


register_env("beacon", Beacon, BeaconOptions)
