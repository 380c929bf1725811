"""Evaluation against MAPF baselines (srmt issue 5): the grid runner, result files, published results,
tables, plots and animations. ``srmt eval`` / ``srmt enjoy`` (``agents.evaluate`` / ``agents.enjoy``)
are thin entry points over :func:`evaluate` and :func:`enjoy` here.
"""

from __future__ import annotations

from agents.eval.api import enjoy, evaluate, load_eval_config, run_episodes

__all__ = ["enjoy", "evaluate", "load_eval_config", "run_episodes"]
