"""``srmt demo``: the README's default job. Trains SRMT on Bottleneck (about 8 minutes on a 2-core CPU),
then plays the test corridors with the untrained and the trained policy and prints CSR / ISR per L."""

from __future__ import annotations

import argparse
import math
import sys
import time

DEFAULT_CONFIG = "bottleneck-srmt"
DEFAULT_LENGTHS = (3, 5, 10, 15, 20, 30, 40, 50, 100)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="srmt demo",
        description="Train SRMT on Bottleneck, then compare untrained vs trained CSR/ISR on test corridors.",
    )
    p.add_argument("config", nargs="?", default=DEFAULT_CONFIG, help="experiment YAML or shipped name")
    p.add_argument(
        "overrides", nargs="*", help="dotted key=value overrides, e.g. train.train_for_seconds=120"
    )
    p.add_argument("--lengths", default=",".join(map(str, DEFAULT_LENGTHS)), help="test corridor lengths L")
    p.add_argument("--episodes", type=int, default=20, help="episodes per corridor length and policy")
    p.add_argument(
        "--skip-train", action="store_true", help="evaluate the run folder's latest checkpoint only"
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


def main(argv: list[str] | None = None) -> int:
    # config names and key=value overrides are positional; split them off before argparse sees --options
    args = _parser().parse_intermixed_args(list(sys.argv[1:] if argv is None else argv))
    if args.config and "=" in args.config:
        args.overrides.insert(0, args.config)
        args.config = DEFAULT_CONFIG
    try:
        lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    except ValueError:
        print(f"srmt demo: --lengths={args.lengths!r} must be comma-separated integers", file=sys.stderr)
        return 2
    import configs
    from agents.config import load_experiment
    from agents.sf import evaluate_bottleneck, train
    from agents.sf.evaluate import untrained_policy
    from agents.sf.sf_config import resolve_device
    from agents.sf.training import probe_env

    try:
        overrides = list(args.overrides)
        if not any(o.startswith("train.restart=") for o in overrides) and not args.skip_train:
            overrides.append("train.restart=overwrite")  # a demo starts from scratch every time
        exp = load_experiment(args.config, overrides)
        device = resolve_device(exp.device)
    except (configs.ConfigError, ValueError) as e:
        print(f"srmt demo: {e}", file=sys.stderr)
        return 2
    t0 = time.time()
    _, obs_shape, num_actions = probe_env(exp)
    before = evaluate_bottleneck(
        (untrained_policy(exp, obs_shape, num_actions), exp), lengths, args.episodes, device
    )
    print(f"[srmt demo] untrained policy evaluated in {time.time() - t0:.0f} s", flush=True)
    run_dir = None
    if not args.skip_train:
        result = train(exp)
        if result.status != "success":
            print(f"srmt demo: training {result.status}: {result.error}", file=sys.stderr)
            return 1
        run_dir = result.run_dir
    else:
        from pathlib import Path

        run_dir = Path(exp.train.train_dir) / exp.name
    t1 = time.time()
    after = evaluate_bottleneck(run_dir, lengths, args.episodes, device)
    print(f"[srmt demo] trained policy evaluated in {time.time() - t1:.0f} s", flush=True)
    print()
    print(f"Bottleneck test corridors, {args.episodes} episodes per L (step limit 2L+100):")
    print(format_table(lengths, before, after))
    print(f"\ntotal wall time {time.time() - t0:.0f} s; checkpoint: {run_dir}")
    gain = sum(a["CSR"] - b["CSR"] for a, b in zip(after, before)) / max(len(lengths), 1)
    if not math.isnan(gain):
        print(f"mean CSR gain from training: {gain:+.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
