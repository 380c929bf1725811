"""Aggregation over seeds: means with bootstrap CIs (scipy), IQM (as rliable: 25% trimmed mean), solve
shares, agent-steps to a training CSR; tables as markdown, CSV and JSON.

A run's score is its test CSR averaged over the corridor lengths (each length: the mean over its
episodes); the intervals are over seeds only (each seed is one sample), percentile bootstrap.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

IQM_MIN_SEEDS = 5
"""IQM is reported from this many seeds on (rliable's recommendation for few runs)."""


def require_scipy() -> None:
    """A one-line ValueError where ``scipy.stats`` does not import (the GPU host's scipy is built for
    numpy 2 and fails under our numpy 1.26 with an AttributeError, hence the broad catch)."""
    try:
        import scipy.stats  # noqa: F401
    except Exception as e:  # noqa: BLE001 - any failure to import is reported the same way
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise ValueError(f"scipy.stats does not import here ({type(e).__name__}: {reason})") from None


def iqm(x: Sequence[float]) -> float:
    """Interquartile mean: the mean of the middle 50% (``scipy.stats.trim_mean(x, 0.25)``, as rliable)."""
    from scipy.stats import trim_mean

    return float(trim_mean(np.asarray(x, dtype=float), 0.25))


def bootstrap_ci(
    x: Sequence[float],
    statistic: Callable[[np.ndarray], float] = np.mean,
    confidence: float = 0.95,
    resamples: int = 10000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``statistic`` over the samples ``x`` (``scipy.stats.bootstrap``);
    NaNs for fewer than 2 samples, the value itself when all samples are equal."""
    from scipy.stats import bootstrap

    a = np.asarray(x, dtype=float)
    if len(a) < 2:
        return math.nan, math.nan
    if np.all(a == a[0]):
        return float(a[0]), float(a[0])

    def stat(sample: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.apply_along_axis(statistic, axis, sample)

    res = bootstrap(
        (a,),
        stat,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@dataclass
class SummaryRow:
    core: str
    control: str
    """``shared`` (the model as trained) or a pool control (``own``, ``other``)."""
    seeds: list[int]
    csr_mean: float
    csr_ci: tuple[float, float]
    csr_iqm: float
    """NaN with fewer than ``IQM_MIN_SEEDS`` seeds."""
    csr_iqm_ci: tuple[float, float]
    solved_share: float
    """Mean over seeds of the share of test lengths solved."""
    seeds_solving_all: int
    steps_to_train_csr: float
    """Median agent-steps to the training CSR over the seeds that reached it (NaN if none did)."""
    seeds_reaching_train_csr: int
    drop: float = math.nan
    """Pool controls: mean over seeds of (CSR as trained - CSR under the control)."""
    drop_ci: tuple[float, float] = (math.nan, math.nan)
    missing: list[str] = field(default_factory=list)
    """Seeds not in the row and why, e.g. ``3 failed``, ``4 incomplete``, ``5 not_started``."""


def _score(rows: list[dict]) -> float:
    return float(np.mean([r["CSR"] for r in rows]))


def summarise(
    runs: list[dict], solve_threshold: float = 0.9, confidence: float = 0.95, resamples: int = 10000
) -> tuple[list[SummaryRow], list[dict[str, Any]]]:
    """Summary rows (one per core and control) and per-length rows from the runs' result dicts."""
    cores = list(dict.fromkeys(r["core"] for r in runs))
    summary: list[SummaryRow] = []
    per_length: dict[int, dict[str, Any]] = {}
    for core in cores:
        mine = [r for r in runs if r["core"] == core]
        ok = [r for r in mine if r.get("status") == "ok"]
        missing = [f"{r['seed']} {r.get('status')}" for r in mine if r.get("status") != "ok"]
        controls = list(dict.fromkeys(c for r in ok for c in r["eval"]))
        for control in controls:
            have = [r for r in ok if control in r["eval"]]
            scores = [_score(r["eval"][control]) for r in have]
            solved = [
                float(np.mean([row["CSR"] >= solve_threshold for row in r["eval"][control]])) for r in have
            ]
            steps = [r["steps_to_train_csr"] for r in have if r.get("steps_to_train_csr") is not None]
            n = len(scores)
            row = SummaryRow(
                core=core,
                control=control,
                seeds=[r["seed"] for r in have],
                csr_mean=float(np.mean(scores)) if n else math.nan,
                csr_ci=bootstrap_ci(scores, np.mean, confidence, resamples),
                csr_iqm=iqm(scores) if n >= IQM_MIN_SEEDS else math.nan,
                csr_iqm_ci=bootstrap_ci(scores, iqm, confidence, resamples)
                if n >= IQM_MIN_SEEDS
                else (math.nan, math.nan),
                solved_share=float(np.mean(solved)) if n else math.nan,
                seeds_solving_all=int(sum(s == 1.0 for s in solved)),
                steps_to_train_csr=float(np.median(steps)) if steps else math.nan,
                seeds_reaching_train_csr=len(steps),
                missing=missing,
            )
            if control != "shared":
                drops = [_score(r["eval"]["shared"]) - _score(r["eval"][control]) for r in have]
                row.drop = float(np.mean(drops)) if drops else math.nan
                row.drop_ci = bootstrap_ci(drops, np.mean, confidence, resamples)
            summary.append(row)
        for r in ok:
            for lrow in r["eval"].get("shared", []):
                entry = per_length.setdefault(int(lrow["L"]), {"L": int(lrow["L"])})
                entry.setdefault(core, []).append(float(lrow["CSR"]))
    lengths = []
    for L in sorted(per_length):
        entry: dict[str, Any] = {"L": L}
        for core in cores:
            vals = per_length[L].get(core, [])
            lo, hi = bootstrap_ci(vals, np.mean, confidence, resamples)
            entry[core] = dict(
                seeds=len(vals),
                solved=int(sum(v >= solve_threshold for v in vals)),
                csr_mean=float(np.mean(vals)) if vals else math.nan,
                csr_ci=(lo, hi),
            )
        lengths.append(entry)
    return summary, lengths


def _f(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _ci(ci: tuple[float, float]) -> str:
    lo, hi = ci
    return "n/a" if math.isnan(lo) else f"[{lo:.3f}, {hi:.3f}]"


def _steps(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x:,.0f}"


def _checkpoint_note(meta: dict[str, Any]) -> str:
    """The table header's note on the checkpoint evaluated: nothing for the latest (the default)."""
    return " (each run's best checkpoint by training reward)" if meta.get("checkpoint") == "best" else ""


def markdown(
    summary: list[SummaryRow], lengths: list[dict], meta: dict[str, Any], solve_threshold: float
) -> str:
    conf = int(round(100 * meta.get("confidence", 0.95)))
    lines = [
        f"## Sweep `{meta['name']}`: {meta['experiment']}{_checkpoint_note(meta)}",
        "",
        f"Test: {meta['num_lengths']} corridor lengths x {meta['episodes']} episodes per length and run "
        f"(eval seed {meta['eval_seed']}, actions {meta['action_selection']}). Score of a run = its test "
        f"CSR averaged over the lengths; mean and IQM over seeds with {conf}% percentile-bootstrap CIs "
        f"(scipy, {meta['bootstrap_resamples']} resamples; IQM from {IQM_MIN_SEEDS} seeds). Solved: "
        f"CSR >= {solve_threshold} at a length. Steps to training CSR {meta['train_csr']}: median over "
        "the seeds that reached it (first `episode/CSR` TensorBoard point at or above it).",
        "",
        f"| core | pool | seeds | mean CSR [{conf}% CI] | IQM [{conf}% CI] | lengths solved (mean over seeds) "
        f"| seeds solving all | steps to train CSR {meta['train_csr']} (seeds reaching) | drop vs trained [CI] |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary:
        seeds = ",".join(map(str, r.seeds)) or "-"
        failed = f" (missing: {', '.join(r.missing)})" if r.missing else ""
        drop = "" if r.control == "shared" else f"{_f(r.drop)} {_ci(r.drop_ci)}"
        lines.append(
            f"| `{r.core}` | {r.control} | {seeds}{failed} | {_f(r.csr_mean)} {_ci(r.csr_ci)} "
            f"| {_f(r.csr_iqm)} {_ci(r.csr_iqm_ci)} | {_f(r.solved_share)} | {r.seeds_solving_all}/{len(r.seeds)} "
            f"| {_steps(r.steps_to_train_csr)} ({r.seeds_reaching_train_csr}/{len(r.seeds)}) | {drop} |"
        )
    cores = [c for c in dict.fromkeys(r.core for r in summary)]
    if lengths:
        lines += [
            "",
            f"Per length (pool as trained): seeds solving it / seeds, mean CSR [{conf}% CI over seeds].",
            "",
            "| L | " + " | ".join(f"`{c}`" for c in cores) + " |",
            "|---|" + "---|" * len(cores),
        ]
        for entry in lengths:
            cells = []
            for c in cores:
                e = entry.get(c)
                cells.append(
                    "-"
                    if not e or not e["seeds"]
                    else f"{e['solved']}/{e['seeds']}, {_f(e['csr_mean'], 2)} {_ci(e['csr_ci'])}"
                )
            lines.append(f"| {entry['L']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary_csv(summary: list[SummaryRow]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        [
            "core",
            "control",
            "seeds",
            "csr_mean",
            "csr_ci_low",
            "csr_ci_high",
            "csr_iqm",
            "csr_iqm_ci_low",
            "csr_iqm_ci_high",
            "solved_share",
            "seeds_solving_all",
            "steps_to_train_csr",
            "seeds_reaching_train_csr",
            "drop",
            "drop_ci_low",
            "drop_ci_high",
            "missing",
        ]
    )
    for r in summary:
        w.writerow(
            [
                r.core,
                r.control,
                " ".join(map(str, r.seeds)),
                r.csr_mean,
                *r.csr_ci,
                r.csr_iqm,
                *r.csr_iqm_ci,
                r.solved_share,
                r.seeds_solving_all,
                r.steps_to_train_csr,
                r.seeds_reaching_train_csr,
                r.drop,
                *r.drop_ci,
                "; ".join(r.missing),
            ]
        )
    return out.getvalue()


def runs_csv(runs: list[dict]) -> str:
    """One row per run, control and length: the raw numbers behind the tables."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["core", "seed", "status", "control", "L", "CSR", "ISR", "episodes", "env_steps", "trapped"])
    for r in runs:
        if r.get("status") != "ok":
            w.writerow([r["core"], r["seed"], r.get("status"), "", "", "", "", "", "", ""])
            continue
        for control, rows in r["eval"].items():
            for row in rows:
                w.writerow(
                    [r["core"], r["seed"], "ok", control, row["L"], row["CSR"], row["ISR"], row["episodes"]]
                    + [r.get("env_steps"), row.get("trapped", "")]
                )
    return out.getvalue()


def to_json(summary: list, lengths: list[dict], runs: list[dict], meta: dict) -> str:
    def clean(x: Any) -> Any:
        if isinstance(x, float) and math.isnan(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    return json.dumps(
        clean(dict(meta=meta, summary=[asdict(r) for r in summary], per_length=lengths, runs=runs)), indent=1
    )


# ------------------------------------------------------------------------ map-set sweeps (cells)


@dataclass
class CellRow:
    """One core in one cell (map set, agent count) of a map-set sweep."""

    map_set: str
    num_agents: int
    core: str
    metric: str
    """``avg_throughput`` (lifelong: goals per step) or ``CSR`` (classic)."""
    seeds: list[int]
    mean: float
    """Mean over seeds of each run's score in the cell (its metric averaged over the cell's episodes)."""
    ci: tuple[float, float]
    episodes: int
    """Episodes per run in the cell (maps x episode seeds)."""
    reference: str = ""
    """The core the paired difference is taken against (empty on the reference's own row)."""
    diff: float = math.nan
    """Mean over the seeds both cores have of (reference's score - this core's score), paired by seed."""
    diff_ci: tuple[float, float] = (math.nan, math.nan)
    diff_seeds: list[int] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """Seeds not in the row and why, e.g. ``3 failed``, ``4 incomplete``."""


def summarise_cells(
    runs: list[dict], reference: str, confidence: float = 0.95, resamples: int = 10000
) -> list[CellRow]:
    """One row per cell and core from the runs' result dicts (``eval.shared`` = cells with ``mean``), in
    (map set, agent count, core) order; every other core gets the paired difference ``reference - core``
    over the seeds both have (runs of one seed share the seed of their generated training maps)."""
    cores = list(dict.fromkeys(r["core"] for r in runs))
    ok = [r for r in runs if r.get("status") == "ok"]
    score: dict[tuple[str, int], dict[str, dict[int, float]]] = {}
    metric: dict[tuple[str, int], str] = {}
    episodes: dict[tuple[str, int], int] = {}
    for r in ok:
        for c in r["eval"]["shared"]:
            cell = (c["map_set"], int(c["num_agents"]))
            score.setdefault(cell, {}).setdefault(r["core"], {})[r["seed"]] = float(c["mean"])
            metric[cell] = c["metric"]
            episodes[cell] = max(episodes.get(cell, 0), int(c["episodes"]))
    set_order = list(dict.fromkeys(c["map_set"] for r in ok for c in r["eval"]["shared"]))
    rows = []
    for cell in sorted(score, key=lambda k: (set_order.index(k[0]), k[1])):
        ref = score[cell].get(reference, {})
        for core in cores:
            mine = score[cell].get(core, {})
            seeds = sorted(mine)
            values = [mine[s] for s in seeds]
            missing = [
                f"{r['seed']} {r.get('status')}"
                for r in runs
                if r["core"] == core and r.get("status") != "ok"
            ]
            row = CellRow(
                map_set=cell[0],
                num_agents=cell[1],
                core=core,
                metric=metric[cell],
                seeds=seeds,
                mean=float(np.mean(values)) if values else math.nan,
                ci=bootstrap_ci(values, np.mean, confidence, resamples),
                episodes=episodes[cell],
                missing=missing,
            )
            if core != reference and ref:
                paired = sorted(set(ref) & set(mine))
                diffs = [ref[s] - mine[s] for s in paired]
                row.reference = reference
                row.diff = float(np.mean(diffs)) if diffs else math.nan
                row.diff_ci = bootstrap_ci(diffs, np.mean, confidence, resamples)
                row.diff_seeds = paired
            rows.append(row)
    return rows


METRIC_LABEL = {"avg_throughput": "throughput", "CSR": "CSR"}


def _signed(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.3f}"


def _signed_ci(ci: tuple[float, float]) -> str:
    lo, hi = ci
    return "n/a" if math.isnan(lo) else f"[{lo:+.3f}, {hi:+.3f}]"


def cells_markdown(rows: list[CellRow], meta: dict[str, Any]) -> str:
    """The map-set sweep's table: per cell and core, the score with its CI over seeds and the paired
    difference against the reference core; then the means alone, one column per core."""
    conf = int(round(100 * meta.get("confidence", 0.95)))
    ref = meta.get("reference", "")
    label = "/".join(METRIC_LABEL.get(m, m) for m in meta.get("metrics", [])) or "score"
    narrowed = [
        f"map sets {', '.join(meta['map_sets'])}" if meta.get("map_sets") else "",
        f"first {meta['max_maps']} maps" if meta.get("max_maps") else "",
        f"agents {', '.join(map(str, meta['num_agents']))}" if meta.get("num_agents") else "",
        f"overrides {' '.join(meta['eval_overrides'])}" if meta.get("eval_overrides") else "",
    ]
    narrowed_text = "; ".join(x for x in narrowed if x)
    lines = [
        f"## Sweep `{meta['name']}`: {meta['experiment']}{_checkpoint_note(meta)}",
        "",
        f"Test: `srmt eval {meta.get('eval_config', '')}`"
        + (f" ({narrowed_text})" if narrowed_text else "")
        + f", {meta.get('episodes_per_run', 0)} episodes per run, the same for every run (actions "
        f"{meta['action_selection']}). A run's score in a cell (map set, agents) = its {label} averaged over "
        f"the cell's episodes (maps x episode seeds); mean over seeds with {conf}% percentile-bootstrap CIs "
        f"(scipy, {meta['bootstrap_resamples']} resamples; one seed: n/a). `{ref} - core`: the "
        "difference paired by training seed over the seeds both cores have (runs of one seed share the "
        f"seed of their generated training maps), mean [{conf}% CI].",
        "",
        f"| map set | agents | core | seeds | {label} [{conf}% CI] | `{ref}` - core [{conf}% CI] (seeds) |",
        "|---|---:|---|---|---|---|",
    ]
    for r in rows:
        seeds = ",".join(map(str, r.seeds)) or "-"
        missing = f" (missing: {', '.join(r.missing)})" if r.missing else ""
        diff = (
            f"{_signed(r.diff)} {_signed_ci(r.diff_ci)} ({','.join(map(str, r.diff_seeds)) or '-'})"
            if r.reference
            else ""
        )
        lines.append(
            f"| {r.map_set} | {r.num_agents} | `{r.core}` | {seeds}{missing} | {_f(r.mean)} {_ci(r.ci)} | {diff} |"
        )
    if not rows:
        lines.append("| (no run finished and evaluated yet) | | | | | |")
    cores = list(dict.fromkeys(r.core for r in rows))
    if rows:
        lines += [
            "",
            f"Mean {label} over seeds:",
            "",
            "| map set | agents | " + " | ".join(f"`{c}`" for c in cores) + " |",
            "|---|---:|" + "---:|" * len(cores),
        ]
        by_cell: dict[tuple[str, int], dict[str, CellRow]] = {}
        for r in rows:
            by_cell.setdefault((r.map_set, r.num_agents), {})[r.core] = r
        for (map_set, n), of in by_cell.items():
            cells = [_f(of[c].mean) if c in of else "-" for c in cores]
            lines.append(f"| {map_set} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def cells_csv(rows: list[CellRow]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        ["map_set", "num_agents", "core", "metric", "seeds", "mean", "ci_low", "ci_high", "episodes"]
        + ["reference", "diff", "diff_ci_low", "diff_ci_high", "diff_seeds", "missing"]
    )
    for r in rows:
        w.writerow(
            [
                r.map_set,
                r.num_agents,
                r.core,
                r.metric,
                " ".join(map(str, r.seeds)),
                r.mean,
                *r.ci,
                r.episodes,
            ]
            + [r.reference, r.diff, *r.diff_ci, " ".join(map(str, r.diff_seeds)), "; ".join(r.missing)]
        )
    return out.getvalue()


def cell_runs_csv(runs: list[dict]) -> str:
    """One row per run and cell: the raw numbers behind the map-set table."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        ["core", "seed", "status", "map_set", "num_agents", "metric", "mean", "episodes", "maps", "env_steps"]
    )
    for r in runs:
        if r.get("status") != "ok":
            w.writerow([r["core"], r["seed"], r.get("status"), "", "", "", "", "", "", ""])
            continue
        for c in r["eval"]["shared"]:
            w.writerow(
                [r["core"], r["seed"], "ok", c["map_set"], c["num_agents"], c["metric"], c["mean"]]
                + [c["episodes"], c["maps"], r.get("env_steps")]
            )
    return out.getvalue()
