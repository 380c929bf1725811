"""Feeding the offline learner: batches from a :class:`~agents.offline.data.SegmentSampler` as tensors on
the training device, prepared ahead in a background thread so that the accelerator does not wait for the
memory-mapped reads.

The thread gathers a batch from the shards (numpy copies, which release the GIL), wraps it as tensors and,
when the target device is a CUDA device, copies them into pinned (page-locked) host memory; the training
thread then issues ``.to(device, non_blocking=True)``, so the host-to-device copy overlaps the work queued
before it. The device always comes from the caller.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from agents.offline.data import Batch, SegmentSampler

BATCH_FIELDS = ("obs", "actions", "rtg", "timesteps", "valid", "labels")


@dataclass
class TensorBatch:
    """A :class:`~agents.offline.data.Batch` as tensors ``[G, A, T, ...]`` on one device."""

    obs: torch.Tensor
    actions: torch.Tensor
    rtg: torch.Tensor
    timesteps: torch.Tensor
    valid: torch.Tensor
    labels: torch.Tensor
    """The training targets (the expert's actions where the dataset records them, else ``actions``)."""
    segment_len: int

    @property
    def num_segments(self) -> int:
        return self.actions.shape[2] // self.segment_len

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, k) for k in BATCH_FIELDS)


def host_tensors(batch: Batch, pin: bool) -> TensorBatch:
    """CPU tensors sharing (or, when ``pin``, copied into pinned memory from) the batch's arrays."""
    out = []
    for k in BATCH_FIELDS:
        t = torch.from_numpy(np.ascontiguousarray(getattr(batch, k)))
        out.append(t.pin_memory() if pin else t)
    return TensorBatch(*out, segment_len=batch.segment_len)


def to_device(batch: TensorBatch, device: torch.device) -> TensorBatch:
    non_blocking = device.type == "cuda"
    moved = [t.to(device, non_blocking=non_blocking) for t in batch.tensors()]
    return TensorBatch(*moved, segment_len=batch.segment_len)


class BatchLoader:
    """An endless iterator of :class:`TensorBatch` on ``device``.

    ``prefetch`` > 0: a daemon thread keeps up to that many batches ready; 0: each batch is gathered when
    asked for. Both give the same batches in the same order (one thread draws from the sampler's RNG).
    An exception in the thread is raised by the next ``next()``. Use as a context manager, or call
    :meth:`close`.
    """

    def __init__(self, sampler: SegmentSampler, device: torch.device | str, prefetch: int = 2) -> None:
        if prefetch < 0:
            raise ValueError(f"prefetch={prefetch} is invalid; it must be >= 0")
        self.sampler = sampler
        self.device = torch.device(device)
        self.pin = self.device.type == "cuda" and torch.cuda.is_available()
        self.prefetch = prefetch
        self._stop = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=max(prefetch, 1))
        self._thread: threading.Thread | None = None
        if prefetch > 0:
            self._thread = threading.Thread(target=self._produce, name="offline-batch-loader", daemon=True)
            self._thread.start()

    def _produce(self) -> None:
        try:
            while not self._stop.is_set():
                item = host_tensors(self.sampler.next_batch(), self.pin)
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as e:  # handed to the consumer, which raises it
            self._queue.put(e)

    def __iter__(self) -> Iterator[TensorBatch]:
        return self

    def __next__(self) -> TensorBatch:
        if self._thread is None:
            return to_device(host_tensors(self.sampler.next_batch(), self.pin), self.device)
        item = self._queue.get()
        if isinstance(item, BaseException):
            self.close()
            raise item
        return to_device(item, self.device)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            while self._thread.is_alive():
                try:  # unblock a producer waiting on a full queue
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
                self._thread.join(timeout=0.05)
            self._thread = None

    def __enter__(self) -> BatchLoader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
