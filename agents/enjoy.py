"""usage: srmt enjoy [CONFIG] [key=value ...]

Write an animated SVG of one episode of any algorithm (any browser plays it). The episode is chosen
by the enjoy.* keys, e.g.

  srmt enjoy eval/smoke
  srmt enjoy eval/lifelong enjoy.algorithm=FollowerLite enjoy.map_set=02-mazes enjoy.num_agents=32 enjoy.out=ep.svg

Algorithms, map sets and the benchmark folder come from the same config as `srmt eval` (benchmark map
sets need `srmt data fetch` once). An env task (a policy of a non-grid env, or eval.env) has no grid to
draw: its episode is written as a text trace of every step's actions and rewards (.txt) instead.
"""

from __future__ import annotations

import sys

from agents.eval.api import enjoy, load_eval_config
from agents.evaluate import help_text, split_args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(help_text(__doc__))
        return 0
    source, overrides = split_args(argv)
    try:
        enjoy(load_eval_config(source, overrides))
    except ValueError as e:
        print(f"srmt enjoy: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
