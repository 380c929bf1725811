"""Reading and writing torch checkpoint files safely: weights-only loading with one-line errors, and
atomic saves (temp file, fsync, rename) so that a kill mid-save never leaves a half-written file under a
checkpoint's name.

Used by every srmt loader (training resume, ``load_policy``, RATE, FollowerLite).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

TEMP_PREFIX = ".tmp-"
"""Temp files of :func:`save_atomic` start with this (hidden, and matched by no checkpoint pattern)."""

# torch wraps the weights-only refusal in advice to retry with weights_only=False (arbitrary code
# execution); these lines are that advice, never shown to users
_TORCH_ADVICE = (
    "Weights only load failed",
    "Please file an issue",
    "Check the documentation",
    "In PyTorch 2.6",
)


def load_error_reason(e: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` failed, in a few words, without torch's advice to load
    the file with ``weights_only=False``."""
    if isinstance(e, EOFError):
        return "the file is empty or truncated"
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    detail = [ln for ln in lines if not ln.startswith(_TORCH_ADVICE)]
    if isinstance(e, pickle.UnpicklingError) and lines and lines[0].startswith("Weights only load failed"):
        text = " ".join(detail).replace("WeightsUnpickler error:", "").strip()
        if "GLOBAL" in text or "global" in text:
            return f"it holds Python objects other than tensors and plain data, refused by weights-only loading ({text})"
        return f"not a valid torch checkpoint ({text or 'unpickling failed'})"
    text = detail[0] if detail else type(e).__name__
    if "central directory" in text or "zip archive" in text:
        return "not a valid torch checkpoint (corrupt or truncated zip archive)"
    return text.split(". ")[0][:200]


def load_weights_only(path: str | Path, *, what: str = "checkpoint", map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; any failure is a one-line ValueError naming the file."""
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"{what} {str(path)!r} not found") from None
    except IsADirectoryError:
        raise ValueError(f"{what} {str(path)!r} is a folder, not a checkpoint file") from None
    except Exception as e:  # torch raises many types for bad files (zip, unpickling, runtime, EOF)
        raise ValueError(f"{what} {str(path)!r} cannot be loaded: {load_error_reason(e)}") from None


def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temp file in the same folder, fsync it, rename it to ``path``, fsync the folder.

    Readers see either the previous state or the complete new file, even after a kill or a power loss.
    """
    path = Path(path)
    tmp = path.with_name(f"{TEMP_PREFIX}{path.name}.{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # e.g. folders cannot be opened on this platform; the rename itself is still atomic
        return path
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
    return path
