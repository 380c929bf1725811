"""TrainConfig: APPO training settings for ``srmt train`` (sample-factory 2.1.1 underneath).

Field names follow sample-factory where one exists, so its documentation applies; the adapter
(``agents.sf.sf_config``) turns this dataclass into sample-factory's flat argument namespace. Values that
the shared-memory layout needs (batched sampling, no minibatch shuffling, one policy) are fixed by the
adapter and checked at start-up, so they are not fields here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class TrainConfig:
    # --- budget ---
    train_for_env_steps: int = 1_000_000
    """Stop after this many agent-steps (sample-factory counts one step of one agent as one env step)."""
    train_for_seconds: float = 0.0
    """Wall-clock limit for this run in seconds, 0 = none (enforced by srmt: sample-factory's own never fires)."""

    # --- run folder ---
    train_dir: str = "train_dir"
    """Runs are written to ``train_dir/<name>/`` (checkpoints, TensorBoard, resolved config)."""
    restart: Literal["resume", "overwrite", "restart"] = "resume"
    """If the run folder exists: continue from its latest checkpoint, delete it, or move it aside."""
    init_checkpoint: str = ""
    """Start a new run from the weights of an srmt checkpoint (a .pth file, a checkpoint folder or a run
    folder; weights-only files such as ``configs/data/srmt-lifelong/srmt-lifelong.pth`` too): fresh
    optimiser, the agent-step counter continues from the checkpoint's, so ``train_for_env_steps`` (the
    total) must be larger than its agent-steps; the model config must match it (only ``model.dropout``
    and ``model.state_precision`` may differ). Empty = off; ignored when the run folder already holds a
    checkpoint (that run resumes)."""
    save_every_sec: int = 120
    """Seconds between checkpoints (one is always written at the end)."""
    keep_checkpoints: int = 2
    """Number of latest checkpoints kept."""
    stall_timeout_s: float = 120.0
    """Parallel mode: end the run as a failure when a worker sends no heartbeat, or the learner's agent-step
    count does not grow, for this many seconds (a hung env, a deadlock); 0 = off. Components that never
    reported get 60 s more for start-up."""

    # --- processes and sampling ---
    serial: bool = False
    """Run sampling, inference and learning in one process (debugging, tiny smoke runs)."""
    num_workers: int = 2
    """Rollout worker processes."""
    policy_workers: int = 1
    """Inference worker processes (sample-factory's ``policy_workers_per_policy``). On a GPU host the single
    inference worker saturates first: 2 gave 1.35x SRMT throughput on 16 cores (measured with ``srmt bench train``)."""
    envs_per_worker: int = 4
    """Environment instances per rollout worker; split in two halves when ``double_buffer`` is on."""
    double_buffer: bool = True
    """Each worker steps one half of its envs while the other half waits for actions."""
    async_rl: bool = True
    """Learn while collecting (APPO); False alternates collection and learning (no policy lag)."""
    max_policy_lag: int = 1000
    """Samples older than this many policy updates are ignored by the learner."""

    # --- PPO ---
    rollout: int = 16
    """Steps per trajectory chunk; also the backprop-through-time window unless ``recurrence`` is set."""
    recurrence: int = 0
    """BPTT window in steps (0 = ``rollout``); must divide ``rollout``."""
    batch_size: int = 2048
    """Agent-steps per minibatch; a multiple of num_agents x rollout so whole environments stay together.
    A larger batch means fewer learner steps per agent-step: 131072 trained the lifelong SRMT 1.37x faster
    than 65536 on a GPU host (docs/bench-train.md), but it changes the learning, so recipes keep 65536."""
    num_batches_per_epoch: int = 1
    """Minibatches per training iteration (batch_size x this = samples per iteration)."""
    num_epochs: int = 1
    """Passes over each training iteration's samples."""
    learning_rate: float = 3e-4
    """Adam step size (initial value for the adaptive schedules)."""
    lr_schedule: Literal["constant", "kl_adaptive_minibatch", "kl_adaptive_epoch", "linear_decay"] = (
        "constant"
    )
    """Learning-rate schedule; the KL-adaptive ones divide/multiply the rate by 1.5 around the threshold."""
    lr_schedule_kl_threshold: float = 0.008
    """Target KL divergence of the KL-adaptive schedules."""
    lr_adaptive_min: float = 1e-6
    """Lower bound of the KL-adaptive learning rate."""
    lr_adaptive_max: float = 1e-2
    """Upper bound of the KL-adaptive learning rate."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    ppo_clip_ratio: float = 0.1
    """PPO ratio clip epsilon (ratio kept in [1/(1+eps), 1+eps])."""
    ppo_clip_value: float = 1.0
    """Clip of the value-function change per update."""
    value_loss_coeff: float = 0.5
    """Weight of the value loss."""
    entropy_coeff: float = 0.003
    """Weight of the entropy bonus."""
    max_grad_norm: float = 4.0
    """Gradient-norm clip (0 = off)."""
    normalize_returns: bool = True
    """Train the value head on running-normalised returns."""
    value_bootstrap: bool = False
    """Bootstrap the value at time-limit truncation instead of treating it as terminal."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before learning."""
    optimizer: Literal["adam", "lamb"] = "adam"
    """Optimiser."""
    adam_eps: float = 1e-6
    """Adam epsilon."""

    # --- logging ---
    log_interval_s: float = 10.0
    """Seconds between console progress lines."""
    stats_avg: int = 50
    """Episodes averaged in the logged episode metrics (reward, CSR, ...)."""
    summaries_interval_s: int = 10
    """Seconds between TensorBoard writes of episode and performance metrics."""
    wandb: Literal["off", "online", "offline"] = "off"
    """Weights & Biases logging, mirroring the TensorBoard scalars: ``off``, ``online`` (needs an API key) or
    ``offline`` (runs written to ``train_dir/wandb/`` for a later ``wandb sync``)."""
    wandb_project: str = "srmt"
    """wandb project name."""
    wandb_group: str = ""
    """wandb run group, e.g. one per sweep or ablation, so that its seeds overlay; empty = the env name."""
    wandb_tags: list[str] = field(default_factory=list)
    """wandb run tags, e.g. ``[ablation, cpu]``."""
    sf_log_level: Literal["debug", "info", "warning", "error"] = "error"
    """Level of sample-factory's own log (console and ``sf_log.txt``); srmt prints its own progress lines."""

    # --- correctness and extension ---
    debug_layout: bool = False
    """Carry env/agent/step ids through every batch and fail loudly if the [G, A, T] layout breaks."""
    plugins: list[str] = field(default_factory=list)
    """Modules or .py files imported in every process before envs/models are built (custom registrations)."""
    uint8_observations: bool = True
    """Send observations through sample-factory's buffers as uint8 when the env declares them binary
    (``binary_observations``): 4x fewer bytes to stack and copy; False keeps float32 (for comparisons)."""
    batched_envs: bool = True
    """Step the envs of each rollout worker split in one batched numpy step where the env has a batched
    implementation (``bottleneck``, ``cue``, ``cue_partner``: ``envs.bottleneck_vec``, the same episodes
    ~30x faster); False steps
    them one after another (the reference, for comparisons). Other envs are always stepped in turn."""
    autocast: Literal["off", "bf16"] = "off"
    """bf16 autocast of the model body (encoder and core) in the inference worker and the learner when
    they run on CUDA (ignored on CPU); heads, losses and the recurrent state stay float32."""
    compile: Literal["off", "default", "max-autotune-no-cudagraphs"] = "off"
    """``torch.compile`` mode of the learner's BPTT step (the loop of the memory core's step over a
    chunk; inference stays eager): ``off``, ``default`` or ``max-autotune-no-cudagraphs``.  Compiling
    costs start-up time (tens of seconds) in the learner process; docs/bench-train.md has the measured
    effect."""
    compile_scope: Literal["step", "sequence"] = "step"
    """What ``train.compile`` compiles: ``step`` (one graph for the memory core's per-step body; the loop
    over the BPTT window stays in Python) or ``sequence`` (the whole window unrolled into one graph:
    fusion across steps and fewer kernel launches, but a longer compile at start-up; it pays off in long
    runs, not in runs of a few minutes)."""
    host_outputs: bool = True
    """Inference on CUDA: hand sample-factory all policy outputs in host memory after one device->host
    copy, instead of letting it copy each output of each request separately (fewer synchronising copies
    per inference call; docs/bench-train.md)."""
    learner_threads: int = 0
    """torch CPU threads of the learner process in parallel mode (0 = sample-factory's default of 1)."""
    sf_overrides: dict[str, Any] = field(default_factory=dict)
    """Extra sample-factory arguments passed through verbatim (expert use; layout-critical keys refused)."""

    def __post_init__(self) -> None:
        positive = dict(
            train_for_env_steps=self.train_for_env_steps,
            num_workers=self.num_workers,
            policy_workers=self.policy_workers,
            envs_per_worker=self.envs_per_worker,
            rollout=self.rollout,
            batch_size=self.batch_size,
            num_batches_per_epoch=self.num_batches_per_epoch,
            num_epochs=self.num_epochs,
            keep_checkpoints=self.keep_checkpoints,
            stats_avg=self.stats_avg,
        )
        for key, value in positive.items():
            if value < 1:
                raise ValueError(f"train.{key}={value} must be >= 1")
        if self.recurrence < 0 or (self.recurrence and self.rollout % self.recurrence):
            raise ValueError(
                f"train.recurrence={self.recurrence} must be 0 (= rollout) or divide train.rollout={self.rollout}"
            )
        if self.double_buffer and self.envs_per_worker % 2:
            raise ValueError(
                f"train.envs_per_worker={self.envs_per_worker} must be even with train.double_buffer=true"
            )
        if not self.stall_timeout_s >= 0:
            raise ValueError(f"train.stall_timeout_s={self.stall_timeout_s} must be >= 0 (0 = off)")
        if self.train_for_seconds < 0:
            raise ValueError(f"train.train_for_seconds={self.train_for_seconds} must be >= 0 (0 = no limit)")

    @property
    def bptt(self) -> int:
        """Backprop-through-time window in steps."""
        return self.recurrence or self.rollout

    @property
    def worker_num_splits(self) -> int:
        return 2 if self.double_buffer else 1

    @property
    def samples_per_iteration(self) -> int:
        return self.batch_size * self.num_batches_per_epoch
