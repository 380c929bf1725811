"""Aggregation (mean and 95% confidence interval per map set, algorithm and agent count) and tables.

Intervals are scipy's bootstrap (``scipy.stats.bootstrap``, percentile method, a fixed seed so tables are
reproducible); cells with fewer than :data:`MIN_RELIABLE_N` episodes are marked and the table says why.
Published algorithms are labelled ``"<name> (published)"`` everywhere a row is shown next to ours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
N_RESAMPLES = 2000
MIN_RELIABLE_N = 5
"""Below this many episodes a bootstrap interval says little: such cells carry :data:`FEW_MARK`."""
FEW_MARK = "†"

METRICS = {"lifelong": ["avg_throughput"], "classic": ["CSR", "ISR", "SoC", "makespan"]}
"""Main metrics per mode, as the benchmark reports them; an env task (mode ``env``) shows whatever
metrics its env reports (:func:`env_metrics`)."""
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


@dataclass
class Stat:
    mean: float
    low: float
    """Lower end of the 95% bootstrap confidence interval of the mean (NaN for fewer than 2 values)."""
    high: float
    """Upper end of that interval."""
    n: int

    @property
    def ci(self) -> float:
        """Half-width of the interval (NaN without one)."""
        return (self.high - self.low) / 2

    @property
    def few(self) -> bool:
        """Fewer than :data:`MIN_RELIABLE_N` values: the interval is not to be trusted."""
        return self.n < MIN_RELIABLE_N


def mean_ci(values: list[float] | np.ndarray, seed: int = 0) -> Stat:
    """Mean and 95% percentile-bootstrap interval (``scipy.stats.bootstrap``, seeded: reproducible)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return Stat(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Stat(mean, math.nan, math.nan, 1)
    if np.all(x == x[0]):  # every resample has the same mean; scipy warns about a degenerate sample
        return Stat(mean, mean, mean, n)
    from scipy import stats as scipy_stats  # imported here: training and the envs never need scipy

    res = scipy_stats.bootstrap(
        (x,),
        np.mean,
        confidence_level=CONFIDENCE,
        n_resamples=N_RESAMPLES,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    low, high = res.confidence_interval
    return Stat(mean, float(low), float(high), n)


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


def runtime_reference_rows(runtimes: dict[str, float], rows: list[dict]) -> list[dict]:
    """Rows carrying only :data:`RUNTIME` (``runtimes``: ms per step by name), one per instance of
    ``rows`` (map set, mode, map, agent count), so that the runtime tables show them beside ours."""
    keys = dict.fromkeys((r["map_set"], r["mode"], r["map_name"], r["num_agents"]) for r in rows)
    return [
        {
            "algorithm": name,
            "source": "published",
            "map_set": map_set,
            "mode": mode,
            "map_name": map_name,
            "num_agents": n,
            "metrics": {RUNTIME: float(ms)},
        }
        for name, ms in runtimes.items()
        for map_set, mode, map_name, n in keys
    ]


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
    """One table: algorithms x agent counts, cells ``mean [low, high]``; a header line names the sample size
    and a warning line follows when any cell has fewer than :data:`MIN_RELIABLE_N` episodes."""
    rows = [r for r in rows if r["map_set"] == map_set and r["mode"] == mode]
    stats = summarize(rows, metric)
    if not stats:
        return ""
    counts = sorted({k[3] for k in stats})
    labels = [lab for lab in labels_in_order(rows) if any((map_set, mode, lab, n) in stats for n in counts)]
    maps = len({r["map_name"] for r in rows})
    ns = sorted({s.n for s in stats.values()})
    n_text = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}-{ns[-1]}"
    if metric in HIGHER_IS_BETTER:
        better = " (higher is better)" if HIGHER_IS_BETTER[metric] else " (lower is better)"
    else:
        better = ""  # an env's own metric: srmt does not know its direction
    where = f"{maps} config(s)" if mode == "env" else f"{maps} map(s)"
    lines = [
        f"**{map_set}** ({mode}) — `{metric}`{better}: mean [95% bootstrap CI] over n = {n_text} "
        f"episodes per cell, {where}",
        "",
        "| algorithm | " + " | ".join(f"{n} agents" for n in counts) + " |",
        "|---|" + "---:|" * len(counts),
    ]
    for lab in labels:
        cells = []
        for n in counts:
            s = stats.get((map_set, mode, lab, n))
            if s is None:
                cells.append("")
                continue
            text = fmt(s.mean) if math.isnan(s.ci) else f"{fmt(s.mean)} [{fmt(s.low)}, {fmt(s.high)}]"
            cells.append(text + (FEW_MARK if s.few else ""))
        lines.append(f"| {lab} | " + " | ".join(cells) + " |")
    few = sum(s.few for s in stats.values())
    if few:
        lines += [
            "",
            f"**Warning:** {few} cell(s) marked {FEW_MARK} have fewer than {MIN_RELIABLE_N} episodes: their "
            "intervals are unreliable (run more maps or seeds).",
        ]
    return "\n".join(lines) + "\n"


def env_metrics(rows: list[dict]) -> list[str]:
    """An env task's table metrics: every metric its rows hold, in first-seen order, except the timing
    ones (shown as :data:`RUNTIME`) and ``ep_length`` where the env reports ``episode_length`` itself."""
    names = list(dict.fromkeys(k for r in rows for k in r["metrics"]))
    skip = {"runtime", RUNTIME} | ({"ep_length"} if "episode_length" in names else set())
    return [k for k in names if k not in skip]


def report(rows: list[dict], metrics: dict[str, list[str]] | None = None, runtime: bool = True) -> str:
    """Markdown tables for every map set and mode in ``rows``: main metrics, then runtime per step."""
    metrics = metrics or METRICS
    parts = []
    for map_set, mode in dict.fromkeys((r["map_set"], r["mode"]) for r in rows):
        if mode in metrics:
            main = metrics[mode]
        else:
            main = env_metrics([r for r in rows if r["map_set"] == map_set and r["mode"] == mode])
        for metric in main + ([RUNTIME] if runtime else []):
            table = markdown_table(rows, map_set, mode, metric)
            if table:
                parts.append(table)
    return "\n".join(parts)
