"""``srmt offline eval``: the trained RATE model next to the expert and a random agent, on the same seeds.

Every algorithm plays ``eval.episodes`` episodes of the evaluation env (``env`` with
``eval.env_overrides``) with seeds ``eval.seed + i``; the table reports the env's own metrics: CSR / ISR
/ makespan (Bottleneck, classic and ``finish`` modes) or throughput (lifelong), with a 95% percentile
bootstrap interval over the episodes of the first (CSR or throughput); ``eval.json`` also holds every
episode's metrics.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass

import numpy as np

from agents.offline.policy import RATEPolicy
from agents.offline.rollout import build_expert, make_eval_env, play_episode
from agents.offline.train import resolve_device, torch_threads
from agents.offline_config import OfflineConfig
from agents.sweep.stats import bootstrap_ci
from envs.config import EnvConfig, upgrade_legacy

CLASSIC_KEYS = ("CSR", "ISR", "makespan", "SoC")
LIFELONG_KEYS = ("throughput",)
EXTRA_KEYS = ("blocked",)  # grid envs: the fraction of moves that did not move the agent


@dataclass
class EvalReport:
    rows: dict[str, dict[str, float]]
    """algorithm label -> mean metric (plus ``episodes`` and ``seconds``)."""
    table: str
    """Markdown table."""
    target_return: float


def eval_env_config(cfg: OfflineConfig) -> EnvConfig:
    """``env`` with ``eval.env_overrides`` applied (checked like any EnvConfig)."""
    overrides = dict(cfg.eval.env_overrides)
    allowed = [f.name for f in dataclasses.fields(EnvConfig)] + ["split", "corridor_lengths"]
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise ValueError(
            f"eval.env_overrides: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}"
        )
    overrides = upgrade_legacy({**overrides, "name": overrides.get("name", cfg.env.name)})
    if "split" in overrides.get("options", {}) and "max_episode_steps" not in overrides:
        overrides["max_episode_steps"] = None  # a test split brings its own step limit (2L+100)
    if "options" in overrides and overrides["name"] == cfg.env.name:
        overrides["options"] = {**cfg.env.options, **overrides["options"]}
    return dataclasses.replace(cfg.env, **overrides)


def run_algorithm(env_cfg: EnvConfig, algorithm, episodes: int, seed: int) -> list[dict[str, float]]:
    env = make_eval_env(env_cfg, seed=seed)
    try:
        return [play_episode(env, algorithm, seed + i) for i in range(episodes)]
    finally:
        env.close()


def evaluate(cfg: OfflineConfig, log=print) -> EvalReport:
    with torch_threads(cfg.eval.threads):
        return _evaluate(cfg, eval_env_config(cfg), resolve_device(cfg.device), log)


def _evaluate(cfg: OfflineConfig, env_cfg: EnvConfig, device, log) -> EvalReport:
    ec = cfg.eval
    target: str | float = ec.target_value if ec.target_return == "value" else ec.target_return
    policy = RATEPolicy(
        str(cfg.eval_checkpoint_path), str(device), target, ec.action_selection, ec.temperature
    )
    trained = policy.env_config
    for key, here, there in (
        ("reward", env_cfg.reward, trained.reward),
        ("radius", env_cfg.radius, trained.radius),
    ):
        if here != there:  # the return-to-go or the observation would silently mean something else
            raise ValueError(
                f"eval env {key}={here!r} differs from the checkpoint's {key}={there!r}; "
                "evaluate with the env the model was trained on (eval.env_overrides must keep it)"
            )
    algorithms = {f"RATE (target {policy.target:.3g})": policy}
    if ec.compare:
        algorithms[f"expert ({cfg.record.algorithm})"] = build_expert(cfg.record.algorithm, env_cfg)
        algorithms["random"] = build_expert("random")
    rows: dict[str, dict[str, float]] = {}
    per_episode: dict[str, dict[str, list[float]]] = {}
    for label, algo in algorithms.items():
        t0 = time.perf_counter()
        results = run_algorithm(env_cfg, algo, ec.episodes, ec.seed)
        seconds = time.perf_counter() - t0
        keys = [k for k in (*CLASSIC_KEYS, *LIFELONG_KEYS, *EXTRA_KEYS) if k in results[0]]
        rows[label] = {k: float(np.mean([r[k] for r in results])) for k in keys}
        per_episode[label] = {k: [float(r[k]) for r in results] for k in keys}
        lo, hi = bootstrap_ci(per_episode[label][keys[0]])  # CSR or throughput, over episodes
        rows[label].update(episodes=float(len(results)), seconds=seconds, ci_low=lo, ci_high=hi)
        if cfg.progress:
            shown = ", ".join(f"{k} {v:.3f}" for k, v in rows[label].items() if k in keys)
            log(f"[offline eval] {label}: {shown} ({len(results)} episodes, {seconds:.1f} s)")
    table = format_table(rows, env_cfg)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    (cfg.run_dir / "eval.md").write_text(table + "\n")
    (cfg.run_dir / "eval.json").write_text(
        json.dumps({"env": dataclasses.asdict(env_cfg), "rows": rows, "per_episode": per_episode}, indent=1)
    )
    return EvalReport(rows, table, policy.target)


def format_table(rows: dict[str, dict[str, float]], env_cfg: EnvConfig) -> str:
    first = next(iter(rows.values()))
    keys = [k for k in (*CLASSIC_KEYS, *LIFELONG_KEYS, *EXTRA_KEYS) if k in first]
    header = "| algorithm | episodes | " + " | ".join(keys) + f" | {keys[0]} 95% CI | seconds |"
    lines = [
        f"{env_cfg.name}, {env_cfg.num_agents} agents, on_target={env_cfg.on_target} (means over episodes):",
        "",
        header,
        "|" + "---|" * (len(keys) + 4),
    ]
    for label, r in rows.items():
        vals = " | ".join(
            f"{r[k]:.3f}" if k in ("CSR", "ISR", "throughput", *EXTRA_KEYS) else f"{r[k]:.1f}" for k in keys
        )
        ci = f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]" if "ci_low" in r else "-"
        lines.append(f"| {label} | {int(r['episodes'])} | {vals} | {ci} | {r['seconds']:.1f} |")
    return "\n".join(lines)
