"""SweepConfig: what ``srmt sweep`` trains and evaluates (owned by ``agents.sweep``; keys in docs/sweeps.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from srmt.config import CORE_NAMES

SweepBackend = Literal["local", "dask"]
Budget = Literal["steps", "seconds"]
Existing = Literal["reuse", "overwrite"]
ActionSelection = Literal["sample", "argmax"]
PoolControlName = Literal["own", "other"]


@dataclass
class SweepConfig:
    experiment: str = "bottleneck-srmt"
    """Experiment every run starts from: a YAML path or a name under ``configs/experiment/``."""
    name: str = ""
    """Sweep name: its folder under ``out_dir`` and the prefix of its run names; empty = the experiment's
    ``name``."""
    cores: list[str] = field(default_factory=lambda: ["srmt", "rmt", "none"])
    """Memory cores to train (``model.core`` of each run)."""
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
    """Test corridor lengths L; empty = the task's full test split (58 lengths: 3..50, 100..1000)."""
    episodes: int = 16
    """Test episodes per corridor length and run."""
    eval_seed: int = 12345
    """Seed of the test episodes (the same episodes for every run)."""
    eval_envs: int = 16
    """Environments played in lockstep by one evaluation (results do not depend on it)."""
    eval_threads: int = 1
    """torch CPU threads of each evaluation process."""
    eval_device: str = "cpu"
    """torch device of the evaluations."""
    action_selection: ActionSelection = "sample"
    """Test actions: sampled from the policy (seeded) or its most likely action."""
    controls: list[PoolControlName] = field(default_factory=list)
    """Pool controls evaluated too for ``srmt`` runs: ``own`` (each agent reads only its own memory) and
    ``other`` (the pool of another episode); the table reports each one's CSR drop."""
    solve_threshold: float = 0.9
    """A run solves a corridor length when its test CSR there is at least this."""
    train_csr: float = 0.9
    """Agent-steps to reach this training CSR (``episode/CSR`` in the run's TensorBoard scalars) are
    reported per run."""
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
    timeout_s: float = 0.0
    """Kill a run's training or evaluation process after this many seconds (0 = no limit); the run is
    then reported as failed and the others go on."""

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
        if any(L < 1 for L in self.lengths):
            raise ValueError(f"lengths={self.lengths} must be integers >= 1")
        for key in ("solve_threshold", "train_csr"):
            if not 0.0 < getattr(self, key) <= 1.0:
                raise ValueError(f"{key}={getattr(self, key)} must be in (0, 1]")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence={self.confidence} must be in (0, 1)")
        for key in ("timeout_s", "stop_after_s"):
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
