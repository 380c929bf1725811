"""``srmt train CONFIG [key=value ...]``: APPO training through sample-factory (see ``agents.sf``)."""

from __future__ import annotations

import sys

USAGE = """usage: srmt train CONFIG [key=value ...]

Train a model with asynchronous PPO (sample-factory 2.1.1). CONFIG is a YAML path or a shipped experiment
name (e.g. bottleneck-srmt); dotted overrides follow, e.g.

  srmt train bottleneck-srmt model.core=gru train.train_for_env_steps=2000000 device=cuda

Checkpoints, TensorBoard logs and the resolved config go to train.train_dir/<name>/; running the same
command again resumes from the latest checkpoint (train.restart=overwrite starts over).
Shipped experiment names: bottleneck-srmt (the CPU default job), bottleneck-{rmt,attention,gru,none},
bottleneck-srmt-paper and lmapf-srmt (GPU).
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        if not argv:
            print(USAGE.rstrip())
            return 2
        from agents.config_docs import experiment_keys_help

        print(f"{USAGE.rstrip()}\n\nconfig keys (key=value; default when CONFIG does not set it):")
        print(experiment_keys_help())
        return 0
    import configs
    from agents.config import load_experiment

    source, overrides = argv[0], argv[1:]
    try:
        plugins = [o for o in overrides if o.startswith("train.plugins=")]
        _import_plugins_early(source, plugins)
        exp = load_experiment(source, overrides)
        from agents.sf import train

        result = train(exp)
    except (configs.ConfigError, ValueError, FileNotFoundError) as e:
        print(f"srmt train: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("srmt train: interrupted", file=sys.stderr)
        return 130
    if result.status == "interrupted":
        print(f"srmt train: interrupted; checkpoints so far are in {result.run_dir}", file=sys.stderr)
    elif result.status != "success":
        print(f"srmt train: {result.status}: {result.error}", file=sys.stderr)
    return result.exit_code


def _import_plugins_early(source: str, cli_plugins: list[str]) -> None:
    """Plugins register envs that the config itself names, so import them before validating it."""
    import yaml
    from omegaconf import OmegaConf

    import configs
    from agents.sf.env import import_plugins

    plugins: list[str] = []
    try:
        path = configs.resolve(source)
        data = configs.load_yaml(path.read_text()) or {}
        plugins += list((data.get("train") or {}).get("plugins") or [])
    except (configs.ConfigError, OSError, yaml.YAMLError, AttributeError):
        pass  # load_experiment reports a bad config properly
    for override in cli_plugins:
        try:
            value = OmegaConf.to_container(OmegaConf.from_dotlist([override]))["train"]["plugins"]
        except Exception:  # load_experiment reports a malformed override properly
            continue
        plugins += list(value) if isinstance(value, list) else [str(value)]
    import_plugins(plugins)


if __name__ == "__main__":
    sys.exit(main())
