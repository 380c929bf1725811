"""T-Maze for the offline learner: the expert, the per-length evaluation and the memory-gradient comparison.

- :class:`TMazeExpert`: the optimal policy of :mod:`envs.tmaze` (``record.algorithm=tmaze``): it reads
  the cue from the first observation, walks right and turns to the cued side at the junction. Recording
  goes through the ordinary recorder (:func:`agents.offline.record.record`), so the dataset is the usual
  sharded folder (:mod:`agents.offline.shards`).
- :func:`evaluate_lengths` (``srmt offline lengths``): the RATE checkpoint (and the expert, and a random
  agent) at each corridor length of ``eval.lengths``, in step mode with the memory carried from segment
  to segment. The T-Maze's agents are independent episodes, so ``eval.length_episodes`` episodes of one
  length run in lockstep as the agents of one env: one batched model step per env step.
- :func:`compare_memory_gradients` (``srmt offline compare``): one dataset, then for
  ``train.memory_gradient`` in (``detach``, ``bptt``) and every seed of ``compare_seeds`` a model
  trained with the same budget, each evaluated per length; mean and 95% bootstrap interval over seeds.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from agents.offline.rollout import build_expert, play_episode
from agents.offline_config import OfflineConfig
from agents.planners.base import WorldState
from envs.tmaze import CUE_DOWN, CUE_UP, DOWN, JUNCTION, RIGHT, UP

MEMORY_GRADIENTS = ("detach", "bptt")


class TMazeExpert:
    """The T-Maze's optimal policy, acting on observations only (``[A, 3, 1, 1]``)."""

    def __init__(self) -> None:
        self.cue = np.zeros(0, dtype=np.int64)

    def reset(self, state: WorldState, seed: int) -> None:
        self.cue = np.zeros(state.num_agents, dtype=np.int64)

    def act(self, state: WorldState) -> np.ndarray:
        obs = np.asarray(state.observations)[:, :, 0, 0]  # (A, 3)
        self.cue = np.where(obs[:, CUE_UP] > 0, UP, np.where(obs[:, CUE_DOWN] > 0, DOWN, self.cue))
        return np.where(obs[:, JUNCTION] > 0, self.cue, RIGHT).astype(np.int64)


def check_tmaze(cfg: OfflineConfig) -> None:
    if cfg.env.name != "tmaze":
        raise ValueError(
            f"srmt offline lengths/compare evaluate the T-Maze; env.name={cfg.env.name!r}, allowed: tmaze"
        )
    if not cfg.eval.lengths:
        raise ValueError(
            "eval.lengths is empty; give the corridor lengths to test, e.g. eval.lengths=[10,100,1000]"
        )


def length_env_config(cfg: OfflineConfig, length: int, episodes: int):
    """``env`` at one corridor length with ``episodes`` independent agents (= episodes in lockstep)."""
    from envs.tmaze import tmaze_config

    check_tmaze(cfg)
    return tmaze_config(length, num_agents=episodes, max_episode_steps=cfg.env.max_episode_steps)


def evaluate_lengths(
    cfg: OfflineConfig, log=print, checkpoint: str | Path | None = None, compare: bool | None = None
) -> dict[str, dict[int, float]]:
    """Success rate per corridor length (``eval.lengths``) of the checkpoint and, with ``eval.compare``,
    of the expert and a random agent: ``{label: {length: success}}``; also written to
    ``{run_dir}/lengths.md`` and ``lengths.json``."""
    from agents.offline.policy import RATEPolicy
    from agents.offline.train import resolve_device, torch_threads
    from envs import make_env

    ec = cfg.eval
    check_tmaze(cfg)
    path = str(checkpoint or cfg.eval_checkpoint_path)
    compare = ec.compare if compare is None else compare
    with torch_threads(ec.threads):
        device = resolve_device(cfg.device)
        target: str | float = ec.target_value if ec.target_return == "value" else ec.target_return
        policy = RATEPolicy(path, str(device), target, ec.action_selection)
        if policy.model.cfg.shared_memory:
            # the lockstep agents would read each other's memories: a different model than the one trained
            raise ValueError(
                f"checkpoint {path!r} has model.shared_memory=true; the per-length T-Maze evaluation plays "
                "episodes as independent agents of one env and needs shared_memory=false"
            )
        algorithms = {"RATE": policy}
        if compare:
            algorithms.update(expert=build_expert("tmaze"), random=build_expert("random"))
        rows: dict[str, dict[int, float]] = {label: {} for label in algorithms}
        seconds: dict[str, dict[int, float]] = {label: {} for label in algorithms}
        for length in ec.lengths:
            env = make_env(length_env_config(cfg, length, ec.length_episodes), seed=ec.seed)
            for label, algo in algorithms.items():
                t0 = time.perf_counter()
                m = play_episode(env, algo, ec.seed + length)
                seconds[label][length] = time.perf_counter() - t0
                rows[label][length] = m["success"]
                if cfg.progress:
                    log(
                        f"[offline lengths] L={length}: {label} success {m['success']:.3f} "
                        f"({ec.length_episodes} episodes, {seconds[label][length]:.1f} s)"
                    )
            env.close()
        separation = memory_separation(policy.model)
    table = lengths_table(rows, ec.length_episodes)
    table += "\n\nmemory separation |m_up - m_down| after n corridor segments: " + ", ".join(
        f"n={n}: {d:.3g}" for n, d in separation.items()
    )
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    (cfg.run_dir / "lengths.md").write_text(table + "\n")
    (cfg.run_dir / "lengths.json").write_text(
        json.dumps(
            {"checkpoint": path, "success": rows, "seconds": seconds, "memory_separation": separation},
            indent=1,
        )
    )
    return rows


def lengths_table(rows: dict[str, dict[int, float]], episodes: int) -> str:
    lengths = list(next(iter(rows.values())))
    lines = [
        f"T-Maze success rate per corridor length ({episodes} episodes each):",
        "",
        "| algorithm | " + " | ".join(f"L={L}" for L in lengths) + " |",
        "|---|" + "---|" * len(lengths),
    ]
    for label, r in rows.items():
        lines.append(f"| {label} | " + " | ".join(f"{r[L]:.3f}" for L in lengths) + " |")
    return "\n".join(lines)


def compare_memory_gradients(cfg: OfflineConfig, log=print) -> str:
    """Record once, train ``detach`` and ``bptt`` models for every seed of ``compare_seeds`` with the same
    budget, evaluate each per length; returns (and writes to ``{run_dir}/compare.md``, with a plot
    ``compare.png``) the table of mean success and 95% bootstrap interval over seeds."""
    from agents.offline.record import record
    from agents.offline.train import train_stages

    check_tmaze(cfg)
    ds = record(cfg, log)[0]  # records what is missing; a complete dataset is only opened
    results: dict[str, dict[int, dict[int, float]]] = {m: {} for m in MEMORY_GRADIENTS}
    info: dict[str, dict[int, dict[str, float]]] = {m: {} for m in MEMORY_GRADIENTS}
    for mode in MEMORY_GRADIENTS:
        for seed in cfg.compare_seeds:
            run = dataclasses.replace(
                cfg,
                name=f"{cfg.name}/{mode}-s{seed}",
                seed=seed,
                train=dataclasses.replace(cfg.train, memory_gradient=mode),
                # every run fine-tunes on the same second-stage dataset, recorded once
                finetune=dataclasses.replace(cfg.finetune, dataset=str(cfg.finetune_dataset_path)),
            )
            tr = train_stages(run, log, dataset=ds)
            rows = evaluate_lengths(run, log, checkpoint=tr.checkpoint, compare=False)
            results[mode][seed] = rows["RATE"]
            separation = json.loads((run.run_dir / "lengths.json").read_text())["memory_separation"]
            info[mode][seed] = {
                "memory_separation": separation,
                "loss": tr.loss,
                "accuracy": tr.accuracy,
                "seconds": tr.seconds,
                "updates": tr.updates,
            }
    table = compare_table(results, cfg.eval.length_episodes)
    table += "\n\nmemory separation |m_up - m_down| after 1000 corridor segments, per seed: " + "; ".join(
        f"{mode} " + ", ".join(f"{info[mode][s]['memory_separation']['1000']:.3g}" for s in cfg.compare_seeds)
        for mode in MEMORY_GRADIENTS
    )
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    (cfg.run_dir / "compare.md").write_text(table + "\n")
    trained = list(cfg.env.opts.corridor_lengths)
    if cfg.finetune.steps:
        trained += cfg.finetune_stage().env.opts.corridor_lengths
    plot_compare(results, cfg.run_dir / "compare.png", f"trained on L in {min(trained)}..{max(trained)}")
    (cfg.run_dir / "compare.json").write_text(json.dumps({"success": results, "train": info}, indent=1))
    return table


def compare_table(results: dict[str, dict[int, dict[int, float]]], episodes: int) -> str:
    """Rows: memory-gradient mode; columns: corridor length; cells: mean success over seeds [95% CI]."""
    from agents.sweep.stats import bootstrap_ci

    first = next(iter(next(iter(results.values())).values()))
    lengths = list(first)
    seeds = {m: sorted(r) for m, r in results.items()}
    lines = [
        f"T-Maze success per corridor length: mean over seeds [95% percentile-bootstrap CI over seeds]; "
        f"{episodes} episodes per length and seed",
        "",
        "| memory gradient | seeds | " + " | ".join(f"L={L}" for L in lengths) + " |",
        "|---|---|" + "---|" * len(lengths),
    ]
    for mode, per_seed in results.items():
        cells = []
        for L in lengths:
            x = [per_seed[s][L] for s in seeds[mode]]
            lo, hi = bootstrap_ci(x)
            cells.append(f"{np.mean(x):.3f} [{lo:.2f}, {hi:.2f}]")
        lines.append(f"| {mode} | {len(seeds[mode])} | " + " | ".join(cells) + " |")
    lines += ["", "per seed:", ""]
    for mode, per_seed in results.items():
        for s in seeds[mode]:
            lines.append(f"- {mode}, seed {s}: " + ", ".join(f"L={L} {per_seed[s][L]:.3f}" for L in lengths))
    return "\n".join(lines)


def memory_separation(model, segments: tuple[int, ...] = (1, 10, 100, 1000)) -> dict[int, float]:
    """How far apart the memories of a cue-up and a cue-down episode are after n corridor segments:
    ``{n: |m_up - m_down|}`` (Frobenius norm over the M memory tokens), by the segment forward of the
    expert's trajectory (cue segment, then segments of ``right`` steps with nothing to see). Zero means
    the cue is forgotten; a constant means the memory settled on one fixed point per cue."""
    import torch

    p = model.head.weight
    K = model.cfg.segment_len
    obs = torch.zeros(1, 2, K, 3, 1, 1, dtype=p.dtype, device=p.device)
    actions = torch.full((1, 2, K), RIGHT, device=p.device)
    rtg = torch.ones(1, 2, K, dtype=p.dtype, device=p.device)
    ts = torch.zeros(1, 2, K, dtype=torch.long, device=p.device)
    valid = torch.ones(1, 2, K, dtype=torch.bool, device=p.device)
    first = obs.clone()
    first[0, 0, 0, CUE_UP] = 1
    first[0, 1, 0, CUE_DOWN] = 1
    out: dict[int, float] = {}
    with torch.no_grad():
        memory = model(first, actions, rtg, ts, valid).memory
        for n in range(1, max(segments) + 1):
            if n in segments:
                out[n] = float((memory[0, 0] - memory[0, 1]).norm())
            memory = model(obs, actions, rtg, ts, valid, memory).memory
    return out


def plot_compare(results: dict[str, dict[int, dict[int, float]]], path: str | Path, note: str = "") -> Path:
    """Success vs corridor length (log axis), one line per seed and the mean per memory-gradient mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for (mode, per_seed), color in zip(results.items(), ("tab:red", "tab:blue")):
        seeds = sorted(per_seed)
        lengths = [int(L) for L in per_seed[seeds[0]]]
        runs = np.array([[per_seed[s][L] for L in per_seed[seeds[0]]] for s in seeds])
        for row in runs:
            ax.plot(lengths, row, color=color, alpha=0.3, lw=1)
        ax.plot(
            lengths, runs.mean(0), color=color, lw=2, marker="o", label=f"{mode} (mean of {len(seeds)} seeds)"
        )
    ax.axhline(0.5, color="gray", ls=":", lw=1, label="no memory (1/2)")
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("corridor length L" + (f" ({note})" if note else ""))
    ax.set_ylabel("success rate")
    ax.set_title("T-Maze: memory gradient detached vs BPTT")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
