"""``srmt envs``: list registered environments, presets and map sets; play one random episode.

srmt envs                                  # same as `srmt envs list`
srmt envs maps pogema-benchmark/experiments/01-random/maps.yaml 'validation-random-seed-00.'
srmt envs play bottleneck                  # a registered env with EnvConfig defaults
srmt envs play env/random-32x32-lifelong reward=dense --seed 3 --render
srmt envs play train_dir/my-run             # the env of a run folder, experiment YAML or checkpoint
srmt envs play pettingzoo options.id=mpe.simple_spread_v3 options.N=3
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import yaml

import configs
from configs import paths
from envs import env_spec, import_plugin, make_env, registered_envs
from envs.config import EnvConfig
from envs.maps import load_maps, parse_map, select_maps


def _map_sets() -> list[Path]:
    """The benchmark's maps files, found by the path rule (``srmt data fetch`` puts them in the data folder)."""
    try:
        experiments = paths.resolve(f"{paths.BENCHMARK}/experiments", kind="dir")
    except ValueError:
        return []
    return sorted(experiments.glob("*/maps.yaml"))


def _describe(name: str) -> str:
    spec = env_spec(name)
    opts = ", ".join(f.name for f in dataclasses.fields(spec.options_type)) if spec.options_type else "none"
    kind = "POGEMA grid keys + " if spec.grid else ""
    where = f"  [plugin {spec.plugin}]" if spec.plugin else ""
    return f"  {name:<16} {kind}options: {opts}{where}"


def cmd_list() -> int:
    print("registered envs (env.name; env.options.KEY=VALUE sets an option):")
    for name in registered_envs():
        print(_describe(name))
    print("presets (configs/env, use with `srmt envs play NAME` or env: in an experiment):")
    for name in configs.available("env"):
        cfg = configs.load(EnvConfig, name)
        agents = cfg.num_agents if cfg.num_agents is not None else "default"
        print(
            f"  {name[len('env/') : -len('.yaml')]:<34} {cfg.name:<10} agents={agents:<3} {cfg.on_target}/{cfg.collision_system}"
        )
    print(
        "map generators:   random (pogema's), maze (envs.maps.maze_map), mixed (either, per episode);"
        " seeded, a new map per episode"
    )
    sets = _map_sets()
    print("map sets (pogema-toolbox maps.yaml):" + ("" if sets else f" none found; {paths.FETCH_HINT}"))
    for path in sets:
        maps = load_maps(path)
        print(f"  {path}  ({len(maps)} maps, e.g. {next(iter(maps))})")
    return 0


def cmd_maps(path: str, selectors: list[str]) -> int:
    maps = load_maps(path)
    names = select_maps(maps, selectors, where=path) if selectors else list(maps)
    for n in names:
        grid = parse_map(maps[n], name=n)
        print(f"{n:<40} {grid.shape[0]}x{grid.shape[1]}  obstacles {grid.mean():.2f}")
    print(f"{len(names)} of {len(maps)} maps")
    return 0


def _experiment_env(target: str, overrides: list[str]) -> EnvConfig | None:
    """The env of a run folder, a checkpoint file or an experiment YAML (one with an ``env:`` section);
    None if ``target`` is none of these. The env's plugin comes from the saved config itself."""
    path = Path(target)
    env_overrides = [f"env.{o}" for o in overrides]
    if path.is_dir() or path.suffix == ".pth":
        from agents.config import load_experiment
        from agents.sf.checkpoint import read_checkpoint, saved_experiment

        saved = path / "config.yaml"
        if path.is_dir() and saved.is_file():
            data = yaml.safe_load(saved.read_text()) or {}
        else:  # a checkpoint file or folder: the experiment stored in the checkpoint
            data = read_checkpoint(path)["srmt"]["experiment"]
        _import_train_plugins(data)
        return load_experiment(saved_experiment(data), env_overrides).env
    if path.suffix in (".yaml", ".yml") and path.is_file():
        data = yaml.safe_load(path.read_text()) or {}
        if isinstance(data, dict) and isinstance(data.get("env"), dict):
            from agents.config import load_experiment

            _import_train_plugins(data)
            return load_experiment(str(path), env_overrides).env
    return None


def _import_train_plugins(data: dict) -> None:
    plugins = (data.get("train") or {}).get("plugins") or []
    for spec in plugins:
        import_plugin(spec)


def _config(target: str, overrides: list[str]) -> EnvConfig:
    if target in registered_envs():
        return configs.load(EnvConfig, {"name": target}, overrides)
    from_run = _experiment_env(target, overrides)
    if from_run is not None:
        return from_run
    name = target if target.endswith(".yaml") or "/" in target else f"env/{target}"
    return configs.load(EnvConfig, name, overrides)


def cmd_play(target: str, overrides: list[str], seed: int, render: bool) -> int:
    cfg = _config(target, overrides)
    env = make_env(cfg, seed=seed)
    env.reset()
    rng = np.random.default_rng(seed)
    start, steps, total = time.perf_counter(), 0, np.zeros(env.num_agents)
    actions_seen: list[np.ndarray] = []
    rewards_seen: list[np.ndarray] = []
    while True:
        actions = rng.integers(0, env.action_space.n, size=env.num_agents)
        _, rew, term, trunc, infos = env.step(actions)
        steps += 1
        total += rew
        if render:
            actions_seen.append(actions)
            rewards_seen.append(np.asarray(rew))
        if term.all() or trunc.all():
            break
    dt = time.perf_counter() - start
    episode = getattr(env, "episode", None)
    labels = ", ".join(f"{k}={v}" for k, v in episode.labels.items()) if episode is not None else ""
    rules = f"{cfg.on_target}/{cfg.collision_system}, " if env_spec(cfg.name).grid else ""
    reward = f"reward {cfg.reward}, " if env_spec(cfg.name).grid else ""
    print(
        f"{cfg.name} ({labels or 'options ' + str(cfg.options)}): {env.num_agents} agents, {rules}"
        f"obs {tuple(env.observation_space.shape)}, {reward}random actions, seed {seed}"
    )
    print(f"steps {steps}  return/agent {total.mean():.3f}  {steps * env.num_agents / dt:,.0f} agent-steps/s")
    metrics = infos[0].get("metrics", {}) if infos else {}
    print("metrics: " + ("  ".join(f"{k}={v:g}" for k, v in metrics.items()) or "none reported"))
    if render:
        frame = _text_render(env)
        if frame is not None:
            print(frame)
        else:  # nothing to draw as text: the episode's steps instead
            from agents.eval.animation import text_trace

            print(
                f"env {cfg.name!r} has no text render (no render(), or it does not return a string); "
                "printing the episode's per-step actions and rewards instead"
            )
            print("\n".join(text_trace(actions_seen, rewards_seen)))
    env.close()
    return 0


def _text_render(env: object) -> str | None:
    """The env's ``render()`` when it returns text (a grid env's map), else None: no render(), or one
    that returns frames (an ``rgb_array``) or nothing (a PettingZoo env without ``render_mode``)."""
    render = getattr(env, "render", None)
    if render is None:
        return None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium / PettingZoo warn when called without a render_mode
        frame = render()
    return frame if isinstance(frame, str) else None


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="srmt envs", description="environments: list, maps, play")
    sub = p.add_subparsers(dest="cmd")
    sub.add_parser("list", help="registered envs, presets, map generators and map sets")
    m = sub.add_parser(
        "maps", help="maps of a pogema-toolbox maps.yaml, optionally selected by names/regexes"
    )
    m.add_argument("file")
    m.add_argument("select", nargs="*", help="map names or regexes (full match)")
    from agents.config_docs import keys_help

    play = sub.add_parser(
        "play",
        help="one episode with random actions; prints metrics",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="env config keys (key=value; default when the preset does not set it):\n"
        + keys_help(EnvConfig),
    )
    play.add_argument(
        "target",
        help="registered env name, preset name (configs/env), env or experiment YAML, run folder or checkpoint",
    )
    play.add_argument("overrides", nargs="*", help="key=value EnvConfig overrides")
    play.add_argument("--seed", type=int, default=0)
    play.add_argument(
        "--render",
        action="store_true",
        help="print the final state (an env without a text render: every step's actions and rewards)",
    )
    a = p.parse_args(argv)
    try:
        if a.cmd == "maps":
            return cmd_maps(a.file, a.select)
        if a.cmd == "play":
            return cmd_play(a.target, a.overrides, a.seed, a.render)
        return cmd_list()
    except (ValueError, configs.ConfigError, FileNotFoundError) as e:  # bad input: one line, no traceback
        print(f"srmt envs: {e}", file=sys.stderr)
        return 2
