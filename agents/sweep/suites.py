"""What a sweep evaluates, chosen by the experiment's env: one suite per kind of task.

- :class:`CorridorSuite`: the corridor tasks (Bottleneck, ``cue``, ``cue_partner``): the run's checkpoint on
  the task's test split of corridor lengths (``agents.sf.evaluate.evaluate_bottleneck``), optionally under
  SRMT's pool controls; a run's score is its test CSR averaged over the lengths.
- :class:`MapSetSuite`: POGEMA grid envs (the lifelong recipes): the run's checkpoint through ``srmt
  eval``'s own machinery (``agents.eval.api.run_episodes``: its episode log, resume and result files,
  in ``{sweep}/evals/{run}/``) on the map sets of an eval config, narrowed by ``map_sets`` /
  ``max_maps`` / ``num_agents``; a cell is a (map set, agent count) and a run's score
  there is its throughput (lifelong; classic: CSR) averaged over the cell's maps and episodes.

:func:`suite_for` is the one dispatch: ``plan`` (validation and the evaluation keys), the evaluation
process (``python -m agents.sweep.evaluate``) and the tables all go through the suite it returns. Each
suite names the :class:`SweepConfig` keys only it reads; a key of another suite set away from its
default is a one-line error, so a sweep never silently ignores what it was told.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import configs
from agents.sweep.config import SweepConfig


class Suite:
    """The evaluation and tables of one kind of task (see the module docstring)."""

    name = ""
    keys: tuple[str, ...] = ()
    """SweepConfig keys only this suite reads."""
    score_label = "score"

    def check(self, cfg: SweepConfig, env_name: str) -> None:
        """One-line errors for the keys of other suites set away from their defaults."""
        defaults = SweepConfig()
        for other in SUITES:
            for key in other.keys:
                if key not in self.keys and getattr(cfg, key) != getattr(defaults, key):
                    raise configs.ConfigError(
                        f"{key}={getattr(cfg, key)!r} applies to {other.describe()}; env.name={env_name!r} "
                        f"is evaluated on {self.describe()} (its keys: {', '.join(self.keys)})"
                    )

    def describe(self) -> str:
        raise NotImplementedError

    def eval_key(self, cfg: SweepConfig) -> dict[str, Any]:
        """The evaluation keys every run's cached evaluation must match (validated here: one-line errors
        before any training)."""
        raise NotImplementedError

    def core_key(self, key: dict[str, Any], core: str) -> dict[str, Any]:
        """The evaluation keys of one core's runs."""
        return key

    def eval_options(self, cfg: SweepConfig, root: Path, run: str) -> dict[str, Any]:
        """Settings of the evaluation process that do not change its results (not part of the key)."""
        return {}

    def evaluate(
        self, run_dir: Path, checkpoint: Path, key: dict, options: dict, log: Callable[[str], None]
    ) -> dict[str, list[dict]]:
        """In the evaluation process: ``{pool: rows}`` (``shared`` = the model as trained)."""
        raise NotImplementedError

    def score(self, rows: list[dict]) -> float:
        """A run's score from its rows (for the progress line)."""
        raise NotImplementedError

    def report(self, runs: list[dict], cfg: SweepConfig, meta: dict[str, Any]) -> dict[str, Any]:
        """``{table, summary, per_length, files: {name: text}}`` from the runs' result dicts."""
        raise NotImplementedError


class CorridorSuite(Suite):
    name = "corridor"
    keys = (
        "lengths",
        "episodes",
        "eval_seed",
        "eval_envs",
        "eval_threads",
        "controls",
        "solve_threshold",
        "train_csr",
    )
    score_label = "test CSR"

    def describe(self) -> str:
        from envs.cue import CORRIDOR_TASKS

        return f"the corridor tasks' test split ({', '.join(CORRIDOR_TASKS)})"

    def eval_key(self, cfg: SweepConfig) -> dict[str, Any]:
        # the same keys as before map-set sweeps existed: evaluations of earlier sweeps stay reusable
        return dict(
            lengths=list(cfg.lengths),
            episodes=cfg.episodes,
            eval_seed=cfg.eval_seed,
            eval_envs=cfg.eval_envs,
            eval_threads=cfg.eval_threads,
            eval_device=cfg.eval_device,
            action_selection=cfg.action_selection,
            controls=list(cfg.controls),
        )

    def core_key(self, key: dict[str, Any], core: str) -> dict[str, Any]:
        # pool controls exist for srmt only: other cores' evaluations do not depend on them
        return key if core == "srmt" else {**key, "controls": []}

    def evaluate(
        self, run_dir: Path, checkpoint: Path, key: dict, options: dict, log: Callable[[str], None]
    ) -> dict[str, list[dict]]:
        import time

        import torch

        from agents.sf.checkpoint import load_policy
        from agents.sf.evaluate import evaluate_bottleneck
        from agents.sweep.evaluate import test_lengths

        torch.set_num_threads(int(key["eval_threads"]))
        t0 = time.time()
        net, exp = load_policy(checkpoint, key["eval_device"])
        lengths = test_lengths(exp.env.name, key["lengths"])
        pools = ["shared"] + (list(key["controls"]) if exp.model.core == "srmt" else [])
        results = {}
        for pool in pools:
            results[pool] = evaluate_bottleneck(
                (net, exp),
                lengths,
                int(key["episodes"]),
                key["eval_device"],
                seed=int(key["eval_seed"]),
                num_envs=int(key["eval_envs"]),
                deterministic=key["action_selection"] == "argmax",
                pool=pool,
            )
            log(f"[srmt sweep] {run_dir.name} pool={pool}: {time.time() - t0:.0f} s")
        return results

    def score(self, rows: list[dict]) -> float:
        return sum(row["CSR"] for row in rows) / max(len(rows), 1)

    def report(self, runs: list[dict], cfg: SweepConfig, meta: dict[str, Any]) -> dict[str, Any]:
        from agents.sweep import stats
        from envs.bottleneck import test_corridor_lengths

        summary, per_length = stats.summarise(
            runs, cfg.solve_threshold, cfg.confidence, cfg.bootstrap_resamples
        )
        meta = dict(
            meta,
            num_lengths=len(cfg.lengths or test_corridor_lengths()),
            episodes=cfg.episodes,
            eval_seed=cfg.eval_seed,
            train_csr=cfg.train_csr,
            solve_threshold=cfg.solve_threshold,
        )
        table = stats.markdown(summary, per_length, meta, cfg.solve_threshold)
        files = {
            "table.md": table,
            "summary.csv": stats.summary_csv(summary),
            "runs.csv": stats.runs_csv(runs),
            "sweep.json": stats.to_json(summary, per_length, runs, meta),
        }
        return dict(table=table, summary=summary, per_length=per_length, files=files)


METRIC_OF_MODE = {"lifelong": "avg_throughput", "classic": "CSR"}
"""A map-set cell's score: the benchmark's headline metric of the mode (throughput = goals per step)."""


class MapSetSuite(Suite):
    name = "map_sets"
    keys = ("eval_config", "map_sets", "max_maps", "num_agents", "eval_workers", "eval_overrides")
    score_label = "mean over cells"

    def describe(self) -> str:
        return "map sets through srmt eval (POGEMA grid envs)"

    @staticmethod
    def eval_config(key: dict[str, Any], **changes: Any) -> Any:
        """The EvalConfig of the key: its eval config and overrides, narrowed by the sweep's keys, with
        no published rows, plots or progress bar; ``changes`` set the rest (algorithms, run, out_dir)."""
        from agents.eval.api import load_eval_config

        cfg = load_eval_config(key["eval_config"], list(key["eval_overrides"]))
        narrow: dict[str, Any] = dict(published=False, plots=False, progress=False)
        if key["map_sets"]:
            narrow["map_sets"] = list(key["map_sets"])
        if key["max_maps"]:
            narrow["max_maps"] = int(key["max_maps"])
        if key["num_agents"]:
            narrow["num_agents"] = [int(n) for n in key["num_agents"]]
        return dataclasses.replace(cfg, **narrow, **changes)

    def eval_key(self, cfg: SweepConfig) -> dict[str, Any]:
        from agents.eval.benchmark import build_instances, load_map_set, resolve_map_set
        from agents.eval.store import instance_settings, map_set_settings

        key: dict[str, Any] = dict(
            suite=self.name,
            eval_config=cfg.eval_config,
            map_sets=list(cfg.map_sets),
            max_maps=cfg.max_maps,
            num_agents=list(cfg.num_agents),
            eval_overrides=list(cfg.eval_overrides),
            eval_device=cfg.eval_device,
            action_selection=cfg.action_selection,
        )
        where = f"eval_config {cfg.eval_config!r}" + (
            f" with eval_overrides {list(cfg.eval_overrides)}" if cfg.eval_overrides else ""
        )
        try:
            ecfg = self.eval_config(key, algorithms={}, run=[])
            instances = []
            if ecfg.env is None:
                for name in ecfg.map_sets:
                    ms = load_map_set(resolve_map_set(name, ecfg.mode, ecfg.benchmark_dir))
                    instances += build_instances(ms, ecfg)
        except ValueError as e:  # ConfigError included: one line, said where it comes from
            raise configs.ConfigError(f"{where}: {e}") from None
        if ecfg.env is not None:
            raise configs.ConfigError(f"{where} plays an env task (eval.env); a map-set sweep needs map sets")
        if not instances:
            raise configs.ConfigError(
                f"the evaluation grid of {where} is empty (no map / agent count / seed left after map_sets, "
                "max_maps, num_agents and eval_overrides)"
            )
        # the episodes themselves (maps, scenarios, episode length, ...): a changed eval config or map-set
        # file is another evaluation even under the same key names
        items = sorted(
            json.dumps(
                [
                    i.map_set,
                    i.mode,
                    i.map_name,
                    i.num_agents,
                    i.seed,
                    map_set_settings(i),
                    instance_settings(i),
                ],
                sort_keys=True,
            )
            for i in instances
        )
        key["grid"] = hashlib.sha256("\n".join(items).encode()).hexdigest()[:16]
        key["episodes_per_run"] = len(instances)
        return key

    def eval_options(self, cfg: SweepConfig, root: Path, run: str) -> dict[str, Any]:
        return dict(workers=cfg.eval_workers, out_dir=str(root / "evals" / run))

    def evaluate(
        self, run_dir: Path, checkpoint: Path, key: dict, options: dict, log: Callable[[str], None]
    ) -> dict[str, list[dict]]:
        from agents.eval.api import run_episodes
        from agents.eval.store import ResultsConflict
        from agents.eval_config import AlgorithmConfig

        name = run_dir.name
        algorithm = AlgorithmConfig(
            kind="srmt",
            checkpoint=str(checkpoint),
            action_selection=key["action_selection"],
            device=key["eval_device"],
        )
        restart = options.get("restart", "resume")
        ecfg = self.eval_config(
            key,
            algorithms={name: algorithm},
            run=[name],
            out_dir=options["out_dir"],
            workers=int(options.get("workers", 0)),
            restart=restart,
        )
        try:  # episodes of this checkpoint and settings already in the run's episode log are kept
            rows = run_episodes(ecfg)
        except ResultsConflict as e:  # another checkpoint or episode settings: this evaluation replaces it
            log(f"[srmt sweep] {name}: {e}; evaluating again from scratch")
            rows = run_episodes(dataclasses.replace(ecfg, restart="overwrite"))
        return {"shared": cells(rows, ecfg.map_sets)}

    def score(self, rows: list[dict]) -> float:
        return sum(c["mean"] for c in rows) / max(len(rows), 1)

    def report(self, runs: list[dict], cfg: SweepConfig, meta: dict[str, Any]) -> dict[str, Any]:
        from agents.sweep import stats

        reference = cfg.cores[0]
        summary = stats.summarise_cells(runs, reference, cfg.confidence, cfg.bootstrap_resamples)
        ok = [r for r in runs if r.get("status") == "ok"]
        meta = dict(
            meta,
            eval_config=cfg.eval_config,
            map_sets=list(cfg.map_sets),
            max_maps=cfg.max_maps,
            num_agents=list(cfg.num_agents),
            eval_overrides=list(cfg.eval_overrides),
            reference=reference,
            metrics=sorted({c["metric"] for r in ok for c in r["eval"]["shared"]}),
            episodes_per_run=meta.get("eval_key", {}).get("episodes_per_run", 0),
        )
        table = stats.cells_markdown(summary, meta)
        files = {
            "table.md": table,
            "summary.csv": stats.cells_csv(summary),
            "runs.csv": stats.cell_runs_csv(runs),
            "sweep.json": stats.to_json(summary, [], runs, meta),
        }
        return dict(table=table, summary=summary, per_length=[], files=files)


def cells(rows: list[dict], map_sets: list[str]) -> list[dict]:
    """Per (map set, agent count): the mean of the mode's metric over the cell's episodes (maps x seeds),
    map sets in the eval config's order, counts ascending."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["map_set"], int(r["num_agents"])), []).append(r)
    order = {name: i for i, name in enumerate(map_sets)}
    out = []
    for (map_set, n), rs in sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], len(order)), kv[0])):
        metric = METRIC_OF_MODE[rs[0]["mode"]]
        values = [float(r["metrics"][metric]) for r in rs]
        out.append(
            dict(
                map_set=map_set,
                num_agents=n,
                mode=rs[0]["mode"],
                metric=metric,
                mean=sum(values) / len(values) if values else math.nan,
                episodes=len(values),
                maps=len({r["map_name"] for r in rs}),
            )
        )
    return out


SUITES: tuple[Suite, ...] = (CorridorSuite(), MapSetSuite())


def suite_for(env_name: str) -> Suite:
    """The suite of an experiment's env: corridor tasks on their test split, POGEMA grid envs on map sets
    (what ``srmt eval`` plays them on); any other env is a one-line error."""
    from envs import env_spec
    from envs.cue import CORRIDOR_TASKS

    if env_name in CORRIDOR_TASKS:
        return SUITES[0]
    try:
        grid = env_spec(env_name).grid
    except (KeyError, ValueError):
        grid = False
    if grid:
        return SUITES[1]
    raise configs.ConfigError(
        f"srmt sweep evaluates the corridor tasks ({', '.join(CORRIDOR_TASKS)}) on their test split and POGEMA "
        f"grid envs on map sets; env.name={env_name!r} is neither (evaluate its runs with srmt eval)"
    )
