"""``srmt bench env``: raw environment throughput in agent-steps/s, ours vs raw pogema, 1 and N processes.

Each measurement runs random actions for ``--seconds`` (after a short warm-up), resetting whenever an
episode ends, so reset costs are included as in training. The baseline of every env is raw pogema in
one process, measured in the same run (a workload's one-process rows in turns of 0.25 s, so that load
from other jobs falls on all of them alike); ratios are to that baseline. ``srmt+path`` is our env with
the planner's path channel (``env.planner_path=true``, Follower's costs), one row per
``--replan-every`` k (``env.planner_replan_every``; ``srmt+path`` is k = 1, Follower's per-step
planning, ``srmt+path/k`` the others); its ``x srmt`` column is the ratio to our env without it at
the same process count.

    srmt bench env                       # 1 and 2 processes, 5 s per measurement
    srmt bench env --processes 1 2 4 8 --seconds 10 --json bench-env.json
    srmt bench env --env random-32x32-lifelong --processes 1 --replan-every 1 4 8
    srmt bench env --env bottleneck --processes 1 --impl loop --impl vector --envs 128

``loop/K`` and ``vector/K`` rows step K envs per process as one worker split of the trainer does
(per-env loop vs the batched vector env); ``x loop`` is the ratio of the vector row to the loop row.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
from pogema import GridConfig
from pogema.envs import _make_pogema

from envs import LoopVectorEnv, make_env, make_vector_env
from envs.bottleneck import TRAIN_CORRIDOR_LENGTHS, bottleneck_map, sample_task
from envs.config import EnvConfig

# The two workloads of issue 2: Bottleneck (2 agents) and 64 agents on 32x32 random lifelong maps.
WORKLOADS: dict[str, EnvConfig] = {
    "bottleneck": EnvConfig(
        name="bottleneck", num_agents=2, obs_radius=2, on_target="finish", collision_system="block_both"
    ),
    # episodes as short as a trained policy's (both agents through a train corridor in ~20-40 steps), so
    # that resets weigh in as they do in training
    "bottleneck-short": EnvConfig(
        name="bottleneck",
        num_agents=2,
        obs_radius=2,
        on_target="finish",
        collision_system="block_both",
        max_episode_steps=32,
    ),
    "random-32x32-lifelong": EnvConfig(
        name="pogema",
        num_agents=64,
        size=32,
        density=0.3,
        on_target="restart",
        collision_system="soft",
        obs_radius=5,
        max_episode_steps=256,
    ),
}
IMPLS = ("pogema", "srmt", "srmt+path", "loop", "vector")
VECTOR_IMPLS = ("loop", "vector")
"""One process stepping ``--envs`` envs of the workload as one worker split does: ``loop`` steps them in
turn (``envs.vector.LoopVectorEnv``), ``vector`` through ``envs.make_vector_env`` (batched where the env
has a batched implementation: Bottleneck; elsewhere the same loop)."""
DEFAULT_ENVS = 128
DEFAULT_IMPLS = ("pogema", "srmt", "srmt+path")
DEFAULT_WORKLOADS = ("bottleneck", "random-32x32-lifelong")
"""What a plain ``srmt bench env`` measures; the others are asked for with ``--impl`` / ``--env``."""


@dataclass
class Row:
    env: str
    impl: str
    agents: int
    processes: int
    agent_steps_per_s: float
    ratio: float = float("nan")
    ratio_srmt: float = float("nan")
    """to ``srmt`` (our env without the path channel) at the same process count"""
    replan_every: int | None = None
    """``env.planner_replan_every`` of a ``srmt+path`` row"""
    envs: int = 1
    """envs stepped per process (``loop`` / ``vector`` rows: ``--envs``)"""
    ratio_loop: float = float("nan")
    """``vector`` rows: to the ``loop`` row (same envs, same process count)"""


def _raw_grid_config(cfg: EnvConfig, seed: int, rng: np.random.Generator) -> GridConfig:
    """What raw pogema needs per episode for the same workload (Bottleneck: a fresh corridor and task)."""
    common = dict(
        num_agents=cfg.num_agents,
        on_target=cfg.on_target,
        collision_system=cfg.collision_system,
        obs_radius=cfg.obs_radius,
        seed=seed,
    )
    if cfg.name == "bottleneck":
        length = int(rng.choice(TRAIN_CORRIDOR_LENGTHS))
        starts, goals = sample_task(length, cfg.num_agents, rng)
        return GridConfig(
            map=bottleneck_map(length).astype(int).tolist(),
            agents_xy=starts,
            targets_xy=goals,
            max_episode_steps=cfg.max_episode_steps or 512,
            **common,
        )
    return GridConfig(size=cfg.size, density=cfg.density, max_episode_steps=cfg.max_episode_steps, **common)


def _stepper(
    workload: str, impl: str, seed: int, replan_every: int = 1, envs: int = 1
) -> Callable[[int], None]:
    """One env of the workload with random actions: ``step(i)`` plays step i (resetting at episode ends);
    ``loop`` / ``vector``: ``envs`` envs stepped as one (auto-reset inside)."""
    cfg = WORKLOADS[workload]
    rng = np.random.default_rng(seed)
    if impl in VECTOR_IMPLS:
        seeds = [seed * envs + i for i in range(envs)]
        if impl == "loop":
            vec = LoopVectorEnv([make_env(cfg, seed=s) for s in seeds])
        else:
            vec = make_vector_env(cfg, seeds)
        vec.reset()
        vec_actions = rng.integers(0, 5, size=(256, envs * cfg.num_agents))

        def step_vec(i: int) -> None:
            vec.step(vec_actions[i % 256])

        return step_vec
    actions = rng.integers(0, 5, size=(4096, cfg.num_agents))
    if impl in ("srmt", "srmt+path"):
        path = impl == "srmt+path"
        env = make_env(replace(cfg, planner_path=path, planner_replan_every=replan_every), seed=seed)
        env.reset()

        def step(i: int) -> None:
            *_, term, trunc, _ = env.step(actions[i % 4096])
            if term.all() or trunc.all():
                env.reset()

        return step
    episode = [seed]
    raw = _make_pogema(_raw_grid_config(cfg, seed, rng))
    raw.reset()

    def step_raw(i: int) -> None:
        nonlocal raw
        *_, term, trunc, _ = raw.step(actions[i % 4096].tolist())
        if all(term) or all(trunc):
            episode[0] += 1
            raw = _make_pogema(_raw_grid_config(cfg, episode[0], rng))
            raw.reset()

    return step_raw


def _play(step: Callable[[int], None], first: int, seconds: float) -> tuple[int, float]:
    """Steps from ``first`` on, in blocks of 64, for at least ``seconds``: (steps, seconds)."""
    steps, start = 0, time.perf_counter()
    while True:
        for _ in range(64):
            step(first + steps)
            steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return steps, elapsed


def _agents_per_step(workload: str, impl: str, envs: int) -> int:
    return WORKLOADS[workload].num_agents * (envs if impl in VECTOR_IMPLS else 1)


def _measure(args: tuple[str, str, float, int, int, int]) -> tuple[int, float]:
    """One process: (agent steps, seconds) of random play for ``seconds`` after a warm-up."""
    workload, impl, seconds, seed, replan_every, envs = args
    step = _stepper(workload, impl, seed, replan_every, envs)
    for i in range(50):  # warm-up: caches, first allocations
        step(i)
    steps, elapsed = _play(step, 50, seconds)
    return steps * _agents_per_step(workload, impl, envs), elapsed


def measure_interleaved(
    jobs: list[tuple[str, str, int]], seconds: float, slice_s: float = 0.25, envs: int = DEFAULT_ENVS
) -> list[float]:
    """Agent-steps/s of several one-process measurements (workload, impl, replan_every) played in turns
    of ``slice_s`` until each has had ``seconds``, so that load from other jobs on a shared machine
    falls on all of them alike and their ratios hold."""
    steppers = [_stepper(w, impl, 1000, k, envs) for w, impl, k in jobs]
    for step in steppers:
        for i in range(50):  # warm-up: caches, first allocations
            step(i)
    done = [50] * len(jobs)
    spent = [0.0] * len(jobs)
    while min(spent) < seconds:
        for j, step in enumerate(steppers):
            if spent[j] < seconds:
                n, t = _play(step, done[j], min(slice_s, seconds - spent[j]))
                done[j] += n
                spent[j] += t
    return [(n - 50) * _agents_per_step(w, impl, envs) / t for (w, impl, _), n, t in zip(jobs, done, spent)]


def measure(
    workload: str, impl: str, processes: int, seconds: float, replan_every: int = 1, envs: int = DEFAULT_ENVS
) -> float:
    """Total agent-steps/s of ``processes`` independent processes."""
    jobs = [(workload, impl, seconds, 1000 + p, replan_every, envs) for p in range(processes)]
    if processes == 1:
        results = [_measure(jobs[0])]
    else:
        # spawn, not fork: a forked child can inherit a lock held by another thread of the parent (seen
        # as a hang after tests that had started threads), and spawn is what macOS and Windows use anyway
        with mp.get_context("spawn").Pool(processes) as pool:
            results = pool.map(_measure, jobs)
    return sum(n / t for n, t in results)


def run(
    processes: list[int],
    seconds: float,
    workloads: list[str],
    impls: list[str],
    replan_every: tuple[int, ...] = (1,),
    envs: int = DEFAULT_ENVS,
) -> list[Row]:
    """All rows; a workload's one-process rows are measured interleaved (:func:`measure_interleaved`)."""
    rows: list[Row] = []
    for w in workloads:
        variants = [(impl, k) for impl in impls for k in (replan_every if impl == "srmt+path" else (None,))]
        single = dict(
            zip(variants, measure_interleaved([(w, i, k or 1) for i, k in variants], seconds, envs=envs))
        )
        for impl, k in variants:
            label = impl if k in (None, 1) else f"{impl}/{k}"
            for n in processes:
                rate = single[impl, k] if n == 1 else measure(w, impl, n, seconds, k or 1, envs)
                per = envs if impl in VECTOR_IMPLS else 1
                label = f"{impl}/{envs}" if impl in VECTOR_IMPLS else label
                rows.append(Row(w, label, WORKLOADS[w].num_agents, n, rate, replan_every=k, envs=per))
        base = next(
            (r.agent_steps_per_s for r in rows if r.env == w and r.impl == "pogema" and r.processes == 1),
            None,
        )
        ours = {r.processes: r.agent_steps_per_s for r in rows if r.env == w and r.impl == "srmt"}
        loops = {r.processes: r.agent_steps_per_s for r in rows if r.env == w and r.impl.startswith("loop/")}
        for r in rows:
            if r.env == w and base:
                r.ratio = r.agent_steps_per_s / base
            if r.env == w and r.processes in ours:
                r.ratio_srmt = r.agent_steps_per_s / ours[r.processes]
            if r.env == w and r.impl.startswith("vector/") and r.processes in loops:
                r.ratio_loop = r.agent_steps_per_s / loops[r.processes]
    return rows


def table(rows: list[Row]) -> str:
    head = (
        f"{'env':<24} {'impl':<11} {'agents':>6} {'procs':>5} {'agent-steps/s':>14} {'x raw pogema 1p':>16}"
        f" {'x srmt':>7} {'x loop':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.env:<24} {r.impl:<11} {r.agents:>6} {r.processes:>5} {r.agent_steps_per_s:>14,.0f}"
            f" {r.ratio:>16.2f} {r.ratio_srmt:>7.2f} {r.ratio_loop:>7.2f}"
        )
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="srmt bench env", description=__doc__.splitlines()[0])
    p.add_argument(
        "--processes",
        type=int,
        nargs="+",
        default=[2],
        help="process counts to measure; 1 is always added (default 2)",
    )
    p.add_argument("--seconds", type=float, default=5.0, help="seconds per measurement (default 5)")
    p.add_argument(
        "--env",
        choices=sorted(WORKLOADS),
        action="append",
        help=f"only these workloads (repeatable; default {' '.join(DEFAULT_WORKLOADS)})",
    )
    p.add_argument(
        "--impl",
        choices=IMPLS,
        action="append",
        help=f"only these implementations (repeatable; default {' '.join(DEFAULT_IMPLS)})",
    )
    p.add_argument(
        "--replan-every",
        type=int,
        nargs="+",
        default=[1],
        help="env.planner_replan_every values for the srmt+path rows (default 1: every step)",
    )
    p.add_argument(
        "--envs",
        type=int,
        default=DEFAULT_ENVS,
        help=f"envs per process of the loop / vector rows, as one worker split (default {DEFAULT_ENVS})",
    )
    p.add_argument("--json", help="also write the rows to this JSON file")
    a = p.parse_args(argv)
    if min(a.processes) < 1 or a.seconds <= 0:
        p.error(f"--processes must be >= 1 and --seconds > 0, got {a.processes} and {a.seconds}")
    if a.envs < 1:
        p.error(f"--envs must be >= 1, got {a.envs}")
    if min(a.replan_every) < 1:
        p.error(f"--replan-every must be >= 1, got {a.replan_every}")
    procs = sorted({1, *a.processes})
    impls = [i for i in IMPLS if i in (a.impl or DEFAULT_IMPLS)]
    rows = run(
        procs,
        a.seconds,
        a.env or list(DEFAULT_WORKLOADS),
        impls,
        tuple(dict.fromkeys(a.replan_every)),
        a.envs,
    )
    print(f"# srmt bench env: random actions, {a.seconds:g} s per row, resets included; {machine()}")
    print(table(rows))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(
                {"machine": machine(), "seconds": a.seconds, "rows": [asdict(r) for r in rows]}, f, indent=2
            )
    return 0
