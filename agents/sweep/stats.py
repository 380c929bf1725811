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


def markdown(
    summary: list[SummaryRow], lengths: list[dict], meta: dict[str, Any], solve_threshold: float
) -> str:
    conf = int(round(100 * meta.get("confidence", 0.95)))
    lines = [
        f"## Sweep `{meta['name']}`: {meta['experiment']}",
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


def to_json(summary: list[SummaryRow], lengths: list[dict], runs: list[dict], meta: dict) -> str:
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
