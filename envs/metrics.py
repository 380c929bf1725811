"""Episode metrics from plain arrays, shared by the env and by evaluation code.

Steps are counted from 1: the first ``step()`` call is step 1, and an agent that stands on its goal
after step t "arrived at step t". ``arrival`` arrays hold that step per agent, or -1 for an agent that
never arrived (classic: is not standing on its goal at the end, see :func:`arrival_steps_nothing`).

Sum of costs counts, per agent, its arrival step, or the episode length for an agent that never
arrived. (The reference implementation reported agents x episode length in ``finish`` mode.)
"""

from __future__ import annotations

import numpy as np


def _arrival(arrival: np.ndarray) -> np.ndarray:
    a = np.asarray(arrival)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"arrival must be a non-empty 1-D array of steps (-1 = never), got shape {a.shape}")
    return a


def csr(arrival: np.ndarray) -> float:
    """Cooperative success rate: 1.0 when every agent arrived, else 0.0."""
    return float(np.all(_arrival(arrival) >= 0))


def isr(arrival: np.ndarray) -> float:
    """Individual success rate: the share of agents that arrived."""
    return float(np.mean(_arrival(arrival) >= 0))


def costs(arrival: np.ndarray, episode_length: int) -> np.ndarray:
    """Per-agent cost: its arrival step, or ``episode_length`` if it never arrived."""
    a = _arrival(arrival)
    if np.any(a > episode_length):
        raise ValueError(f"arrival step {int(a.max())} is after the episode end {episode_length}")
    return np.where(a >= 0, a, episode_length)


def sum_of_costs(arrival: np.ndarray, episode_length: int) -> float:
    return float(costs(arrival, episode_length).sum())


def makespan(arrival: np.ndarray, episode_length: int) -> float:
    """Step at which the last agent arrived (the episode length if one never did)."""
    return float(costs(arrival, episode_length).max())


def throughput(goals_reached: int, episode_length: int) -> float:
    """Lifelong MAPF: goals reached per step, summed over agents."""
    if episode_length <= 0:
        raise ValueError(f"episode_length={episode_length} must be > 0")
    return float(goals_reached) / float(episode_length)


def arrival_steps_nothing(last_arrival: np.ndarray, on_goal_at_end: np.ndarray) -> np.ndarray:
    """Classic (``nothing``) mode: an agent counts as arrived only if it stands on its goal at the end,
    at the step it last stepped onto it (the MAPF sum-of-costs convention)."""
    return np.where(np.asarray(on_goal_at_end, dtype=bool), np.asarray(last_arrival), -1)


def episode_metrics(
    on_target: str, episode_length: int, arrival: np.ndarray | None = None, goals_reached: int = 0
) -> dict[str, float]:
    """The metrics dict the env reports at episode end.

    finish / nothing: CSR, ISR, SoC, makespan, episode_length (``arrival`` required);
    restart: throughput, episode_length (``goals_reached`` = goals reached by all agents together).
    """
    if on_target == "restart":
        return {
            "throughput": throughput(goals_reached, episode_length),
            "episode_length": float(episode_length),
        }
    if on_target not in ("finish", "nothing"):
        raise ValueError(f"unknown on_target {on_target!r}; allowed: finish, nothing, restart")
    if arrival is None:
        raise ValueError(f"on_target={on_target!r} needs the per-agent arrival steps")
    return {
        "CSR": csr(arrival),
        "ISR": isr(arrival),
        "SoC": sum_of_costs(arrival, episode_length),
        "makespan": makespan(arrival, episode_length),
        "episode_length": float(episode_length),
    }
