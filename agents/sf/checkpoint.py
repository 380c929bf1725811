"""Finding and loading srmt checkpoints written by ``srmt train`` (weights-only, no code execution)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import torch

from agents.checkpoint_io import load_weights_only
from agents.config import ExperimentConfig, load_experiment
from envs.config import upgrade_legacy
from srmt import ActorCritic, build_actor_critic

CHECKPOINT_SUBDIR = "checkpoint_p0"

# what srmt's learner writes: <kind>_<train step, 9 digits>_<agent-steps>[_<best metric>].pth; everything
# else in the folder (sample-factory's `checkpoint_temp` left by a kill mid-save, our own `.tmp-*` files)
# is not a checkpoint
_NAME = re.compile(r"^(checkpoint|best)_(\d{9})_(\d+)(_[^/]*)?\.pth$")


def is_checkpoint_name(name: str, kind: str = "checkpoint") -> bool:
    m = _NAME.match(name)
    return m is not None and m.group(1) == kind


def checkpoint_files(folder: str | Path, kind: str = "checkpoint") -> list[Path]:
    """The checkpoints in ``folder`` (oldest first), temp files and other leftovers ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if is_checkpoint_name(p.name, kind) and p.is_file())


def _checkpoint_folder(p: Path) -> Path:
    return p / CHECKPOINT_SUBDIR if (p / CHECKPOINT_SUBDIR).is_dir() else p


def find_checkpoint(path: str | Path, kind: str = "checkpoint") -> Path:
    """A checkpoint file from a file path, a checkpoint folder or a run folder (latest by step).

    ``kind`` is ``checkpoint`` (latest periodic one) or ``best``. The latest by name only; use
    :func:`latest_valid_checkpoint` to skip files that cannot be loaded.
    """
    p = Path(path)
    if p.is_file():
        return p
    if not p.is_dir():
        raise FileNotFoundError(
            f"checkpoint {str(p)!r} not found (give a .pth file, a run folder or its checkpoint folder)"
        )
    folder = _checkpoint_folder(p)
    files = checkpoint_files(folder, kind)
    if not files:
        raise FileNotFoundError(f"no {kind}_*.pth in {str(folder)!r}; has this run saved a checkpoint yet?")
    return files[-1]


def _load_srmt_checkpoint(file: Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    ckpt = load_weights_only(file, map_location=device)
    if not isinstance(ckpt, dict) or "srmt" not in ckpt or "model" not in ckpt:
        raise ValueError(
            f"checkpoint {str(file)!r} is not an srmt checkpoint (no 'srmt' entry; written by plain sample-factory?)"
        )
    return ckpt


def warn(message: str) -> None:
    """A one-line warning on stderr (the console of every srmt command)."""
    print(f"[srmt] warning: {message}", file=sys.stderr, flush=True)


def latest_valid_checkpoint(
    path: str | Path, kind: str = "checkpoint", device: str | torch.device = "cpu"
) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint of a run (or checkpoint) folder that loads, and its dict; None if the folder
    holds no checkpoint at all.

    A newer file that cannot be loaded (a kill mid-save on a filesystem without atomic renames, a disk
    error) is skipped with a one-line warning naming it; if no file loads, a one-line ValueError.
    """
    folder = _checkpoint_folder(Path(path))
    files = checkpoint_files(folder, kind)
    skipped: list[str] = []
    for file in reversed(files):
        try:
            ckpt = _load_srmt_checkpoint(file, device)
        except ValueError as e:
            warn(f"skipping {e}")
            skipped.append(file.name)
            continue
        return file, ckpt
    if skipped:
        raise ValueError(
            f"no checkpoint in {str(folder)!r} can be loaded ({len(skipped)} tried, newest {skipped[0]}); "
            "delete the broken files, or start over with train.restart=overwrite or train.restart=restart"
        )
    return None


def read_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict, loaded with ``weights_only=True``, from a file, a checkpoint folder or a run
    folder (its newest loadable checkpoint). Every failure is a one-line ValueError / FileNotFoundError."""
    p = Path(path)
    if p.is_dir():
        found = latest_valid_checkpoint(p, device=device)
        if found is not None:
            return found[1]
    return _load_srmt_checkpoint(find_checkpoint(p), device)


def load_policy(path: str | Path, device: str | torch.device = "cpu") -> tuple[ActorCritic, ExperimentConfig]:
    """The trained :class:`srmt.ActorCritic` (eval mode, on ``device``) and the experiment config it was
    trained with, from a checkpoint file, checkpoint folder or run folder."""
    ckpt = read_checkpoint(path, device)
    meta = ckpt["srmt"]
    exp = load_experiment(saved_experiment(meta["experiment"]))
    net = build_actor_critic(exp.model, tuple(meta["obs_shape"]), int(meta["num_actions"]))
    prefix = "net."
    weights = {k[len(prefix) :]: v for k, v in ckpt["model"].items() if k.startswith(prefix)}
    try:
        net.load_state_dict(weights)
    except RuntimeError as e:
        reason = " ".join(str(e).split())[:300]
        raise ValueError(f"checkpoint {str(path)!r} does not match its own model config: {reason}") from None
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
