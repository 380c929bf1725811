"""Build an evaluated algorithm from its :class:`~agents.eval_config.AlgorithmConfig`, by kind.

Every algorithm is an :class:`agents.planners.base.Algorithm` (``reset(state, seed)``, ``act(state)``)
plus the env backend its episodes run on. Kinds are registered with
``register_algorithm(name, builder, options_type)`` (the built-ins below; more from a plugin), the same
pattern as ``envs.register_env``. Trained srmt checkpoints come in through one small adapter,
:class:`SrmtPolicy`, which needs ``agents.sf.load_policy(checkpoint, device) -> (ActorCritic,
ExperimentConfig)`` and srmt's own env (its observations are what the model was trained on).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.eval.episode import Backend
from agents.eval_config import AlgorithmConfig
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

    def __init__(
        self,
        checkpoint: str,
        device: str,
        action_selection: str = "sample",
        temperature: float = 1.0,
        pool: str = "shared",
    ) -> None:
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
        env = self.env_config
        if getattr(env, "planner_path", False):  # its episodes plan the path channel: compile it now
            from envs.guidance import warm_up

            warm_up(env.radius, env.planner_costs, env.planner_replan_every)
        self.torch = torch
        self.device = torch.device(device)
        self.action_selection = action_selection
        self.temperature = float(temperature)
        if pool != "shared":
            from srmt.controls import check_pool_control

            check_pool_control(self.model, pool)
        self.pool = pool
        self.generator = torch.Generator(device=self.device)
        self.state: Any = None
        self.first = True

    @property
    def env_config(self) -> Any:
        return self.experiment.env

    def reset(self, state: WorldState, seed: int) -> None:
        shape = tuple(np.shape(state.observations)[1:])
        if state.observations is not None and shape != tuple(self.model.obs_shape):
            raise ValueError(
                f"srmt checkpoint trained on env {self.env_config.name!r} observes {tuple(self.model.obs_shape)} "
                f"per agent, but this episode's env gives {shape}; evaluate it on an env like its own"
            )
        self.generator.manual_seed(int(seed))
        self.state = self.model.initial_state(1, state.num_agents)
        self.first = True

    def act(self, state: WorldState) -> np.ndarray:
        """One step of all agents. Per step it builds only the observation tensor: the reset flags are
        passed on the first step only and the active flags only while some agent is inactive (None
        means "none reset" / "all active" to the model, with the same floats: tested against the
        flags-every-step path), under ``inference_mode``."""
        torch = self.torch
        A = state.num_agents
        with torch.inference_mode():
            obs = torch.as_tensor(np.asarray(state.observations), device=self.device)[None]  # [1, A, C, H, W]
            reset = torch.ones((1, A), dtype=torch.bool, device=self.device) if self.first else None
            flags = np.asarray(state.active, dtype=bool)
            active = None if flags.all() else torch.as_tensor(flags, device=self.device)[None]
            if self.pool == "shared":
                logits, _, self.state = self.model.step(obs, self.state, reset, active, None)
            else:  # a pool control (srmt.controls): the trained step with the pool replaced
                from srmt.controls import control_step

                logits, _, self.state = control_step(
                    self.model, obs, self.state, reset, active, pool=self.pool
                )
            logits = logits.reshape(A, -1)
            if self.action_selection == "argmax":
                actions = logits.argmax(-1)
            else:
                scaled = logits.float() if self.temperature == 1.0 else logits.float() / self.temperature
                actions = torch.multinomial(torch.softmax(scaled, -1), 1, generator=self.generator)[:, 0]
        self.first = False
        return actions.cpu().numpy().astype(np.int64)


# ---------------------------------------------------------------------------------- the registry

AlgorithmBuilder = Callable[[AlgorithmConfig], "Algorithm | BuiltAlgorithm"]


@dataclass(frozen=True)
class AlgorithmSpec:
    name: str
    builder: AlgorithmBuilder
    options_type: type | None
    """A dataclass of the algorithm's own settings (``algorithms.<name>.options``), or None."""
    backend: Backend
    """The env backend ``env_backend=auto`` means for it: ``pogema`` (planners) or ``envs`` (policies
    that read srmt's observations)."""
    needs_checkpoint: bool
    any_env: bool
    """It acts from ``observations``, ``active`` and ``num_actions`` alone (no grid positions), so it
    can play env tasks (``eval.env``, or a non-grid training env), not only map-set instances."""
    plugin: str | None
    """The plugin whose import registered it (recorded in the config so that worker processes import it)."""


_REGISTRY: dict[str, AlgorithmSpec] = {}


def register_algorithm(
    name: str,
    builder: AlgorithmBuilder,
    options_type: type | None = None,
    *,
    backend: Backend = "pogema",
    needs_checkpoint: bool = False,
    any_env: bool = False,
    replace: bool = False,
) -> None:
    """Make ``algorithms.X.kind=name`` evaluate ``builder(cfg)``: an :class:`Algorithm` (a planner or a
    policy: ``reset(state, seed)``, ``act(state) -> int64 [A]``) run on ``backend``, or a
    :class:`BuiltAlgorithm` that names its backend and env itself. ``cfg`` is the
    :class:`~agents.eval_config.AlgorithmConfig`; ``cfg.opts`` its options as an ``options_type`` instance.
    The same pattern as ``envs.register_env``; usable from a plugin (``algorithms.X.plugin=my_pkg.algos``).
    ``any_env=True``: it reads only ``observations``, ``active`` and ``num_actions`` of the state, so it
    may also play env tasks (seeded episodes of any registered env, ``agents.eval.tasks``).
    An options type may define ``check_algorithm(cfg)``: checks of the options against the rest of the
    algorithm's config (one-line ``ValueError``), run when the config is built.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"algorithm name must be a non-empty string, got {name!r}")
    if not callable(builder):
        raise ValueError(
            f"builder for algorithm {name!r} must be callable(cfg), got {type(builder).__name__}"
        )
    if options_type is not None and not (
        isinstance(options_type, type) and dataclasses.is_dataclass(options_type)
    ):
        raise ValueError(
            f"options_type for algorithm {name!r} must be a dataclass type or None, got {options_type!r}"
        )
    if backend not in ("pogema", "envs"):
        raise ValueError(f"backend={backend!r} for algorithm {name!r} is not one of pogema, envs")
    if name in _REGISTRY and not replace:
        raise ValueError(f"algorithm {name!r} is already registered; pass replace=True to override it")
    from envs.plugins import current_plugin
    from envs.registry import importable_module

    plugin = current_plugin() or importable_module(builder)
    if plugin is not None and plugin.startswith("agents."):
        plugin = None  # srmt's own algorithms
    _REGISTRY[name] = AlgorithmSpec(
        name, builder, options_type, backend, needs_checkpoint, bool(any_env), plugin
    )


def unregister_algorithm(name: str) -> None:
    algorithm_spec(name)
    del _REGISTRY[name]


def registered_algorithms() -> list[str]:
    return sorted(_REGISTRY)


def algorithm_spec(name: str) -> AlgorithmSpec:
    """The registration of ``name``; an unknown name is a one-line ValueError listing the known ones."""
    spec = _REGISTRY.get(name)
    if spec is None:
        raise ValueError(
            f"unknown algorithm kind {name!r}; registered: {', '.join(registered_algorithms())} "
            "(a plugin's algorithm needs algorithms.<name>.plugin=MODULE_OR_FILE)"
        )
    return spec


def build_algorithm(spec: AlgorithmConfig) -> BuiltAlgorithm:
    """The algorithm and its backend; a missing or corrupt checkpoint is a one-line ValueError."""
    reg = algorithm_spec(spec.kind)
    built = reg.builder(spec)
    if isinstance(built, BuiltAlgorithm):
        if spec.env_backend not in ("auto", built.backend):
            raise ValueError(
                f"{spec.kind} runs on env_backend={built.backend} (its observations); {spec.env_backend} was asked"
            )
        return built
    return BuiltAlgorithm(built, reg.backend if spec.env_backend == "auto" else spec.env_backend)


# ---------------------------------------------------------------------------------- built-in algorithms


def _astar(spec: AlgorithmConfig) -> Algorithm:
    from agents.planners.astar import AStar

    return AStar()


def _astar_pogema(spec: AlgorithmConfig) -> Algorithm:
    from agents.planners.astar import PogemaAStar

    return PogemaAStar()


def _pibt(spec: AlgorithmConfig) -> Algorithm:
    from agents.planners.pibt import PIBT

    return PIBT()


def _pibt_paper(spec: AlgorithmConfig) -> Algorithm:
    from agents.planners.pibt import PIBT

    return PIBT(pull=False, stuck_steps=0)  # PIBT as in the paper: no dead-end swap, no escape mode


def _wpibt(spec: AlgorithmConfig) -> Algorithm:
    from agents.planners.windowed import WindowedPIBT

    return WindowedPIBT()


def _random(spec: AlgorithmConfig) -> Algorithm:
    from agents.planners.random_agent import RandomAgent

    return RandomAgent()


def _follower_lite(spec: AlgorithmConfig) -> Algorithm:
    from agents.planners.follower_lite import FollowerLite

    return FollowerLite.from_checkpoint(
        resolve_file(spec.checkpoint, "FollowerLite checkpoint"), spec.device, spec.action_selection
    )


SRMT_MIN_TEMPERATURE = 1e-3
"""The smallest sampling temperature. softmax subtracts the maximum, so it is safe far below this, until
logits / T reaches inf (T around 1e-38 and less: NaN probabilities mid-episode); below 1e-3 sampling is
argmax in all but name, and ``action_selection=argmax`` says so plainly."""


@dataclass
class SrmtOptions:
    temperature: float = 1.0
    """Sampling temperature with ``action_selection=sample``: actions are drawn from softmax(logits / T);
    1 = the policy as trained, below 1 sharper (towards argmax), above 1 flatter; at least 0.001, and 1
    with ``action_selection=argmax`` (where it has no effect)."""

    pool: str = "shared"
    """What the shared-memory cross-attention reads (``srmt.controls``): ``shared`` (the trained pool of
    the episode's agents) or ``own`` (each agent only its own memory, as an ``rmt`` core reads): a
    control that measures how much a trained SRMT relies on the other agents' memories."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature >= SRMT_MIN_TEMPERATURE):
            raise ValueError(
                f"temperature={self.temperature!r} is invalid; allowed: a number >= {SRMT_MIN_TEMPERATURE} "
                "(for the limit T -> 0 use action_selection=argmax)"
            )
        if self.pool not in ("shared", "own"):
            raise ValueError(f"pool={self.pool!r} is invalid; allowed: shared, own")

    def check_algorithm(self, cfg: AlgorithmConfig) -> None:
        """Checks against the rest of the algorithm's config (called by ``AlgorithmConfig``)."""
        if cfg.action_selection == "argmax" and self.temperature != 1.0:
            raise ValueError(
                f"options.temperature={self.temperature!r} has no effect with action_selection='argmax'; "
                "allowed: temperature 1 with argmax, or action_selection=sample"
            )


def _srmt(spec: AlgorithmConfig) -> BuiltAlgorithm:
    # a checkpoint of a non-grid env plays its own env (an env task, agents.eval.tasks), not the map sets
    policy = SrmtPolicy(
        spec.checkpoint, spec.device, spec.action_selection, spec.opts.temperature, spec.opts.pool
    )
    return BuiltAlgorithm(policy, "envs", policy.env_config)


def _rate(spec: AlgorithmConfig) -> BuiltAlgorithm:
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
    return BuiltAlgorithm(rate, "envs", rate.env_config)


register_algorithm("astar", _astar, replace=True)
register_algorithm("astar_pogema", _astar_pogema, replace=True)
register_algorithm("pibt", _pibt, replace=True)
register_algorithm("pibt_paper", _pibt_paper, replace=True)
register_algorithm("wpibt", _wpibt, replace=True)
register_algorithm("random", _random, any_env=True, replace=True)
register_algorithm("follower_lite", _follower_lite, needs_checkpoint=True, replace=True)
register_algorithm(
    "srmt", _srmt, SrmtOptions, backend="envs", needs_checkpoint=True, any_env=True, replace=True
)
register_algorithm("rate", _rate, backend="envs", needs_checkpoint=True, replace=True)
