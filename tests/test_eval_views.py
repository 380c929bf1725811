"""Views: the SVG animation (step counter, numbered agents and goals, distinct colours, a title that fits)
and the plots (one colour per algorithm whatever the run order, labelled axes, a legend)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from agents.eval.animation import _title_lines, agent_colors, trajectory_svg
from agents.eval.episode import Trajectory
from agents.eval.plots import color_of, figure

NS = "{http://www.w3.org/2000/svg}"


def _traj(A: int = 3, T: int = 5) -> Trajectory:
    obstacles = np.zeros((8 + 2, 8 + 2), dtype=np.int8)  # radius-1 border around an 8x8 map
    obstacles[3, 4] = 1
    traj = Trajectory(obstacles=obstacles, obs_radius=1)
    for t in range(T + 1):
        traj.positions.append(np.array([[1 + (i % 8), 1 + min(t, 7)] for i in range(A)]))
        traj.goals.append(np.array([[1 + (i % 8), 8] for i in range(A)]))
        traj.active.append(np.ones(A, dtype=bool))
    return traj


def test_svg_has_a_step_counter_shown_one_step_at_a_time():
    svg = trajectory_svg(_traj(T=5), title="PIBT | map | 3 agents")
    root = ET.fromstring(svg)
    counters = [t for t in root.iter(f"{NS}text") if (t.text or "").startswith("step ")]
    assert [t.text for t in counters] == [f"step {k}/5" for k in range(6)]
    for k, t in enumerate(counters):
        anim = t.find(f"{NS}animate")
        vals = anim.get("values").split(";")
        keys = [float(x) for x in anim.get("keyTimes").split(";")]
        assert len(vals) == len(keys) and keys[0] == 0.0 and anim.get("calcMode") == "discrete"
        # visible exactly from k/T on (until (k+1)/T)
        visible_from = keys[vals.index("1")]
        assert visible_from == pytest.approx(k / 5)


def test_agents_and_goals_are_numbered_and_colours_distinct():
    A = 40
    root = ET.fromstring(trajectory_svg(_traj(A=A)))
    labels = [t.text for t in root.iter(f"{NS}text") if (t.text or "").isdigit()]
    assert sorted(labels, key=int) == sorted([str(i) for i in range(A)] * 2, key=int)  # disc + goal each
    assert len(set(agent_colors(A))) == A
    rings = [c for c in root.findall(f"{NS}circle") if c.get("fill") == "none"]
    discs = [c for c in root.findall(f"{NS}circle") if c.get("fill") != "none"]
    assert [r.get("stroke") for r in rings] == [d.get("fill") for d in discs]  # goal i wears agent i's colour


def test_long_titles_wrap_and_shrink_to_fit():
    title = "FollowerLite | validation-mazes-seed-003 | 64 agents | avg_throughput=1.23, CSR=0.5, ISR=0.7"
    lines, font = _title_lines(title, width_px=8 * 24 - 8)
    assert len(lines) > 1 and all(len(line) * 0.6 * font <= 8 * 24 - 8 + 1e-6 for line in lines)
    assert " | ".join(lines) == title
    svg = trajectory_svg(_traj(), title=title)
    width = float(re.search(r'width="([\d.]+)"', svg).group(1))
    for t in ET.fromstring(svg).iter(f"{NS}text"):
        if t.text and "|" in t.text:
            assert len(t.text) * 0.6 * float(t.get("font-size")) <= width


def _rows(order):
    rows = []
    for algo in order:
        for n in (8, 16):
            for m in range(6):
                rows.append(dict(source="ours", algorithm=algo, map_set="s", mode="lifelong", map_name=f"m{m}",
                                 num_agents=n, seed=0, metrics={"avg_throughput": float(m + len(algo))}))  # fmt: skip
    rows.append(dict(rows[0], source="published", algorithm="RHCR"))
    return rows


def test_plot_colours_follow_names_not_run_order_and_axes_are_labelled():
    import matplotlib.pyplot as plt

    seen = []
    for order in (["PIBT", "MyModel", "AStar"], ["AStar", "PIBT", "MyModel"]):
        fig = figure(_rows(order), "s", "lifelong")
        ax = fig.axes[0]
        seen.append({line.get_label(): line.get_color() for line in ax.get_lines()})
        assert ax.get_xlabel() == "number of agents" and "throughput" in ax.get_ylabel()
        legend = ax.get_legend()
        assert legend is not None and {t.get_text() for t in legend.get_texts()} >= {
            "PIBT",
            "RHCR (published)",
        }
        plt.close(fig)
    assert seen[0] == seen[1]
    assert len(set(seen[0].values())) == len(seen[0])
    assert color_of("Follower (published)") == color_of("Follower")
