"""Build an evaluated algorithm from its :class:`~agents.eval_config.AlgorithmConfig`.

Every algorithm is an :class:`agents.planners.base.Algorithm` (``reset(state, seed)``, ``act(state)``)
plus the env backend its episodes run on. Trained srmt checkpoints come in through one small adapter,
:class:`SrmtPolicy`, which needs ``agents.sf.load_policy(checkpoint, device) -> (ActorCritic,
ExperimentConfig)`` and srmt's own env (its observations are what the model was trained on).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np

from agents.eval.episode import Backend
from agents.eval_config import AlgorithmConfig, AlgorithmKind
from agents.planners.base import Algorithm, WorldState


@dataclass
class BuiltAlgorithm:
    algorithm: Algorithm
    backend: Backend
    env_base: Any = None
    """Base env config for the ``envs`` backend (a checkpoint's own ``EnvConfig``), else None."""


def resolve_file(path: str, what: str, folders: bool = False) -> Path:
    """A file (or, with ``folders``, a file or a folder) by the path rule of :mod:`configs.paths`."""
    from configs import paths

    return paths.resolve(path, what, kind="any" if folders else "file")


class SrmtPolicy:
    """A trained srmt ActorCritic acting in srmt's env: one environment (G = 1), all agents at once."""

    def __init__(self, checkpoint: str, device: str, action_selection: str = "sample") -> None:
        import torch

        try:
            from agents.sf import load_policy
        except ImportError:
            load_policy = None
        if load_policy is None:
            raise ValueError(
                "srmt checkpoints need agents.sf.load_policy, which this installation lacks (issue 4)"
            )
        # a .pth file, a run folder or its checkpoint folder: load_policy picks the latest checkpoint
        path = resolve_file(checkpoint, "srmt checkpoint", folders=True)
        try:
            self.model, self.experiment = load_policy(str(path), device)
        except ValueError:
            raise
        except Exception as e:  # a corrupt file surfaces as many exception types; keep it one line
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ValueError(f"srmt checkpoint {str(path)!r} could not be loaded: {reason}") from None
        self.model.eval()
        self.torch = torch
        self.device = torch.device(device)
        self.action_selection = action_selection
        self.generator = torch.Generator(device=self.device)
        self.state: Any = None
        self.first = True

    @property
    def env_config(self) -> Any:
        return self.experiment.env

    def reset(self, state: WorldState, seed: int) -> None:
        self.generator.manual_seed(int(seed))
        self.state = self.model.initial_state(1, state.num_agents)
        self.first = True

    def act(self, state: WorldState) -> np.ndarray:
        torch = self.torch
        A = state.num_agents
        with torch.no_grad():
            obs = torch.as_tensor(np.asarray(state.observations), device=self.device)[None]  # [1, A, C, H, W]
            reset = torch.full((1, A), self.first, dtype=torch.bool, device=self.device)
            active = torch.as_tensor(state.active, device=self.device)[None]
            logits, _, self.state = self.model.step(obs, self.state, reset, active, None)
            logits = logits.reshape(A, -1)
            if self.action_selection == "argmax":
                actions = logits.argmax(-1)
            else:
                actions = torch.multinomial(torch.softmax(logits.float(), -1), 1, generator=self.generator)[
                    :, 0
                ]
        self.first = False
        return actions.cpu().numpy().astype(np.int64)


def build_algorithm(spec: AlgorithmConfig) -> BuiltAlgorithm:
    """The algorithm and its backend; a missing or corrupt checkpoint is a one-line ValueError."""
    backend = spec.env_backend
    if spec.kind in ("astar", "astar_pogema"):
        from agents.planners.astar import AStar, PogemaAStar

        algo: Algorithm = AStar() if spec.kind == "astar" else PogemaAStar()
    elif spec.kind in ("pibt", "pibt_paper"):
        from agents.planners.pibt import PIBT

        algo = PIBT() if spec.kind == "pibt" else PIBT(pull=False, stuck_steps=0)
    elif spec.kind == "wpibt":
        from agents.planners.windowed import WindowedPIBT

        algo = WindowedPIBT()
    elif spec.kind == "random":
        from agents.planners.random_agent import RandomAgent

        algo = RandomAgent()
    elif spec.kind == "follower_lite":
        from agents.planners.follower_lite import FollowerLite

        algo = FollowerLite.from_checkpoint(
            resolve_file(spec.checkpoint, "FollowerLite checkpoint"), spec.device, spec.action_selection
        )
    elif spec.kind == "srmt":
        policy = SrmtPolicy(spec.checkpoint, spec.device, spec.action_selection)
        if backend == "pogema":
            raise ValueError(
                "srmt checkpoints run on env_backend=envs (their observations); pogema was asked"
            )
        return BuiltAlgorithm(policy, "envs", policy.env_config)
    elif spec.kind == "rate":
        from agents.offline.policy import RATEPolicy

        target: str | float = spec.target_return
        if target not in ("mean", "best"):
            try:
                target = float(target)
            except ValueError:
                raise ValueError(
                    f"target_return={spec.target_return!r} is invalid; allowed: mean, best or a number"
                ) from None
        rate = RATEPolicy(
            str(resolve_file(spec.checkpoint, "RATE checkpoint")), spec.device, target, spec.action_selection
        )
        if backend == "pogema":
            raise ValueError(
                "rate checkpoints run on env_backend=envs (their observations); pogema was asked"
            )
        return BuiltAlgorithm(rate, "envs", rate.env_config)
    else:
        raise ValueError(
            f"unknown algorithm kind {spec.kind!r}; allowed: {', '.join(get_args(AlgorithmKind))}"
        )
    return BuiltAlgorithm(algo, "pogema" if backend == "auto" else backend)
