"""Adapters: any PettingZoo Parallel env or gymnasium-style multi-agent env as a :class:`MultiAgentEnv`.

Registered as ``pettingzoo`` and ``gym_multiagent``; nothing else to write for a user::

    srmt train my.yaml env.name=pettingzoo env.options.id=mpe.simple_spread_v3 env.options.N=3

What the adapters do for the trainer (the contract of ``envs.base.MultiAgentEnv``, docs/extending.md):

- a fixed agent axis A: the wrapped env's ``possible_agents`` (PettingZoo) or its agent container
  (dict keys / list positions) at the first reset, in that order, every step;
- agents that leave early (dropped from the dicts, or terminated / truncated alone) become inactive:
  zero observation, zero reward, ``terminated`` True on every later step, their actions not sent;
- the episode ends when every agent has left (or at ``env.max_episode_steps``), and then every agent's
  ``infos[i]["metrics"]`` holds ``return`` (mean undiscounted return per agent) and ``episode_length``;
- observations become float32 arrays ``[A, *obs_shape]``; a per-agent ``Dict``/``Tuple`` observation
  (e.g. an image and a vector) is refused with one line, or concatenated into one vector with
  ``env.options.dict_obs=flatten``; actions must be ``Discrete`` (srmt's policy head is categorical).

Seeding follows ``GridEnv``: ``reset(seed=s)`` seeds the wrapped env with ``s`` and re-seeds the stream of
later episode seeds; ``make_env(cfg, seed=s)`` + ``reset()`` is ``reset(seed=s)``.

numpy / gymnasium only; PettingZoo is an optional extra (``pip install 'srmt[pettingzoo]'``) imported
when the env is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import gymnasium
import numpy as np

from envs.base import MultiAgentEnv, check_actions, check_seed

DictObs = Literal["refuse", "flatten"]
_SEED_SPACE = 2**31 - 1


@dataclass
class PettingZooOptions:
    """``env.options`` of ``env.name=pettingzoo``; any other key is a keyword argument of the env."""

    id: str = ""
    """The env: a PettingZoo module below ``pettingzoo.`` (``mpe.simple_spread_v3``, whose
    ``parallel_env(**kwargs)`` is called) or ``package.module:factory`` for any callable that returns a
    PettingZoo ``ParallelEnv``."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the env factory; other ``env.options`` keys land here too
    (``env.options.N=3`` is ``env.options.kwargs.N=3``)."""
    dict_obs: DictObs = "refuse"
    """A per-agent Dict/Tuple observation space (e.g. image + vector): ``refuse`` (one-line error) or
    ``flatten`` (concatenate its parts into one float32 vector; the model then uses the MLP encoder)."""


@dataclass
class GymMultiAgentOptions:
    """``env.options`` of ``env.name=gym_multiagent``; any other key is a keyword argument of the env."""

    id: str = ""
    """The env: a gymnasium registry id (``gymnasium.make(id, **kwargs)``) or ``package.module:factory``
    for any callable that returns the env. Its ``observation_space`` is a ``Dict`` (agent name -> space)
    or ``Tuple`` (one space per agent); ``reset`` / ``step`` take and return per-agent dicts or lists
    (``terminated`` / ``truncated`` may be one bool for all agents)."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the env constructor; other ``env.options`` keys land here too."""
    dict_obs: DictObs = "refuse"
    """A per-agent Dict/Tuple observation space (e.g. image + vector): ``refuse`` (one-line error) or
    ``flatten`` (concatenate its parts into one float32 vector; the model then uses the MLP encoder)."""


# ----------------------------------------------------------------------------------- spaces


class _ObsConverter:
    """One agent's observation space -> (the Box srmt sees, a function obs -> float32 array)."""

    def __init__(self, space: gymnasium.Space, dict_obs: str, where: str) -> None:
        self.source = space
        self.flatten = False
        if isinstance(space, (gymnasium.spaces.Dict, gymnasium.spaces.Tuple)):
            if dict_obs != "flatten":
                parts = (
                    ", ".join(f"{k}: {_describe(s)}" for k, s in space.spaces.items())
                    if isinstance(space, gymnasium.spaces.Dict)
                    else ", ".join(_describe(s) for s in space.spaces)
                )
                raise ValueError(
                    f"{where}: observation space {type(space).__name__}({parts}) has several parts; srmt "
                    "encoders take one array per agent: set env.options.dict_obs=flatten to concatenate them into "
                    "one vector (MLP encoder), or wrap the env so that it returns only the image"
                )
            self.flatten = True
            self.space = gymnasium.spaces.flatten_space(space)
        elif isinstance(space, gymnasium.spaces.Box):
            self.space = space
        elif isinstance(
            space, (gymnasium.spaces.Discrete, gymnasium.spaces.MultiBinary, gymnasium.spaces.MultiDiscrete)
        ):
            self.flatten = True  # one-hot / binary vectors
            self.space = gymnasium.spaces.flatten_space(space)
        else:
            raise ValueError(
                f"{where}: observation space {space} is not supported; allowed: Box, Discrete, Dict, Tuple"
            )
        self.shape = tuple(int(s) for s in self.space.shape)
        self.box = gymnasium.spaces.Box(
            np.asarray(self.space.low, dtype=np.float32),
            np.asarray(self.space.high, dtype=np.float32),
            shape=self.shape,
            dtype=np.float32,
        )

    def __call__(self, obs: Any) -> np.ndarray:
        if self.flatten:
            obs = gymnasium.spaces.flatten(self.source, obs)
        out = np.asarray(obs, dtype=np.float32)
        if out.shape != self.shape:
            raise ValueError(
                f"observation of shape {out.shape} does not match its space's shape {self.shape}"
            )
        return out


def _describe(space: gymnasium.Space) -> str:
    shape = getattr(space, "shape", None)
    return f"{type(space).__name__}{tuple(shape)}" if shape else type(space).__name__


def _common(spaces: Sequence[gymnasium.Space], what: str, names: Sequence[str]) -> gymnasium.Space:
    """All agents share one space (one policy acts for all of them)."""
    first = spaces[0]
    for name, s in zip(names, spaces):
        if s != first:
            raise ValueError(
                f"agent {name!r} has {what} space {s} but agent {names[0]!r} has {first}; srmt shares one policy "
                "across agents, so every agent needs the same spaces"
            )
    return first


def _discrete(space: gymnasium.Space) -> gymnasium.spaces.Discrete:
    if not isinstance(space, gymnasium.spaces.Discrete) or int(space.start) != 0:
        hint = " (MPE envs: continuous_actions=False)" if isinstance(space, gymnasium.spaces.Box) else ""
        raise ValueError(
            f"action space {space} is not supported; srmt's policy is categorical: Discrete(n) from 0{hint}"
        )
    return gymnasium.spaces.Discrete(int(space.n))


def _load_factory(
    spec: str, default_module: Callable[[str], Callable[..., Any]] | None, what: str
) -> Callable[..., Any]:
    """``package.module:factory`` -> the callable; other strings go to ``default_module`` (or error)."""
    if not spec:
        raise ValueError(f"env.options.id is required for {what}")
    if ":" in spec:
        from envs.plugins import PluginError, import_plugin

        module_name, _, attr = spec.partition(":")
        try:
            # found like a plugin module: installed, on sys.path or in the working directory (which the
            # ``srmt`` console script does not put on sys.path)
            module = import_plugin(module_name)
        except PluginError as e:
            raise ValueError(f"env.options.id={spec!r}: {e}") from None
        factory = getattr(module, attr, None)
        if not callable(factory):
            raise ValueError(f"env.options.id={spec!r}: {module_name!r} has no callable {attr!r}")
        return factory
    if default_module is None:
        raise ValueError(f"env.options.id={spec!r} must look like package.module:factory")
    return default_module(spec)


def _call(factory: Callable[..., Any], kwargs: dict[str, Any], spec: str) -> Any:
    try:
        return factory(**kwargs)
    except TypeError as e:  # a misspelt keyword argument, typically
        raise ValueError(f"env.options.id={spec!r} rejected its arguments {kwargs}: {e}") from None


# ----------------------------------------------------------------------------------- the shared core


class _AgentDictEnv(MultiAgentEnv):
    """The bookkeeping both adapters share: a fixed agent list, leaving agents, metrics, seeds, limits.

    Subclasses implement ``_reset_inner(seed) -> dict agent -> obs`` and
    ``_step_inner(actions: dict agent -> int) -> (obs, rewards, terminated, truncated, infos)`` as dicts
    keyed by agent (entries may be missing for agents that left).
    """

    def __init__(
        self,
        agents: Sequence[Any],
        obs_spaces: Sequence[gymnasium.Space],
        act_spaces: Sequence[gymnasium.Space],
        dict_obs: str,
        num_agents: int | None,
        max_episode_steps: int | None,
        seed: int | None,
        what: str,
    ) -> None:
        self.agents = list(agents)
        names = [str(a) for a in self.agents]
        if not self.agents:
            raise ValueError(f"{what} has no agents")
        if num_agents is not None and num_agents != len(self.agents):
            raise ValueError(
                f"env.num_agents={num_agents} but {what} has {len(self.agents)} agents ({', '.join(names)}); "
                "leave env.num_agents unset or make them agree"
            )
        self.num_agents = len(self.agents)
        self._convert = _ObsConverter(_common(obs_spaces, "observation", names), dict_obs, what)
        self.observation_space = self._convert.box
        self.action_space = _discrete(_common(act_spaces, "action", names))
        self.max_episode_steps = max_episode_steps
        self._rng = np.random.default_rng(seed)
        self._pending_seed = seed
        self._active = np.zeros(self.num_agents, dtype=bool)
        self._returns = np.zeros(self.num_agents, dtype=np.float64)
        self._t = 0
        self._done = True

    # -- subclass hooks
    def _reset_inner(self, seed: int) -> dict[Any, Any]:
        raise NotImplementedError

    def _step_inner(self, actions: dict[Any, int]) -> tuple[dict, dict, dict, dict, dict]:
        raise NotImplementedError

    # -- MultiAgentEnv
    @property
    def active(self) -> np.ndarray:
        return self._active.copy()

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, list[dict]]:
        if seed is None:
            seed = (
                self._pending_seed if self._pending_seed is not None else int(self._rng.integers(_SEED_SPACE))
            )
        else:
            seed = check_seed(seed)
            self._rng = np.random.default_rng(seed)
        self._pending_seed = None
        obs = self._reset_inner(int(seed))
        self._active = np.array([a in obs for a in self.agents], dtype=bool)
        self._returns[:] = 0.0
        self._t = 0
        self._done = False
        return self._stack(obs), [{} for _ in self.agents]

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        if self._done:
            raise RuntimeError("the episode has ended; call reset() first")
        actions = check_actions(actions, self.num_agents, int(self.action_space.n))
        live = {a: int(actions[i]) for i, a in enumerate(self.agents) if self._active[i]}
        obs, rew, term, trunc, inner_infos = self._step_inner(live)
        self._t += 1
        A = self.num_agents
        rewards = np.zeros(A, dtype=np.float32)
        terminated = ~self._active  # agents that left earlier stay terminated
        truncated = np.zeros(A, dtype=bool)
        infos: list[dict] = [{} for _ in range(A)]
        for i, a in enumerate(self.agents):
            if not self._active[i]:
                continue
            rewards[i] = float(rew.get(a, 0.0))
            infos[i] = dict(inner_infos.get(a, {}) or {})
            t_i, tr_i = bool(term.get(a, False)), bool(trunc.get(a, False))
            if a not in obs and not (t_i or tr_i):
                t_i = True  # dropped from the dicts without a flag: it left
            terminated[i], truncated[i] = t_i, tr_i and not t_i
        self._returns += rewards
        left = terminated | truncated
        if self.max_episode_steps is not None and self._t >= self.max_episode_steps:
            truncated |= ~left  # the step limit truncates everyone still there
            left = terminated | truncated
        self._active = ~left
        if left.all():
            self._done = True
            if not terminated.all():
                truncated[:] = (
                    True  # as GridEnv at its step limit: all truncated, earlier leavers still terminated
                )
            metrics = {"return": float(self._returns.mean()), "episode_length": float(self._t)}
            for info in infos:
                info["metrics"] = dict(metrics)
        return self._stack(obs), rewards, terminated, truncated, infos

    def _stack(self, obs: dict[Any, Any]) -> np.ndarray:
        out = np.zeros((self.num_agents, *self.observation_space.shape), dtype=np.float32)
        for i, a in enumerate(self.agents):
            if self._active[i] and a in obs:
                out[i] = self._convert(obs[a])
        return out


# ----------------------------------------------------------------------------------- PettingZoo


def _pettingzoo_module(spec: str) -> Callable[..., Any]:
    try:
        import pettingzoo  # noqa: F401
    except ImportError:
        raise ValueError(
            "env 'pettingzoo' needs the pettingzoo package: pip install 'srmt[pettingzoo]' "
            "(or pip install 'pettingzoo[mpe]==1.24.3')"
        ) from None
    name = f"pettingzoo.{spec}"
    try:
        module = importlib.import_module(name)
    except ImportError as e:
        raise ValueError(f"env.options.id={spec!r}: cannot import {name!r} ({e})") from None
    factory = getattr(module, "parallel_env", None)
    if not callable(factory):
        raise ValueError(f"env.options.id={spec!r}: {name!r} has no parallel_env()")
    return factory


class PettingZooEnv(_AgentDictEnv):
    """A PettingZoo ``ParallelEnv`` (``reset``/``step`` on dicts keyed by agent) as a MultiAgentEnv."""

    def __init__(
        self,
        env: Any,
        *,
        dict_obs: str = "refuse",
        num_agents: int | None = None,
        max_episode_steps: int | None = None,
        seed: int | None = None,
        what: str = "the PettingZoo env",
    ) -> None:
        self.env = env
        agents = list(getattr(env, "possible_agents", None) or [])
        if not agents:
            raise ValueError(f"{what} has no possible_agents; is it a PettingZoo ParallelEnv?")
        super().__init__(
            agents,
            [env.observation_space(a) for a in agents],
            [env.action_space(a) for a in agents],
            dict_obs,
            num_agents,
            max_episode_steps,
            seed,
            what,
        )

    def _reset_inner(self, seed: int) -> dict[Any, Any]:
        out = self.env.reset(seed=seed)
        return out[0] if isinstance(out, tuple) else out

    def _step_inner(self, actions: dict[Any, int]) -> tuple[dict, dict, dict, dict, dict]:
        live = set(getattr(self.env, "agents", actions))
        obs, rew, term, trunc, infos = self.env.step({a: v for a, v in actions.items() if a in live})
        return obs, rew, term, trunc, infos

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()


def build_pettingzoo(cfg: Any, seed: int | None = None) -> PettingZooEnv:
    opts: PettingZooOptions = cfg.opts
    factory = _load_factory(opts.id, _pettingzoo_module, "env 'pettingzoo'")
    env = _call(factory, dict(opts.kwargs), opts.id)
    return PettingZooEnv(
        env,
        dict_obs=opts.dict_obs,
        num_agents=cfg.num_agents,
        max_episode_steps=cfg.max_episode_steps,
        seed=seed,
        what=f"pettingzoo env {opts.id!r}",
    )


# ----------------------------------------------------------------------------------- gymnasium-style


class GymMultiAgentEnv(_AgentDictEnv):
    """A gymnasium-style multi-agent env: ``observation_space`` is a ``Dict`` (agent -> space) or a
    ``Tuple`` (one space per agent); ``reset(seed=)`` returns ``(obs, info)`` and ``step(actions)``
    returns ``(obs, rewards, terminated, truncated, info)``, each a dict keyed by agent or a list in
    agent order (``terminated`` / ``truncated`` may be one bool; ``info`` may be global)."""

    def __init__(
        self,
        env: Any,
        *,
        dict_obs: str = "refuse",
        num_agents: int | None = None,
        max_episode_steps: int | None = None,
        seed: int | None = None,
        what: str = "the env",
    ) -> None:
        self.env = env
        space = env.observation_space
        act = env.action_space
        if isinstance(space, gymnasium.spaces.Dict):
            self._keyed = True
            agents: list[Any] = list(space.spaces)
            obs_spaces = [space[a] for a in agents]
            act_spaces = (
                [act[a] for a in agents] if isinstance(act, gymnasium.spaces.Dict) else [act] * len(agents)
            )
        elif isinstance(space, gymnasium.spaces.Tuple):
            self._keyed = False
            agents = list(range(len(space.spaces)))
            obs_spaces = list(space.spaces)
            act_spaces = list(act.spaces) if isinstance(act, gymnasium.spaces.Tuple) else [act] * len(agents)
        else:
            raise ValueError(
                f"{what}: observation_space must be a Dict (agent -> space) or a Tuple (one space per agent), "
                f"got {type(space).__name__}"
            )
        super().__init__(agents, obs_spaces, act_spaces, dict_obs, num_agents, max_episode_steps, seed, what)

    def _as_dict(self, value: Any, default: Any = None, broadcast: bool = False) -> dict[Any, Any]:
        if isinstance(value, dict):
            return value
        if broadcast and np.ndim(value) == 0:
            return {a: value for a in self.agents}
        seq = list(value) if value is not None else []
        return {a: seq[i] for i, a in enumerate(self.agents) if i < len(seq) and seq[i] is not None}

    def _reset_inner(self, seed: int) -> dict[Any, Any]:
        obs, _ = self.env.reset(seed=seed)
        return self._as_dict(obs)

    def _step_inner(self, actions: dict[Any, int]) -> tuple[dict, dict, dict, dict, dict]:
        if self._keyed:
            sent: Any = actions
        else:  # a list in agent order; agents that left get 0 (ignored by the env, by the contract)
            sent = [actions.get(a, 0) for a in self.agents]
        obs, rew, term, trunc, info = self.env.step(sent)
        infos = info if isinstance(info, dict) and all(a in info for a in self.agents) else {}
        return (
            self._as_dict(obs),
            self._as_dict(rew, broadcast=True),
            self._as_dict(term, broadcast=True),
            self._as_dict(trunc, broadcast=True),
            infos,
        )

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()


def _gymnasium_make(spec: str) -> Callable[..., Any]:
    def make(**kwargs: Any) -> Any:
        try:
            return gymnasium.make(spec, **kwargs).unwrapped
        except gymnasium.error.Error as e:
            raise ValueError(f"env.options.id={spec!r}: {str(e).splitlines()[0]}") from None

    return make


def build_gym_multiagent(cfg: Any, seed: int | None = None) -> GymMultiAgentEnv:
    opts: GymMultiAgentOptions = cfg.opts
    factory = _load_factory(opts.id, _gymnasium_make, "env 'gym_multiagent'")
    env = _call(factory, dict(opts.kwargs), opts.id)
    return GymMultiAgentEnv(
        env,
        dict_obs=opts.dict_obs,
        num_agents=cfg.num_agents,
        max_episode_steps=cfg.max_episode_steps,
        seed=seed,
        what=f"gym_multiagent env {opts.id!r}",
    )
