"""EnvConfig: the environment component's typed config (owned by ``envs``).

Which fields an env reads:

- every env: ``name num_agents num_agents_choices max_episode_steps plugin`` and its own ``options``: a dict checked
  against the dataclass the env registered (``register_env(name, builder, options_type)``) and
  available typed as ``cfg.opts`` (``bottleneck``, ``cue``, ``cue_partner``: ``split``, ``corridor_lengths``; the Cue tasks also ``trap_free_share``, ``cue_shown_share``; ``tmaze``: ``corridor_lengths``; ``pettingzoo``:
  ``id`` and the env's keyword arguments; ...).
- POGEMA grid envs (registered with ``grid=True``: ``pogema``, ``bottleneck``, ``cue``, ``cue_partner``) also read the grid
  keys ``on_target collision_system obs_radius reward`` and (``pogema``) the map source: ``map`` (a map
  string), ``maps_file`` (+ ``map_name`` or ``map_names``) or ``generator`` (``random`` uses
  ``size``/``width``/``height``/``density``, ``maze`` uses ``size``/``width``/``height``/``maze_loops``/``maze_loops_choices``);
  optional fixed ``agents_xy``/``targets_xy``. Other envs refuse a grid key set away from its default.

The grid keys stay top-level (not under ``options``) because the evaluation grid, the planners and the
offline recorder build POGEMA envs from them directly; the Bottleneck-only keys moved to its options.
"""

from __future__ import annotations

import functools
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal, Optional

from envs.plugins import canonical, import_plugin
from envs.registry import env_spec

OnTarget = Literal["finish", "nothing", "restart"]
CollisionSystem = Literal["block_both", "priority", "soft"]
RewardName = Literal["sparse", "dense", "moving_negative", "directional", "directional_negative", "follower"]
PlannerCosts = Literal["follower", "static", "unit"]
Generator = Literal["random", "maze", "mixed"]
Split = Literal["train", "test"]

# pogema's GridConfig limits, checked here so that the error names our key.
MAX_OBS_RADIUS = 128
MAX_SIDE = 4096
MAX_CORRIDOR_LENGTH = MAX_SIDE - 4
"""Longest Bottleneck corridor: the map (L + 4 rows, two rooms of 2) stays within ``MAX_SIDE``."""
BOTTLENECK_FAMILY = ("bottleneck", "cue", "cue_partner")
"""The corridor envs that register ``envs.bottleneck.BottleneckOptions`` or its subclass ``envs.cue.CueOptions`` (split, corridor lengths; radius 2)."""


@dataclass
class EnvConfig:
    name: str = "bottleneck"
    """Registered environment (``envs.registered_envs()``): ``bottleneck`` (the SRMT paper's corridor
    task), ``cue`` / ``cue_partner`` (the Cue Bottleneck memory tasks, with the Bottleneck's options), ``tmaze`` (the passive T-Maze memory task of
    RATE, ``envs.tmaze``), ``pogema`` (any POGEMA grid: map string, map set or generated maps), ``pettingzoo`` (any
    PettingZoo Parallel env), ``gym_multiagent`` (a gymnasium-style multi-agent env) or a plugin's env."""
    options: dict[str, Any] = field(default_factory=dict)
    """The env's own settings, checked against the options it registered (``srmt envs`` lists them),
    e.g. ``env.options.split=test`` for ``bottleneck`` or ``env.options.id=mpe.simple_spread_v3`` for
    ``pettingzoo``; read typed as ``cfg.opts``."""
    plugin: Optional[str] = None
    """Module path (``my_pkg.my_envs``) or ``.py`` file that registers ``name``, imported before the
    name is looked up. Filled in automatically for an env a plugin registered, so that a saved config
    or checkpoint rebuilds its env without extra flags."""
    num_agents: Optional[int] = None
    """Agents per environment instance; None = the env's default (``pogema``, ``bottleneck``, ``cue``: 2;
    ``tmaze``: 1, its agents are independent episodes; adapters: the wrapped env's agent count, which a value here must match)."""
    num_agents_choices: list[int] = field(default_factory=list)
    """Mixed agent counts (empty = off): each episode plays a count drawn uniformly from this list (from
    the env's own seed stream, so reproducible), e.g. ``[32, 48, 64]``. The env presents ``max`` agent
    slots and the slots above the episode's count are permanently inactive (no actions, no reward, not in
    any observation, pool or loss: ``envs.mixed``), because a trainer's batched layout needs a fixed
    number of rows per env. ``num_agents`` must then be unset or equal to the largest count."""
    on_target: OnTarget = "finish"
    """What reaching the goal does: ``finish`` (agent leaves the grid, its episode ends), ``nothing``
    (classic MAPF: agent stays, episode ends when all stand on their goals) or ``restart`` (lifelong:
    agent gets a new goal, the episode runs to the step limit)."""
    collision_system: CollisionSystem = "block_both"
    """pogema's collision rules: ``block_both`` (no following; contested cells block everyone),
    ``priority`` (agents move one by one in index order) or ``soft`` (following allowed, swaps blocked,
    lowest index wins a contested cell)."""
    obs_radius: Optional[int] = None
    """Observation window radius r: each agent sees (2r+1) x (2r+1) cells around itself; None = the
    task default (bottleneck, cue, cue_partner: 2, as in the SRMT paper; pogema: 5, pogema's default)."""
    max_episode_steps: Optional[int] = None
    """Step limit of an episode; None = the task default (bottleneck: 512 in ``train``, 2L+100 in
    ``test``; tmaze: L+1, the shortest path; pogema: 256)."""
    reward: RewardName = "sparse"
    """Reward function; the SRMT paper's five give +1 on reaching the goal: ``sparse`` (0 otherwise), ``dense``
    (-0.01 per step off goal), ``moving_negative`` (-0.005 waiting, -0.01 moving), ``directional``
    (+0.005 on stepping onto the next cell of a shortest path to the goal), ``directional_negative``
    (-0.005 on such a step, -0.01 otherwise); ``follower`` (Follower's: +0.01 on reaching the next cell
    of the planned path of the step before, see ``planner_costs``, and nothing for the goal itself)."""
    planner_path: bool = False
    """Add a 4th observation channel with the agent's planned path (1 on its cells, from the agent's
    own cell until the path first leaves the window): Follower's congestion-aware planner, ``envs.guidance``."""
    planner_costs: PlannerCosts = "follower"
    """Costs of the planned path (``planner_path`` and the ``follower`` reward): ``follower`` (static
    congestion cost, higher on central cells, plus per agent the number of steps it has seen another
    agent on a cell in its window since its goal changed), ``static`` (the static part only) or
    ``unit`` (plain shortest paths)."""
    planner_replan_every: int = 1
    """Solve that planner every k-th step (``follower`` costs): 1 re-plans every step, as Follower
    does; with k > 1 each agent follows the last solve's plan from wherever it stands in between (its
    counts still grow every step; after a goal change the static path until the next solve): with the
    path channel the env runs ~2x faster at k = 4 (docs/bench-env.md)."""

    priority_channel: bool = False
    """Add an observation channel (after the path channel, if any) with 1 on the cells of the visible
    agents that outrank this one in PIBT's priority rule: longer since their current goal was assigned
    (steps since they last stood on a goal or got a new one), ties to the lower agent index. What a PIBT
    expert decides by and no agent sees otherwise; it amounts to every agent telling its neighbours one
    number (communication). The offline recorder's ``pibt`` expert then breaks ties by agent index too,
    so that the channel shows its exact order (up to PIBT's escape mode), and with the path
    channel on ``unit`` costs it takes the path's move among equally short ones. Grid envs
    (``pogema``, ``bottleneck``) only."""
    intention_channel: bool = False
    """Add an observation channel (after the priority channel) with 1 on the next cell of the planned
    path of every visible agent that outranks this one: where the agents it must give way to want to
    go (PIBT's push: an agent in such a cell must move). Needs ``planner_path`` and
    ``priority_channel``; like those, information from other agents (communication)."""

    # --- map source ('pogema') ---
    map: Optional[str] = None
    """A pogema map string (rows of ``.`` free / ``#`` obstacle; letters fix agents' starts and goals)."""
    maps_file: Optional[str] = None
    """A pogema-toolbox ``maps.yaml`` (name -> map string); alone it selects every map in the file."""
    map_name: Optional[str] = None
    """Map(s) from ``maps_file``: an exact name or a regex matching whole names."""
    map_names: list[str] = field(default_factory=list)
    """Map(s) from ``maps_file`` as a list of names or regexes (instead of ``map_name``)."""
    generator: Generator = "random"
    """Seeded map generator used when no map is given: ``random`` (pogema's i.i.d. obstacles),
    ``maze`` (corridors one cell wide) or ``mixed`` (a random map or a maze, even odds, drawn per
    episode); a new map every episode."""
    size: int = 8
    """Side of generated square maps."""
    width: Optional[int] = None
    """Width of generated maps (with ``height``; overrides ``size``)."""
    height: Optional[int] = None
    """Height of generated maps (with ``width``; overrides ``size``)."""
    density: float = 0.3
    """Obstacle density of ``random`` maps."""
    maze_loops: float = 0.15
    """Share of the inner walls of a ``maze`` opened after carving, so that corridors form loops."""
    maze_loops_choices: list[float] = field(default_factory=list)
    """``maze_loops`` values drawn uniformly per maze episode (each in 0..1); empty = ``maze_loops`` for
    every maze. A spread of loop shares gives tight mazes and near-open ones in one training run."""
    agents_xy: Optional[list[Any]] = None
    """Fixed starts ``[[row, col], ...]`` in map coordinates (pogema's ``agents_xy``)."""
    targets_xy: Optional[list[Any]] = None
    """Fixed goals ``[[row, col], ...]``; for ``restart`` one goal sequence per agent (pogema's format)."""

    def __post_init__(self) -> None:
        _check_literals(self)
        if self.plugin is not None:
            import_plugin(self.plugin)  # errors name the plugin as the user gave it
            self.plugin = canonical(self.plugin)
        spec = env_spec(self.name)
        if self.plugin is None and spec.plugin is not None:
            self.plugin = spec.plugin  # the saved config names the plugin that registered the env
        if self.num_agents is not None:
            _positive("num_agents", self.num_agents)
        _check_choices(self.num_agents_choices, self.num_agents)
        if not spec.grid:
            _check_grid_keys_unset(self, spec.options_type)
        object.__setattr__(self, "_opts", typed_options(self.name, spec.options_type, self.options))
        if self.obs_radius is not None and not 1 <= self.obs_radius <= MAX_OBS_RADIUS:
            raise ValueError(f"obs_radius={self.obs_radius} is out of range; allowed: 1..{MAX_OBS_RADIUS}")
        if self.max_episode_steps is not None:
            _positive("max_episode_steps", self.max_episode_steps)
        _positive("planner_replan_every", self.planner_replan_every)
        if self.intention_channel and not (self.planner_path and self.priority_channel):
            raise ValueError(
                "intention_channel=true needs planner_path=true and priority_channel=true "
                f"(got planner_path={self.planner_path}, priority_channel={self.priority_channel})"
            )
        if not 2 <= self.size <= MAX_SIDE:
            raise ValueError(f"size={self.size} is out of range; allowed: 2..{MAX_SIDE}")
        if (self.width is None) != (self.height is None):
            raise ValueError(f"width={self.width}, height={self.height}: give both or neither")
        for key in ("width", "height"):
            v = getattr(self, key)
            if v is not None and not 1 <= v <= MAX_SIDE:
                raise ValueError(f"{key}={v} is out of range; allowed: 1..{MAX_SIDE}")
        if not 0.0 <= self.density <= 1.0:
            raise ValueError(f"density={self.density} is out of range; allowed: 0 <= density <= 1")
        if not 0.0 <= self.maze_loops <= 1.0:
            raise ValueError(f"maze_loops={self.maze_loops} is out of range; allowed: 0 <= maze_loops <= 1")
        for i, v in enumerate(self.maze_loops_choices):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"maze_loops_choices[{i}]={v} is out of range; allowed: 0 <= value <= 1")
        if self.map is not None and self.maps_file is not None:
            raise ValueError("map and maps_file are exclusive: give a map string or a maps file, not both")
        if (self.map_name is not None or self.map_names) and self.maps_file is None:
            raise ValueError("map_name / map_names select maps from a maps_file; set maps_file too")
        if self.map_name is not None and self.map_names:
            raise ValueError(f"map_name={self.map_name!r} and map_names={self.map_names}: give one of them")

    @property
    def opts(self) -> Any:
        """``options`` as the env's typed options dataclass (None for an env without options)."""
        return self._opts  # type: ignore[attr-defined]

    def with_options(self, **changes: Any) -> EnvConfig:
        """A copy with some options changed (checked again)."""
        import dataclasses

        return dataclasses.replace(self, options={**self.options, **changes})

    @property
    def real_agent_share(self) -> float:
        """Share of the agent slots that real agents fill, in expectation: ``mean / max`` of
        ``num_agents_choices`` (counts drawn uniformly; exact over equal-length episodes, e.g. lifelong
        ones), 1.0 without mixed counts. A trainer's agent-step counter counts slots; times this share,
        real agent-steps."""
        return real_agent_share(self.num_agents_choices)

    @property
    def radius(self) -> int:
        """The observation radius in force: ``obs_radius`` or the task default."""
        if self.obs_radius is not None:
            return self.obs_radius
        return 2 if self.name in BOTTLENECK_FAMILY else 5

    @property
    def grid_width(self) -> int:
        """Width of generated maps (``width`` or ``size``)."""
        return self.width if self.width is not None else self.size

    @property
    def grid_height(self) -> int:
        """Height of generated maps (``height`` or ``size``)."""
        return self.height if self.height is not None else self.size

    @property
    def map_selectors(self) -> list[str]:
        """Selectors for ``maps_file`` (empty = all maps)."""
        return [self.map_name] if self.map_name is not None else list(self.map_names)


# EnvConfig keys that only POGEMA grid envs (registered with grid=True) read.
GRID_KEYS = (
    "on_target",
    "collision_system",
    "obs_radius",
    "reward",
    "map",
    "maps_file",
    "map_name",
    "map_names",
    "generator",
    "size",
    "width",
    "height",
    "density",
    "maze_loops",
    "maze_loops_choices",
    "agents_xy",
    "targets_xy",
)


def _default(f: Any) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def _check_grid_keys_unset(cfg: EnvConfig, options_type: type | None) -> None:
    by_name = {f.name: f for f in fields(cfg)}
    for key in GRID_KEYS:
        value = getattr(cfg, key)
        if value != _default(by_name[key]):
            where = (
                f"its options: {', '.join(_option_names(options_type))}"
                if options_type
                else "it has no options"
            )
            raise ValueError(
                f"env.{key}={value!r} is a POGEMA grid key; env {cfg.name!r} does not read it "
                f"(its own settings go under env.options; {where})"
            )


def _option_names(options_type: type | None) -> list[str]:
    return [f.name for f in fields(options_type)] if options_type is not None else []


def typed_options(
    env: str, options_type: type | None, options: Any, key: str = "env.options", what: str = ""
) -> Any:
    """``options`` (a mapping) checked against ``options_type`` and built into it; one-line errors.

    An options type with a ``kwargs`` field (the adapters') takes undeclared keys into it: they are
    keyword arguments of the wrapped env, which rejects the ones it does not know. ``key`` and ``what``
    name the section and its owner in errors (``env.options`` of ``env 'x'`` by default)."""
    owner = what or f"env {env!r}"
    if options is None:
        options = {}
    if dataclasses_is_instance(options):
        options = {f.name: getattr(options, f.name) for f in fields(options)}
    if not isinstance(options, dict):
        raise ValueError(f"{key} must be a mapping of option -> value, got {type(options).__name__}")
    if options_type is None:
        if options:
            raise ValueError(f"{owner} takes no options; got {key}.{next(iter(options))}")
        return None
    allowed = _option_names(options_type)
    if "kwargs" in allowed:
        # an adapter's options: keys it does not declare are keyword arguments of the wrapped env
        extra = {k: v for k, v in options.items() if k not in allowed}
        options = {k: v for k, v in options.items() if k in allowed}
        if extra:
            options["kwargs"] = {**dict(options.get("kwargs") or {}), **extra}
    for name in options:
        if name not in allowed:
            raise ValueError(
                f"{key}.{name} is not an option of {owner}; allowed: {', '.join(allowed) or 'none'}"
            )
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    _no_word_as_bool(key, options_type, options)
    try:
        node = OmegaConf.merge(OmegaConf.structured(options_type), OmegaConf.create(dict(options)))
        return OmegaConf.to_object(node)
    except OmegaConfBaseException as e:
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0]
        bad = getattr(e, "full_key", None)
        raise ValueError(f"{key}.{bad}: {msg}" if bad else f"{key}: {msg}") from None
    except (ValueError, TypeError) as e:
        raise ValueError(f"{key} of {owner}: {(str(e).splitlines() or [type(e).__name__])[0]}") from None


def _no_word_as_bool(key: str, options_type: type, options: dict[str, Any]) -> None:
    """A boolean given to a text option is refused in one line. Options dicts are untyped where the
    config is read (their type depends on ``name`` / ``kind``), so there a bare on/off/yes/no is the YAML
    1.1 boolean, and OmegaConf would turn it into the text 'True' / 'False' without a word."""
    import typing

    from configs import takes_text

    try:
        hints = typing.get_type_hints(options_type)
    except Exception:  # an annotation that cannot be evaluated here: nothing to check
        return
    for name, value in options.items():
        if isinstance(value, bool) and takes_text(hints.get(name)):
            raise ValueError(
                f"{key}.{name}={value}: this option takes text, and a bare on/off/yes/no/true/false in an "
                f"options dict is a boolean; quote the word ({key}.{name}='off' on the command line, "
                f"{name}: 'off' in a file)"
            )


def dataclasses_is_instance(obj: Any) -> bool:
    import dataclasses

    return dataclasses.is_dataclass(obj) and not isinstance(obj, type)


def upgrade_legacy(data: dict[str, Any]) -> dict[str, Any]:
    """An env config dict written before issue 12 (``split`` / ``corridor_lengths`` of the Bottleneck or
    the Cue tasks at the top level) in today's form (under ``options``); other dicts are returned unchanged."""
    legacy = {k: data[k] for k in ("split", "corridor_lengths") if k in data}
    if not legacy:
        return data
    out = {k: v for k, v in data.items() if k not in legacy}
    if out.get("name", "bottleneck") in BOTTLENECK_FAMILY:
        out["options"] = {**legacy, **dict(out.get("options") or {})}
    return out


def real_agent_share(choices: list[int] | tuple[int, ...]) -> float:
    """``mean(choices) / max(choices)``: the expected share of real agents among ``max(choices)`` slots."""
    return float(sum(choices)) / (len(choices) * max(choices)) if choices else 1.0


def _check_choices(choices: list[Any], num_agents: int | None) -> None:
    """``num_agents_choices``: distinct integers >= 1, and ``num_agents`` unset or the largest of them."""
    for i, n in enumerate(choices):
        _positive(f"num_agents_choices[{i}]", n)
    if len(set(choices)) != len(choices):
        raise ValueError(f"num_agents_choices={list(choices)} lists a count twice; give each count once")
    if choices and num_agents is not None and num_agents != max(choices):
        raise ValueError(
            f"num_agents={num_agents} conflicts with num_agents_choices={list(choices)}: the env has "
            f"max(choices) = {max(choices)} agent slots; unset num_agents (null) or set it to {max(choices)}"
        )


def _positive(key: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key}={value!r} is invalid; it must be an integer >= 1")


@functools.cache
def _literal_fields(cls: type) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    hints = typing.get_type_hints(cls)
    return tuple(
        (f.name, typing.get_args(hints[f.name]))
        for f in fields(cls)
        if typing.get_origin(hints[f.name]) is Literal
    )


def _check_literals(obj: Any) -> None:
    """Literal fields checked on direct construction too (OmegaConf checks them only when loading)."""
    for name, allowed in _literal_fields(type(obj)):
        value = getattr(obj, name)
        if value not in allowed:
            raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(map(str, allowed))}")
