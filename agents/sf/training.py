"""``train(exp)``: register the srmt env and model with sample-factory's public hooks and run APPO."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sample_factory.algo.utils.context import SampleFactoryContext, global_model_factory, set_global_context
from sample_factory.algo.utils.misc import ExperimentStatus
from sample_factory.envs.env_utils import register_env

import configs
from agents.config import ExperimentConfig
from agents.sf.env import SF_ENV_NAME, make_sf_env
from agents.sf.model import make_sf_actor_critic
from agents.sf.runner import SrmtParallelRunner, SrmtSerialRunner
from agents.sf.sf_config import check_layout, make_sf_config, resolve_device, setup_process

CONFIG_FILE = "config.yaml"
"""The resolved experiment config, saved in the run folder (what ``load_experiment`` reads back)."""


@dataclass
class TrainResult:
    status: str
    """``success``, ``failure`` or ``interrupted``."""
    run_dir: Path
    env_steps: int
    """Agent-steps trained in total (continues across resumes): sample-factory's counter, which with mixed
    agent counts (``env.num_agents_choices``) counts agent slots, padding included."""
    wall_s: float
    agent_steps_per_s: float
    """Throughput from the first trained batch to the end (start-up excluded), real agents only: the
    slot rate times ``env.real_agent_share`` with mixed agent counts."""
    slot_steps_per_s: float = math.nan
    """The same over agent slots (padding included; equal to ``agent_steps_per_s`` without mixed counts)."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Latest episode averages: reward, episode/CSR, ... (NaN-free entries only)."""
    error: str | None = None
    profiles: dict[str, str] = field(default_factory=dict)
    """sample-factory's per-component timing profiles (text), for benchmarks."""

    @property
    def exit_code(self) -> int:
        return {"success": 0, "interrupted": 130}.get(self.status, 1)


def probe_env(exp: ExperimentConfig) -> tuple[int, tuple[int, ...], int]:
    """Agents per env, observation shape and number of actions, from one env instance."""
    from envs import make_env

    env = make_env(exp.env, seed=exp.seed)
    try:
        return (
            int(env.num_agents),
            tuple(int(s) for s in env.observation_space.shape),
            int(env.action_space.n),
        )
    finally:
        close = getattr(env, "close", None)
        if close is not None:
            close()


class SrmtContext(SampleFactoryContext):
    """sample-factory's global context (env registry, model factory), which it pickles into every process
    it spawns before anything else runs there; unpickling it first applies srmt's per-process set-up
    (plugins, log level), so even the start-up messages of a child honour ``train.sf_log_level``."""

    def __init__(self, process_cfg: dict | None = None) -> None:
        super().__init__()
        self.process_cfg = dict(process_cfg or {})

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        setup_process(self.process_cfg)


def register_with_sample_factory(process_cfg: dict | None = None) -> None:
    """The env and model hooks in a fresh sample-factory context (repeated calls in one process are fine).

    ``process_cfg`` holds the ``srmt_*`` keys of the sample-factory config that ``setup_process`` reads.
    """
    set_global_context(SrmtContext(process_cfg))
    register_env(SF_ENV_NAME, make_sf_env)
    global_model_factory().register_actor_critic_factory(make_sf_actor_critic)


# What may change when a run is resumed: the budget, the run-folder mechanics, processes and logging.
# Every other key (seed, env.*, model.*, the algorithm's hyper-parameters, sf_overrides) is the run's
# identity, so a key added later is identity unless it is listed here.
RESUMABLE_KEYS = frozenset(
    {"name", "device"}
    | {
        f"train.{k}"
        for k in (
            "train_for_env_steps",
            "train_for_seconds",
            "train_dir",
            "restart",
            "init_checkpoint",
            "save_every_sec",
            "keep_checkpoints",
            "serial",
            "num_workers",
            "policy_workers",
            "envs_per_worker",
            "double_buffer",
            "log_interval_s",
            "stats_avg",
            "summaries_interval_s",
            "wandb",
            "wandb_project",
            "sf_log_level",
            "debug_layout",
            "plugins",
            "uint8_observations",
            "learner_threads",
            "stall_timeout_s",
            "compile",
            "compile_scope",
            "host_outputs",
            "batched_envs",
            "autocast",
        )
    }
)
RESUMABLE_SECTIONS = ("eval.",)


def _flatten(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and key != "train.sf_overrides":
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def _typed_options(data: dict, exp: ExperimentConfig) -> dict:
    opts = exp.env.opts
    if opts is not None and isinstance(data.get("env"), dict):
        data["env"]["options"] = dataclasses.asdict(opts)
    return data


def identity_diff(old: ExperimentConfig, new: ExperimentConfig) -> list[str]:
    """``key: old -> new`` for every identity key (not in ``RESUMABLE_KEYS``) that differs; the env's
    options compare as typed (defaults filled in: ``{}`` and ``{split: train}`` are one Bottleneck)."""
    a, b = (_flatten(_typed_options(configs.to_dict(e), e)) for e in (old, new))
    diffs = []
    for key in sorted(set(a) | set(b)):
        if key in RESUMABLE_KEYS or key.startswith(RESUMABLE_SECTIONS):
            continue
        if a.get(key, "<unset>") != b.get(key, "<unset>"):
            diffs.append(f"{key}: {a.get(key, '<unset>')!r} -> {b.get(key, '<unset>')!r}")
    return diffs


def _saved_experiment(run_dir: Path, checkpoint: dict | None) -> ExperimentConfig | None:
    """The config a run folder was trained with: its config.yaml, else the checkpoint's copy; one written
    before issue 12 (top-level ``env.split`` / ``env.corridor_lengths``) is read in today's form."""
    import yaml

    from agents.config import load_experiment
    from agents.sf.checkpoint import saved_experiment

    saved = run_dir / CONFIG_FILE
    try:
        if saved.is_file():
            data = yaml.safe_load(saved.read_text())
            return load_experiment(saved_experiment(data) if isinstance(data, dict) else saved)
        if checkpoint is not None:
            return load_experiment(saved_experiment(checkpoint["srmt"]["experiment"]))
    except configs.ConfigError as e:
        raise configs.ConfigError(
            f"run folder {str(run_dir)!r}: its saved config cannot be read ({e}); start over with "
            "train.restart=overwrite, move it aside with train.restart=restart, or use another name="
        ) from None
    return None


def _check_resume_compatible(run_dir: Path, exp: ExperimentConfig, checkpoint: dict | None) -> None:
    """Refuse to resume a run folder with a config that makes it another run (issue 10)."""
    if exp.train.restart != "resume":
        return
    old = _saved_experiment(run_dir, checkpoint)
    if old is None:
        return
    diffs = identity_diff(old, exp)
    if diffs:
        shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
        raise configs.ConfigError(
            f"run folder {str(run_dir)!r} holds another run ({shown}); to keep it, resume with its "
            f"values or pick another name=; to start fresh here use train.restart=restart (moves it "
            f"aside) or train.restart=overwrite (deletes it)"
        )


def _resume_checkpoint(run_dir: Path, exp: ExperimentConfig, kind: str) -> tuple[Path, dict] | None:
    """The newest loadable checkpoint of the run folder (skipped ones are warned about), or None."""
    if exp.train.restart != "resume":
        return None
    from agents.sf.checkpoint import CHECKPOINT_SUBDIR, latest_valid_checkpoint

    folder = run_dir / CHECKPOINT_SUBDIR
    return latest_valid_checkpoint(folder, kind) if folder.is_dir() else None


def _init_checkpoint(
    exp: ExperimentConfig, run_dir: Path, model_state: dict, resuming: bool
) -> tuple[Path, int] | None:
    """The file ``train.init_checkpoint`` names and its agent-steps, checked against the model to train
    (every ``net.*`` tensor: same keys, same shapes), or None when it is off or the run resumes."""
    source = exp.train.init_checkpoint
    if not source or resuming:
        return None
    from agents.sf.checkpoint import find_checkpoint, latest_valid_checkpoint, read_checkpoint

    what = f"train.init_checkpoint={source}"
    try:  # what read_checkpoint accepts, and the file it reads (the learner loads exactly that one)
        p = Path(source)
        found = latest_valid_checkpoint(p) if p.is_dir() else None
        if found is None:
            file = find_checkpoint(p)
            found = (file, read_checkpoint(file))
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{what}: {e}") from None
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from None
    file, ckpt = found
    if file != p:
        what = f"{what} ({file})"
    if exp.train.restart != "resume" and file.resolve().is_relative_to(run_dir.resolve()):
        raise ValueError(
            f"{what} lies in the run folder {str(run_dir)!r}, which train.restart={exp.train.restart} "
            "removes before training starts; copy it elsewhere first or use another name="
        )
    weights = ckpt["model"] if isinstance(ckpt.get("model"), dict) else {}
    prefix = "net."
    theirs = {k[len(prefix) :]: _shape(v) for k, v in weights.items() if k.startswith(prefix)}
    ours = {k: _shape(v) for k, v in model_state.items()}
    problem = None
    for key, shape in ours.items():
        if key not in theirs:
            problem = f"{prefix}{key} (shape {shape}) is missing from the checkpoint"
        elif theirs[key] != shape:
            problem = (
                f"{prefix}{key} has shape {theirs[key]} in the checkpoint but {shape} in the model to train"
            )
        if problem:
            break
    extra = [k for k in theirs if k not in ours]
    if problem is None and extra:
        problem = f"the checkpoint has {prefix}{extra[0]} (shape {theirs[extra[0]]}), which the model to train lacks"
    differences = _model_differences(ckpt, exp)
    if problem is not None:
        raise ValueError(
            f"{what} does not fit the model to train: {problem}; the model config (model.*) must "
            f"match the checkpoint's{_model_diff(differences)}"
        )
    refused = [(k, theirs, mine) for k, theirs, mine in differences or [] if k not in INIT_FREE_MODEL_KEYS]
    if refused:  # same tensors, other meaning (core=rmt reads no pool, num_heads splits them otherwise)
        shown = "; ".join(
            f"model.{k}={theirs!r} in the checkpoint, {mine!r} here" for k, theirs, mine in refused
        )
        free = ", ".join(f"model.{k}" for k in INIT_FREE_MODEL_KEYS)
        raise ValueError(
            f"{what} was trained with another model config ({shown}); set those keys to the "
            f"checkpoint's values (only {free} may differ)"
        )
    steps = int(ckpt.get("env_steps") or 0)
    budget = int(exp.train.train_for_env_steps)
    if budget <= steps:  # the counter goes on from the checkpoint's: the run would stop after one update
        raise ValueError(
            f"train.train_for_env_steps={budget:,} counts the total agent-steps including the {steps:,} of "
            f"{what}, so it must be larger than {steps:,} (e.g. {steps + budget:,} for {budget:,} more)"
        )
    return file, steps


def _shape(value: object) -> str:
    import torch

    return (
        str(list(value.shape))
        if isinstance(value, torch.Tensor)
        else f"<{type(value).__name__}, not a tensor>"
    )


INIT_FREE_MODEL_KEYS = ("dropout", "state_precision")
"""Model keys in which ``train.init_checkpoint``'s model may differ from the one to train: they change how
training uses the same parameters (dropout) or how the recurrent state is stored between steps
(state_precision), not what the parameters mean."""


def _model_differences(ckpt: dict, exp: ExperimentConfig) -> list[tuple[str, object, object]] | None:
    """``(key, checkpoint's value, exp's value)`` for each model key where the checkpoint's saved config
    differs from ``exp`` (a key the saved config lacks counts as its default; ``encoder`` compares what
    it builds for the checkpoint's observation shape), or None when the checkpoint has no saved config."""
    from srmt.config import ModelConfig
    from srmt.encoder import encoder_kind

    try:
        saved = ckpt["srmt"]["experiment"]["model"]
        # a key an older checkpoint lacks is taken at today's default: changing a ModelConfig default
        # would make such checkpoints look like the new default, so a default change needs a look here
        theirs = {**configs.to_dict(ModelConfig()), **dict(saved)}
        ours = configs.to_dict(exp)["model"]
        obs_shape = tuple(ckpt["srmt"].get("obs_shape") or ())
    except (KeyError, TypeError, AttributeError, ValueError):
        return None
    out: list[tuple[str, object, object]] = []
    for k in sorted(ours):
        if k not in theirs or theirs[k] == ours[k]:
            continue
        if k == "encoder" and obs_shape:  # 'auto' is conv for (C, H, W), else mlp
            try:
                built = {
                    encoder_kind(dataclasses.replace(exp.model, encoder=v), obs_shape)
                    for v in (theirs[k], ours[k])
                }
            except ValueError:  # the checkpoint's encoder is no longer a valid name: a difference
                built = set()
            if len(built) == 1:
                continue
        out.append((k, theirs[k], ours[k]))
    return out


def _model_diff(differences: list[tuple[str, object, object]] | None) -> str:
    """`` (it was trained with model.x=..., ...)`` for the differing model keys, or nothing."""
    if not differences:
        return ""
    shown = [f"model.{k}={theirs!r}" for k, theirs, _ in differences]
    return f" (it was trained with {', '.join(shown[:4])}{', ...' if len(shown) > 4 else ''})"


def _check_run_folder(run_dir: Path, exp: ExperimentConfig) -> None:
    """``train.restart`` deletes or moves exactly ``train_dir/<name>``; refuse what is not a plain folder
    there (the name itself is checked by ``ExperimentConfig``)."""
    if run_dir.is_symlink() and exp.train.restart != "resume":
        raise configs.ConfigError(
            f"run folder {str(run_dir)!r} is a symbolic link; train.restart={exp.train.restart} would act "
            "on what it points to; remove the link yourself or use another name="
        )
    if run_dir.exists() and not run_dir.is_dir():
        raise configs.ConfigError(
            f"run folder {str(run_dir)!r} exists and is not a folder; use another name="
        )


def _last_error(log_file: Path) -> str | None:
    """The last exception line (``SomeError: message``) of sample-factory's log, if any."""
    if not log_file.is_file():
        return None
    lines = log_file.read_text(errors="replace").splitlines()
    pattern = re.compile(r"^\w[\w.]*(Error|Exception|Interrupt)\b.*")
    for line in reversed(lines):
        if pattern.match(line.strip()):
            return line.strip()
    return None


def _start_wandb(exp: ExperimentConfig, train_dir: Path):
    """Start a wandb run that mirrors sample-factory's TensorBoard summaries, or None when ``train.wandb=off``.

    Why not sample-factory's own ``with_wandb``: sample-factory 2.1.1 calls
    ``wandb.init(settings=wandb.Settings(start_method="fork"))``, and that explicit Settings object
    overrides ``WANDB_MODE``, so offline mode still asks for an API key and fails without one. Its runner
    writes all summaries from the main process (tensorboardX), so ``sync_tensorboard`` here logs the same
    metrics, online or offline, through wandb's public API.
    """
    if exp.train.wandb == "off":
        return None
    try:
        import wandb
    except ImportError as e:
        # e.g. wandb >= 0.19 needs pydantic 2, while pogema 1.4.0 pins pydantic <= 1.9.1
        raise ValueError(f"train.wandb={exp.train.wandb} but wandb cannot be imported ({e})") from None
    # wandb's own folder goes next to the run folders (train_dir/wandb/), because train.restart may move
    # or delete the run folder after this point
    train_dir.mkdir(parents=True, exist_ok=True)
    # Name the TensorBoard root ourselves (wandb's documented way for several event folders): without it
    # wandb 0.18 waits 10 s to infer one, then falls back to the working directory and drops every event
    # file outside it, so a short run, or a train_dir outside the working directory, mirrors nothing.
    # The root is the run's own summary folder (sample-factory's <run>/.summary/<policy id>): wandb names
    # metrics by the event folder relative to the root, so they come out as ``episode/CSR`` in every run
    # (not ``<run name>/.summary/0/episode/CSR``) and runs of one project overlay.
    summary_dir = (train_dir / exp.name / ".summary" / "0").resolve()
    wandb.tensorboard.unpatch()  # a patch left by an earlier run in this process has the wrong root
    wandb.tensorboard.patch(root_logdir=str(summary_dir))
    run = wandb.init(
        project=exp.train.wandb_project,
        name=exp.name,
        group=exp.train.wandb_group or getattr(exp.env, "name", None),
        tags=list(exp.train.wandb_tags) or None,
        dir=str(train_dir),
        mode=exp.train.wandb,
        config=configs.to_dict(exp),
        sync_tensorboard=True,
    )
    # env steps on the x-axis: the mirror logs each TensorBoard step (sample-factory's agent-steps) as
    # ``global_step``; without this wandb plots against its own row counter
    run.define_metric("global_step")
    run.define_metric("*", step_metric="global_step")
    return run


CHILD_STOP_GRACE_S = 20.0
"""How long an interrupted run waits for sample-factory's processes to stop by themselves (the learner
saves its checkpoint on the way out) before it terminates those still running."""

STOP_DEADLINE_S = 40.0
"""From the first SIGTERM / Ctrl-C, the most an interrupted run takes to end: after it the run's processes
are killed and this process exits (code 130) wherever it is stuck."""


class _InterruptGuard:
    """SIGTERM (``kill PID``, ``pkill``, a job scheduler) and Ctrl-C while training, as one stop.

    Python's default SIGTERM action ends this process at once, without running any code, and sample-factory
    2.1.1's processes (non-daemon, SIGINT ignored, no watch on their parent) only stop when the runner's
    event loop sends them its stop message: killed that way they were orphaned and spun forever. Here
    SIGTERM raises KeyboardInterrupt like Ctrl-C, which ends the runner's event loop (``EventLoopStatus.
    INTERRUPTED``): the runner sends the stop message, the learner saves a checkpoint, every process exits.

    The first signal also arms a deadline (:data:`STOP_DEADLINE_S`): a SIGTERM to the whole process group
    (``kill -- -PGID``, ``timeout``) kills sample-factory's processes at once, possibly while one holds the
    lock of a shared queue, and the runner's stop message then waits on that lock forever; past the
    deadline the run's processes are killed and this process exits. Spawned children start with default
    handlers (a Python handler is not inherited across exec). Only the main thread can set handlers;
    elsewhere nothing changes. An ignored SIGINT (a background job) stays ignored.
    """

    def __init__(self) -> None:
        self.children: Callable[[], list] = list
        """The run's processes (set once the runner exists), for the deadline."""
        self._done = threading.Event()
        self._armed = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            signals = [signal.SIGTERM]
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                signals.append(signal.SIGINT)
            for sig in signals:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        for sig, previous in self._previous.items():
            signal.signal(sig, signal.SIG_DFL if previous is None else previous)  # type: ignore[arg-type]

    def _on_signal(self, signum: int, frame: object) -> None:
        if not self._armed:
            self._armed = True
            threading.Thread(target=self._deadline, name="stop-deadline", daemon=True).start()
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    def _deadline(self) -> None:
        if self._done.wait(STOP_DEADLINE_S):
            return
        print(
            f"srmt train: interrupted; the stop did not finish within {STOP_DEADLINE_S:g} s, killing the "
            "run's processes (the last saved checkpoint stays)",
            file=sys.stderr,
            flush=True,
        )
        for p in self.children():
            with contextlib.suppress(Exception):
                if p.is_alive():
                    p.kill()
        os._exit(130)


def _stop_children(processes: list, grace_s: float = CHILD_STOP_GRACE_S) -> None:
    """Wait up to ``grace_s`` for the started processes to exit, then terminate (and kill) the rest: after
    a normal stop they are gone already, after an interruption they are finishing their stop message, and
    a second Ctrl-C / SIGTERM while waiting ends the wait at once."""
    deadline = time.time() + grace_s
    try:
        for p in processes:
            if p.is_alive():
                p.join(timeout=max(0.0, deadline - time.time()))
    finally:
        alive = [p for p in processes if p.is_alive()]
        for p in alive:
            log_name = getattr(p, "name", "?")
            logging.getLogger("rl").warning("terminating %s: still running after the stop", log_name)
            p.terminate()
        for p in alive:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)


def train(exp: ExperimentConfig, *, verbose: bool = True) -> TrainResult:
    """Train ``exp`` with sample-factory APPO; checkpoints and logs go to ``train.train_dir/<name>/``.

    Ctrl-C and SIGTERM stop the run in order (a checkpoint is saved) and raise no exception: the result's
    status is ``interrupted``; one that comes before the runner started raises KeyboardInterrupt."""
    with _InterruptGuard() as guard:
        return _train(exp, guard, verbose=verbose)


def _train(exp: ExperimentConfig, guard: _InterruptGuard, *, verbose: bool) -> TrainResult:
    t0 = time.time()
    num_agents, obs_shape, num_actions = probe_env(exp)
    from agents.sf.model import transport_size
    from srmt import build_actor_critic

    model = build_actor_critic(exp.model, obs_shape, num_actions)
    state_size = model.state_size
    cfg = make_sf_config(exp, num_agents, transport_size(state_size, exp.model.state_precision))
    check_layout(cfg)
    run_dir = Path(cfg.train_dir) / exp.name
    _check_run_folder(run_dir, exp)
    kind = dict(latest="checkpoint", best="best").get(cfg.load_checkpoint_kind, "checkpoint")
    found = _resume_checkpoint(run_dir, exp, kind)
    _check_resume_compatible(run_dir, exp, found[1] if found else None)
    resume_from = (found[0], int(found[1]["env_steps"])) if found else None
    del found  # the weights are loaded again by the learner; do not keep a copy in this process
    init_from = _init_checkpoint(exp, run_dir, model.state_dict(), resuming=resume_from is not None)
    del model
    # the learner loads exactly the file announced below (agents.sf.learner.SrmtLearner)
    cfg.srmt_resume_checkpoint = str(resume_from[0]) if resume_from else ""
    cfg.srmt_init_checkpoint = str(init_from[0]) if init_from else ""
    # the env seeds of a resumed run depend on where it resumes (agents.sf.env.env_seed); a run started
    # from other weights goes on from their agent-steps, so it draws new episodes too
    start = resume_from or init_from
    cfg.srmt_resumed_at = start[1] if start else 0
    setup_process(cfg)
    register_with_sample_factory({k: v for k, v in cfg.items() if k.startswith("srmt_")})

    runner_cls = SrmtSerialRunner if exp.train.serial else SrmtParallelRunner
    # before the runner: it creates its TensorBoard writers in __init__, and wandb mirrors only writers
    # created after wandb.init
    wandb_run = _start_wandb(exp, Path(cfg.train_dir))
    runner = runner_cls(cfg)  # handles train.restart (moves/deletes an existing run folder)
    guard.children = runner.child_processes
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(configs.to_yaml(exp))
    if verbose:
        print(
            f"[srmt] training {exp.name}: model.core={exp.model.core}, env={getattr(exp.env, 'name', '?')} "
            f"({num_agents} agents), device={resolve_device(exp.device)}, {'serial' if exp.train.serial else 'parallel'}, "
            f"run folder {run_dir}",
            flush=True,
        )
        if resume_from is not None:
            print(f"[srmt] resuming from {resume_from[0]} ({resume_from[1]:,} agent-steps)", flush=True)
            if exp.train.init_checkpoint:
                print(
                    f"[srmt] train.init_checkpoint={exp.train.init_checkpoint} ignored: the run folder "
                    "holds a checkpoint, so the run resumes",
                    flush=True,
                )
        elif init_from is not None:
            print(
                f"[srmt] starting from the weights of {init_from[0]} ({init_from[1]:,} agent-steps; "
                "fresh optimiser)",
                flush=True,
            )

    try:
        status = runner.init()
        if status == ExperimentStatus.SUCCESS:
            status = runner.run()
    finally:  # also when an interrupt escapes the runner: no process of the run outlives it
        _stop_children(runner.child_processes())
    if wandb_run is not None:
        wandb_run.finish(exit_code=0 if status == ExperimentStatus.SUCCESS else 1)
        import wandb

        wandb.tensorboard.unpatch()  # the next run in this process patches with its own root
        # wait for wandb's service process to write out and exit: its atexit hook "is not reliable" with
        # multiprocessing (wandb.teardown's docstring), and under load an offline run's .wandb file was
        # found still empty right after finish(); the next wandb.init starts a new service
        wandb.teardown()

    steps_samples = [s for s in runner.throughput_samples if s[1] > 0]
    rate = math.nan
    if len(steps_samples) >= 2 and steps_samples[-1][0] > steps_samples[0][0]:
        rate = (steps_samples[-1][1] - steps_samples[0][1]) / (steps_samples[-1][0] - steps_samples[0][0])
    metrics = {k: runner.episode_stat(k) for k in runner.policy_avg_stats}
    metrics = {k: v for k, v in metrics.items() if not math.isnan(v)}
    name = {ExperimentStatus.SUCCESS: "success", ExperimentStatus.FAILURE: "failure"}.get(
        status, "interrupted"
    )
    error = runner.failure
    if name == "failure":
        detail = _last_error(run_dir / "sf_log.txt")
        error = (
            f"{error or 'training failed'}: {detail}"
            if detail
            else (error or "training failed (see sf_log.txt)")
        )
    profiles = (
        {comp: str(timing) for comp, timing in (runner.component_profiles or [])}
        if isinstance(runner.component_profiles, list)
        else {}
    )
    result = TrainResult(
        status=name,
        run_dir=run_dir,
        env_steps=runner.env_steps_total(),
        wall_s=time.time() - t0,
        agent_steps_per_s=rate * exp.env.real_agent_share,
        slot_steps_per_s=rate,
        metrics=metrics,
        error=error,
        profiles=profiles,
    )
    if verbose:
        if result.status == "success":
            print(runner.progress_line(), flush=True)
            print(
                f"[srmt] done: {result.env_steps:,} agent-steps in {result.wall_s:.0f} s "
                f"({result.agent_steps_per_s:,.0f} agent-steps/s"
                + (
                    f" of real agents, {result.slot_steps_per_s:,.0f} slot-steps/s with padding"
                    if exp.env.num_agents_choices
                    else ""
                )
                + f"); checkpoints in {run_dir}",
                flush=True,
            )
        elif result.status != "interrupted":  # an interruption is reported once, by the command
            print(f"[srmt] training {result.status}: {result.error or ''}", flush=True)
    logging.getLogger("rl").setLevel(logging.DEBUG)
    return result
