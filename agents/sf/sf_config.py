"""ExperimentConfig -> sample-factory's flat configuration, and the layout invariants checked at start-up."""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from sample_factory.cfg.arguments import parse_sf_args
from sample_factory.utils.attr_dict import AttrDict

from agents.config import ExperimentConfig, load_experiment
from agents.sf.env import SF_ENV_NAME, import_plugins

# sample-factory arguments srmt exposes as typed TrainConfig keys: sf_overrides may not set them behind
# the typed key's back.
TYPED_KEYS = {
    "policy_workers_per_policy": "train.policy_workers",
    # srmt normalises inside the model (srmt.encoder.RunningNorm), so the statistics travel with the weights
    "normalize_input": "model.normalize_input",
}

# Keys the adapter sets because the shared-memory layout depends on them; sf_overrides may not touch them.
LAYOUT_KEYS = frozenset(
    {
        "batched_sampling",
        "shuffle_minibatches",
        "num_policies",
        "use_rnn",
        "rnn_size",
        "rnn_num_layers",
        "rnn_type",
        "actor_critic_share_weights",
        "num_envs_per_worker",
        "worker_num_splits",
        "recurrence",
        "rollout",
        "batch_size",
        "env",
        "experiment",
        "train_dir",
        "with_pbt",
    }
)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; other values are checked and returned."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" or device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if device != "cpu" and not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but no CUDA GPU is visible; use device=cpu or device=auto")
        return device
    raise ValueError(f"device={device!r} is not one of auto, cpu, cuda, cuda:N")


def make_sf_config(exp: ExperimentConfig, agents_per_env: int, state_size: int) -> AttrDict:
    """sample-factory's configuration for ``exp`` (its defaults, then ours, then ``train.sf_overrides``)."""
    t = exp.train
    _, defaults = parse_sf_args([f"--env={SF_ENV_NAME}", f"--experiment={exp.name}"])
    cfg = AttrDict(vars(defaults))
    device = resolve_device(exp.device)
    if device.startswith("cuda:"):
        # sample-factory picks GPUs through CUDA_VISIBLE_DEVICES; make cuda:N the only one it sees
        os.environ["CUDA_VISIBLE_DEVICES"] = device[5:]
    splits = t.worker_num_splits
    cfg.update(
        env=SF_ENV_NAME,
        experiment=exp.name,
        train_dir=str(Path(t.train_dir).resolve()),
        restart_behavior=t.restart,
        seed=exp.seed,
        device="cpu" if device == "cpu" else "gpu",
        env_gpu_observations=False,
        serial_mode=t.serial,
        async_rl=t.async_rl,
        num_workers=t.num_workers,
        # one sample-factory env per split, each a vector of envs_per_worker/splits srmt envs (agents.sf.env)
        num_envs_per_worker=splits,
        worker_num_splits=splits,
        batched_sampling=True,
        num_policies=1,
        policy_workers_per_policy=t.policy_workers,
        with_pbt=False,
        rollout=t.rollout,
        recurrence=t.bptt,
        batch_size=t.batch_size,
        num_batches_per_epoch=t.num_batches_per_epoch,
        num_epochs=t.num_epochs,
        shuffle_minibatches=False,
        # the state buffers must hold the model's flat state: get_rnn_size() = rnn_size for a shared GRU
        use_rnn=True,
        rnn_type="gru",
        rnn_size=state_size,
        rnn_num_layers=1,
        actor_critic_share_weights=True,
        normalize_input=False,
        obs_subtract_mean=0.0,
        obs_scale=1.0,
        learning_rate=t.learning_rate,
        lr_schedule=t.lr_schedule,
        lr_schedule_kl_threshold=t.lr_schedule_kl_threshold,
        lr_adaptive_min=t.lr_adaptive_min,
        lr_adaptive_max=t.lr_adaptive_max,
        gamma=t.gamma,
        gae_lambda=t.gae_lambda,
        ppo_clip_ratio=t.ppo_clip_ratio,
        ppo_clip_value=t.ppo_clip_value,
        value_loss_coeff=t.value_loss_coeff,
        exploration_loss="entropy",
        exploration_loss_coeff=t.entropy_coeff,
        max_grad_norm=t.max_grad_norm,
        normalize_returns=t.normalize_returns,
        value_bootstrap=t.value_bootstrap,
        reward_scale=t.reward_scale,
        optimizer=t.optimizer,
        adam_eps=t.adam_eps,
        max_policy_lag=t.max_policy_lag,
        train_for_env_steps=t.train_for_env_steps,
        # srmt enforces the wall-clock limit itself (sample-factory never updates its own counter)
        train_for_seconds=10**10,
        save_every_sec=t.save_every_sec,
        # heartbeats often enough for srmt's stall watchdog (agents.sf.runner) to tell a hung worker
        heartbeat_interval=max(1, min(20, int(t.stall_timeout_s // 4))) if t.stall_timeout_s else 20,
        keep_checkpoints=t.keep_checkpoints,
        stats_avg=t.stats_avg,
        experiment_summaries_interval=t.summaries_interval_s,
        with_wandb=False,  # srmt starts wandb itself (agents.sf.training._start_wandb): SF's init breaks offline mode
        wandb_project=t.wandb_project,
        wandb_group=exp.env.name if hasattr(exp.env, "name") else None,
        decorrelate_experience_max_seconds=0,
        log_to_file=True,
        use_env_info_cache=False,
        # provenance fields that sample-factory's own parser would add
        command_line="",
        cli_args={},
        git_hash=None,
        git_repo_name=None,
    )
    for key, value in t.sf_overrides.items():
        if key not in cfg or key.startswith("srmt"):
            raise ValueError(f"train.sf_overrides: {key!r} is not a sample-factory argument")
        if key in LAYOUT_KEYS:
            raise ValueError(
                f"train.sf_overrides: {key!r} is set by srmt (the shared-memory layout depends on it); "
                "use the train.* key instead"
            )
        if key in TYPED_KEYS:
            raise ValueError(f"train.sf_overrides: {key!r} has a typed key; use {TYPED_KEYS[key]} instead")
        cfg[key] = value
    cfg.update(
        srmt=dataclasses.asdict(exp),
        srmt_agents_per_env=int(agents_per_env),
        srmt_envs_per_split=t.envs_per_worker // splits,
        srmt_state_size=int(state_size),
        srmt_debug_layout=t.debug_layout,
        srmt_plugins=list(t.plugins),
        srmt_log_level=t.sf_log_level,
        srmt_learner_threads=t.learner_threads,
    )
    return cfg


def check_layout(cfg: Any) -> None:
    """The invariants that keep each environment's agents together; one-line ValueError if one breaks."""
    A = int(cfg.srmt_agents_per_env)
    k = int(cfg.srmt_envs_per_split)
    if not cfg.batched_sampling:
        raise ValueError(
            "batched_sampling must be True: only batched sampling keeps an env's agents in adjacent rows"
        )
    if cfg.shuffle_minibatches:
        raise ValueError(
            "shuffle_minibatches must be False: shuffling splits environments across minibatches"
        )
    if cfg.num_policies != 1:
        raise ValueError(
            f"num_policies={cfg.num_policies} is not supported: all agents of an env share one policy"
        )
    if (
        not cfg.use_rnn
        or not cfg.actor_critic_share_weights
        or cfg.rnn_type != "gru"
        or cfg.rnn_num_layers != 1
    ):
        raise ValueError(
            "the state buffers must be sized by use_rnn=True, rnn_type=gru, one layer, shared weights"
        )
    T, R = int(cfg.rollout), int(cfg.recurrence)
    if R < 2 or T % R:
        raise ValueError(
            f"train.recurrence={R} must be >= 2 and divide train.rollout={T} (0 = rollout; sample-factory "
            "needs a window > 1 for stateful policies)"
        )
    if cfg.with_vtrace and R != T:
        raise ValueError(f"V-trace needs train.recurrence == train.rollout, got {R} and {T}")
    per_env = A * T
    if cfg.batch_size % per_env:
        raise ValueError(
            f"train.batch_size={cfg.batch_size} must be a multiple of num_agents x rollout = {A} x {T} = {per_env} "
            "so that a minibatch holds whole environments"
        )
    traj_per_iteration = cfg.batch_size // T * cfg.num_batches_per_epoch
    traj_per_split = k * A
    if traj_per_iteration % traj_per_split and traj_per_split % traj_per_iteration:
        raise ValueError(
            f"samples per iteration ({traj_per_iteration} trajectories = batch_size/rollout x num_batches_per_epoch) "
            f"and one worker split ({traj_per_split} = envs_per_worker/splits x {A} agents) must divide one another"
        )
    if not cfg.async_rl:
        per_rollout = cfg.num_workers * cfg.num_envs_per_worker * k * A * T
        per_iteration = cfg.batch_size * cfg.num_batches_per_epoch
        if per_iteration % per_rollout:
            raise ValueError(
                f"train.async_rl=false needs batch_size x num_batches_per_epoch ({per_iteration}) to be a multiple "
                f"of what all workers collect per rollout (num_workers x envs_per_worker x {A} agents x rollout "
                f"= {per_rollout})"
            )


def experiment_from_sf(cfg: Any) -> ExperimentConfig:
    """The typed experiment config carried inside sample-factory's flat config (``cfg.srmt``)."""
    return load_experiment(dict(cfg.srmt))


_LOG_LEVELS = dict(debug=logging.DEBUG, info=logging.INFO, warning=logging.WARNING, error=logging.ERROR)


def setup_process(cfg: Any) -> None:
    """Per-process set-up run by the env and model factories (sample-factory spawns fresh processes)."""
    if cfg is None:
        return
    import_plugins(cfg.get("srmt_plugins", ()))
    # sample-factory 2.1.1 calls float() on the loss tensor; harmless, but it warns on every process
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")
    level = _LOG_LEVELS[cfg.get("srmt_log_level", "error")]
    logging.getLogger("rl").setLevel(level)
    name = multiprocessing.current_process().name
    threads = int(cfg.get("srmt_learner_threads", 0))
    if threads > 0 and name.startswith("learner"):
        torch.set_num_threads(threads)
