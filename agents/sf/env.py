"""srmt environments as sample-factory batched multi-agent envs.

Each sample-factory env is a vector of ``k`` srmt :class:`envs.MultiAgentEnv` instances (one worker split,
an :class:`envs.vector.VectorEnv`: batched in one numpy step for the Bottleneck, stepped in turn for
other envs), so sample-factory sees ``k * A`` agents with each environment's agents contiguous and in
order (the layout ``agents.sf.layout`` relies on). We vectorise ourselves instead of letting
sample-factory do it because its ``SequentialVectorizeWrapper`` concatenates infos as lists, and only a
*dict* of per-agent tensors reaches the logs in batched mode: pogema's episode metrics (CSR, ISR, SoC,
throughput) are reported that way here as ``episode/<metric>``.

Observations are a dict: ``obs`` ``[k*A, C, H, W]``, ``active`` (the agent still acts; finished agents in
``finish`` mode do not), ``first`` (first observation of an episode: the model resets that agent's
state) and, with ``train.debug_layout``, ``env_id`` / ``agent_id`` / ``step`` ids that the model and the
learner check on every batch. sample-factory's per-agent ``done`` is raised only when the whole
environment's episode ends, so an agent that finishes early does not start a fake episode; its later
rows are masked out of the loss by the learner (``active`` -> invalid) and out of the shared pool by the
model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

SF_ENV_NAME = "srmt"
"""The name under which the adapter is registered in sample-factory's env registry."""

FLAG_SPACE = gym.spaces.Box(0, 1, shape=(), dtype=np.uint8)
ID_SPACE = gym.spaces.Box(np.iinfo(np.int32).min, np.iinfo(np.int32).max, shape=(), dtype=np.int32)


class SFMultiEnv(gym.Env):
    """``k`` multi-agent environments presented to sample-factory as one env with ``k * A`` agents.

    ``envs`` is either a list of single envs (stepped in turn through :class:`envs.vector.LoopVectorEnv`;
    ``seeds`` go to their first resets) or one :class:`envs.vector.VectorEnv` (e.g. the batched
    Bottleneck from :func:`envs.vector.make_vector_env`, seeded when it was built).
    """

    is_multiagent = True

    def __init__(
        self,
        envs: Sequence[Any] | Any,
        env_uids: Sequence[int],
        seeds: Sequence[int | None] | None = None,
        debug_ids: bool = False,
        uint8_observations: bool = True,
    ) -> None:
        from envs.vector import LoopVectorEnv

        if isinstance(envs, (list, tuple)):
            if not envs:
                raise ValueError("SFMultiEnv needs at least one environment")
            self.vec = LoopVectorEnv(envs, seeds)
        else:
            if seeds is not None:
                raise ValueError(
                    "SFMultiEnv: a VectorEnv is seeded when it is built; pass seeds=None with it"
                )
            self.vec = envs
        vec = self.vec
        k, A = int(vec.num_envs), int(vec.num_agents)
        if len(env_uids) != k:
            raise ValueError(f"SFMultiEnv: got {len(env_uids)} env_uids for {k} environments")
        self.envs = getattr(vec, "envs", None)  # the single envs of the loop fallback, else None
        self.num_envs = k
        self.agents_per_env = A
        self.num_agents = A * k
        self.debug_ids = debug_ids
        obs_space = vec.observation_space
        # 0/1 observations travel as uint8 through sample-factory's buffers, 4x fewer bytes to stack and
        # copy to the device; the model converts them to float32 there (SFActorCritic.type_for_input_tensor)
        binary = bool(getattr(vec, "binary_observations", False))
        self.obs_dtype = np.uint8 if uint8_observations and binary else np.float32
        if self.obs_dtype == np.uint8:
            obs_space = gym.spaces.Box(0, 1, shape=obs_space.shape, dtype=np.uint8)
        spaces: dict[str, gym.Space] = dict(obs=obs_space, active=FLAG_SPACE, first=FLAG_SPACE)
        if debug_ids:
            spaces.update(env_id=ID_SPACE, agent_id=ID_SPACE, step=ID_SPACE)
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = vec.action_space

        self._env_uids = np.repeat(np.asarray(env_uids, dtype=np.int32), A)
        self._agent_ids = np.tile(np.arange(A, dtype=np.int32), k)
        self._steps = np.zeros(k, dtype=np.int32)  # env steps since creation (not reset per episode)
        self._active = np.ones((k, A), dtype=bool)
        self._first = np.ones((k, A), dtype=bool)
        self._obs = np.empty(0)

    # ------------------------------------------------------------------ gymnasium API (batched)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self._obs = self.vec.reset()
        self._active = self.vec.active
        self._first[:] = True
        return self._observations(), [{} for _ in range(self.num_agents)]

    def step(self, actions):
        k, A = self.num_envs, self.agents_per_env
        actions = np.asarray(actions).reshape(k, A)
        was_active = self._active
        self._obs, rew, term, trunc, ended, metrics = self.vec.step(actions)
        # an agent that had already finished earns nothing (its rows are masked out anyway)
        rewards = np.where(was_active, rew, 0.0).astype(np.float32)
        self._steps += 1
        terminated = np.zeros((k, A), dtype=bool)
        truncated = np.zeros((k, A), dtype=bool)
        # sample-factory's done is per env: every agent is done at the step its env's episode ends
        truncated[ended] = trunc[ended]
        terminated[ended] = ~truncated[ended]
        self._first = np.repeat(ended[:, None], A, axis=1)
        self._active = self.vec.active
        infos_out: dict[str, Any] = {}
        if np.count_nonzero(ended):
            finished_metrics: dict[str, np.ndarray] = {}
            for i in np.flatnonzero(ended).tolist():
                self._record_metrics(finished_metrics, i, metrics[i] or {})
            if finished_metrics:
                infos_out["episode"] = {key: torch.from_numpy(v) for key, v in finished_metrics.items()}
        return (
            self._observations(),
            rewards.reshape(-1),
            terminated.reshape(-1),
            truncated.reshape(-1),
            infos_out,
        )

    def close(self) -> None:
        self.vec.close()

    # ------------------------------------------------------------------ helpers

    def _record_metrics(self, out: dict[str, np.ndarray], i: int, metrics: dict) -> None:
        A = self.agents_per_env
        for key, value in metrics.items():
            if key not in out:
                out[key] = np.full(self.num_agents, np.nan, dtype=np.float32)
            # every agent of the finished env carries its env's metric; sample-factory averages over the
            # agents whose episode ended, so each env counts A times (the same weight for every env)
            out[key][i * A : (i + 1) * A] = float(value)

    def _observations(self) -> dict[str, np.ndarray]:
        stacked = self._obs
        if self.debug_ids and self.obs_dtype == np.uint8 and not np.isin(stacked, (0, 1)).all():
            raise ValueError("an env declares binary_observations but produced a value other than 0 or 1")
        obs = dict(
            obs=stacked.astype(self.obs_dtype, copy=False),
            active=self._active.reshape(-1).astype(np.uint8),
            first=self._first.reshape(-1).astype(np.uint8),
        )
        if self.debug_ids:
            obs.update(
                env_id=self._env_uids.copy(),
                agent_id=self._agent_ids.copy(),
                step=np.repeat(self._steps, self.agents_per_env),
            )
        return obs


# ---------------------------------------------------------------------- plugins and the SF env factory


def import_plugins(plugins: Sequence[str]) -> None:
    """Import user modules (dotted names or ``.py`` paths) that register custom envs or models
    (``envs.plugins.import_plugin``: once per process, sibling imports work, one-line errors).

    Runs in every process sample-factory starts (they are spawned, so registrations made in the parent
    are not inherited).
    """
    from envs.plugins import import_plugin

    for spec in plugins:
        import_plugin(spec)


def env_seed(base_seed: int, env_uid: int, resumed_at: int = 0) -> int:
    """A distinct, reproducible seed per environment instance.

    ``resumed_at`` is the agent-step count of the checkpoint a run resumes from (0 for a fresh run): a
    resumed run draws new episodes instead of replaying the ones its first session began with.
    """
    if resumed_at <= 0:
        return (int(base_seed) * 1_000_003 + int(env_uid)) % (2**31 - 1)
    state = np.random.SeedSequence([int(base_seed) % 2**32, int(env_uid), int(resumed_at)]).generate_state(1)
    return int(state[0]) % (2**31 - 1)


def make_sf_env(full_env_name: str, cfg: Any = None, env_config: Any = None, render_mode: str | None = None):
    """sample-factory env factory (registered as ``srmt``): builds one worker split's vector of envs."""
    from agents.sf.sf_config import experiment_from_sf, setup_process

    setup_process(cfg)
    exp = experiment_from_sf(cfg)
    k = int(cfg.srmt_envs_per_split)
    sf_env_id = int(env_config.env_id) if env_config is not None else 0
    uids = [sf_env_id * k + i for i in range(k)]
    # each env is seeded once, here; its first reset() plays that seed's episode and later resets draw
    # from the stream it seeds (passing the seed to reset again as well made the first episode repeat).
    # Envs with a batched implementation (Bottleneck) are stepped all at once, others in turn.
    from envs.vector import make_vector_env

    obs_dtype = np.uint8 if exp.train.uint8_observations else np.float32
    resumed_at = int(getattr(cfg, "srmt_resumed_at", 0) or 0)
    seeds = [env_seed(exp.seed, uid, resumed_at) for uid in uids]
    vec = make_vector_env(exp.env, seeds, obs_dtype, batched=exp.train.batched_envs)
    return SFMultiEnv(
        vec,
        uids,
        debug_ids=bool(cfg.srmt_debug_layout),
        uint8_observations=exp.train.uint8_observations,
    )
