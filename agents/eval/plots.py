"""Plots against the number of agents: throughput (lifelong) or CSR and SoC (classic), per map set.

Our algorithms are solid lines, published ones dashed; the shaded band is the 95% CI of the mean.
"""

from __future__ import annotations

from pathlib import Path

from agents.eval.tables import labels_in_order, summarize

PLOT_METRICS = {"lifelong": ["avg_throughput"], "classic": ["CSR", "SoC"]}
_TITLES = {"avg_throughput": "throughput (goals / step)", "CSR": "CSR", "SoC": "sum of costs"}


def plot_map_set(rows: list[dict], map_set: str, mode: str, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed (CI, workers, ssh)
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["map_set"] == map_set and r["mode"] == mode]
    metrics = PLOT_METRICS[mode]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    labels = labels_in_order(rows)
    cmap = plt.get_cmap("tab10")
    for ax, metric in zip(axes[0], metrics):
        stats = summarize(rows, metric)
        ticks: set[int] = set()
        for k, lab in enumerate(labels):
            pts = sorted((n, s) for (ms, md, lb, n), s in stats.items() if lb == lab)
            if not pts:
                continue
            xs = [n for n, _ in pts]
            ys = [s.mean for _, s in pts]
            ci = [0.0 if s.ci != s.ci else s.ci for _, s in pts]  # NaN (one sample) -> no band
            style = "--" if lab.endswith("(published)") else "-"
            ax.plot(xs, ys, style, marker="o", ms=3, lw=1.6, color=cmap(k % 10), label=lab)
            ax.fill_between(xs, [y - c for y, c in zip(ys, ci)], [y + c for y, c in zip(ys, ci)],
                            color=cmap(k % 10), alpha=0.15, lw=0)  # fmt: skip
            ticks.update(xs)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(ticks))
        ax.set_xticklabels([str(t) for t in sorted(ticks)])
        ax.minorticks_off()
        ax.set_xlabel("number of agents")
        ax.set_title(f"{map_set} ({mode}): {_TITLES.get(metric, metric)}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_all(rows: list[dict], out_dir: str | Path) -> list[Path]:
    return [
        plot_map_set(rows, map_set, mode, Path(out_dir) / f"{map_set}-{mode}.png")
        for map_set, mode in dict.fromkeys((r["map_set"], r["mode"]) for r in rows)
    ]
