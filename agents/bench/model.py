"""``srmt bench model``: forward+backward agent-steps/s of every model variant at every preset.

Sequence mode (the learner's path: one encoder call for the chunk, then T core steps with BPTT through
the memory and the shared pool), random observations, a few random episode resets.  The ``none`` core
(feed-forward, same encoder and heads) is the baseline measured in the same run; ``vs none`` is the
ratio of agent-steps/s.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import time
from dataclasses import dataclass, field

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

import configs
from srmt import CORE_NAMES, ModelConfig, build_actor_critic

PRESETS = ("srmt-bottleneck", "srmt-mid", "srmt-lmapf")


@dataclass
class _Preset:
    """Model presets are ``model: {...}`` files so that experiment configs can use them as ``base``."""

    model: ModelConfig = field(default_factory=ModelConfig)


def load_model_preset(name: str, overrides: list[str] | None = None) -> ModelConfig:
    """``srmt-mid`` or ``model/srmt-mid.yaml`` or a path -> ModelConfig (overrides like ``model.core=gru``)."""
    source = name if name.endswith(".yaml") else f"model/{name}.yaml"
    return configs.load(_Preset, source, overrides).model


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="srmt bench model", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto (GPU when available), cpu, cuda or cuda:N")
    p.add_argument(
        "--G", type=int, default=None, help="environments per batch (default: 32 on GPU, 1 on CPU)"
    )
    p.add_argument("--A", type=int, default=64, help="agents per environment")
    p.add_argument("--T", type=int, default=16, help="steps per sequence (BPTT length)")
    p.add_argument("--presets", nargs="+", default=list(PRESETS), help="preset names or YAML paths")
    p.add_argument("--variants", nargs="+", default=list(CORE_NAMES), choices=CORE_NAMES)
    p.add_argument("--obs", type=int, nargs=3, default=(3, 11, 11), metavar=("C", "H", "W"))
    p.add_argument(
        "--iters", type=int, default=5, help="timed iterations after one warm-up; the median counts"
    )
    p.add_argument(
        "--compile",
        choices=("none", "step", "sequence", "core-step", "core-sequence"),
        default="none",
        help="torch.compile the core's step function or the whole (unrolled) model sequence; core-step / "
        "core-sequence: what train.compile_scope=step / sequence compile in the learner",
    )
    p.add_argument(
        "--sdpa", choices=("auto", "math"), default="auto", help="scaled_dot_product_attention backend choice"
    )
    p.add_argument(
        "--amp", choices=("none", "bf16"), default="none", help="bf16 autocast for the forward pass"
    )
    return p


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _sdpa(choice: str):
    """The SDPA backend context: ``math`` (plain matmul + softmax) can beat the fused kernels for the
    tiny sequences (K+3 tokens) and head sizes of the small presets."""
    if choice == "math":
        return sdpa_kernel([SDPBackend.MATH])
    return contextlib.nullcontext()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    cfg: ModelConfig, args: argparse.Namespace, device: torch.device, G: int
) -> tuple[int, int, float]:
    """(parameters, state floats per agent, forward+backward agent-steps/s) for one model."""
    torch.manual_seed(0)
    A, T = args.A, args.T
    model = build_actor_critic(cfg, tuple(args.obs), num_actions=5).to(device)
    obs = (torch.rand(G, A, T, *args.obs, device=device) < 0.3).float()  # binary grid channels
    reset = torch.rand(G, A, T, device=device) < 1 / 64
    state = model.initial_state(G, A)

    run = model.sequence
    if args.compile == "step":  # each step one graph, the T loop stays in Python
        model.core._step = torch.compile(model.core._step)
    elif args.compile == "sequence":  # the T steps unrolled into one forward and one backward graph
        run = torch.compile(model.sequence)
    elif args.compile in ("core-step", "core-sequence"):  # the learner's path (train.compile_scope)
        model.core.compile_sequence("default", "step" if args.compile == "core-step" else "sequence")

    def once() -> float:
        _sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp == "bf16"), _sdpa(args.sdpa):
            out = run(obs, state, reset)
        loss = out.logits.logsumexp(-1).mean() + out.value.square().mean()
        with _sdpa(args.sdpa):
            loss.backward()
        model.zero_grad(set_to_none=True)
        _sync(device)
        return time.perf_counter() - start

    warm = once()  # warm-up: allocator, kernels, mask caches (and compilation)
    if args.compile != "none":
        print(f"#   {cfg.core}: first (compiling) iteration {warm:.1f} s", flush=True)
    seconds = statistics.median(once() for _ in range(args.iters))  # the median resists a busy machine
    rate = G * A * T / seconds
    return sum(p.numel() for p in model.parameters()), model.state_size, rate


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    device = _device(args.device)
    G = args.G or (32 if device.type == "cuda" else 1)
    # conv algorithm search, as a training run would enable it (inputs keep one shape)
    torch.backends.cudnn.benchmark = True
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(
        f"# srmt bench model: device={device} ({where}), torch {torch.__version__}, "
        f"threads={torch.get_num_threads()}, G={G} A={args.A} T={args.T} obs={tuple(args.obs)} amp={args.amp} "
        f"compile={args.compile} sdpa={args.sdpa} cudnn.benchmark=True"
    )
    print("| preset | variant | params | state floats | fwd+bwd agent-steps/s | vs none |")
    print("|---|---|---:|---:|---:|---:|")
    variants = sorted(args.variants, key=lambda v: v != "none")  # the baseline first
    for name in args.presets:
        base_rate = None
        for core in variants:
            cfg = load_model_preset(name, [f"model.core={core}"])
            params, state, rate = measure(cfg, args, device, G)
            if core == "none":
                base_rate = rate
            ratio = f"{rate / base_rate:.2f}" if base_rate else "-"
            print(f"| {name} | {core} | {params:,} | {state:,} | {rate:,.0f} | {ratio} |", flush=True)
    return 0
