"""``evaluate(cfg)`` and ``enjoy(cfg)``: what ``srmt eval`` and ``srmt enjoy`` do, callable from Python."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import yaml

import configs
from agents.eval.algorithms import build_algorithm
from agents.eval.animation import write_svg
from agents.eval.benchmark import MapSet, build_instances, load_map_set, resolve_map_set
from agents.eval.episode import make_episode_env, run_episode
from agents.eval.published import load_published, on_same_instances, published_folder
from agents.eval.results import read_results, write_csv, write_results
from agents.eval.runner import episode_seed, make_tasks, run_tasks
from agents.eval.tables import add_runtime_per_step, report
from agents.eval.toolbox import write_toolbox_configs
from agents.eval_config import EvalConfig


def load_eval_config(
    source: str | Path | dict | None = None, overrides: list[str] | None = None
) -> EvalConfig:
    """An EvalConfig from a YAML (an eval preset, or an experiment config with an ``eval:`` section) and
    dotted overrides. For an experiment config the overrides use its keys (``eval.run=[PIBT]``)."""
    if source is not None and not isinstance(source, dict):
        path = configs.resolve(source)
        data = yaml.safe_load(path.read_text()) or {}
        if isinstance(data, dict) and "eval" in data:
            from agents.config import ExperimentConfig

            return configs.load(ExperimentConfig, path, overrides).eval
        source = path
    return configs.load(EvalConfig, source, overrides)


def _map_sets(cfg: EvalConfig) -> list[MapSet]:
    return [load_map_set(resolve_map_set(name, cfg.mode, cfg.benchmark_dir)) for name in cfg.map_sets]


def _run_grid(cfg: EvalConfig, names: list[str], map_sets: list[MapSet]) -> tuple[list[dict], dict]:
    """Run every (algorithm, instance) episode; writes the config, the result JSONs and results.csv."""
    for name in names:
        build_algorithm(cfg.algorithms[name])  # fail fast (missing/corrupt checkpoint) before the grid
    instances = [inst for ms in map_sets for inst in build_instances(ms, cfg)]
    if not instances:
        raise ValueError("the grid is empty: no map set / map / agent count / seed left after the filters")
    tasks = make_tasks(names, instances)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval_config.yaml").write_text(configs.to_yaml(cfg))
    workers = min(cfg.workers or os.cpu_count() or 1, len(tasks))
    t0 = time.perf_counter()
    rows = run_tasks(tasks, cfg.algorithms, workers, cfg.progress)
    wall = time.perf_counter() - t0
    write_results(rows, out)
    steps = {"max_episode_steps": cfg.max_episode_steps} if cfg.max_episode_steps else {}
    write_toolbox_configs(rows, out, {(ms.name, ms.mode): {**ms.env, **steps} for ms in map_sets})
    return rows, {"wall_seconds": wall, "workers": workers}


def _stored_rows(cfg: EvalConfig, names: list[str], map_sets: list[MapSet]) -> tuple[list[dict], dict]:
    """``report_only``: our rows back from the result JSONs in ``out_dir``, narrowed to this config's grid
    (algorithms, map sets, maps, agent counts, seeds, caps), with the wall time and workers of the run
    that wrote them when the rows are exactly that run's (else unknown: a subset has no wall time)."""
    out = Path(cfg.out_dir)
    grid = {
        (ms.name, ms.mode, inst.map_name, inst.num_agents, inst.seed)
        for ms in map_sets
        for inst in build_instances(ms, cfg)
    }
    stored = read_results(out)
    rows = [
        r
        for r in stored
        if r["algorithm"] in names
        and (r["map_set"], r["mode"], r["map_name"], r["num_agents"], r["seed"]) in grid
    ]
    missing = [name for name in names if not any(r["algorithm"] == name for r in rows)]
    if missing:
        raise ValueError(
            f"report_only=true but {out} holds no results of {', '.join(missing)} on this grid "
            f"({', '.join(ms.label for ms in map_sets)}); run without report_only first"
        )
    rows.sort(key=lambda r: names.index(r["algorithm"]))  # tables list algorithms in ``run`` order
    timing = {"wall_seconds": float("nan"), "workers": 0}
    try:
        figures = json.loads((out / "figures.json").read_text())
        if len(rows) == len(stored) == int(figures["episodes"]):
            timing = {"wall_seconds": float(figures["wall_seconds"]), "workers": int(figures["workers"])}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return rows, timing


def evaluate(cfg: EvalConfig, echo: bool = True) -> dict:
    """Run the grid, write results / tables / plots under ``cfg.out_dir``; returns a summary dict with
    ``rows`` (ours), ``published`` (on the same instances), ``report`` (markdown) and timing figures."""
    names = cfg.selected_algorithms
    map_sets = _map_sets(cfg)
    out = Path(cfg.out_dir)
    if cfg.report_only:
        rows, timing = _stored_rows(cfg, names, map_sets)
    else:
        rows, timing = _run_grid(cfg, names, map_sets)
    wall, workers = timing["wall_seconds"], timing["workers"]
    agent_steps = sum(r["num_agents"] * r["metrics"]["ep_length"] for r in rows)

    published: list[dict] = []
    if cfg.published:
        for ms in map_sets:
            if published_folder(cfg.benchmark_dir, ms.name, ms.mode) is None:
                continue
            seed = ms.seeds[0]
            pub = load_published(cfg.benchmark_dir, ms.name, ms.mode, cfg.published_algorithms or None, seed)
            published += on_same_instances(pub, rows)
    everything = rows + published
    add_runtime_per_step(everything, {(ms.name, ms.mode): ms.env["max_episode_steps"] for ms in map_sets})
    if published:
        write_csv(everything, out / "comparison.csv")
    text = report(everything)
    per_algo: dict[str, dict[str, float]] = {}
    for r in rows:  # algorithm-only throughput: agent-steps per second spent inside the algorithm
        a = per_algo.setdefault(r["algorithm"], {"agent_steps": 0.0, "runtime_s": 0.0})
        a["agent_steps"] += r["num_agents"] * r["metrics"]["ep_length"]
        a["runtime_s"] += r["metrics"]["runtime"]
    for a in per_algo.values():
        a["agent_steps_per_second"] = (
            round(a["agent_steps"] / a["runtime_s"], 1) if a["runtime_s"] > 0 else None
        )
        a["runtime_s"] = round(a["runtime_s"], 3)
    figures = {
        "episodes": len(rows),
        "wall_seconds": round(wall, 2),
        "agent_steps": int(agent_steps),
        "agent_steps_per_second": round(agent_steps / wall, 1) if wall > 0 else float("nan"),
        "workers": workers,
        "algorithms": per_algo,
    }
    pub_note = (
        " Rows marked (published) are the POGEMA benchmark's, on the same instances." if published else ""
    )
    if wall == wall:  # not NaN
        timing_text = (
            f"{len(rows)} episodes in {wall:.1f} s with {workers} worker(s): "
            f"{figures['agent_steps_per_second']} agent-steps/s, environment included."
        )
    else:
        timing_text = (
            f"{len(rows)} episodes, re-reported from stored results (a subset of a run: no wall time)."
        )
    header = (
        f"# srmt eval: {', '.join(names)} on {', '.join(ms.label for ms in map_sets)}\n\n"
        f"{timing_text}{pub_note}\n\n"
    )
    (out / "summary.md").write_text(header + text)
    if not cfg.report_only:  # the run's own timing stays; a re-report has none of its own
        (out / "figures.json").write_text(json.dumps(figures, indent=1))
    plots = []
    if cfg.plots:
        from agents.eval.plots import plot_all

        plots = plot_all(everything, out / "plots")
    if echo:
        print(header + text)
        print(f"results in {out}/ (JSON per algorithm, results.csv, summary.md{', plots/' if plots else ''})")
    return {"rows": rows, "published": published, "report": text, "figures": figures, "plots": plots}


def enjoy(cfg: EvalConfig, echo: bool = True) -> Path:
    """Run one episode of ``cfg.enjoy.algorithm`` and write it as an animated SVG; returns the path."""
    e = cfg.enjoy
    if e.algorithm not in cfg.algorithms:
        raise ValueError(f"enjoy.algorithm {e.algorithm!r} unknown; known: {', '.join(cfg.algorithms)}")
    ms = load_map_set(resolve_map_set(e.map_set or cfg.map_sets[0], cfg.mode, cfg.benchmark_dir))
    narrowed = replace(
        cfg,
        maps=[e.map_name] if e.map_name else [],
        max_maps=1,
        num_agents=[e.num_agents],
        seeds=[e.seed] if e.seed >= 0 else [],
        max_episode_steps=e.max_steps,
        max_episodes=1,
    )
    inst = build_instances(ms, narrowed)[0]
    built = build_algorithm(cfg.algorithms[e.algorithm])
    env = make_episode_env(inst, built.backend, built.env_base)
    metrics, traj = run_episode(env, built.algorithm, episode_seed(inst), record=True)
    assert traj is not None
    shown = {k: v for k, v in metrics.items() if k in ("avg_throughput", "CSR", "ISR", "SoC")}
    summary = ", ".join(f"{k}={v:.3g}" for k, v in shown.items())
    title = f"{e.algorithm} | {inst.map_name} | {inst.num_agents} agents | {summary}"
    path = Path(e.out or Path(cfg.out_dir) / "enjoy" / f"{e.algorithm}-{inst.map_name}-{inst.num_agents}.svg")
    write_svg(traj, path, cell_px=e.cell_px, seconds_per_step=e.seconds_per_step, title=title)
    if echo:
        print(f"{title}\nwrote {path}")
    return path
