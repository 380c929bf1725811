"""``srmt bench {env,model,step,train}``: benchmark scripts that print figures (never timed tests)."""

from __future__ import annotations

import importlib
import sys

TARGETS = {
    "env": ("agents.bench.env", "raw environment throughput, agent-steps/s, 1 and N processes"),
    "model": ("agents.bench.model", "forward+backward agent-steps/s per model variant and preset"),
    "step": ("agents.bench.step", "aten ops and time of one inference step per core (launch count)"),
    "train": ("agents.bench.train", "end-to-end APPO training agent-steps/s vs raw env throughput"),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: srmt bench {" + ",".join(TARGETS) + "} [options]\n")
        for name, (_, help_) in TARGETS.items():
            print(f"  {name:<6} {help_}")
        return 0
    if argv[0] not in TARGETS:
        print(f"srmt bench: unknown target {argv[0]!r}; choose one of: {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    module_name = TARGETS[argv[0]][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        print(f"srmt bench {argv[0]}: not built yet", file=sys.stderr)
        return 2
    return int(module.main(argv[1:]) or 0)
