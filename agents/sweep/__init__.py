"""``srmt sweep [EXPERIMENT|SWEEP.yaml] [key=value ...]``: cores x seeds on one experiment, one table.

Each (core, seed) is one job (:mod:`agents.sweep.jobs`): ``srmt train`` in its own process and run
folder ``{out_dir}/{name}/runs/{name}-{core}-s{seed}``, then the test evaluation in another process
(what it plays depends on the experiment's env: :mod:`agents.sweep.suites`);
``parallel=N`` jobs run at once, locally or (``backend=dask``) as tasks on a Dask cluster. The results
are gathered into ``{out_dir}/{name}/table.md``, ``summary.csv``, ``runs.csv`` and ``sweep.json``
(:mod:`agents.sweep.stats`). docs/sweeps.md describes the keys.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from agents.sweep.config import SweepConfig
from agents.sweep.jobs import JobSpec, folder_state, run_job

USAGE = """usage: srmt sweep [EXPERIMENT | SWEEP.yaml] [key=value ...]

Train every core x seed of one experiment (each its own `srmt train` process and run folder), evaluate
each run's latest checkpoint (checkpoint=best: its best by training reward) and write one table with
means and bootstrap CIs over seeds. The env decides the evaluation: a corridor task (bottleneck, cue)
plays its test split of corridor lengths, a POGEMA env (the lifelong recipes) plays map sets through
srmt eval (table per map set and agent count, with the paired difference against the first core), e.g.

  srmt sweep bottleneck-srmt-paper cores=[srmt,rmt,none] seeds=[0,1,2,3,4] parallel=3 device=cuda
  srmt sweep cue-srmt cores=[srmt,rmt,none] seeds=[0,1,2] train.train_for_env_steps=2000000
  srmt sweep lmapf-srmt-guided-64 name=l64 cores=[srmt,rmt,none] seeds=[0,1,2] \
      train.train_for_env_steps=30000000 device=cuda max_maps=32 num_agents=[32,64] eval_workers=16
  srmt sweep bottleneck-srmt backend=dask scheduler=tcp://10.0.0.1:8786

Sweep keys (docs/sweeps.md): name cores seeds parallel backend scheduler existing out_dir checkpoint;
corridor tasks: lengths episodes controls ...; map sets: eval_config map_sets max_maps num_agents
eval_workers eval_overrides; keys starting with env. model. train. eval. or device are experiment
overrides applied to every run. Running the same command again reuses finished runs and their
evaluations.
"""

EXPERIMENT_KEYS = ("env", "model", "train", "eval", "device")


def parse_args(argv: list[str]) -> SweepConfig:
    """Positional experiment (or sweep YAML), then sweep keys and experiment overrides."""
    import configs

    source: str | None = None
    if argv and "=" not in argv[0]:
        source, argv = argv[0], argv[1:]
    sweep_overrides, exp_overrides = [], []
    for arg in argv:
        if "=" not in arg:
            raise configs.ConfigError(f"argument {arg!r} must look like key=value (e.g. seeds=[0,1,2])")
        key = arg.split("=", 1)[0].strip()
        (exp_overrides if key.split(".")[0] in EXPERIMENT_KEYS else sweep_overrides).append(arg)
    base: dict[str, Any] = {}
    if source is not None:
        path = _sweep_file(source)
        if path is not None:
            base = configs.load_yaml(path.read_text(), SweepConfig) or {}
        else:
            base = {"experiment": source}
    if exp_overrides:
        base["overrides"] = [*(base.get("overrides") or []), *exp_overrides]
    return configs.load(SweepConfig, base, sweep_overrides)


def _sweep_file(source: str) -> Path | None:
    """A sweep YAML: under ``configs/sweep/`` or any YAML whose top level names an ``experiment``."""
    import yaml

    import configs

    for cand in (
        Path(source),
        configs.CONFIG_DIR / "sweep" / source,
        configs.CONFIG_DIR / "sweep" / f"{source}.yaml",
    ):
        if cand.is_file():
            try:
                data = yaml.safe_load(cand.read_text())
            except yaml.YAMLError:
                return None
            if isinstance(data, dict) and "experiment" in data:
                return cand
    return None


def sweep_dir(cfg: SweepConfig, name: str) -> Path:
    return (Path(cfg.out_dir) / name).resolve()


def plan(cfg: SweepConfig) -> tuple[str, list[JobSpec]]:
    """The sweep's name and one job per core and seed, every config validated here (one-line errors)."""
    import configs
    from agents.config import load_experiment
    from agents.sweep.suites import suite_for

    base = load_experiment(cfg.experiment, list(cfg.overrides))
    name = cfg.name or base.name
    # the env decides what a run is evaluated on; keys and the test grid fail here, before any training
    suite = suite_for(base.env.name)
    suite.check(cfg, base.env.name)
    eval_key = suite.eval_key(cfg)
    root = sweep_dir(cfg, name)
    jobs = []
    start_before = time.time() + cfg.stop_after_s if cfg.stop_after_s else 0.0
    finish_by = time.time() + cfg.finish_by_s if cfg.finish_by_s else 0.0
    # seed-major order (every core's first seed, then every core's second, ...): a sweep cut short by
    # ``stop_after_s`` or a time limit has compared the cores on the same seeds so far
    pairs = [(core, seed) for core in cfg.cores for seed in cfg.seeds_of(core)]
    rank = {pair: [p for p in pairs if p[0] == pair[0]].index(pair) for pair in pairs}
    for core, seed in sorted(pairs, key=lambda pair: rank[pair]):
        run = f"{name}-{core}-s{seed}"
        exp = load_experiment(
            cfg.experiment,
            [
                *cfg.overrides,
                f"name={run}",
                f"seed={seed}",
                f"model.core={core}",
                f"train.train_dir={root / 'runs'}",
            ],
        )
        spec = JobSpec(
            core=core,
            seed=seed,
            run=run,
            run_dir=str(root / "runs" / run),
            config_yaml=configs.to_yaml(exp),
            config_path=str(root / "configs" / f"{run}.yaml"),
            log_dir=str(root / "logs"),
            result_path=str(root / "results" / f"{run}.json"),
            existing=cfg.existing,
            eval=suite.core_key(eval_key, core),
            eval_options=suite.eval_options(cfg, root, run),
            train_csr=cfg.train_csr,
            timeout_s=cfg.timeout_s,
            budget=cfg.budget,
            target_steps=exp.train.train_for_env_steps,
            start_before=start_before,
            finish_by=finish_by,
            finish_reserve_s=cfg.finish_reserve_s,
            checkpoint=cfg.checkpoint,
        )
        if cfg.existing == "reuse" and folder_state(Path(spec.run_dir), spec.config_yaml) == "different":
            raise configs.ConfigError(
                f"run folder {spec.run_dir} holds another config; nothing is resumed from another run "
                "(existing=overwrite retrains it, or choose another name= / out_dir=)"
            )
        jobs.append(spec)
    return name, jobs


def run_local(jobs: list[JobSpec], parallel: int) -> Iterable[dict]:
    from concurrent.futures import ThreadPoolExecutor, as_completed

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = [pool.submit(run_job, j) for j in jobs]
        try:
            for fut in as_completed(futures):
                yield fut.result()
        except BaseException:
            # Ctrl-C, an error, the caller stopped: start no queued job (the pool's exit would run every
            # one of them); the running ones got the terminal's SIGINT too and are waited for
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def run_dask(jobs: list[JobSpec], parallel: int, scheduler: str) -> Iterable[dict]:
    """Each job a task on a Dask cluster: ``scheduler`` or a LocalCluster of ``parallel`` 1-thread workers."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ValueError("backend=dask needs dask: pip install 'srmt[dask]'") from None
    from agents.sweep.jobs import spec_dict

    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(
            n_workers=parallel, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    try:
        # pure=False: a task is a training run, never deduplicated; one task per run folder
        futures = [client.submit(run_job, spec_dict(j), key=f"srmt-sweep-{j.run}", pure=False) for j in jobs]
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_sweep(cfg: SweepConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the sweep and write its tables; returns ``{name, dir, summary, per_length, runs}``."""
    from agents.config import load_experiment
    from agents.sweep.suites import suite_for

    t0 = time.time()
    name, jobs = plan(cfg)
    suite = suite_for(load_experiment(cfg.experiment, list(cfg.overrides)).env.name)
    root = sweep_dir(cfg, name)
    root.mkdir(parents=True, exist_ok=True)
    log(
        f"[srmt sweep] {name}: {len(cfg.cores)} cores, {len(jobs)} runs, "
        f"{cfg.parallel} at once ({cfg.backend}); evaluation: {suite.describe()}"
        + (f", {cfg.checkpoint} checkpoints" if cfg.checkpoint != "latest" else "")
        + f"; folder {root}"
    )
    results = []
    backend = (
        run_dask(jobs, cfg.parallel, cfg.scheduler)
        if cfg.backend == "dask"
        else run_local(jobs, cfg.parallel)
    )
    for r in backend:
        results.append(r)
        if r["status"] == "ok":
            score = suite.score(r["eval"]["shared"])
            what = "trained and evaluated" if r.get("trained") else "reused"
            log(
                f"[srmt sweep] {len(results)}/{len(jobs)} {r['run']}: {what}, {r['env_steps']:,} agent-steps, "
                f"{suite.score_label} {score:.3f} ({r['wall_s']:.0f} s)"
            )
        else:
            log(f"[srmt sweep] {len(results)}/{len(jobs)} {r['run']}: {r['status'].upper()}: {r['error']}")
    order = {(j.core, j.seed): i for i, j in enumerate(jobs)}
    results.sort(key=lambda r: order[(r["core"], r["seed"])])
    meta = dict(
        name=name,
        experiment=cfg.experiment,
        suite=suite.name,
        overrides=list(cfg.overrides),
        cores=list(cfg.cores),
        seeds={core: cfg.seeds_of(core) for core in cfg.cores},
        action_selection=cfg.action_selection,
        checkpoint=cfg.checkpoint,
        confidence=cfg.confidence,
        bootstrap_resamples=cfg.bootstrap_resamples,
        eval_key=jobs[0].eval if jobs else {},
        wall_s=time.time() - t0,
    )
    from agents.sweep import stats

    try:
        stats.require_scipy()
    except ValueError as e:  # every run's result is saved: the tables can be written elsewhere
        log(
            f"[srmt sweep] tables not written: {e}; the runs' results are saved in {root}/results: the same "
            "command with stop_after_s=0.001 on a machine where scipy imports writes them"
        )
        return dict(name=name, dir=root, summary=[], per_length=[], runs=results, table="")
    out = suite.report(results, cfg, meta)
    for filename, text in out["files"].items():
        (root / filename).write_text(text)
    log(out["table"])
    log(f"[srmt sweep] tables in {root} ({time.time() - t0:.0f} s)")
    return dict(
        name=name,
        dir=root,
        summary=out["summary"],
        per_length=out["per_length"],
        runs=results,
        table=out["table"],
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2  # a bare `srmt sweep` would start 15 trainings: ask for an experiment
    import configs

    try:
        cfg = parse_args(argv)
        out = run_sweep(cfg)
    except (configs.ConfigError, ValueError, FileNotFoundError) as e:
        print(f"srmt sweep: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "srmt sweep: interrupted (finished runs are kept; run the same command to go on)", file=sys.stderr
        )
        return 130
    pending = [r["run"] for r in out["runs"] if r["status"] in ("incomplete", "not_started")]
    if pending:
        print(
            f"srmt sweep: {len(pending)} run(s) to go: {', '.join(pending)}; run the same command to continue"
        )
    failed = [r["run"] for r in out["runs"] if r["status"] == "failed"]
    if failed:
        print(
            f"srmt sweep: {len(failed)} run(s) failed: {', '.join(failed)} (logs in {out['dir']}/logs)",
            file=sys.stderr,
        )
        return 1
    return 0


__all__ = ["SweepConfig", "main", "parse_args", "plan", "run_sweep"]
