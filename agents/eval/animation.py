"""A self-contained animated SVG of one recorded episode (SMIL animations: any browser plays it).

Obstacles are grey squares, each agent a coloured disc moving between cells, its current goal a ring of
the same colour (it jumps when a lifelong goal is replaced). Only the map is drawn, not pogema's border.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agents.eval.episode import Trajectory

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf"]  # fmt: skip


def _values(seq: list[float]) -> str:
    return ";".join(f"{v:g}" for v in seq)


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
    dur = f"{max(steps - 1, 1) * seconds_per_step:g}s"
    head = 18 if title else 0
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W * c}" height="{H * c + head}" '
        f'viewBox="0 {-head} {W * c} {H * c + head}">',
        f'<rect x="0" y="0" width="{W * c}" height="{H * c}" fill="#ffffff" stroke="#999"/>',
    ]
    if title:
        out.append(f'<text x="4" y="-5" font-family="sans-serif" font-size="12">{_escape(title)}</text>')
    out.append('<g fill="#5f6b77">')
    for x, y in np.argwhere(obstacles != 0).tolist():
        out.append(f'<rect x="{y * c}" y="{x * c}" width="{c}" height="{c}"/>')
    out.append("</g>")
    center = c / 2
    anim = f'dur="{dur}" repeatCount="indefinite"'
    for i in range(A):
        color = _PALETTE[i % len(_PALETTE)]
        gx = _values((goals[:, i, 1] * c + center).tolist())
        gy = _values((goals[:, i, 0] * c + center).tolist())
        out.append(
            f'<circle r="{c * 0.3:g}" fill="none" stroke="{color}" stroke-width="{max(c // 10, 1)}" '
            f'cx="{goals[0, i, 1] * c + center:g}" cy="{goals[0, i, 0] * c + center:g}">'
            f'<animate attributeName="cx" values="{gx}" calcMode="discrete" {anim}/>'
            f'<animate attributeName="cy" values="{gy}" calcMode="discrete" {anim}/></circle>'
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
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_svg(traj: Trajectory, path: str | Path, **kwargs) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(trajectory_svg(traj, **kwargs))
    return path
