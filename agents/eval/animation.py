"""A self-contained animated SVG of one recorded episode (SMIL animations: any browser plays it).

Obstacles are grey squares, each agent a coloured disc with its number moving between cells, its current
goal a ring of the same colour with the same number (it jumps when a lifelong goal is replaced); a step
counter runs under the title, which shrinks or wraps to fit the map's width. Only the map is drawn, not
pogema's border.

Why not pogema's own writer (``pogema.svg_animation``): it animates a pogema env it wraps while the
episode runs (srmt's env backend is not one), cycles 7 colours without numbers (32 agents cannot be told
apart) and has no step counter.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np

from agents.eval.episode import Trajectory


def agent_colors(n: int) -> list[str]:
    """``n`` distinct colours: hues spread by the golden ratio, three lightness levels in turn."""
    out = []
    for i in range(n):
        hue = (i * 0.618033988749895) % 1.0
        light = (0.42, 0.55, 0.32)[(i // 7) % 3]
        r, g, b = colorsys.hls_to_rgb(hue, light, 0.75)
        out.append(f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}")
    return out


def _values(seq: list[float]) -> str:
    return ";".join(f"{v:g}" for v in seq)


def _title_lines(title: str, width_px: float, font_px: float = 12.0) -> tuple[list[str], float]:
    """The title as lines (split at ``" | "``) and a font size such that each line fits ``width_px``
    (a sans-serif glyph is about 0.6 em wide)."""
    if not title:
        return [], font_px
    parts = title.split(" | ")
    lines, cur = [], ""
    for part in parts:
        cand = f"{cur} | {part}" if cur else part
        if cur and len(cand) * 0.6 * font_px > width_px:
            lines.append(cur)
            cur = part
        else:
            cur = cand
    lines.append(cur)
    longest = max(len(line) for line in lines)
    return lines, max(5.0, min(font_px, width_px / (0.6 * longest)))


def trajectory_svg(
    traj: Trajectory, cell_px: int = 24, seconds_per_step: float = 0.25, title: str = ""
) -> str:
    """The SVG document (a string) animating ``traj``; plays in a loop."""
    if not traj.positions:
        raise ValueError("the trajectory is empty; record an episode with run_episode(..., record=True)")
    r = traj.obs_radius
    obstacles = traj.obstacles[r:-r, r:-r] if r > 0 else traj.obstacles
    H, W = obstacles.shape
    c = cell_px
    pos = np.stack(traj.positions) - r  # [T+1, A, 2] map coordinates
    goals = np.stack(traj.goals) - r
    active = np.stack(traj.active)
    steps, A = pos.shape[0], pos.shape[1]
    T = max(steps - 1, 1)
    dur = f"{T * seconds_per_step:g}s"
    lines, font = _title_lines(title, W * c - 8)
    counter_px = 12.0
    head = len(lines) * (font * 1.25) + counter_px * 1.4
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W * c}" height="{H * c + head:g}" '
        f'viewBox="0 {-head:g} {W * c} {H * c + head:g}">',
        f'<rect x="0" y="{-head:g}" width="{W * c}" height="{head:g}" fill="#ffffff"/>',
        f'<rect x="0" y="0" width="{W * c}" height="{H * c}" fill="#ffffff" stroke="#999"/>',
    ]
    for k, line in enumerate(lines):
        y = -head + font * 1.1 + k * font * 1.25
        out.append(
            f'<text x="4" y="{y:g}" font-family="sans-serif" font-size="{font:g}">{_escape(line)}</text>'
        )
    # step counter: one label per step, each visible during its own step only (discrete opacity)
    out.append(f'<g font-family="monospace" font-size="{counter_px:g}" fill="#333">')
    for t in range(steps):
        keys = f"0;{t / T:.6g};{min((t + 1) / T, 1):.6g}" if t else f"0;{1 / T:.6g}"
        vals = "0;1;0" if t else "1;0"
        if t == steps - 1 and t:  # the last frame stays until the loop restarts
            keys, vals = f"0;{t / T:.6g}", "0;1"
        out.append(
            f'<text x="4" y="{-counter_px * 0.35:g}" opacity="{1 if t == 0 else 0}">step {t}/{steps - 1}'
            f'<animate attributeName="opacity" values="{vals}" keyTimes="{keys}" calcMode="discrete" '
            f'dur="{dur}" repeatCount="indefinite"/></text>'
        )
    out.append("</g>")
    out.append('<g fill="#5f6b77">')
    for x, y in np.argwhere(obstacles != 0).tolist():
        out.append(f'<rect x="{y * c}" y="{x * c}" width="{c}" height="{c}"/>')
    out.append("</g>")
    center = c / 2
    anim = f'dur="{dur}" repeatCount="indefinite"'
    colors = agent_colors(A)
    label_px = max(c * 0.42, 4)
    label = (
        f'font-family="sans-serif" font-size="{label_px:g}" text-anchor="middle" dominant-baseline="central"'
    )
    for i in range(A):
        color = colors[i]
        gx = _values((goals[:, i, 1] * c + center).tolist())
        gy = _values((goals[:, i, 0] * c + center).tolist())
        out.append(
            f'<circle r="{c * 0.3:g}" fill="none" stroke="{color}" stroke-width="{max(c // 10, 1)}" '
            f'cx="{goals[0, i, 1] * c + center:g}" cy="{goals[0, i, 0] * c + center:g}">'
            f'<animate attributeName="cx" values="{gx}" calcMode="discrete" {anim}/>'
            f'<animate attributeName="cy" values="{gy}" calcMode="discrete" {anim}/></circle>'
        )
        # the goal carries the agent's number, so agent i and its goal pair up even in similar colours
        out.append(
            f'<text {label} fill="{color}" x="{goals[0, i, 1] * c + center:g}" y="{goals[0, i, 0] * c + center:g}">'
            f'{i}<animate attributeName="x" values="{gx}" calcMode="discrete" {anim}/>'
            f'<animate attributeName="y" values="{gy}" calcMode="discrete" {anim}/></text>'
        )
        ax = _values((pos[:, i, 1] * c + center).tolist())
        ay = _values((pos[:, i, 0] * c + center).tolist())
        opacity = _values(np.where(active[:, i], 1.0, 0.0).tolist())
        out.append(
            f'<circle r="{c * 0.38:g}" fill="{color}" cx="{pos[0, i, 1] * c + center:g}" '
            f'cy="{pos[0, i, 0] * c + center:g}">'
            f'<animate attributeName="cx" values="{ax}" {anim}/>'
            f'<animate attributeName="cy" values="{ay}" {anim}/>'
            f'<animate attributeName="opacity" values="{opacity}" calcMode="discrete" {anim}/></circle>'
        )
        out.append(
            f'<text {label} fill="#ffffff" x="{pos[0, i, 1] * c + center:g}" y="{pos[0, i, 0] * c + center:g}">'
            f'{i}<animate attributeName="x" values="{ax}" {anim}/>'
            f'<animate attributeName="y" values="{ay}" {anim}/>'
            f'<animate attributeName="opacity" values="{opacity}" calcMode="discrete" {anim}/></text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_svg(traj: Trajectory, path: str | Path, **kwargs) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(trajectory_svg(traj, **kwargs))
    return path


def text_trace(actions: list, rewards: list, title: str = "") -> list[str]:
    """One episode as text, for envs with nothing to draw: a line per step with every agent's action
    and reward (``rewards`` may be empty: actions only), then the totals per agent."""
    lines = [f"# {title}"] if title else []
    if not actions:
        return lines + ["(no steps)"]
    lines.append("step  actions" + ("  |  rewards" if rewards else ""))
    for t, a in enumerate(actions):
        line = f"{t + 1:>4}  " + " ".join(str(int(x)) for x in np.asarray(a).ravel())
        if rewards:
            line += "  |  " + " ".join(f"{float(r):g}" for r in np.asarray(rewards[t]).ravel())
        lines.append(line)
    if rewards:
        total = np.sum(np.stack([np.asarray(r, dtype=np.float64) for r in rewards]), axis=0)
        lines.append("return per agent: " + " ".join(f"{v:g}" for v in total))
    return lines
