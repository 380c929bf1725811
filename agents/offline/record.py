"""``srmt offline record``: play an expert (PIBT by default, optionally epsilon-greedy) in srmt's env and
save every agent's trajectory to one ``.npz`` (format: :mod:`agents.offline.data`)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from agents.offline.data import OfflineDataset
from agents.offline.rollout import Transition, build_expert, make_eval_env, play_episode
from agents.offline_config import OfflineConfig


def record(cfg: OfflineConfig, log=print) -> tuple[OfflineDataset, Path]:
    """Record ``cfg.record.episodes`` episodes of ``cfg.env``; returns the dataset and where it was saved."""
    rc = cfg.record
    env = make_eval_env(cfg.env, seed=rc.seed)
    expert = build_expert(rc.algorithm)
    rng = np.random.default_rng(rc.seed)
    steps: list[Transition] = []
    lengths, returns, metrics, epsilons = [], [], [], []
    t0 = last = time.perf_counter()
    for ep in range(rc.episodes):
        eps = rc.epsilon if rc.epsilon_mode == "fixed" else float(rng.uniform(0.0, rc.epsilon))
        before = len(steps)
        m = play_episode(env, expert, rc.seed + ep, epsilon=eps, rng=rng, on_step=steps.append)
        ep_steps = steps[before:]
        lengths.append(len(ep_steps))
        returns.append(np.sum([s.rewards for s in ep_steps], axis=0))
        metrics.append(m)
        epsilons.append(eps)
        now = time.perf_counter()
        if cfg.progress and (now - last >= 5.0 or ep + 1 == rc.episodes):
            last = now
            rate = len(steps) * env.num_agents / (now - t0)
            log(
                f"[offline record] episode {ep + 1}/{rc.episodes} | {len(steps)} steps | "
                f"{rate:,.0f} agent-steps/s | {_summary(metrics)}"
            )
    env.close()
    ds = OfflineDataset(
        obs=np.stack([s.obs for s in steps]).astype(np.uint8),  # pogema observations are 0/1
        actions=np.stack([s.actions for s in steps]).astype(np.int8),
        rewards=np.stack([s.rewards for s in steps]).astype(np.float32),
        dones=np.stack([s.dones for s in steps]),
        active=np.stack([s.active for s in steps]),
        episode_starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
        episode_lengths=np.asarray(lengths, dtype=np.int64),
        episode_returns=np.stack(returns).astype(np.float32),
        num_actions=int(env.action_space.n),
        meta={
            "env": dataclasses.asdict(cfg.env),
            "algorithm": rc.algorithm,
            "epsilon": rc.epsilon,
            "epsilon_mode": rc.epsilon_mode,
            "episode_epsilons": epsilons,
            "episode_seeds": [rc.seed + i for i in range(rc.episodes)],
            "episode_metrics": metrics,
        },
    )
    path = ds.save(cfg.dataset_path)
    if cfg.progress:
        size = path.stat().st_size / 2**20
        log(
            f"[offline record] wrote {path} ({size:.1f} MiB): {ds.num_episodes} episodes, {ds.num_steps} steps "
            f"x {ds.num_agents} agents, {ds.agent_steps} agent-steps, return mean {ds.episode_returns.mean():.3f} "
            f"best {ds.episode_returns.max():.3f} in {time.perf_counter() - t0:.1f} s"
        )
    return ds, path


def _summary(metrics: list[dict[str, float]]) -> str:
    keys = [k for k in ("CSR", "ISR", "throughput") if k in metrics[0]]
    return ", ".join(f"{k} {np.mean([m[k] for m in metrics]):.3f}" for k in keys)
