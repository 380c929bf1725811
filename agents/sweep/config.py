"""SweepConfig: what ``srmt sweep`` trains and evaluates (owned by ``agents.sweep``; keys in docs/sweeps.md).

Which evaluation keys apply depends on the experiment's env (:mod:`agents.sweep.suites`): a corridor
task (``lengths``, ``episodes``, ``eval_seed``, ``eval_envs``, ``eval_threads``, ``controls``,
``solve_threshold``, ``train_csr``) or map sets through ``srmt eval`` (``eval_config``, ``map_sets``,
``max_maps``, ``num_agents``, ``eval_workers``, ``eval_overrides``); a key of the other kind set away from
its default is a one-line error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from srmt.config import CORE_NAMES

SweepBackend = Literal["local", "dask"]
Budget = Literal["steps", "seconds"]
Existing = Literal["reuse", "overwrite"]
ActionSelection = Literal["sample", "argmax"]
PoolControlName = Literal["own", "other"]
CheckpointKind = Literal["latest", "best"]

SWEEP_SETS_EVAL_KEYS = ("algorithms", "run", "out_dir", "workers", "restart", "report_only", "enjoy")
"""``srmt eval`` keys the sweep sets for each run's map-set evaluation (refused in ``eval_overrides``)."""


@dataclass
class SweepConfig:
    experiment: str = "bottleneck-srmt"
    """Experiment every run starts from: a YAML path or a name under ``configs/experiment/``."""
    name: str = ""
    """Sweep name: its folder under ``out_dir`` and the prefix of its run names; empty = the experiment's
    ``name``."""
    cores: list[str] = field(default_factory=lambda: ["srmt", "rmt", "none"])
    """Memory cores to train (``model.core`` of each run); on map sets the first is the reference of the
    paired differences (``srmt - rmt``, ``srmt - none``)."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    """Seeds to train each core with (the experiment's ``seed``); one run per core and seed."""
    core_seeds: dict[str, list[int]] = field(default_factory=dict)
    """Seeds of particular cores instead of ``seeds``, e.g. ``core_seeds.gru=[0,1,2]``."""
    overrides: list[str] = field(default_factory=list)
    """Dotted experiment overrides applied to every run, e.g. ``[train.train_for_env_steps=2000000]``;
    ``env.``/``model.``/``train.``/``device`` keys given on the command line land here."""
    out_dir: str = "results/sweeps"
    """The sweep folder is ``{out_dir}/{name}/``: ``runs/`` (one run folder per core and seed),
    ``logs/``, ``results/`` (one JSON per run) and the tables."""
    parallel: int = 1
    """Runs trained and evaluated at once (local backend; each is its own ``srmt train`` process)."""
    backend: SweepBackend = "local"
    """``local`` (subprocesses on this machine) or ``dask`` (each run a task on a Dask cluster; needs
    ``pip install 'srmt[dask]'``)."""
    scheduler: str = ""
    """Dask scheduler address (``tcp://host:8786``); empty = a LocalCluster of ``parallel`` workers."""
    existing: Existing = "reuse"
    """A run folder from an earlier sweep: ``reuse`` keeps a finished run (same config) and its
    evaluation, resumes an unfinished one from its own checkpoint and refuses a folder whose config
    differs; ``overwrite`` trains every run from scratch."""
    lengths: list[int] = field(default_factory=list)
    """Corridor tasks: test corridor lengths L; empty = the task's full test split (58 lengths: 3..50,
    100..1000)."""
    episodes: int = 16
    """Corridor tasks: test episodes per corridor length and run."""
    eval_seed: int = 12345
    """Corridor tasks: seed of the test episodes (the same episodes for every run; map sets bring their
    own seeds and frozen scenarios)."""
    eval_envs: int = 16
    """Corridor tasks: environments played in lockstep by one evaluation (results do not depend on it)."""
    eval_threads: int = 1
    """Corridor tasks: torch CPU threads of each evaluation process (map sets: one per eval worker)."""
    eval_device: str = "cpu"
    """torch device of the evaluations."""
    action_selection: ActionSelection = "sample"
    """Test actions: sampled from the policy (seeded) or its most likely action."""
    checkpoint: CheckpointKind = "latest"
    """Checkpoint of each run that is evaluated: ``latest`` (the one its training ended with) or ``best``
    (sample-factory's ``best_*.pth`` in ``checkpoint_p0/``: the policy at its highest mean training
    reward, saved from 100,000 agent-steps on; a run without one is reported as failed). An evaluation of
    the other one is never reused: switching re-evaluates."""
    controls: list[PoolControlName] = field(default_factory=list)
    """Corridor tasks: pool controls evaluated too for ``srmt`` runs: ``own`` (each agent reads only its own memory) and
    ``other`` (the pool of another episode); the table reports each one's CSR drop."""
    eval_config: str = "eval/lifelong"
    """Map-set evaluation (a POGEMA env, e.g. the lifelong recipes): the ``srmt eval`` config each run's
    checkpoint (``checkpoint``) is played on (a shipped preset such as ``eval/lifelong`` or ``eval/smoke``, or a
    YAML path); its algorithms are replaced by the run itself."""
    map_sets: list[str] = field(default_factory=list)
    """Map-set evaluation: the map sets to play (as ``srmt eval map_sets=``); empty = the eval config's."""
    max_maps: int = 0
    """Map-set evaluation: only the first N maps of each set (as ``srmt eval max_maps=``); 0 = the eval
    config's (every map)."""
    num_agents: list[int] = field(default_factory=list)
    """Map-set evaluation: the agent counts to play (as ``srmt eval num_agents=``), each a cell of the
    table; empty = the eval config's (the map set's own grid)."""
    eval_workers: int = 0
    """Map-set evaluation: worker processes of each run's ``srmt eval`` (0 = one per CPU core, 1 = in the
    evaluation process); results do not depend on it."""
    eval_overrides: list[str] = field(default_factory=list)
    """Map-set evaluation: further ``srmt eval`` overrides, e.g. ``[max_episode_steps=64]``; an entry
    holding a list goes in quotes, ``eval_overrides='["seeds=[0,1]"]'``. The sweep sets ``algorithms``,
    ``run``, ``out_dir``, ``workers`` and ``restart`` itself."""
    solve_threshold: float = 0.9
    """Corridor tasks: a run solves a corridor length when its test CSR there is at least this."""
    train_csr: float = 0.9
    """Corridor tasks: agent-steps to reach this training CSR (``episode/CSR`` in the run's TensorBoard
    scalars) are reported per run."""
    confidence: float = 0.95
    """Confidence level of the bootstrap intervals over seeds."""
    bootstrap_resamples: int = 10000
    """Resamples of each bootstrap interval (scipy.stats.bootstrap, percentile method, seeded)."""
    budget: Budget = "steps"
    """When a run's training is finished: ``steps`` (it reached ``train.train_for_env_steps``; a run
    stopped earlier by ``train.train_for_seconds`` is resumed from its own checkpoint by the next
    invocation, so every run gets the same number of agent-steps) or ``seconds`` (its training process
    ended, e.g. the CPU default job's time-boxed runs)."""
    stop_after_s: float = 0.0
    """Start no new run after this many seconds of the sweep (0 = no limit): with
    ``train.train_for_seconds`` it keeps one invocation inside a wall-clock limit; the runs not started
    are listed and the same command continues with them."""
    finish_by_s: float = 0.0
    """End every run's training this many seconds after the sweep starts (0 = no limit): a run that starts
    later gets ``train.train_for_seconds`` cut to the time left less ``finish_reserve_s``, and one with less
    than 60 s of training left is not started. With ``budget=steps`` a cut run is resumed from its own
    checkpoint by the next invocation, so a device call of fixed length is used to its end instead of idling
    after the last run that fits whole."""
    finish_reserve_s: float = 60.0
    """With ``finish_by_s``: seconds kept back for each cut run's shutdown, checkpoint and evaluation."""
    timeout_s: float = 0.0
    """Stop a run's training or evaluation process after this many seconds (0 = no limit): SIGTERM (a
    training saves a checkpoint, which the next invocation resumes), then after 60 s a kill of it and
    every process it started; the run is reported as failed and the others go on."""

    def __post_init__(self) -> None:
        if not self.cores:
            raise ValueError("cores is empty; give at least one of: " + ", ".join(CORE_NAMES))
        for core in self.cores:
            if core not in CORE_NAMES:
                raise ValueError(f"unknown core {core!r} in cores; allowed: {', '.join(CORE_NAMES)}")
        if len(set(self.cores)) != len(self.cores):
            raise ValueError(f"cores={self.cores} must not repeat an entry")
        for core, seeds in [("", self.seeds), *self.core_seeds.items()]:
            what = f"core_seeds.{core}" if core else "seeds"
            if core and core not in self.cores:
                raise ValueError(f"{what}: {core!r} is not one of cores={self.cores}")
            if not seeds:
                raise ValueError(f"{what} is empty; give at least one seed, e.g. {what}=[0,1,2]")
            if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
                raise ValueError(f"{what}={list(seeds)} must be distinct integers >= 0")
        for key in ("parallel", "episodes", "eval_envs", "eval_threads", "bootstrap_resamples"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}={getattr(self, key)} must be >= 1")
        for key in ("max_maps", "eval_workers"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key}={getattr(self, key)} must be >= 0")
        if any(n < 1 for n in self.num_agents) or len(set(self.num_agents)) != len(self.num_agents):
            raise ValueError(f"num_agents={self.num_agents} must be distinct integers >= 1")
        if not self.eval_config.strip():
            raise ValueError("eval_config is empty; name an srmt eval config, e.g. eval/lifelong")
        for ov in self.eval_overrides:
            key = ov.split("=", 1)[0].strip()
            if "=" not in ov:
                raise ValueError(
                    f"eval_overrides entry {ov!r} must look like key=value (e.g. max_episode_steps=64)"
                )
            if key.split(".")[0] in SWEEP_SETS_EVAL_KEYS:
                raise ValueError(
                    f"eval_overrides entry {ov!r}: the sweep sets {key.split('.')[0]} for each run "
                    "(use eval_workers=, existing= or the sweep's own keys instead)"
                )
        if any(L < 1 for L in self.lengths):
            raise ValueError(f"lengths={self.lengths} must be integers >= 1")
        for key in ("solve_threshold", "train_csr"):
            if not 0.0 < getattr(self, key) <= 1.0:
                raise ValueError(f"{key}={getattr(self, key)} must be in (0, 1]")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence={self.confidence} must be in (0, 1)")
        for key in ("timeout_s", "stop_after_s", "finish_by_s", "finish_reserve_s"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key}={getattr(self, key)} must be >= 0")
        if self.scheduler and self.backend != "dask":
            raise ValueError(f"scheduler={self.scheduler!r} needs backend=dask")
        for ov in self.overrides:
            key = ov.split("=", 1)[0].strip()
            if key in ("name", "seed", "model.core", "train.train_dir", "train.restart"):
                raise ValueError(
                    f"override {ov!r}: the sweep sets {key} for each run (use name=, seeds=, cores=, "
                    "out_dir= or existing= instead)"
                )

    def seeds_of(self, core: str) -> list[int]:
        """The seeds ``core`` is trained with."""
        return list(self.core_seeds.get(core, self.seeds))
