"""``srmt offline train``: the offline learner for the RATE model (:mod:`srmt.rate`).

The data is a sharded dataset folder (or one ``.npz``), opened memory-mapped (:mod:`agents.offline.shards`);
a background thread prepares the batches (:mod:`agents.offline.loader`). Each batch is G whole recorded
episodes (``train.sampling=episodes``) or G random windows of ``bptt_segments`` x K steps
(``windows``), all agents of an environment together, cut into segments of K steps. Segments are
processed in order with the memory carried from one to the next; after every
``bptt_segments`` segments the loss (cross-entropy on the recorded action, padded and inactive steps
masked) is backpropagated, the optimizer steps and the memory is detached (truncated BPTT over
segments, as RATE trains its recurrence). AdamW, gradient clipping, linear warm-up then cosine or
constant learning rate.

Checkpoints are a plain dict of tensors and plain data (``torch.load(..., weights_only=True)``).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from agents.checkpoint_io import load_error_reason, save_atomic
from agents.offline.data import OfflineDataset, SegmentSampler
from agents.offline.loader import BatchLoader
from agents.offline.shards import ShardedDataset, open_datasets
from agents.offline_config import OfflineConfig
from srmt.rate import RATEConfig, RATEModel

CHECKPOINT_FORMAT = "srmt-rate-v1"
CHECKPOINT_KEYS = ("format", "model", "model_config", "obs_shape", "num_actions", "env", "returns")


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda when a GPU is visible, else cpu; ``cpu``, ``cuda``, ``cuda:N`` are checked."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" or device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if device != "cpu" and not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but no CUDA GPU is visible; use device=cpu or device=auto")
        return torch.device(device)
    raise ValueError(f"device={device!r} is not one of auto, cpu, cuda, cuda:N")


def sequence_loss(
    logits: torch.Tensor, actions: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy of ``logits [G, A, K, n]`` on ``actions [G, A, K]`` over ``valid`` steps, and
    their number (padded steps contribute nothing to the loss or the gradients)."""
    n = int(valid.sum())
    if n == 0:
        return logits.sum() * 0.0, 0
    loss = F.cross_entropy(logits[valid].float(), actions[valid].long(), reduction="mean")
    return loss, n


def chunk_loss(
    model: RATEModel,
    tensors: list[torch.Tensor] | tuple[torch.Tensor, ...],
    segments: range,
    K: int,
    memory: torch.Tensor | None,
    memory_gradient: str = "bptt",
) -> tuple[torch.Tensor, int, int, torch.Tensor | None]:
    """The segments ``segments`` of a batch (``tensors``: obs, actions, rtg, timesteps, valid and
    optionally labels, each ``[G, A, T, ...]``) in order, the memory carried from one to the next ->
    (mean cross-entropy over their valid steps, valid steps, correctly predicted ones, memory after the
    last segment). The targets are ``labels`` (the expert's actions) when given, else the taken
    ``actions``; the taken actions are always the model's action tokens (what happened).

    ``memory_gradient="detach"`` detaches the memory after every segment (RATE / ELMUR): its value still
    reaches the next segment, but a segment's loss never backpropagates into earlier segments' memory
    writes. ``"bptt"`` keeps the graph across the segments of the chunk."""
    losses, counts, correct = [], 0, 0
    if len(tensors) == 5:
        tensors = (*tensors, tensors[1])  # no labels: the taken actions are the targets
    for s in segments:
        obs, actions, rtg, ts, valid, labels = (x[:, :, s * K : (s + 1) * K] for x in tensors)
        if not valid.any():
            continue  # every episode of the batch is over (or its agents finished)
        out = model(obs, actions, rtg, ts, valid, memory)
        memory = out.memory.detach() if memory_gradient == "detach" else out.memory
        loss, n = sequence_loss(out.logits, labels, valid)
        losses.append(loss * n)
        counts += n
        correct += int((out.logits[valid].argmax(-1) == labels[valid]).sum())
    if counts == 0:
        return torch.zeros(()), 0, 0, memory
    return torch.stack(losses).sum() / counts, counts, correct, memory


class Timers:
    """Seconds spent per phase (sample-factory ``timing`` style)."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.total[name] += time.perf_counter() - t0

    def summary(self) -> str:
        return ", ".join(f"{k} {v:.1f} s" for k, v in self.total.items())


@dataclass
class TrainResult:
    checkpoint: Path
    updates: int
    agent_steps: int
    seconds: float
    agent_steps_per_s: float
    loss: float
    accuracy: float
    timers: dict[str, float]


def lr_factor(cfg: OfflineConfig, updates: int, progress: float) -> float:
    """Learning rate as a fraction of the peak: linear warm-up, then cosine (by ``progress`` in [0, 1]
    towards the step or time limit) or constant."""
    t = cfg.train
    if updates < t.warmup_steps:
        return (updates + 1) / (t.warmup_steps + 1)
    if t.lr_schedule == "constant":
        return 1.0
    p = min(max(progress, 0.0), 1.0)
    return t.min_lr_ratio + (1.0 - t.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * p))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on the matrices of linear and conv layers only (not biases, norms, embeddings)."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            is_matrix = name == "weight" and isinstance(module, (torch.nn.Linear, torch.nn.Conv2d))
            (decay if is_matrix else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _writer(cfg: OfflineConfig):
    if not cfg.train.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency, but a stripped install still trains
        return None
    return SummaryWriter(str(cfg.run_dir / "tb"))


@contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch CPU threads (0 = leave the setting alone), then restore it."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_stages(
    cfg: OfflineConfig, log=print, dataset: ShardedDataset | OfflineDataset | None = None
) -> TrainResult:
    """:func:`train`, then the ``finetune`` stage when ``finetune.steps`` > 0 (its dataset recorded first
    when missing); returns the last stage's result."""
    from agents.offline.record import record

    result = train(cfg, log, dataset=dataset)
    if cfg.finetune.steps > 0:
        stage = cfg.finetune_stage()
        ds2, _ = record(stage, log)  # records what is missing; a complete dataset is only opened
        if cfg.progress:
            log(
                f"[offline train] finetune stage: {stage.train.steps} updates from {stage.train.init_checkpoint}"
            )
        result = train(stage, log, dataset=ds2)
    for r in range(cfg.dagger.rounds):
        rnd = cfg.dagger_round(r)
        shutil.copyfile(cfg.checkpoint_path, rnd.record.policy)  # the policy that plays this round
        if cfg.progress:
            log(
                f"[offline train] DAgger round {r + 1}/{cfg.dagger.rounds}: {rnd.record.policy} plays, "
                f"{cfg.record.algorithm} labels -> {rnd.record.dataset}"
            )
        record(rnd, log)
        result = train(rnd, log)
    return result


def train(
    cfg: OfflineConfig, log=print, dataset: ShardedDataset | OfflineDataset | None = None
) -> TrainResult:
    """Train a RATE model on the recorded dataset and write ``{run_dir}/rate.pt``."""
    with torch_threads(cfg.train.threads):
        return _train(cfg, log, dataset, resolve_device(cfg.device))


def _train(
    cfg: OfflineConfig, log, dataset: ShardedDataset | OfflineDataset | None, device: torch.device
) -> TrainResult:
    t = cfg.train
    if dataset is None:
        ds = open_datasets([cfg.train_dataset_path, *t.extra_datasets], t.verify)
    elif isinstance(dataset, OfflineDataset):
        ds = ShardedDataset.from_dataset(dataset)
    else:
        ds = dataset
    torch.manual_seed(cfg.seed)
    model = RATEModel(cfg.model, ds.obs_shape, ds.num_actions).to(device)
    if t.init_checkpoint:
        init_from(model, t.init_checkpoint)
    opt = torch.optim.AdamW(param_groups(model, t.weight_decay), lr=t.learning_rate)
    sampler = SegmentSampler(
        ds,
        t.batch_envs,
        cfg.model.segment_len,
        seed=cfg.seed,
        mode=t.sampling,
        window_segments=t.bptt_segments,
    )
    writer = _writer(cfg)
    timers = Timers()
    n_params = sum(p.numel() for p in model.parameters())
    if cfg.progress:
        log(
            f"[offline train] {ds.num_episodes} episodes in {len(ds.shards)} shard(s), {ds.agent_steps} agent-steps, "
            f"{ds.num_agents} agents/env, sampling {t.sampling}; "
            f"RATE {n_params:,} params, K={cfg.model.segment_len}, M={cfg.model.memory_tokens}, "
            f"shared_memory={cfg.model.shared_memory}, memory_gradient={t.memory_gradient}; device {device}"
        )
    updates = agent_steps = 0
    loss_avg = acc_avg = float("nan")
    t0 = last_log = time.perf_counter()
    log_steps, log_t = 0, t0

    def done() -> bool:
        elapsed = time.perf_counter() - t0
        return (t.steps > 0 and updates >= t.steps) or (
            t.train_for_seconds > 0 and elapsed >= t.train_for_seconds
        )

    def progress() -> float:
        p = [updates / t.steps] if t.steps > 0 else []
        if t.train_for_seconds > 0:
            p.append((time.perf_counter() - t0) / t.train_for_seconds)
        return max(p) if p else 0.0

    model.train()
    with BatchLoader(sampler, device, prefetch=t.prefetch) as loader:
        while not done():
            with timers("data"):  # waiting for the loader (gathering itself runs ahead in its thread)
                batch = next(loader)
            tensors = batch.tensors() if t.targets == "expert" else batch.tensors()[:5]
            memory = None
            n_seg, K = batch.num_segments, batch.segment_len
            for c0 in range(0, n_seg, t.bptt_segments):
                with timers("forward_backward"):
                    segments = range(c0, min(c0 + t.bptt_segments, n_seg))
                    loss, counts, correct, memory = chunk_loss(
                        model, tensors, segments, K, memory, t.memory_gradient
                    )
                    if counts == 0:
                        break  # later chunks are padding only
                    for g in opt.param_groups:
                        g["lr"] = t.learning_rate * lr_factor(cfg, updates, progress())
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                with timers("optimizer"):
                    grad_norm = (
                        torch.nn.utils.clip_grad_norm_(model.parameters(), t.max_grad_norm)
                        if t.max_grad_norm > 0
                        else torch.zeros(())
                    )
                    opt.step()
                memory = memory.detach() if memory is not None else None
                updates += 1
                agent_steps += counts
                log_steps += counts
                lv, acc = float(loss.detach()), correct / counts
                loss_avg = lv if math.isnan(loss_avg) else 0.9 * loss_avg + 0.1 * lv
                acc_avg = acc if math.isnan(acc_avg) else 0.9 * acc_avg + 0.1 * acc
                if writer is not None:
                    writer.add_scalar("loss/cross_entropy", lv, agent_steps)
                    writer.add_scalar("train/accuracy", acc, agent_steps)
                    writer.add_scalar("train/lr", opt.param_groups[0]["lr"], agent_steps)
                    writer.add_scalar("train/grad_norm", float(grad_norm), agent_steps)
                now = time.perf_counter()
                if now - last_log >= t.log_interval_s:
                    rate = log_steps / (now - log_t)
                    if writer is not None:
                        writer.add_scalar("perf/agent_steps_per_s", rate, agent_steps)
                        writer.add_scalar("perf/data_wait_s", timers.total["data"], agent_steps)
                    if cfg.progress:
                        limit = f"/{t.steps}" if t.steps else ""
                        log(
                            f"[offline train] update {updates}{limit} | loss {loss_avg:.4f} | acc {acc_avg:.3f} | "
                            f"{rate:,.0f} agent-steps/s | lr {opt.param_groups[0]['lr']:.2e} | {now - t0:.0f} s"
                        )
                    last_log, log_steps, log_t = now, 0, now
                if done():
                    break
    seconds = time.perf_counter() - t0
    rate = agent_steps / max(seconds, 1e-9)
    path = save_checkpoint(cfg.checkpoint_path, model, cfg, ds, updates=updates, agent_steps=agent_steps)
    if writer is not None:
        writer.add_scalar("perf/agent_steps_per_s_overall", rate, agent_steps)
        writer.close()
    if cfg.progress:
        log(
            f"[offline train] done: {updates} updates, {agent_steps:,} agent-steps in {seconds:.1f} s "
            f"({rate:,.0f} agent-steps/s); loss {loss_avg:.4f}, acc {acc_avg:.3f}; time: {timers.summary()}; "
            f"checkpoint {path}"
        )
    return TrainResult(path, updates, agent_steps, seconds, rate, loss_avg, acc_avg, dict(timers.total))


def init_from(model: RATEModel, path: str | Path) -> None:
    """Copy the weights of the checkpoint ``path`` into ``model`` (``train.init_checkpoint``); a checkpoint
    of another model config or observation / action space is a one-line ValueError."""
    source, ckpt = load_checkpoint(path)
    if (source.cfg, source.obs_shape, source.num_actions) != (model.cfg, model.obs_shape, model.num_actions):
        raise ValueError(
            f"train.init_checkpoint={str(path)!r} holds a model of another config, observation shape or "
            f"action count than this run's (model.*: {source.cfg} vs {model.cfg})"
        )
    model.load_state_dict(source.state_dict())


def save_checkpoint(
    path: str | Path, model: RATEModel, cfg: OfflineConfig, ds: ShardedDataset | OfflineDataset, **extra: int
) -> Path:
    """A plain dict: tensors (CPU) + the configs as plain data, loadable with ``weights_only=True``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_config": dataclasses.asdict(cfg.model),
        "obs_shape": list(model.obs_shape),
        "num_actions": model.num_actions,
        # the env the data was recorded in (its reward defines the returns-to-go), not this config's
        "env": ds.meta.get("env", dataclasses.asdict(cfg.env)),
        "returns": {"best": ds.target_return("best"), "mean": ds.target_return("mean")},
        **extra,
    }
    return save_atomic(ckpt, path)  # never a half-written checkpoint under the final name


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[RATEModel, dict[str, Any]]:
    """The model (eval mode) and the checkpoint dict; a missing or corrupt file is a one-line ValueError."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} not found; train one with `srmt offline train CONFIG`")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # a corrupt file surfaces as many exception types; keep it one line
        raise ValueError(f"checkpoint {str(path)!r} could not be loaded: {load_error_reason(e)}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {str(path)!r} is not an srmt RATE checkpoint ({CHECKPOINT_FORMAT})")
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt]
    if missing:
        raise ValueError(f"checkpoint {str(path)!r} lacks {', '.join(missing)}")
    try:
        model = RATEModel(
            RATEConfig(**ckpt["model_config"]), tuple(ckpt["obs_shape"]), int(ckpt["num_actions"])
        )
        model.load_state_dict(ckpt["model"])
    except (TypeError, ValueError, RuntimeError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ValueError(f"checkpoint {str(path)!r} does not match its model config: {reason}") from None
    return model.to(device).eval(), ckpt
