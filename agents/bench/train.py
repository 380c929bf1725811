"""``srmt bench train``: end-to-end APPO training throughput (agent-steps/s) of SRMT and GRU through
sample-factory, next to the raw throughput of the same env with the same number of worker processes,
all measured in one run and printed as ratios to the raw env.

    srmt bench train                                  # 2 workers, 60 s per measurement (CPU laptop)
    srmt bench train --workers 14 --envs-per-worker 8 --seconds 120 --device cuda --batch-size 16384
    srmt bench train --run srmt --run 'srmt-big-batch:model.core=srmt;train.batch_size=65536'
    srmt bench train --experiment bottleneck-srmt-paper --device cuda --run srmt --run none

With ``--experiment`` the runs start from that experiment (its env, model and training settings; the
bench sets only the measuring keys) and the raw env is the experiment's env with its worker layout.
The raw env steps each process's envs as the rollout workers do (``envs.make_vector_env``: batched for
the Bottleneck); ``--run 'loop:train.batched_envs=false'`` trains with the envs stepped in turn.

A ``--run LABEL[:KEY=VALUE;KEY=VALUE...]`` measures one variant: dotted experiment overrides on top of the
bench's settings (``model.core=gru``, ``train.batch_size=65536``,
``train.policy_workers=2``). A label alone that names a core (``srmt``, ``gru``,
...) means ``model.core=LABEL``. Without ``--run``, ``--cores`` gives one run per core.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import queue
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="srmt bench train", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--experiment",
        default="",
        help="start every run from this experiment (name or YAML) instead of the lifelong bench env",
    )
    p.add_argument("--agents", type=int, default=64, help="agents per environment")
    p.add_argument("--size", type=int, default=32, help="side of the generated map")
    p.add_argument("--density", type=float, default=0.3, help="obstacle density")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="rollout worker processes (and raw-env processes); default 2",
    )
    p.add_argument(
        "--envs-per-worker", type=int, default=None, help="env instances per worker (even); default 2"
    )
    p.add_argument("--seconds", type=float, default=60.0, help="measured seconds per run")
    p.add_argument(
        "--startup", type=float, default=30.0, help="extra wall-clock seconds per training run for start-up"
    )
    p.add_argument("--cores", default="srmt,gru", help="model cores to train, comma-separated")
    p.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="LABEL[:K=V;K=V]",
        help="a variant to measure (repeatable): dotted experiment overrides; replaces --cores",
    )
    p.add_argument("--model", default="srmt-mid", help="model preset under configs/model/ (sizes)")
    p.add_argument("--rollout", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=0, help="0 = one rollout of every env of one worker")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--serial", action="store_true", help="sample-factory serial mode (one process)")
    p.add_argument("--json", default="", help="also write the results to this JSON file")
    return p


def _env_dict(args) -> dict:
    if args.experiment:
        import configs
        from agents.config import load_experiment

        return configs.to_dict(load_experiment(args.experiment).env)
    return dict(
        name="pogema",
        num_agents=args.agents,
        size=args.size,
        density=args.density,
        on_target="restart",
        generator="random",
    )


def _raw_worker(env_dict: dict, num_envs: int, seconds: float, seed: int, out) -> None:
    import numpy as np

    from envs import make_vector_env
    from envs.config import EnvConfig

    # the worker's envs as the trainer steps them: one batched step where the env has a batched
    # implementation (Bottleneck), else in turn (envs.vector.make_vector_env)
    cfg = EnvConfig(**env_dict)
    vec = make_vector_env(cfg, [seed * 1000 + i for i in range(num_envs)], np.uint8)
    vec.reset()
    rng = np.random.default_rng(seed)
    n = vec.num_envs * vec.num_agents
    actions = rng.integers(0, 5, size=(64, n))
    steps, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        vec.step(actions[(steps // n) % 64])
        steps += n
    out.put((steps, elapsed))


def raw_env_throughput(env_dict: dict, processes: int, envs_per_process: int, seconds: float) -> float:
    """Agent-steps/s of ``processes`` spawned processes stepping their envs with random actions."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_raw_worker, args=(env_dict, envs_per_process, seconds, i, out))
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    results = []
    deadline = time.time() + seconds + 300  # start-up included; a dead child must not hang the bench
    while len(results) < len(procs):
        try:
            results.append(out.get(timeout=1.0))
        except queue.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead or time.time() > deadline:
                for p in procs:
                    p.terminate()
                raise RuntimeError(
                    f"raw env process failed (exit codes {[p.exitcode for p in procs]})"
                ) from None
    for p in procs:
        p.join()
    return sum(steps / elapsed for steps, elapsed in results)


def parse_run(spec: str) -> tuple[str, list[str]]:
    """``LABEL[:KEY=VALUE;KEY=VALUE...]`` -> (label, overrides); a bare label is a core name."""
    label, _, rest = spec.partition(":")
    label = label.strip()
    if not label:
        raise ValueError(f"--run {spec!r}: give a label, e.g. 'srmt' or 'big:train.batch_size=65536'")
    overrides = [o.strip() for o in rest.split(";") if o.strip()]
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ValueError(f"--run {spec!r}: {bad[0]!r} is not KEY=VALUE (overrides are separated by ';')")
    return label, overrides or [f"model.core={label}"]


def reference_runs(results: dict) -> list[str]:
    """Runs every other run is compared with: the first one, and those of the ``gru`` and ``none`` cores
    (SRMT's own overhead is its ratio to the stateless core through the same pipeline)."""
    refs = list(results)[:1]
    for label, r in results.items():
        if r.get("core") in ("gru", "none") and label not in refs:
            refs.append(label)
    ok = [x for x in refs if results[x]["status"] == "success" and results[x]["agent_steps_per_s"] > 0]
    return ok[:4]


def train_throughput(args, label: str, train_dir: Path, overrides: list[str]) -> dict:
    """One training run of the bench's env and model preset with ``overrides`` (``model.core=...``)."""
    from agents.sf import train

    exp = experiment(args, label, train_dir, overrides)
    result = train(exp)
    return dict(
        core=exp.model.core,
        status=result.status,
        # slots, as the raw env rows count them (equal to agent-steps without env.num_agents_choices)
        agent_steps_per_s=result.slot_steps_per_s,
        env_steps=result.env_steps,
        wall_s=result.wall_s,
        profiles=result.profiles,
        error=result.error,
    )


def experiment(args, label: str, train_dir: Path, overrides: list[str]):
    """The ExperimentConfig of one run (a bad override is a one-line ConfigError)."""
    import dataclasses

    import configs
    from agents.config import load_experiment

    measuring = dict(
        train_dir=str(train_dir),
        restart="overwrite",
        train_for_env_steps=10**12,
        # the rate is measured from the first trained batch on; start-up gets its own allowance
        train_for_seconds=args.seconds + args.startup,
        log_interval_s=max(10.0, args.seconds / 4),
        save_every_sec=10**6,
    )
    if args.experiment:
        d = configs.to_dict(load_experiment(args.experiment))
        d["name"] = f"bench-{label}"
        d["device"] = args.device
        d["train"].update(measuring, serial=args.serial)
        if args.workers is not None:
            d["train"]["num_workers"] = args.workers
        if args.envs_per_worker is not None:
            d["train"]["envs_per_worker"] = args.envs_per_worker
        if args.batch_size:
            d["train"]["batch_size"] = args.batch_size
        return load_experiment(d, overrides)
    A, T = args.agents, args.rollout
    k = args.envs_per_worker
    batch = args.batch_size or k * A * T
    exp = load_experiment(
        {
            "name": f"bench-{label}",
            "device": args.device,
            "env": _env_dict(args),
            "train": dict(
                serial=args.serial,
                num_workers=args.workers,
                envs_per_worker=k,
                double_buffer=k % 2 == 0,
                rollout=T,
                batch_size=batch,
                **measuring,
            ),
        }
    )
    preset = load_experiment(f"model/{args.model}.yaml") if args.model else None
    if preset is not None:
        exp = dataclasses.replace(exp, model=preset.model)
    return load_experiment(configs.to_dict(exp), overrides)


def _profile_summary(profiles: dict[str, str]) -> list[str]:
    """The learner's and inference worker's timing trees, indented, for 'where the time goes'."""
    lines = []
    for name, text in profiles.items():
        if name.startswith(("LearnerWorker", "InferenceWorker", "RolloutWorker_w0")):
            lines.append(f"  {name}:")
            lines += [f"    {ln}" for ln in text.splitlines()[1:]]
    return lines


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if not args.experiment:
        args.workers = 2 if args.workers is None else args.workers
        args.envs_per_worker = 2 if args.envs_per_worker is None else args.envs_per_worker
    try:
        runs = [parse_run(spec) for spec in args.run] or [
            (c.strip(), [f"model.core={c.strip()}"]) for c in args.cores.split(",") if c.strip()
        ]
        labels = [label for label, _ in runs]
        if len(set(labels)) != len(labels):
            raise ValueError(f"run labels must differ, got {labels}")
        for label, overrides in runs:  # every config is checked before anything is measured
            experiment(args, label, Path(tempfile.gettempdir()), overrides)
    except ValueError as e:  # ConfigError is a ValueError: one line naming the key
        print(f"srmt bench train: {e}", file=sys.stderr)
        return 2
    env_dict = _env_dict(args)
    if args.experiment:
        base = experiment(args, "base", Path(tempfile.gettempdir()), [])
        workers, envs_per_worker = base.train.num_workers, base.train.envs_per_worker
        choices = base.env.num_agents_choices
        agents = (
            f"{'/'.join(map(str, choices))} agents mixed, {max(choices)} slots: rates count slots"
            if choices
            else f"{base.env.num_agents} agents"
        )
        print(
            f"srmt bench train: experiment {args.experiment} (env {base.env.name}, {agents}); "
            f"{workers} workers x {envs_per_worker} envs; device {args.device}; {args.seconds:.0f} s per measurement",
            flush=True,
        )
    else:
        workers, envs_per_worker = args.workers, args.envs_per_worker
        print(
            f"srmt bench train: pogema {args.size}x{args.size} random map, {args.agents} agents, lifelong; "
            f"{workers} workers x {envs_per_worker} envs; model preset {args.model}; device {args.device}; "
            f"{args.seconds:.0f} s per measurement",
            flush=True,
        )
    raw = raw_env_throughput(env_dict, workers, envs_per_worker, args.seconds)
    print(f"raw env, {workers} processes: {raw:,.0f} agent-steps/s", flush=True)
    results: dict[str, dict] = {}
    train_dir = Path(tempfile.mkdtemp(prefix="srmt-bench-train-"))
    try:
        for label, overrides in runs:
            print(f"run {label}: {' '.join(overrides)}", flush=True)
            results[label] = train_throughput(args, label, train_dir, overrides)
    finally:
        shutil.rmtree(train_dir, ignore_errors=True)
    print()
    refs = reference_runs(results)
    head = "".join(f" {'vs ' + ref:>16}" for ref in refs)
    print(f"{'what':<28} {'agent-steps/s':>14} {'ratio to raw env':>17}{head}")
    print(f"{'raw env (' + str(workers) + ' processes)':<28} {raw:>14,.0f} {1.0:>17.3f}")
    for core, r in results.items():
        rate = r["agent_steps_per_s"]
        status = "" if r["status"] == "success" else f"  ({r['status']}: {r['error']})"
        cols = "".join(f" {rate / results[ref]['agent_steps_per_s']:>16.3f}" for ref in refs)
        print(f"{'train ' + core:<28} {rate:>14,.0f} {rate / raw:>17.3f}{cols}{status}")
    for core, r in results.items():
        print(f"\nwhere the time goes, {core} (sample-factory timing, seconds):")
        print("\n".join(_profile_summary(r["profiles"])))
    if args.json:
        Path(args.json).write_text(
            json.dumps(dict(args=vars(args), raw_env=raw, train=results), indent=2, default=str)
        )
    return 0 if all(r["status"] == "success" for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
