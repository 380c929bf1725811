"""``srmt enjoy [CONFIG] [key=value ...]``: write an animated SVG of one episode of any algorithm.

Options live under ``enjoy.`` (see EvalConfig.enjoy): ``enjoy.algorithm=FollowerLite
enjoy.map_set=02-mazes enjoy.map_name=validation-mazes-seed-003 enjoy.num_agents=32 enjoy.out=ep.svg``.
Algorithms, map sets and the benchmark folder come from the same config as ``srmt eval``.
"""

from __future__ import annotations

import sys

from agents.eval.api import enjoy, load_eval_config
from agents.evaluate import split_args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
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
