"""OfflineConfig: what ``srmt offline record|train|eval|run`` does (owned by ``agents.offline``).

One run folder ``{out_dir}/{name}/`` holds the recorded dataset (``dataset/``, sharded), the checkpoint
(``rate.pt``), TensorBoard scalars (``tb/``) and the evaluation table (``eval.md``). Presets live in
``configs/offline/``; e.g. ``srmt offline run offline/bottleneck train.steps=100``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from envs.config import EnvConfig
from srmt.rate import RATEConfig

ExpertName = Literal["pibt", "astar", "random", "tmaze"]


@dataclass
class RecordConfig:
    algorithm: ExpertName = "pibt"
    """Expert that plays the recorded episodes: ``pibt`` (centralised PIBT), ``astar`` (pogema's A*
    agent), ``random`` (uniform actions) or ``tmaze`` (the T-Maze's optimal policy: remember the cue, walk
    right, turn to the cued side at the junction; env ``tmaze`` only)."""
    episodes: int = 200
    """Episodes to record."""
    epsilon: float = 0.2
    """Probability of replacing an agent's expert action by a uniformly random one (so returns vary)."""
    epsilon_mode: Literal["fixed", "uniform"] = "uniform"
    """``fixed``: every episode uses ``epsilon``; ``uniform``: each episode draws its own rate from
    U[0, epsilon], which spreads the returns the model is conditioned on."""
    seed: int = 0
    """Seed of the recording: episode i is reset with ``seed + i`` and draws its epsilon and exploration
    from an RNG seeded with ``(seed, i)``; ``(seed, i)`` identifies the episode in the dataset."""
    dataset: str = ""
    """Dataset folder to write (sharded, memory-mapped); empty = ``{run_dir}/dataset``.
    An existing folder recorded with the same settings is resumed: only episodes no committed shard holds
    are recorded."""
    workers: int = 1
    """Recording processes (spawned); 1 = record in this process."""
    episodes_per_shard: int = 16
    """Episodes per shard (a worker keeps one shard in memory until it commits it)."""
    policy: str = ""
    """A RATE checkpoint that plays the recorded episodes while ``algorithm`` only labels every state it
    reaches (DAgger: the expert's actions in the learner's own states are the training targets); empty =
    the expert plays. Set by the ``dagger`` rounds."""
    policy_target: str = "mean"
    """The ``policy``'s target return: ``best``, ``mean`` (of its checkpoint's dataset) or a number."""
    policy_action_selection: Literal["argmax", "sample"] = "argmax"
    """How the ``policy`` picks its actions (as ``eval.action_selection``)."""
    policy_temperature: float = 1.0
    """Softmax temperature of the ``policy``'s sampled actions (as ``eval.temperature``)."""
    policy_device: str = "cpu"
    """Device of the ``policy`` in the recording processes (``cpu``, ``cuda``, ``cuda:N``, ``auto``): one
    small step per env step runs well on a CPU core per worker, and many workers on one GPU would
    each hold a CUDA context."""


@dataclass
class OfflineTrainConfig:
    dataset: str = ""
    """Dataset to train on: a sharded dataset folder or a single ``.npz`` file (the earlier format);
    empty = ``{run_dir}/dataset`` (what ``record`` writes)."""
    extra_datasets: list[str] = field(default_factory=list)
    """More dataset folders trained on together with ``dataset`` (e.g. DAgger rounds); they must hold
    the same agents, observations and actions, and no episode twice."""
    sampling: Literal["episodes", "windows"] = "episodes"
    """``episodes``: batches of ``batch_envs`` whole episodes, every segment in order with the memory
    carried through the episode; ``windows``: ``batch_envs`` random windows of ``bptt_segments`` segments,
    uniform over all windows that fit in an episode, one update each (RATE's sampling; for datasets too big to pass over)."""
    prefetch: int = 2
    """Batches prepared ahead by a background thread (pinned memory when training on CUDA); 0 = gather
    each batch in the training loop."""
    verify: Literal["size", "sha256"] = "size"
    """How shards are checked against their manifests when opened: file sizes (and ``.npy`` headers), or
    also the sha256 of every file (reads the whole dataset once)."""
    init_checkpoint: str = ""
    """Start from this RATE checkpoint's weights (same ``model.*`` config) instead of a fresh
    initialisation, e.g. a second stage of a curriculum on longer episodes; empty = fresh."""
    steps: int = 500
    """Optimizer updates (one per chunk of ``bptt_segments`` segments of a batch of episodes); 0 = no
    limit (``train_for_seconds`` then decides)."""
    train_for_seconds: float = 0.0
    """Wall-clock limit of the training loop in seconds; 0 = none (``steps`` alone)."""
    batch_envs: int = 16
    """G: recorded episodes (environments, all their agents together) per batch."""
    bptt_segments: int = 4
    """Segments processed between optimizer updates; the memory is carried to the next chunk but
    detached, so gradients flow back through at most this many segments."""
    targets: Literal["expert", "taken"] = "expert"
    """What the cross-entropy imitates: ``expert``, the expert's own action in each recorded state (before
    the epsilon replacement; the labeller's in a DAgger round), or ``taken``, the action that was
    executed (the epsilon-random ones included). Datasets recorded before labels were stored have the
    taken actions only, so both are the same there. The taken actions are the action tokens either way."""
    memory_gradient: Literal["bptt", "detach"] = "bptt"
    """How gradients cross segment boundaries: ``bptt`` backpropagates through the memory write path
    across the ``bptt_segments`` segments of an update; ``detach`` detaches the memory after every
    segment (as RATE and ELMUR train): its value is still carried, but no loss reaches an earlier
    segment's memory write."""
    learning_rate: float = 1e-3
    """AdamW peak learning rate."""
    weight_decay: float = 0.01
    """AdamW weight decay (not applied to biases, norms and embeddings)."""
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    """After warm-up: cosine decay to ``min_lr_ratio`` x the peak at ``steps``, or constant."""
    warmup_steps: int = 20
    """Linear warm-up from 0 over this many updates."""
    min_lr_ratio: float = 0.1
    """Final learning rate of the cosine schedule as a fraction of ``learning_rate``."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip (0 = off)."""
    log_interval_s: float = 5.0
    """Seconds between console progress lines."""
    tensorboard: bool = True
    """Write TensorBoard scalars (``loss/``, ``train/``, ``perf/``) to ``{run_dir}/tb``."""
    threads: int = 0
    """torch CPU threads for training; 0 = torch's default (one per core). On a machine shared with
    other jobs 1 can be several times faster."""


@dataclass
class FinetuneConfig:
    steps: int = 0
    """Updates of a second training stage that starts from the first stage's weights, on a dataset
    recorded with ``env_options`` (a curriculum, e.g. longer T-Maze corridors); 0 = no second stage.
    ``srmt offline train``, ``run`` and ``compare`` run it after the first stage; ``rate.pt`` then holds
    the second stage's model."""
    env_options: dict[str, Any] = field(default_factory=dict)
    """Changes to ``env.options`` for recording the second stage's dataset (e.g.
    ``{corridor_lengths: [1, 2, ..., 200]}``); the model is still evaluated in ``env``."""
    episodes: int = 0
    """Episodes recorded for the second stage; 0 = ``record.episodes``."""
    bptt_segments: int = 0
    """``train.bptt_segments`` of the second stage (longer episodes need more); 0 = the same."""
    learning_rate: float = 0.0
    """Peak learning rate of the second stage; 0 = ``train.learning_rate``."""
    dataset: str = ""
    """The second stage's dataset (recorded there when missing); empty = ``{run_dir}/dataset-finetune``."""


@dataclass
class DaggerConfig:
    rounds: int = 0
    """DAgger rounds after training (``run`` and ``train``): each records ``episodes`` episodes played
    by the current checkpoint (as ``eval`` plays it: ``eval.target_return``, ``eval.action_selection``,
    plus ``record.epsilon``) and labelled by ``record.algorithm``, into ``{run_dir}/dagger-{r}``, then
    trains on all the data so far; 0 = plain behaviour cloning."""
    episodes: int = 0
    """Episodes recorded per round; 0 = ``record.episodes``."""
    steps: int = 0
    """Updates per round; 0 = ``train.steps``."""
    train_for_seconds: float = -1.0
    """Training seconds per round; -1 = ``train.train_for_seconds``."""
    init: Literal["continue", "fresh"] = "continue"
    """Each round trains on from the last checkpoint (``continue``) or from a fresh initialisation."""


@dataclass
class OfflineEvalConfig:
    episodes: int = 20
    """Episodes per algorithm (the same seeds for the RATE model, the expert and the random agent)."""
    seed: int = 10_000
    """Seed of the first evaluation episode (episode i uses ``seed + i``; disjoint from recording)."""
    target_return: Literal["best", "mean", "value"] = "best"
    """Return the model is conditioned on: the dataset's best or mean per-agent episode return, or
    ``target_value``."""
    target_value: float = 1.0
    """The target return when ``target_return=value``."""
    action_selection: Literal["argmax", "sample"] = "argmax"
    """Take the most likely action or sample from the model's distribution (seeded). A decentralised
    imitation of a centralised planner should sample: where the expert's choice hangs on what an agent
    cannot see (PIBT's priorities), argmax sends two agents into each other every step, a deadlock
    (measured in the offline guide, "Why the lifelong imitation failed")."""
    temperature: float = 1.0
    """Softmax temperature of ``action_selection=sample`` (below 1: closer to argmax)."""
    env_overrides: dict[str, Any] = field(default_factory=dict)
    """Changes to ``env`` for evaluation only (e.g. ``{options: {split: test, corridor_lengths: [5, 20]}}``;
    a top-level ``split`` / ``corridor_lengths`` is read as Bottleneck options)."""
    checkpoint: str = ""
    """Checkpoint to evaluate; empty = ``{run_dir}/rate.pt``."""
    compare: bool = True
    """Also run the expert (``record.algorithm``) and a random agent on the same seeds."""
    lengths: list[int] = field(default_factory=list)
    """``srmt offline lengths`` / ``compare`` (T-Maze): corridor lengths to test, one at a time (each with
    its default step limit L+1 unless ``env.max_episode_steps`` is set)."""
    length_episodes: int = 100
    """Episodes per tested corridor length, played in lockstep as the independent agents of one T-Maze
    env (one batched model step per env step)."""
    threads: int = 1
    """torch CPU threads while evaluating; 0 = torch's default. One step of one env is too small to
    split, and on a busy machine extra threads stall (measured 10 ms vs 440 ms per step, 2 cores)."""


@dataclass
class OfflineConfig:
    name: str = "offline"
    """Run name: the folder under ``out_dir``."""
    out_dir: str = "train_dir/offline"
    """Runs are written to ``{out_dir}/{name}/``."""
    seed: int = 0
    """torch seed (initialisation, batch order)."""
    device: str = "auto"
    """``auto`` (GPU when available), ``cpu``, ``cuda`` or ``cuda:N``."""
    progress: bool = True
    """Print progress lines."""
    compare_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """``srmt offline compare``: training seeds per ``train.memory_gradient`` mode (``detach`` and ``bptt``,
    the same dataset and budget); runs go to ``{run_dir}/{mode}-s{seed}``."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """Environment the expert is recorded in and the model is evaluated in."""
    record: RecordConfig = field(default_factory=RecordConfig)
    """``srmt offline record``."""
    model: RATEConfig = field(default_factory=RATEConfig)
    """The RATE model (``srmt.rate.RATEConfig``)."""
    train: OfflineTrainConfig = field(default_factory=OfflineTrainConfig)
    """``srmt offline train``."""
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    """An optional second training stage (curriculum)."""
    dagger: DaggerConfig = field(default_factory=DaggerConfig)
    """Optional DAgger rounds after training (the expert labels the learner's own states)."""
    eval: OfflineEvalConfig = field(default_factory=OfflineEvalConfig)
    """``srmt offline eval``."""

    def __post_init__(self) -> None:
        for key, v in (
            ("record.episodes", self.record.episodes),
            ("record.workers", self.record.workers),
            ("record.episodes_per_shard", self.record.episodes_per_shard),
            ("train.batch_envs", self.train.batch_envs),
            ("train.bptt_segments", self.train.bptt_segments),
            ("eval.episodes", self.eval.episodes),
            ("eval.length_episodes", self.eval.length_episodes),
        ):
            if isinstance(v, bool) or v < 1:
                raise ValueError(f"{key}={v!r} is invalid; it must be an integer >= 1")
        for key, v in (
            ("train.steps", self.train.steps),
            ("train.warmup_steps", self.train.warmup_steps),
            ("finetune.steps", self.finetune.steps),
            ("finetune.episodes", self.finetune.episodes),
            ("finetune.bptt_segments", self.finetune.bptt_segments),
            ("finetune.learning_rate", self.finetune.learning_rate),
            ("train.threads", self.train.threads),
            ("train.prefetch", self.train.prefetch),
            ("record.seed", self.record.seed),
            ("eval.threads", self.eval.threads),
            ("dagger.rounds", self.dagger.rounds),
            ("dagger.episodes", self.dagger.episodes),
            ("dagger.steps", self.dagger.steps),
        ):
            if v < 0:
                raise ValueError(f"{key}={v!r} is invalid; it must be >= 0")
        if not self.compare_seeds:
            raise ValueError("compare_seeds is empty; give at least one seed, e.g. compare_seeds=[0,1,2]")
        for length in self.eval.lengths:
            if isinstance(length, bool) or length < 1:
                raise ValueError(f"eval.lengths holds {length!r}; corridor lengths must be integers >= 1")
        if self.train.steps == 0 and self.train.train_for_seconds <= 0:
            raise ValueError("train.steps=0 and train.train_for_seconds=0: give at least one limit")
        if self.record.policy_target not in ("best", "mean"):
            try:
                float(self.record.policy_target)
            except ValueError:
                raise ValueError(
                    f"record.policy_target={self.record.policy_target!r} is invalid; allowed: best, mean or a number"
                ) from None
        for key, v in (
            ("eval.temperature", self.eval.temperature),
            ("record.policy_temperature", self.record.policy_temperature),
        ):
            if not v > 0:
                raise ValueError(f"{key}={v!r} is invalid; it must be > 0")
        if self.dagger.train_for_seconds < 0 and self.dagger.train_for_seconds != -1:
            raise ValueError(
                f"dagger.train_for_seconds={self.dagger.train_for_seconds} is invalid; allowed: -1 (train's) or >= 0"
            )
        if not 0.0 <= self.record.epsilon <= 1.0:
            raise ValueError(f"record.epsilon={self.record.epsilon} is invalid; allowed: 0 <= epsilon <= 1")
        if self.train.learning_rate <= 0:
            raise ValueError(f"train.learning_rate={self.train.learning_rate} is invalid; it must be > 0")
        if not 0.0 <= self.train.min_lr_ratio <= 1.0:
            raise ValueError(f"train.min_lr_ratio={self.train.min_lr_ratio} is invalid; allowed: 0..1")
        if self.train.max_grad_norm < 0 or self.train.train_for_seconds < 0:
            raise ValueError("train.max_grad_norm and train.train_for_seconds must be >= 0")

    @property
    def run_dir(self) -> Path:
        """``{out_dir}/{name}``."""
        return Path(self.out_dir) / self.name

    @property
    def dataset_path(self) -> Path:
        """Where ``record`` writes (``record.dataset`` or ``{run_dir}/dataset``)."""
        return Path(self.record.dataset) if self.record.dataset else self.run_dir / "dataset"

    @property
    def train_dataset_path(self) -> Path:
        """What ``train`` reads (``train.dataset`` or the recorded dataset)."""
        return Path(self.train.dataset) if self.train.dataset else self.dataset_path

    @property
    def finetune_dataset_path(self) -> Path:
        """The second stage's dataset (``finetune.dataset`` or ``{run_dir}/dataset-finetune``)."""
        return Path(self.finetune.dataset) if self.finetune.dataset else self.run_dir / "dataset-finetune"

    def finetune_stage(self) -> OfflineConfig:
        """The config of the second stage: record with ``finetune.env_options`` to its dataset, train from
        this run's checkpoint with its steps, BPTT window and learning rate."""
        import dataclasses

        f, t = self.finetune, self.train
        return dataclasses.replace(
            self,
            env=self.env.with_options(**f.env_options),
            record=dataclasses.replace(
                self.record,
                dataset=str(self.finetune_dataset_path),
                episodes=f.episodes or self.record.episodes,
            ),
            train=dataclasses.replace(
                t,
                dataset=str(self.finetune_dataset_path),
                init_checkpoint=str(self.checkpoint_path),
                steps=f.steps,
                train_for_seconds=0.0,
                bptt_segments=f.bptt_segments or t.bptt_segments,
                learning_rate=f.learning_rate or t.learning_rate,
            ),
            finetune=FinetuneConfig(),
        )

    def dagger_round(self, r: int) -> OfflineConfig:
        """The config of DAgger round ``r`` (0-based): the checkpoint of the round before
        (``{run_dir}/rate-dagger{r}.pt``, a copy) plays and ``record.algorithm`` labels, recorded with seed
        ``record.seed + 1_000_000 (r + 1)`` (new maps) into ``{run_dir}/dagger-{r}``; training reads the
        first dataset and every round's up to ``r`` and writes ``{run_dir}/rate.pt``."""
        import dataclasses

        d, t, ev = self.dagger, self.train, self.eval
        target = str(ev.target_value) if ev.target_return == "value" else ev.target_return
        policy = self.run_dir / f"rate-dagger{r}.pt"
        return dataclasses.replace(
            self,
            record=dataclasses.replace(
                self.record,
                dataset=str(self.run_dir / f"dagger-{r}"),
                episodes=d.episodes or self.record.episodes,
                seed=self.record.seed + 1_000_000 * (r + 1),
                policy=str(policy),
                policy_target=target,
                policy_action_selection=ev.action_selection,
                policy_temperature=ev.temperature,
            ),
            train=dataclasses.replace(
                t,
                dataset=str(self.train_dataset_path),
                extra_datasets=[
                    *t.extra_datasets,
                    *(str(self.run_dir / f"dagger-{i}") for i in range(r + 1)),
                ],
                init_checkpoint=str(policy) if d.init == "continue" else t.init_checkpoint,
                steps=d.steps or t.steps,
                train_for_seconds=t.train_for_seconds if d.train_for_seconds < 0 else d.train_for_seconds,
            ),
            finetune=FinetuneConfig(),
            dagger=DaggerConfig(),
        )

    @property
    def checkpoint_path(self) -> Path:
        """Where ``train`` writes the checkpoint: ``{run_dir}/rate.pt``."""
        return self.run_dir / "rate.pt"

    @property
    def eval_checkpoint_path(self) -> Path:
        """What ``eval`` loads (``eval.checkpoint`` or the trained checkpoint)."""
        return Path(self.eval.checkpoint) if self.eval.checkpoint else self.checkpoint_path
