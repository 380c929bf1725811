"""``evaluate(cfg)`` and ``enjoy(cfg)``: what ``srmt eval`` and ``srmt enjoy`` do, callable from Python."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import configs
from agents.eval.algorithms import BuiltAlgorithm, build_algorithm, resolve_file
from agents.eval.animation import text_trace, write_svg
from agents.eval.benchmark import MapSet, build_instances, load_map_set, resolve_map_set
from agents.eval.episode import make_episode_env, run_episode
from agents.eval.executors import open_pool
from agents.eval.published import grid_defaults as published_defaults
from agents.eval.published import load_published, on_same_instances, published_folder
from agents.eval.results import write_csv, write_results
from agents.eval.runner import Task, episode_seed, make_tasks, run_tasks
from agents.eval.store import (
    LOG_DIR,
    EpisodeLog,
    Planned,
    ResultsConflict,
    algorithm_settings,
    clear_results,
    has_foreign_results,
    plan,
    row_key,
    row_of,
)
from agents.eval.tables import add_runtime_per_step, report, runtime_reference_rows
from agents.eval.tasks import describe, env_instances, task_env, task_note
from agents.eval.toolbox import write_toolbox_configs
from agents.eval_config import AlgorithmConfig, EvalConfig
from envs.config import EnvConfig


def load_eval_config(
    source: str | Path | dict | None = None, overrides: list[str] | None = None
) -> EvalConfig:
    """An EvalConfig from a YAML (an eval preset, or an experiment config with an ``eval:`` section) and
    dotted overrides. For an experiment config the overrides use its keys (``eval.run=[PIBT]``)."""
    if source is not None and not isinstance(source, dict):
        path = configs.resolve(source)
        data = configs.load_yaml(path.read_text()) or {}
        if isinstance(data, dict) and "eval" in data:
            from agents.config import ExperimentConfig

            return configs.load(ExperimentConfig, path, overrides).eval
        source = path
    return configs.load(EvalConfig, source, overrides)


def _map_sets(cfg: EvalConfig) -> list[MapSet]:
    return [load_map_set(resolve_map_set(name, cfg.mode, cfg.benchmark_dir)) for name in cfg.map_sets]


def _task_envs(cfg: EvalConfig, names: list[str], missing_ok: bool = False) -> dict[str, EnvConfig | None]:
    """Each algorithm's env task (``agents.eval.tasks``), or None for the map sets. Builds every
    algorithm, so a missing or corrupt checkpoint fails here, before the grid (``missing_ok``: a
    ``report_only`` run that lacks a checkpoint falls back to ``eval.env`` or the map sets)."""
    out: dict[str, EnvConfig | None] = {}
    for name in names:
        built: BuiltAlgorithm | None
        try:
            built = build_algorithm(cfg.algorithms[name])
        except ValueError:
            if not missing_ok:
                raise
            built = None
        out[name] = task_env(cfg, name, built)
    return out


class EvalInterrupted(KeyboardInterrupt):
    """Ctrl-C during the grid; the message (one line) says what was kept."""


def _grid(
    cfg: EvalConfig,
    names: list[str],
    map_sets: list[MapSet],
    envs: dict[str, EnvConfig | None],
    missing_ok: bool = False,
) -> tuple[list[Task], list[Planned]]:
    """The tasks of this config (map-set instances, or each env task's episodes) and, for each, its
    episode key and settings (``missing_ok``: a checkpoint that is not here matches any stored one)."""
    instances = [inst for ms in map_sets for inst in build_instances(ms, cfg)]
    tasks: list[Task] = []
    for name in names:
        env_cfg = envs[name]
        tasks += make_tasks([name], instances if env_cfg is None else env_instances(env_cfg, cfg))
    if not tasks:
        raise ValueError("the grid is empty: no map set / map / agent count / seed left after the filters")
    settings = {name: algorithm_settings(cfg.algorithms[name], missing_ok) for name in names}
    return tasks, plan([(t.algorithm, t.instance) for t in tasks], settings)


def grid_digest(rows: list[dict], planned: dict) -> str:
    """Identifies a set of episodes (keys and settings), to tell whether stored figures are theirs."""
    items = sorted(json.dumps([list(row_key(r)), planned[row_key(r)]], sort_keys=True) for r in rows)
    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:16]


_OVERWRITE_HINT = "use another out_dir, or eval.restart=overwrite to replace them"


def _absolute_checkpoints(cfg: EvalConfig, names: list[str]) -> dict[str, AlgorithmConfig]:
    """Specs with checkpoints resolved here, so every worker (a dask one too) loads the same file."""
    specs = {}
    for name in names:
        spec = cfg.algorithms[name]
        if spec.checkpoint and spec.kind in ("follower_lite", "srmt", "rate"):
            path = resolve_file(spec.checkpoint, f"{spec.kind} checkpoint", folders=spec.kind == "srmt")
            spec = replace(spec, checkpoint=str(path))
        specs[name] = spec
    return specs


def _run_grid(
    cfg: EvalConfig, names: list[str], map_sets: list[MapSet], envs: dict[str, EnvConfig | None]
) -> tuple[list[dict], dict]:
    """Run every (algorithm, instance) episode not already in the episode log; writes the config, the
    log (one line per finished episode), then the result JSONs and results.csv of the whole grid."""
    tasks, planned = _grid(cfg, names, map_sets, envs)
    out = Path(cfg.out_dir)
    if cfg.restart == "overwrite":
        clear_results(out)
    elif has_foreign_results(out):
        raise ResultsConflict(
            f"{out} holds result JSONs without an episode log (an older srmt eval or copied files), "
            f"whose settings cannot be checked; {_OVERWRITE_HINT}"
        )
    log = EpisodeLog(out)
    log.load()
    log.check(planned, _OVERWRITE_HINT)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval_config.yaml").write_text(configs.to_yaml(cfg))
    rows: list[dict | None] = [None] * len(tasks)
    todo: list[int] = []
    for i, p in enumerate(planned):
        rec = log.done(p)
        if rec is None:
            todo.append(i)
        else:
            rows[i] = row_of(rec)
    if todo and len(todo) < len(tasks) and cfg.progress:
        print(
            f"resuming: {len(tasks) - len(todo)} of {len(tasks)} episodes already in {log.root}",
            file=sys.stderr,
        )
    settings_of = {planned[i].key: planned[i].settings for i in todo}

    def save(row: dict) -> None:
        log.append(row, settings_of[row_key(row)])

    specs = _absolute_checkpoints(cfg, names)
    workers = 0
    t0 = time.perf_counter()
    try:
        if todo:
            with open_pool(cfg.backend, cfg.workers, len(todo), cfg.scheduler) as pool:
                workers = pool.workers
                new = run_tasks(
                    [tasks[i] for i in todo],
                    specs,
                    progress=cfg.progress,
                    on_result=save,
                    done_before=len(tasks) - len(todo),
                    pool=pool,
                )
            for i, row in zip(todo, new):
                rows[i] = row
    except KeyboardInterrupt:
        kept = EpisodeLog(out)  # counted on disk: the interrupt may have come between a write and its count
        kept.load()
        n = sum(kept.done(p) is not None for p in planned)
        raise EvalInterrupted(
            f"interrupted; {n} of {len(tasks)} episodes are kept in {log.root} (the same command resumes)"
        ) from None
    wall = time.perf_counter() - t0
    done = [r for r in rows if r is not None]
    write_results(done, out)
    steps = {"max_episode_steps": cfg.max_episode_steps} if cfg.max_episode_steps else {}
    on_maps = [r for r in done if r["mode"] != "env"]  # pogema-toolbox configs describe map-set grids only
    write_toolbox_configs(on_maps, out, {(ms.name, ms.mode): {**ms.env, **steps} for ms in map_sets})
    new_rows = [rows[i] for i in todo]
    digest = grid_digest(done, {p.key: p.settings for p in planned})
    timing = {
        "wall_seconds": wall,
        "workers": workers,
        "backend": cfg.backend,
        "resumed": len(tasks) - len(todo),
        "agent_steps_run": sum(r["num_agents"] * r["metrics"]["ep_length"] for r in new_rows if r),
        "grid": digest,
    }
    if not todo:  # nothing ran: the figures of the run that did it stay, when they are this grid's
        timing = _stored_timing(out, digest)
    return done, timing


def _stored_timing(out: Path, digest: str) -> dict:
    """The wall time and workers of the run that produced exactly these episodes (from its
    ``figures.json``), else unknown (NaN): a subset or another grid has no wall time of its own."""
    timing: dict = {"wall_seconds": float("nan"), "workers": 0, "stored": True}
    try:
        figures = json.loads((out / "figures.json").read_text())
        if figures.get("grid") == digest:
            timing.update(
                wall_seconds=float(figures["wall_seconds"]),
                workers=int(figures["workers"]),
                backend=str(figures["backend"]),
                resumed=int(figures["resumed"]),
                agent_steps_run=int(figures["agent_steps_run"]),
                grid=digest,
            )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return timing


def _stored_rows(
    cfg: EvalConfig, names: list[str], map_sets: list[MapSet], envs: dict[str, EnvConfig | None]
) -> tuple[list[dict], dict]:
    """``report_only``: our rows back from the episode log in ``out_dir``, narrowed to this config's
    grid (algorithms, map sets, maps, agent counts, seeds, caps) and to episodes whose settings equal
    this config's (episode length, scenarios, checkpoint, action selection, ...)."""
    out = Path(cfg.out_dir)
    tasks, planned = _grid(cfg, names, map_sets, envs, missing_ok=True)
    log = EpisodeLog(out)
    if not log.exists():
        raise ValueError(
            f"report_only=true but {out} has no episode log ({LOG_DIR}/, written by srmt eval with each "
            "episode's settings); run without report_only first, or copy the whole out_dir"
        )
    log.load()
    rows = []
    for p in planned:
        rec = log.done(p)
        if rec is not None:
            rows.append(row_of(rec))
    missing = [name for name in names if not any(r["algorithm"] == name for r in rows)]
    if missing:
        try:  # name the setting that differs, when the log holds these episodes under other settings
            log.check([p for p in planned if p.key[0] in missing], "")
            why = ""
        except ResultsConflict as e:
            why = f" with these settings ({e.what}: {e.difference})"
        raise ValueError(
            f"report_only=true but {out} holds no results of {', '.join(missing)} on this grid "
            f"({_labels(map_sets, envs)}){why}; run without report_only first"
        )
    rows.sort(key=lambda r: names.index(r["algorithm"]))  # tables list algorithms in ``run`` order
    return rows, _stored_timing(out, grid_digest(rows, {p.key: p.settings for p in planned}))


def run_episodes(cfg: EvalConfig) -> list[dict]:
    """Run the grid's episodes (resuming from the episode log in ``out_dir`` as :func:`evaluate` does) and
    write the log, the result JSONs and ``results.csv``, but no tables, published rows or plots; returns
    our rows. What ``srmt sweep`` plays each run with: it needs neither scipy nor matplotlib, so it runs on
    a host whose scipy does not import (docs/training.md)."""
    names = cfg.selected_algorithms
    envs = _task_envs(cfg, names)
    map_sets = _map_sets(cfg) if any(e is None for e in envs.values()) else []
    rows, _ = _run_grid(cfg, names, map_sets, envs)
    return rows


def evaluate(cfg: EvalConfig, echo: bool = True) -> dict:
    """Run the grid, write results / tables / plots under ``cfg.out_dir``; returns a summary dict with
    ``rows`` (ours), ``published`` (on the same instances), ``report`` (markdown) and timing figures."""
    names = cfg.selected_algorithms
    envs = _task_envs(cfg, names, missing_ok=cfg.report_only)
    # map sets are read only when some algorithm plays them (env tasks need no benchmark data)
    map_sets = _map_sets(cfg) if any(e is None for e in envs.values()) else []
    notes = [task_note(cfg, name, e) for name, e in envs.items() if e is not None]
    if echo and cfg.progress:  # before the episodes run; the summary repeats them
        for line in notes:
            print(line, file=sys.stderr)
    out = Path(cfg.out_dir)
    if cfg.report_only:
        rows, timing = _stored_rows(cfg, names, map_sets, envs)
    else:
        rows, timing = _run_grid(cfg, names, map_sets, envs)
    wall, workers = timing["wall_seconds"], timing["workers"]
    agent_steps = sum(r["num_agents"] * r["metrics"]["ep_length"] for r in rows)

    published: list[dict] = []
    if cfg.published:
        for ms in map_sets:
            if published_folder(cfg.benchmark_dir, ms.name, ms.mode) is None:
                continue
            # rows leave out the config's single-valued axes (map_name, num_agents, seed): fill them in
            defaults = published_defaults(ms)
            pub = load_published(
                cfg.benchmark_dir, ms.name, ms.mode, cfg.published_algorithms or None, defaults=defaults
            )
            published += on_same_instances(pub, rows)
    everything = rows + published
    add_runtime_per_step(everything, {(ms.name, ms.mode): ms.env["max_episode_steps"] for ms in map_sets})
    if published:
        write_csv(everything, out / "comparison.csv")
    text = report(everything + runtime_reference_rows(cfg.published_runtimes, rows))
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
    resumed = int(timing.get("resumed", 0))
    steps_run = timing.get("agent_steps_run", agent_steps)
    figures = {
        "episodes": len(rows),
        "wall_seconds": round(wall, 2),
        "agent_steps": int(agent_steps),
        "agent_steps_per_second": round(steps_run / wall, 1) if wall > 0 else float("nan"),
        "workers": workers,
        "backend": timing.get("backend", cfg.backend),
        "resumed": resumed,
        "agent_steps_run": int(steps_run),
        "grid": timing.get("grid", ""),
        "algorithms": per_algo,
    }
    pub_note = (
        " Rows marked (published) are the POGEMA benchmark's, on the same instances." if published else ""
    )
    if cfg.published_runtimes:
        pub_note += (
            f" {', '.join(f'{n} (published)' for n in cfg.published_runtimes)}: a published decision time "
            "(eval.published_runtimes), measured on other instances of this size, not on these."
        )
    if wall != wall:  # NaN
        timing_text = (
            f"{len(rows)} episodes, re-reported from stored results (a subset of a run: no wall time)."
        )
    elif resumed:
        timing_text = (
            f"{len(rows)} episodes, {resumed} of them kept from an interrupted run; the other "
            f"{len(rows) - resumed} in {wall:.1f} s with {workers} worker(s): "
            f"{figures['agent_steps_per_second']} agent-steps/s, environment included."
        )
    else:
        timing_text = (
            f"{len(rows)} episodes in {wall:.1f} s with {workers} worker(s): "
            f"{figures['agent_steps_per_second']} agent-steps/s, environment included."
        )
    header = (
        f"# srmt eval: {', '.join(names)} on {_labels(map_sets, envs)}\n\n"
        f"{timing_text}{pub_note}\n\n" + "".join(f"{line}.\n\n" for line in notes)
    )
    (out / "summary.md").write_text(header + text)
    if not timing.get("stored"):  # a run's own timing stays; a re-report has none of its own
        (out / "figures.json").write_text(json.dumps(figures, indent=1))
    plots = []
    if cfg.plots:
        from agents.eval.plots import plot_all

        plots = plot_all(everything, out / "plots")
    if echo:
        print(header + text)
        print(f"results in {out}/ (JSON per algorithm, results.csv, summary.md{', plots/' if plots else ''})")
    return {"rows": rows, "published": published, "report": text, "figures": figures, "plots": plots}


def _labels(map_sets: list[MapSet], envs: dict[str, EnvConfig | None]) -> str:
    tasks = dict.fromkeys(f"env {e.name}" for e in envs.values() if e is not None)
    return ", ".join([ms.label for ms in map_sets] + list(tasks))


def enjoy(cfg: EvalConfig, echo: bool = True) -> Path:
    """Run one episode of ``cfg.enjoy.algorithm`` and write it as an animated SVG; returns the path.
    An env task (a non-grid env: nothing to draw) is written as a text trace of per-step actions and
    rewards instead."""
    e = cfg.enjoy
    if e.algorithm not in cfg.algorithms:
        raise ValueError(f"enjoy.algorithm {e.algorithm!r} unknown; known: {', '.join(cfg.algorithms)}")
    built = build_algorithm(cfg.algorithms[e.algorithm])
    env_cfg = task_env(cfg, e.algorithm, built)
    if env_cfg is not None:
        return _enjoy_env_task(cfg, built, env_cfg, echo)
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


def _enjoy_env_task(cfg: EvalConfig, built: BuiltAlgorithm, env_cfg: EnvConfig, echo: bool) -> Path:
    """``srmt enjoy`` on an env task: one seeded episode as a text trace (``.txt``) of every step's
    actions and rewards, with the env's metrics."""
    from envs import env_spec

    e = cfg.enjoy
    narrowed = replace(cfg, seeds=[max(e.seed, 0)], max_episodes=1, max_episode_steps=e.max_steps, episodes=1)
    inst = env_instances(env_cfg, narrowed)[0]
    metrics, traj = run_episode(make_episode_env(inst), built.algorithm, episode_seed(inst), record=True)
    assert traj is not None
    summary = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k != "runtime")
    title = f"{e.algorithm} | {describe(env_cfg)} | {inst.num_agents} agents | seed {inst.seed} | {summary}"
    default = Path(cfg.out_dir) / "enjoy" / f"{e.algorithm}-{env_cfg.name}-{inst.num_agents}.txt"
    path = Path(e.out).with_suffix(".txt") if e.out else default
    lines = text_trace(traj.actions, traj.rewards, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    if echo:
        why = (
            "an env task is not drawn (enjoy draws map-set episodes)"
            if env_spec(env_cfg.name).grid
            else "not a POGEMA grid, so there is no grid to draw"
        )
        print(
            f"{describe(env_cfg)}: {why}; wrote the episode as a text trace (per-step actions and rewards) "
            f"to {path} instead; enjoy.map_set, map_name and num_agents do not apply"
        )
        shown = lines if len(lines) <= 40 else [*lines[:38], f"... ({len(lines) - 38} more lines in {path})"]
        print("\n".join(shown))
    return path
