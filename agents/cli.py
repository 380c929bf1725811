"""The ``srmt`` console script: one entry point, sub-commands live in their own modules.

Each sub-command module exposes ``main(argv: list[str]) -> int``; it is imported only when used so that
``srmt --help`` stays fast and a missing optional part fails only its own command.
"""

from __future__ import annotations

import importlib
import sys

# name -> (module, one-line help, issue that builds it)
COMMANDS: dict[str, tuple[str, str, int]] = {
    "demo": ("agents.demo", "the default job: short SRMT training + evaluation on Bottleneck", 4),
    "train": (
        "agents.train",
        "train a model with APPO (sample-factory): srmt train CONFIG [key=value ...]",
        4,
    ),
    "sweep": (
        "agents.sweep",
        "cores x seeds on one experiment, one table with bootstrap CIs: srmt sweep EXPERIMENT [key=value ...]",
        17,
    ),
    "eval": ("agents.evaluate", "evaluate algorithms on map sets: srmt eval CONFIG [key=value ...]", 5),
    "enjoy": ("agents.enjoy", "write an SVG animation of one episode for any algorithm", 5),
    "bench": ("agents.bench", "benchmarks: srmt bench {env,model,train} [options]", 2),
    "envs": ("agents.envs_cmd", "list registered environments and map sets, or play one episode", 2),
    "data": ("agents.data_cmd", "the POGEMA benchmark data: srmt data {list,fetch,pack}", 10),
    "offline": (
        "agents.offline",
        "RATE-style offline RL: srmt offline {record,train,eval,run} [CONFIG] [key=value ...]",
        0,
    ),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: srmt COMMAND [args ...]   (srmt --version: the installed version)", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_, _) in COMMANDS.items()]
    lines += ["", "srmt COMMAND --help describes one command and lists its config keys with their defaults."]
    return "\n".join(lines)


def version() -> str:
    """The installed distribution's version (``pip install`` metadata)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("srmt")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed; run from a source tree)"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"srmt {version()}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"srmt: unknown command {name!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module_name, _, issue = COMMANDS[name]
    try:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            where = f" (issue {issue})" if issue else ""
            print(f"srmt {name}: not built yet{where}", file=sys.stderr)
            return 2
        return int(module.main(rest) or 0)
    except KeyboardInterrupt:
        # Ctrl-C ends every command with one line and the shell's code for SIGINT, never a traceback
        print(f"srmt {name}: interrupted", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
