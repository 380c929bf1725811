"""``srmt offline``: RATE-style return-conditioned sequence modelling on recorded trajectories.

    srmt offline record [CONFIG] [key=value ...]   expert episodes -> {run_dir}/dataset/ (shards)
    srmt offline train  [CONFIG] [key=value ...]   dataset -> RATE model {run_dir}/rate.pt
    srmt offline eval   [CONFIG] [key=value ...]   RATE vs expert vs random -> {run_dir}/eval.md
    srmt offline run    [CONFIG] [key=value ...]   all three (the default quick job)
    srmt offline lengths [CONFIG] [key=value ...]  T-Maze: success per corridor length (eval.lengths)
    srmt offline compare [CONFIG] [key=value ...]  T-Maze: memory gradients detached vs BPTT, over seeds

CONFIG is a YAML path or a name under ``configs/offline/`` (default ``bottleneck``); keys are those of
:class:`agents.offline_config.OfflineConfig` (``docs/offline.md``). The model is :mod:`srmt.rate`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

SUBCOMMANDS = ("record", "train", "eval", "run", "lengths", "compare")
DEFAULT_CONFIG = "bottleneck"

USAGE = """usage: srmt offline {record,train,eval,run,lengths,compare} [CONFIG] [key=value ...]

  record  play the expert (record.algorithm, epsilon-greedy) and save trajectories to {run_dir}/dataset/
          (sharded; record.workers processes; a killed recording resumes when run again)
  train   train the RATE model on the dataset, write {run_dir}/rate.pt (+ TensorBoard in {run_dir}/tb)
  eval    RATE model vs the expert vs a random agent on the same seeds -> markdown table {run_dir}/eval.md
  run     record + train + eval (the default quick job: `srmt offline run`, < 3 min on 2 CPU cores)
  lengths T-Maze: the checkpoint, the expert and a random agent per corridor length (eval.lengths),
          batched step mode with the memory carried -> {run_dir}/lengths.md
  compare T-Maze: train.memory_gradient=detach vs bptt, seeds compare_seeds, same dataset and budget,
          each tested per length -> {run_dir}/compare.md (mean and bootstrap CI over seeds)

CONFIG: a YAML path or a name under configs/offline/ (default: bottleneck). Overrides are dotted,
e.g. train.steps=200 model.shared_memory=false eval.episodes=10."""


def resolve_config(name: str) -> str | Path:
    """A shipped name (``bottleneck``, ``offline/bottleneck``) or a path."""
    from configs import CONFIG_DIR

    p = Path(name)
    if p.is_file():
        return p
    for candidate in (CONFIG_DIR / "offline" / f"{name}.yaml", CONFIG_DIR / "offline" / name):
        if candidate.is_file():
            return candidate
    return name  # configs.load resolves it or fails with a one-line error


def load_config(name: str, overrides: list[str]):
    import configs
    from agents.offline_config import OfflineConfig

    return configs.load(OfflineConfig, resolve_config(name), overrides)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        if not argv:
            print(USAGE)
            return 2
        from agents.config_docs import keys_help
        from agents.offline_config import OfflineConfig

        print(
            f"{USAGE}\n\nconfig keys (key=value; default when CONFIG does not set it):\n{keys_help(OfflineConfig)}"
        )
        return 0
    sub, rest = argv[0], argv[1:]
    if sub not in SUBCOMMANDS:
        print(
            f"srmt offline: unknown sub-command {sub!r}; choose one of: {', '.join(SUBCOMMANDS)}",
            file=sys.stderr,
        )
        return 2
    if any(a in ("-h", "--help") for a in rest):
        print(USAGE)
        return 0
    name = DEFAULT_CONFIG
    if rest and "=" not in rest[0]:
        name, rest = rest[0], rest[1:]
    bad = [a for a in rest if "=" not in a]
    if bad:
        print(
            f"srmt offline {sub}: argument {bad[0]!r} must look like key=value (e.g. train.steps=100)",
            file=sys.stderr,
        )
        return 2
    import configs

    try:
        cfg = load_config(name, rest)
    except configs.ConfigError as e:
        print(f"srmt offline {sub}: {e}", file=sys.stderr)
        return 2
    try:
        return _run(sub, cfg)
    except ValueError as e:  # bad dataset, checkpoint, device or eval override: one line
        print(f"srmt offline {sub}: {e}", file=sys.stderr)
        return 2


def _run(sub: str, cfg) -> int:
    from agents.offline.evaluate import evaluate
    from agents.offline.record import record
    from agents.offline.train import train_stages

    t0 = time.perf_counter()
    log = (lambda msg: print(msg, flush=True)) if cfg.progress else (lambda msg: None)
    dataset = None
    if sub in ("record", "run"):
        dataset, _ = record(cfg, log)
    if sub in ("train", "run"):
        same = dataset is not None and cfg.train_dataset_path == cfg.dataset_path
        train_stages(cfg, log, dataset=dataset if same else None)
    if sub in ("eval", "run"):
        report = evaluate(cfg, log)
        print()
        print(report.table)
    if sub == "lengths":
        from agents.offline.tmaze import evaluate_lengths

        evaluate_lengths(cfg, log)
        print()
        print((cfg.run_dir / "lengths.md").read_text().rstrip())
    if sub == "compare":
        from agents.offline.tmaze import compare_memory_gradients

        table = compare_memory_gradients(cfg, log)
        print()
        print(table)
        print(f"\n[offline compare] total {time.perf_counter() - t0:.0f} s; run folder {cfg.run_dir}")
    if sub == "run":
        print(f"\n[offline run] total {time.perf_counter() - t0:.0f} s; run folder {cfg.run_dir}")
    return 0
