"""``srmt demo``: the README's default job. Trains SRMT on Bottleneck for a fixed number of agent-steps
(``train.train_for_env_steps`` of ``configs/experiment/bottleneck-srmt.yaml``), then plays the test
corridors with the untrained and the trained policy and prints CSR / ISR per corridor length L.

The budget is work, not wall time, so the result does not depend on how busy the machine is: a loaded
machine takes longer, it does not learn less. ``--min-csr 0.9`` turns the demo into a check (exit code 1
when the trained CSR is below 0.9 at any length).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

DEFAULT_CONFIG = "bottleneck-srmt"
DEFAULT_LENGTHS = (3, 5, 10, 15, 20, 30, 40, 50, 100)
REFERENCE_RATE = 11000.0
"""Agent-steps/s of the default job on an idle 2-core CPU (docs/training.md: 11.5k with the batched env): the ETA before training
starts; from the first progress line on the ETA comes from the measured rate."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="srmt demo",
        description="Train SRMT on Bottleneck for a fixed number of agent-steps, then compare the untrained "
        "and the trained policy (CSR/ISR) on the test corridors.",
        epilog="example of a shorter demo: "
        "srmt demo train.train_for_env_steps=1000000 --lengths 3,10,30 --episodes 10",
    )
    p.add_argument("config", nargs="?", default=DEFAULT_CONFIG, help="experiment YAML or shipped name")
    p.add_argument(
        "overrides", nargs="*", help="dotted key=value overrides, e.g. train.train_for_env_steps=1000000"
    )
    p.add_argument("--lengths", default=",".join(map(str, DEFAULT_LENGTHS)), help="test corridor lengths L")
    p.add_argument("--episodes", type=int, default=20, help="episodes per corridor length and policy")
    p.add_argument(
        "--skip-train", action="store_true", help="evaluate the run folder's latest checkpoint only"
    )
    p.add_argument(
        "--min-csr",
        type=float,
        default=None,
        metavar="X",
        help="exit with code 1 unless the trained CSR is >= X at every length (the 'it learned' check)",
    )
    return p


def format_table(lengths: list[int], before: list[dict], after: list[dict]) -> str:
    lines = [
        f"{'L':>5} | {'CSR untrained':>13} | {'CSR trained':>11} | {'ISR untrained':>13} | {'ISR trained':>11}",
        "-" * 65,
    ]
    for L, b, a in zip(lengths, before, after):
        lines.append(
            f"{L:>5} | {b['CSR']:>13.2f} | {a['CSR']:>11.2f} | {b['ISR']:>13.2f} | {a['ISR']:>11.2f}"
        )
    mean = lambda rows, k: sum(r[k] for r in rows) / len(rows)  # noqa: E731
    lines.append("-" * 65)
    lines.append(
        f"{'mean':>5} | {mean(before, 'CSR'):>13.2f} | {mean(after, 'CSR'):>11.2f} | "
        f"{mean(before, 'ISR'):>13.2f} | {mean(after, 'ISR'):>11.2f}"
    )
    return "\n".join(lines)


def fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(round(max(seconds, 0.0)))
    return f"{s // 60}m{s % 60:02d}s"


def evaluate_with_progress(policy, lengths: list[int], episodes: int, device, what: str) -> list[dict]:
    """``evaluate_bottleneck`` one length at a time (same seeds as one call), with a line per length and an
    ETA; the untrained policy plays every episode to the step limit (2L+100), so this takes a while."""
    from agents.sf import evaluate_bottleneck

    rows: list[dict] = []
    t0 = time.time()
    # episode cost grows with the step limit 2L+100; weight the ETA by it
    work = [2 * L + 100 for L in lengths]
    for i, L in enumerate(lengths):
        rows += evaluate_bottleneck(policy, [L], episodes, device)
        done = sum(work[: i + 1])
        elapsed = time.time() - t0
        eta = elapsed / done * (sum(work) - done)
        print(
            f"[srmt demo] {what}: L={L} CSR {rows[-1]['CSR']:.2f} ({i + 1}/{len(lengths)} lengths, "
            f"{fmt_duration(elapsed)} elapsed, ETA {fmt_duration(eta)})",
            flush=True,
        )
    return rows


def _help(argv: list[str]) -> str:
    """argparse's help, then every config key with the value the demo's config gives it."""
    import configs
    from agents.config import load_experiment
    from agents.config_docs import experiment_keys_help

    source = next((a for a in argv if not a.startswith("-") and "=" not in a), DEFAULT_CONFIG)
    try:
        exp = load_experiment(source)
    except configs.ConfigError:
        exp, source = load_experiment(DEFAULT_CONFIG), DEFAULT_CONFIG
    return f"{_parser().format_help().rstrip()}\n\nconfig keys (key=value; the values of {source}):\n" + (
        experiment_keys_help(exp)
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        print(_help(argv))
        return 0
    # config names and key=value overrides are positional; split them off before argparse sees --options
    args = _parser().parse_intermixed_args(argv)
    if args.config and "=" in args.config:
        args.overrides.insert(0, args.config)
        args.config = DEFAULT_CONFIG
    try:
        lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    except ValueError:
        print(f"srmt demo: --lengths={args.lengths!r} must be comma-separated integers", file=sys.stderr)
        return 2
    if not lengths or args.episodes < 1:
        print("srmt demo: give at least one length (--lengths) and --episodes >= 1", file=sys.stderr)
        return 2
    import configs
    from agents.config import load_experiment

    try:
        overrides = list(args.overrides)
        if not any(o.startswith("train.restart=") for o in overrides) and not args.skip_train:
            overrides.append("train.restart=overwrite")  # a demo starts from scratch every time
        exp = load_experiment(args.config, overrides)
    except (configs.ConfigError, ValueError) as e:
        print(f"srmt demo: {e}", file=sys.stderr)
        return 2
    from agents.sf import train
    from agents.sf.checkpoint import load_policy
    from agents.sf.evaluate import untrained_policy
    from agents.sf.sf_config import resolve_device
    from agents.sf.training import probe_env

    try:
        device = resolve_device(exp.device)
    except ValueError as e:
        print(f"srmt demo: {e}", file=sys.stderr)
        return 2
    steps = int(exp.train.train_for_env_steps)
    t0 = time.time()
    if not args.skip_train:
        limit = (
            f", stopping early after {fmt_duration(exp.train.train_for_seconds)}"
            if exp.train.train_for_seconds > 0
            else ""
        )
        print(
            f"[srmt demo] plan: 1) untrained policy on {len(lengths)} test corridors x {args.episodes} "
            f"episodes, 2) train {exp.name} for {steps:,} agent-steps{limit} (ETA "
            f"{fmt_duration(steps / REFERENCE_RATE)} at {REFERENCE_RATE / 1000:.1f}k agent-steps/s, an idle "
            "2-core CPU; longer on a busy one), 3) trained policy on the same corridors",
            flush=True,
        )
    _, obs_shape, num_actions = probe_env(exp)
    before = evaluate_with_progress(
        (untrained_policy(exp, obs_shape, num_actions), exp), lengths, args.episodes, device, "untrained"
    )
    if not args.skip_train:
        print(
            f"[srmt demo] training: starting sample-factory's processes (progress every "
            f"{exp.train.log_interval_s:g} s once the first samples arrive)",
            flush=True,
        )
        result = train(exp)
        if result.status != "success":
            print(f"srmt demo: training {result.status}: {result.error}", file=sys.stderr)
            return 1
        run_dir = result.run_dir
    else:
        from pathlib import Path

        run_dir = Path(exp.train.train_dir) / exp.name
    try:
        trained = load_policy(run_dir, device)
    except (FileNotFoundError, ValueError) as e:
        print(f"srmt demo: {e}", file=sys.stderr)
        return 2
    after = evaluate_with_progress(trained, lengths, args.episodes, device, "trained")
    print()
    print(f"Bottleneck test corridors, {args.episodes} episodes per L (step limit 2L+100):")
    print(format_table(lengths, before, after))
    print(f"\ntotal wall time {time.time() - t0:.0f} s; checkpoint: {run_dir}")
    gain = sum(a["CSR"] - b["CSR"] for a, b in zip(after, before)) / len(lengths)
    if not math.isnan(gain):
        print(f"mean CSR gain from training: {gain:+.2f}")
    if args.min_csr is not None:
        low = [f"L={L}: {a['CSR']:.2f}" for L, a in zip(lengths, after) if not a["CSR"] >= args.min_csr]
        if low:
            print(f"srmt demo: trained CSR below {args.min_csr:g} at {', '.join(low)}", file=sys.stderr)
            return 1
        print(f"check passed: trained CSR >= {args.min_csr:g} at every length")
    return 0


if __name__ == "__main__":
    sys.exit(main())
