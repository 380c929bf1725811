"""usage: srmt eval [CONFIG] [key=value ...]

Evaluate algorithms on map sets (a grid of episodes, in parallel workers). CONFIG is an eval YAML
(shipped: eval/lifelong, eval/classic, eval/smoke) or an experiment config with an eval: section;
without it the defaults below apply (A*, PIBT, FollowerLite and Random on the POGEMA benchmark's
01-random and 02-mazes, lifelong). Overrides narrow the grid, e.g.

  srmt eval eval/smoke
  srmt eval eval/lifelong run=[PIBT,AStar] map_sets=[02-mazes] num_agents=[8,16] max_maps=8 workers=2

A policy trained on a non-grid env (PettingZoo, a plugin's env) plays an env task instead: `episodes`
seeded episodes of its own env, tabled by the env's own metrics; `env.name=... env.options.K=V` gives
every algorithm that env task (eval.env), e.g.

  srmt eval algorithms.B.kind=srmt algorithms.B.checkpoint=train_dir/beacon-srmt run=[B] episodes=50

The benchmark map sets need the POGEMA benchmark data: `srmt data fetch` (once). Writes
{out_dir}/<map set>-<lmapf|mapf|env>/<Algorithm>.json (pogema-toolbox format, with the evaluation config
beside them), results.csv, comparison.csv (with the published results), summary.md and plots/.
"""

from __future__ import annotations

import sys

from agents.eval.api import EvalInterrupted, evaluate, load_eval_config


def help_text(doc: str) -> str:
    """A command's usage text followed by every EvalConfig key with its default, in plain text."""
    from agents.config_docs import keys_help
    from agents.eval_config import EvalConfig

    return f"{doc.strip()}\n\nconfig keys (key=value; default shown):\n{keys_help(EvalConfig)}"


def split_args(argv: list[str]) -> tuple[str | None, list[str]]:
    """``[CONFIG] [key=value ...]`` -> (CONFIG or None, overrides)."""
    if argv and "=" not in argv[0]:
        return argv[0], argv[1:]
    return None, argv


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(help_text(__doc__))
        return 0
    source, overrides = split_args(argv)
    try:
        cfg = load_eval_config(source, overrides)
        evaluate(cfg)
    except ValueError as e:  # ConfigError is a ValueError; both are one-line messages
        print(f"srmt eval: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # finished episodes are already on disk (EvalInterrupted says where)
        print(f"srmt eval: {e if isinstance(e, EvalInterrupted) else 'interrupted'}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
