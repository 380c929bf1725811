"""Aggregation (mean and 95% confidence interval per map set, algorithm and agent count) and tables.

Published algorithms are labelled ``"<name> (published)"`` everywhere a row is shown next to ours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Student t 0.975 quantiles for small samples; larger ones use a Cornish-Fisher expansion (error < 1e-3).
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042]  # fmt: skip

METRICS = {"lifelong": ["avg_throughput"], "classic": ["CSR", "ISR", "SoC", "makespan"]}
"""Main metrics per mode, as the benchmark reports them."""
RUNTIME = "runtime_ms_per_step"
"""Derived metric: algorithm milliseconds per environment step (``runtime`` / episode length)."""
HIGHER_IS_BETTER = {
    "avg_throughput": True,
    "CSR": True,
    "ISR": True,
    "SoC": False,
    "makespan": False,
    RUNTIME: False,
}


def t975(df: int) -> float:
    """0.975 quantile of Student's t with ``df`` degrees of freedom (two-sided 95% interval)."""
    if df < 1:
        return math.nan
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959963985
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass
class Stat:
    mean: float
    ci: float
    """Half-width of the 95% confidence interval of the mean (NaN for a single value)."""
    n: int


def mean_ci(values: list[float] | np.ndarray) -> Stat:
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return Stat(math.nan, math.nan, 0)
    if n == 1:
        return Stat(float(x[0]), math.nan, 1)
    return Stat(float(x.mean()), t975(n - 1) * float(x.std(ddof=1)) / math.sqrt(n), n)


def label(row: dict) -> str:
    return row["algorithm"] if row["source"] == "ours" else f"{row['algorithm']} (published)"


def add_runtime_per_step(rows: list[dict], episode_steps: dict[tuple[str, str], int]) -> None:
    """Add :data:`RUNTIME` to every row with a ``runtime``; lifelong published rows lack ``ep_length``,
    so their episode length comes from ``episode_steps[(map_set, mode)]``."""
    for r in rows:
        m = r["metrics"]
        if "runtime" not in m:
            continue
        steps = m.get("ep_length") or episode_steps.get((r["map_set"], r["mode"]))
        if steps:
            m[RUNTIME] = 1000.0 * m["runtime"] / steps


def summarize(rows: list[dict], metric: str) -> dict[tuple[str, str, str, int], Stat]:
    """(map_set, mode, label, num_agents) -> Stat of ``metric`` over the rows' episodes."""
    groups: dict[tuple[str, str, str, int], list[float]] = {}
    for r in rows:
        if metric in r["metrics"]:
            key = (r["map_set"], r["mode"], label(r), r["num_agents"])
            groups.setdefault(key, []).append(r["metrics"][metric])
    return {k: mean_ci(v) for k, v in groups.items()}


def fmt(x: float) -> str:
    if math.isnan(x):
        return "—"
    a = abs(x)
    return f"{x:.0f}" if a >= 100 else f"{x:.1f}" if a >= 10 else f"{x:.2f}" if a >= 1 else f"{x:.3f}"


def labels_in_order(rows: list[dict]) -> list[str]:
    """Ours in first-seen order, then published ones alphabetically."""
    ours = list(dict.fromkeys(label(r) for r in rows if r["source"] == "ours"))
    published = sorted({label(r) for r in rows if r["source"] != "ours"})
    return ours + published


def markdown_table(rows: list[dict], map_set: str, mode: str, metric: str) -> str:
    """One table: algorithms x agent counts, cells ``mean ± CI``; a header line names the sample size."""
    rows = [r for r in rows if r["map_set"] == map_set and r["mode"] == mode]
    stats = summarize(rows, metric)
    if not stats:
        return ""
    counts = sorted({k[3] for k in stats})
    labels = [lab for lab in labels_in_order(rows) if any((map_set, mode, lab, n) in stats for n in counts)]
    maps = len({r["map_name"] for r in rows})
    ns = sorted({s.n for s in stats.values()})
    n_text = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}-{ns[-1]}"
    better = "higher is better" if HIGHER_IS_BETTER.get(metric, True) else "lower is better"
    lines = [
        f"**{map_set}** ({mode}) — `{metric}` ({better}): mean ± 95% CI over n = {n_text} episodes "
        f"per cell, {maps} map(s)",
        "",
        "| algorithm | " + " | ".join(f"{n} agents" for n in counts) + " |",
        "|---|" + "---:|" * len(counts),
    ]
    for lab in labels:
        cells = []
        for n in counts:
            s = stats.get((map_set, mode, lab, n))
            cells.append(
                "" if s is None else fmt(s.mean) if math.isnan(s.ci) else f"{fmt(s.mean)} ± {fmt(s.ci)}"
            )
        lines.append(f"| {lab} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def report(rows: list[dict], metrics: dict[str, list[str]] | None = None, runtime: bool = True) -> str:
    """Markdown tables for every map set and mode in ``rows``: main metrics, then runtime per step."""
    metrics = metrics or METRICS
    parts = []
    for map_set, mode in dict.fromkeys((r["map_set"], r["mode"]) for r in rows):
        for metric in metrics[mode] + ([RUNTIME] if runtime else []):
            table = markdown_table(rows, map_set, mode, metric)
            if table:
                parts.append(table)
    return "\n".join(parts)
