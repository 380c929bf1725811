"""Plots against the number of agents: throughput (lifelong) or CSR and SoC (classic), per map set.

Our algorithms are solid lines, published ones dashed; the shaded band is the 95% bootstrap CI of the
mean. Each algorithm keeps one colour in every plot (:func:`color_of`: by name, not by run order).
"""

from __future__ import annotations

import colorsys
import hashlib
from pathlib import Path

from agents.eval.tables import labels_in_order, summarize

# matplotlib's tab20 (strong then light shades), spelled out so the mapping does not depend on a style
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
           "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"]  # fmt: skip
KNOWN = ["PIBT", "AStar", "FollowerLite", "Random", "SRMT", "RATE", "RHCR", "Follower", "MATS-LP", "LaCAM",
         "DCC", "SCRIMP", "MAMBA", "QMIX", "QPLEX", "VDN", "IQL", "ASwitcher", "LSwitcher"]  # fmt: skip
"""Algorithms with a fixed palette colour; any other name gets a colour (a hue) from a hash of the name."""
_YLABELS = {"avg_throughput": "throughput (goals per step)", "CSR": "CSR (share of solved episodes)",
            "SoC": "sum of costs (steps)"}  # fmt: skip


def color_of(label: str) -> str:
    """The colour of an algorithm in every plot: by its name (a published row shares its name's colour)."""
    name = label.removesuffix(" (published)")
    if name in KNOWN:
        return PALETTE[KNOWN.index(name)]
    digest = int(hashlib.md5(name.encode()).hexdigest(), 16)
    hue, light = (digest % 1000) / 1000, (0.35, 0.5)[(digest >> 20) % 2]
    r, g, b = colorsys.hls_to_rgb(hue, light, 0.85)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


PLOT_METRICS = {"lifelong": ["avg_throughput"], "classic": ["CSR", "SoC"]}
_TITLES = {"avg_throughput": "throughput (goals / step)", "CSR": "CSR", "SoC": "sum of costs"}


def figure(rows: list[dict], map_set: str, mode: str):
    """The matplotlib figure of one map set and mode (one panel per metric); the caller closes it."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed (CI, workers, ssh)
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["map_set"] == map_set and r["mode"] == mode]
    metrics = PLOT_METRICS[mode]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    labels = labels_in_order(rows)
    for ax, metric in zip(axes[0], metrics):
        stats = summarize(rows, metric)
        ticks: set[int] = set()
        for lab in labels:
            pts = sorted((n, s) for (ms, md, lb, n), s in stats.items() if lb == lab)
            if not pts:
                continue
            xs = [n for n, _ in pts]
            ys = [s.mean for _, s in pts]
            style = "--" if lab.endswith("(published)") else "-"
            color = color_of(lab)
            lows = [y if s.low != s.low else s.low for y, (_, s) in zip(ys, pts)]  # NaN: one sample, no band
            highs = [y if s.high != s.high else s.high for y, (_, s) in zip(ys, pts)]
            ax.plot(xs, ys, style, marker="o", ms=3, lw=1.6, color=color, label=lab)
            ax.fill_between(xs, lows, highs, color=color, alpha=0.15, lw=0)
            ticks.update(xs)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(ticks))
        ax.set_xticklabels([str(t) for t in sorted(ticks)])
        ax.minorticks_off()
        ax.set_xlabel("number of agents")
        ax.set_ylabel(_YLABELS.get(metric, metric))
        ax.set_title(f"{map_set} ({mode}): {_TITLES.get(metric, metric)}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def plot_map_set(rows: list[dict], map_set: str, mode: str, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    fig = figure(rows, map_set, mode)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_all(rows: list[dict], out_dir: str | Path) -> list[Path]:
    """One plot per map set and mode; env tasks (one agent count: nothing to plot against) have none."""
    return [
        plot_map_set(rows, map_set, mode, Path(out_dir) / f"{map_set}-{mode}.png")
        for map_set, mode in dict.fromkeys((r["map_set"], r["mode"]) for r in rows)
        if mode in PLOT_METRICS
    ]
