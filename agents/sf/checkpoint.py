"""Finding and loading srmt checkpoints written by ``srmt train`` (weights-only, no code execution)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from agents.config import ExperimentConfig, load_experiment
from envs.config import upgrade_legacy
from srmt import ActorCritic, build_actor_critic

CHECKPOINT_SUBDIR = "checkpoint_p0"


def find_checkpoint(path: str | Path, kind: str = "checkpoint") -> Path:
    """A checkpoint file from a file path, a checkpoint folder or a run folder (latest by step).

    ``kind`` is ``checkpoint`` (latest periodic one) or ``best``.
    """
    p = Path(path)
    if p.is_file():
        return p
    if not p.is_dir():
        raise FileNotFoundError(
            f"checkpoint {str(p)!r} not found (give a .pth file, a run folder or its checkpoint folder)"
        )
    folder = p / CHECKPOINT_SUBDIR if (p / CHECKPOINT_SUBDIR).is_dir() else p
    files = sorted(folder.glob(f"{kind}_*.pth"))
    if not files:
        raise FileNotFoundError(f"no {kind}_*.pth in {str(folder)!r}; has this run saved a checkpoint yet?")
    return files[-1]


def read_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict, loaded with ``weights_only=True``."""
    file = find_checkpoint(path)
    ckpt = torch.load(file, map_location=device, weights_only=True)
    if "srmt" not in ckpt:
        raise ValueError(
            f"{str(file)!r} is not an srmt checkpoint (no 'srmt' entry; written by plain sample-factory?)"
        )
    return ckpt


def load_policy(path: str | Path, device: str | torch.device = "cpu") -> tuple[ActorCritic, ExperimentConfig]:
    """The trained :class:`srmt.ActorCritic` (eval mode, on ``device``) and the experiment config it was
    trained with, from a checkpoint file, checkpoint folder or run folder."""
    ckpt = read_checkpoint(path, device)
    meta = ckpt["srmt"]
    exp = load_experiment(saved_experiment(meta["experiment"]))
    net = build_actor_critic(exp.model, tuple(meta["obs_shape"]), int(meta["num_actions"]))
    prefix = "net."
    weights = {k[len(prefix) :]: v for k, v in ckpt["model"].items() if k.startswith(prefix)}
    net.load_state_dict(weights)
    net.to(device)
    net.eval()
    return net, exp


def saved_experiment(data: Any) -> dict[str, Any]:
    """A saved experiment dict in today's form: pre-issue-12 Bottleneck keys moved under
    ``env.options`` (``envs.config.upgrade_legacy``). The env's plugin (``env.plugin``) is imported when
    the config is loaded, so a plugin env's checkpoint needs no extra flags."""
    out = dict(data)
    if isinstance(out.get("env"), dict):
        out["env"] = upgrade_legacy(dict(out["env"]))
    return out


def checkpoint_progress(path: str | Path) -> dict[str, int]:
    """``train_step`` and ``env_steps`` of a checkpoint (for resume checks and reports)."""
    ckpt = read_checkpoint(path)
    return dict(train_step=int(ckpt["train_step"]), env_steps=int(ckpt["env_steps"]))
