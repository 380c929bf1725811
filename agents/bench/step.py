"""``srmt bench step``: aten ops and time of one inference step (``ActorCritic.step``) per core.

The inference step runs eagerly on a batch of variable size; on a GPU at the small presets it is
launch-bound, so its cost follows the number of kernels it launches.  This counts the aten ops of one
``step`` under ``no_grad`` (what an inference worker runs) with a ``TorchDispatchMode``: ``ops`` is every
aten call, ``kernels`` leaves out the view ops (view, reshape as view, slice, transpose, expand, ...),
which launch nothing.  On CUDA a few ops differ (the attention backend), so the counts are CPU counts.  The time is the median wall time of ``--iters`` steps on the chosen device.

Flags: ``plain`` passes ``reset`` all False and ``active`` all True (what sample-factory's inference worker
hands in on most steps); ``mixed`` resets about 1/16 of the agents and marks about 1/8 inactive.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections import Counter
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from agents.bench.model import _device, _sync, load_model_preset
from srmt import CORE_NAMES, build_actor_critic

FLAGS = ("plain", "mixed")
ALIASES = frozenset({"_unsafe_view"})
"""Ops that return an alias of their input without the view tag (no kernel either)."""


class OpCounter(TorchDispatchMode):
    """Counts the aten overloads dispatched while active (below autograd: what reaches the kernels)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.views = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = str(func.overloadpacket.__name__)
        self.ops[name] += 1
        if getattr(func, "is_view", False) or name in ALIASES:
            self.views += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.ops.values())


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="srmt bench step", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu (default), auto, cuda or cuda:N")
    p.add_argument("--preset", default="srmt-mid", help="model preset name or YAML path")
    p.add_argument(
        "--set",
        nargs="*",
        default=["model.history_dim=16", "model.state_precision=bfloat16"],
        metavar="KEY=VALUE",
        help="model overrides (default: the compact state of configs/experiment/lmapf-srmt.yaml)",
    )
    p.add_argument("--variants", nargs="+", default=["none", "srmt", "rmt"], choices=CORE_NAMES)
    p.add_argument("--G", type=int, nargs="+", default=[8, 64], help="environments per step")
    p.add_argument("--A", type=int, default=64, help="agents per environment")
    p.add_argument("--flags", nargs="+", default=list(FLAGS), choices=FLAGS)
    p.add_argument("--obs", type=int, nargs=3, default=(3, 11, 11), metavar=("C", "H", "W"))
    p.add_argument("--iters", type=int, default=20, help="timed steps after two warm-ups; the median counts")
    p.add_argument(
        "--amp",
        choices=("none", "bf16"),
        default="none",
        help="bf16 autocast around the step (as train.autocast)",
    )
    p.add_argument(
        "--core-only",
        action="store_true",
        help="count and time the memory core's step alone (on precomputed embeddings): no encoder, no heads",
    )
    p.add_argument("--top", type=int, default=0, help="also print the N most frequent ops of each row")
    return p


def _inputs(G: int, A: int, obs: tuple[int, ...], flags: str, device: torch.device, model: Any):
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(G, A, *obs, generator=gen) < 0.3).float().to(device)
    if flags == "plain":
        reset = torch.zeros(G, A, dtype=torch.bool)
        active = torch.ones(G, A, dtype=torch.bool)
    else:
        reset = torch.rand(G, A, generator=gen) < 1 / 16
        active = torch.rand(G, A, generator=gen) >= 1 / 8
    state = (torch.randn(G, A, model.state_size, generator=gen) * 0.5).to(device)
    return x, state, reset.to(device), active.to(device)


def measure(model: Any, G: int, args: argparse.Namespace, flags: str, device: torch.device):
    """(op counter, median seconds) of one ``model.step`` on ``G x A`` agents."""
    x, state, reset, active = _inputs(G, args.A, tuple(args.obs), flags, device, model)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp == "bf16")
    step = model.step
    if args.core_only:
        with torch.no_grad():
            x = model.encoder(x)  # (G, A, D) embeddings
        step = model.core.step

    def once() -> float:
        _sync(device)
        start = time.perf_counter()
        with torch.no_grad(), amp:
            step(x, state, reset, active)
        _sync(device)
        return time.perf_counter() - start

    once(), once()  # warm-up: allocator, caches
    counter = OpCounter()
    with torch.no_grad(), amp, counter:
        step(x, state, reset, active)
    return counter, statistics.median(once() for _ in range(args.iters))


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    device = _device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(
        f"# srmt bench step: device={device} ({where}), torch {torch.__version__}, "
        f"threads={torch.get_num_threads()}, preset={args.preset} {' '.join(args.set)} A={args.A} "
        f"obs={tuple(args.obs)} amp={args.amp} iters={args.iters} core_only={args.core_only}"
    )
    print("| variant | G | flags | aten ops | kernels (non-view) | ms/step | vs none (ms) |")
    print("|---|---:|---|---:|---:|---:|---:|")
    variants = sorted(args.variants, key=lambda v: v != "none")  # the baseline first
    for G in args.G:
        for flags in args.flags:
            base = None
            for core in variants:
                cfg = load_model_preset(args.preset, [*args.set, f"model.core={core}"])
                torch.manual_seed(0)
                model = build_actor_critic(cfg, tuple(args.obs), num_actions=5).to(device).eval()
                counter, seconds = measure(model, G, args, flags, device)
                if core == "none":
                    base = seconds
                ratio = f"{seconds / base:.2f}" if base else "-"
                kernels = counter.total - counter.views
                print(
                    f"| {core} | {G} | {flags} | {counter.total} | {kernels} | {seconds * 1e3:.2f} | {ratio} |",
                    flush=True,
                )
                if args.top:
                    top = ", ".join(f"{n} {c}" for n, c in counter.ops.most_common(args.top))
                    print(f"#   {core} G={G} {flags}: {top}")
    return 0
