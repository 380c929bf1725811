"""EvalConfig: what ``srmt eval`` and ``srmt enjoy`` run (owned by ``agents.evaluate``).

An evaluation is a grid: algorithms x map sets x agent counts x maps x seeds. Map sets are
pogema-toolbox benchmark configs (the POGEMA benchmark's ``01-random``/``02-mazes`` by default), with
their frozen scenarios; every other axis can be narrowed from the command line, e.g.
``srmt eval eval/lifelong run=[PIBT] num_agents=[8,16] max_maps=4``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from envs.config import EnvConfig

BUILTIN_KINDS = (
    "astar",
    "astar_pogema",
    "pibt",
    "pibt_paper",
    "wpibt",
    "follower_lite",
    "random",
    "srmt",
    "rate",
)

FOLLOWER_LITE_CHECKPOINT = "follower-lite/checkpoint_000001248_20447232.pth"
"""learn-to-follow's FollowerLite (MIT licence beside it), shipped in the package data (``configs/data/``)."""

SRMT_LIFELONG_CHECKPOINT = "srmt-lifelong/srmt-lifelong.pth"
"""Our lifelong SRMT (weights only, shipped in ``configs/data/srmt-lifelong/`` with the config and command
that made it): the ``SRMT`` algorithm, so ``srmt eval eval/lifelong run=[SRMT]`` needs no training."""


@dataclass
class AlgorithmConfig:
    kind: str = "pibt"
    """A registered algorithm (``agents.eval.algorithms.register_algorithm``): ``astar`` (decentralised
    A* on remembered obstacles, pogema's A* policy with kept paths), ``astar_pogema``
    (``pogema.AStarAgent`` itself, slow), ``pibt`` (centralised PIBT with the dead-end swap and escape
    mode), ``pibt_paper`` (PIBT as in the paper), ``wpibt`` (windowed prioritised planning guiding PIBT,
    the strongest centralised planner here), ``follower_lite`` (learn-to-follow's planner + network),
    ``random`` (uniform actions), ``srmt`` (a trained srmt checkpoint), ``rate`` (an offline RATE
    checkpoint from ``srmt offline train``) or a plugin's."""
    checkpoint: str = ""
    """Checkpoint file for ``follower_lite``, ``srmt`` and ``rate`` (ignored by the planners)."""
    target_return: str = "mean"
    """``rate`` only: the return the model is conditioned on: ``mean`` or ``best`` (of its training
    dataset, stored in the checkpoint) or a number, e.g. ``"0.8"``."""
    action_selection: Literal["sample", "argmax"] = "sample"
    """Learned policies: sample from the action distribution (seeded) or take the most likely action."""
    device: str = "cpu"
    """torch device of learned policies (evaluation workers are CPU processes; ``cuda`` works with 1 worker)."""
    env_backend: Literal["auto", "pogema", "envs"] = "auto"
    """Which env runs the episodes: ``pogema`` (pogema 1.4.0 itself, as the published results), ``envs``
    (srmt's env, needed for srmt observations) or ``auto`` (``envs`` for ``srmt`` and ``rate``, else ``pogema``)."""
    # last, so that the positional order (kind, checkpoint, ...) stays as before issue 12
    options: dict[str, Any] = field(default_factory=dict)
    """The algorithm's own settings, checked against the options type it registered; typed as ``opts``."""
    plugin: Optional[str] = None
    """Module path or ``.py`` file that registers ``kind``, imported first (also in worker processes);
    filled in automatically for a kind a plugin registered."""

    def __post_init__(self) -> None:
        from agents.eval.algorithms import algorithm_spec  # late: the registry imports this module
        from envs.config import typed_options
        from envs.plugins import canonical, import_plugin

        if self.plugin is not None:
            import_plugin(self.plugin)
            self.plugin = canonical(self.plugin)
        spec = algorithm_spec(self.kind)
        if self.plugin is None and spec.plugin is not None:
            self.plugin = spec.plugin
        if spec.needs_checkpoint and not self.checkpoint:
            raise ValueError(f"algorithm kind {self.kind!r} needs a checkpoint path (checkpoint=...)")
        opts = typed_options(
            self.kind, spec.options_type, self.options, key="options", what=f"algorithm kind {self.kind!r}"
        )
        check = getattr(opts, "check_algorithm", None)
        if callable(check):  # the options against the rest of this config (srmt: temperature vs argmax)
            check(self)
        object.__setattr__(self, "_opts", opts)

    @property
    def opts(self) -> Any:
        """``options`` as the algorithm's typed options dataclass (None for one without options)."""
        return self._opts  # type: ignore[attr-defined]


def _default_algorithms() -> dict[str, AlgorithmConfig]:
    return {
        "AStar": AlgorithmConfig(kind="astar"),
        "PIBT": AlgorithmConfig(kind="pibt"),
        "WPIBT": AlgorithmConfig(kind="wpibt"),
        "FollowerLite": AlgorithmConfig(kind="follower_lite", checkpoint=FOLLOWER_LITE_CHECKPOINT),
        "SRMT": AlgorithmConfig(kind="srmt", checkpoint=SRMT_LIFELONG_CHECKPOINT),
        "Random": AlgorithmConfig(kind="random"),
    }


@dataclass
class EnjoyConfig:
    algorithm: str = "PIBT"
    """Name of the algorithm (a key of ``algorithms``) to animate."""
    map_set: str = ""
    """Map set of the episode; empty = the first of ``map_sets``."""
    map_name: str = ""
    """Map of the episode; empty = the map set's first map."""
    num_agents: int = 16
    """Number of agents."""
    seed: int = -1
    """Episode seed; -1 = the map set's own seed (its frozen scenario, when it has one)."""
    max_steps: int = 0
    """Episode length; 0 = the map set's ``max_episode_steps``."""
    out: str = ""
    """SVG file to write; empty = ``{out_dir}/enjoy/{algorithm}-{map_name}-{num_agents}.svg``."""
    cell_px: int = 24
    """Size of one grid cell in the SVG, in pixels."""
    seconds_per_step: float = 0.25
    """Animation speed."""


@dataclass
class EvalConfig:
    benchmark_dir: str = "pogema-benchmark"
    """POGEMA benchmark folder (``experiments/<set>/<set>-{lmapf,mapf}.yaml`` and ``raw_data_*``), found
    by the path rule (as given, then the data folder ``$SRMT_DATA``, then the package); ``srmt data
    fetch`` downloads it into the data folder."""
    map_sets: list[str] = field(default_factory=lambda: ["01-random", "02-mazes"])
    """Map sets: a benchmark set name (``01-random``), a shipped set under ``configs/eval/mapsets`` or a
    path to a pogema-toolbox evaluation YAML (maps inline under ``maps:`` or in ``maps.yaml`` beside it)."""
    mode: Literal["lifelong", "classic"] = "lifelong"
    """Which config of a named set to use: ``lifelong`` (``*-lmapf.yaml``, throughput) or ``classic``
    (``*-mapf.yaml``, CSR/SoC). A YAML path brings its own mode (its ``on_target``)."""
    algorithms: dict[str, AlgorithmConfig] = field(default_factory=_default_algorithms)
    """Known algorithms by display name; add a trained model with
    ``algorithms.MyModel.kind=srmt algorithms.MyModel.checkpoint=PATH``."""
    run: list[str] = field(default_factory=list)
    """Names from ``algorithms`` to evaluate, in this order; empty = all of them."""
    num_agents: list[int] = field(default_factory=list)
    """Agent counts; empty = the map set's own grid (8..64 in the benchmark)."""
    maps: list[str] = field(default_factory=list)
    """Map names or full-match regexes; empty = every map of the set."""
    max_maps: int = 0
    """Keep only the first N maps (after ``maps``); 0 = all."""
    seeds: list[int] = field(default_factory=list)
    """Episode seeds; empty = the map set's seed, which replays its frozen scenarios (env tasks:
    ``0..episodes-1``)."""
    env: Optional[EnvConfig] = None
    """An env task for every algorithm instead of the map sets: seeded episodes of this registered env
    (e.g. ``env.name=beacon env.plugin=beacon.py``), reporting the env's own metrics. None = map sets,
    except for a policy trained on a non-grid env (PettingZoo, a plugin's env), which plays its own
    training env. Env tasks need algorithms that act from observations alone (``srmt``, ``random``)."""
    episodes: int = 20
    """Env tasks: seeded episodes per algorithm (seeds ``0..episodes-1`` unless ``seeds`` is set)."""
    max_episodes: int = 0
    """Cap per algorithm and map set (or env task), taken in (map, agents, seed) order so that the first
    maps keep their full agent-count sweep; 0 = no cap."""
    max_episode_steps: int = 0
    """Episode length override; 0 = the map set's (256 random / 128 mazes lifelong, 128 classic) or, on
    an env task, the env's own."""
    scenarios: bool = True
    """Replay the map set's frozen scenarios (starts and goal sequences) where they exist for the
    instance's map and seed; False lets pogema generate them from the seed."""
    workers: int = 0
    """Worker processes; 0 = one per CPU core, 1 = run in this process (``backend=local``); with
    ``backend=dask`` and no ``scheduler``, the processes of the local Dask cluster."""
    backend: Literal["local", "dask"] = "local"
    """Where episodes run: ``local`` (worker processes on this machine) or ``dask`` (a Dask cluster:
    the one at ``scheduler``, else a local one; needs ``pip install 'srmt[dask]'``).
    Results are identical on both."""
    scheduler: str = ""
    """``backend=dask``: address of a running Dask scheduler (``tcp://host:8786``); empty = start a local
    cluster of ``workers`` processes."""
    out_dir: str = "results/eval"
    """Where result JSONs, CSV, tables and plots go; every finished episode is logged at once under
    ``{out_dir}/episodes/``."""
    restart: Literal["resume", "overwrite"] = "resume"
    """If ``out_dir`` already holds results: ``resume`` keeps the episodes done with identical settings
    and runs the rest (and refuses results of another config for the same algorithm, map set or
    instance), ``overwrite`` deletes srmt eval's files there and runs everything."""
    published: bool = True
    """Show the benchmark's published per-episode results next to ours, on the same instances."""
    published_algorithms: list[str] = field(default_factory=list)
    """Published algorithms to show (e.g. ``[RHCR, Follower, MATS-LP]``); empty = all available."""
    published_runtimes: dict[str, float] = field(default_factory=dict)
    """Published decision times in ms per step, by display name, shown as rows ``NAME (published)`` of
    every runtime table: for instances without per-episode published results (``eval/timing-256``:
    POGEMA's Follower on 256x256 maps with 256 agents, ~31 ms); empty = none."""
    plots: bool = True
    """Write matplotlib plots (throughput, or CSR and SoC, against the number of agents)."""
    progress: bool = True
    """Show a progress bar."""
    report_only: bool = False
    """Run no episodes: rebuild the tables, the published comparison and the plots from the episode log
    in ``out_dir`` (e.g. after copying it from another machine), using only episodes whose settings
    equal this config's (episode length, scenarios, checkpoints, action selection, ...)."""
    enjoy: EnjoyConfig = field(default_factory=EnjoyConfig)
    """``srmt enjoy``: which single episode to animate."""

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"episodes={self.episodes} must be >= 1")
        for key in ("max_maps", "max_episodes", "max_episode_steps", "workers"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key}={getattr(self, key)} must be >= 0")
        unknown = [name for name in self.run if name not in self.algorithms]
        if unknown:
            raise ValueError(f"run names unknown algorithm(s) {unknown}; known: {', '.join(self.algorithms)}")
        slow = {k: v for k, v in self.published_runtimes.items() if not v > 0}
        if slow:
            raise ValueError(f"published_runtimes {slow} must be > 0 (ms per step)")
        bad = [n for n in self.num_agents if n < 1]
        if bad:
            raise ValueError(f"num_agents {bad} must be >= 1")
        if not self.map_sets:
            raise ValueError("map_sets is empty; name at least one map set (e.g. 01-random)")
        if self.scheduler and self.backend != "dask":
            raise ValueError(f"scheduler={self.scheduler!r} needs backend=dask (backend={self.backend!r})")
        if self.scheduler and "://" not in self.scheduler:
            raise ValueError(
                f"scheduler={self.scheduler!r} is not a scheduler address; expected e.g. tcp://host:8786"
            )

    @property
    def selected_algorithms(self) -> list[str]:
        """The algorithm names this run evaluates."""
        return list(self.run) if self.run else list(self.algorithms)
