"""One sweep run as a self-contained job: ``srmt train`` in its own process and run folder, then the test
evaluation in another process, then the training curve's agent-steps to a CSR. ``run_job`` takes and
returns plain data, so the same function runs in a local thread or as a Dask task on another machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TRAIN_MARKER = "sweep-train.json"
"""Written into a run folder when its training finished; a later sweep with ``existing=reuse`` skips it."""


@dataclass
class JobSpec:
    core: str
    seed: int
    run: str
    """Run name: the run folder ``{train_dir}/{run}``."""
    run_dir: str
    config_yaml: str
    """The run's resolved experiment config (``train.restart`` left to the job)."""
    config_path: str
    log_dir: str
    result_path: str
    existing: str = "reuse"
    eval: dict[str, Any] = field(default_factory=dict)
    """The evaluation keys of the run's suite (``agents.sweep.suites``), what a cached evaluation must
    match besides the checkpoint, e.g. lengths, episodes, ... for a corridor task."""
    eval_options: dict[str, Any] = field(default_factory=dict)
    """Evaluation settings that do not change its results (workers, the map-set evaluation's folder)."""
    train_csr: float = 0.9
    timeout_s: float = 0.0
    budget: str = "steps"
    target_steps: int = 0
    """``train.train_for_env_steps`` of the run (what ``budget=steps`` waits for)."""
    start_before: float = 0.0
    """Unix time after which the job does not start (0 = any time); it then reports ``not_started``."""
    finish_by: float = 0.0
    """Unix time by which the job's training ends (0 = no limit): ``train.train_for_seconds`` is cut to the
    time left less ``finish_reserve_s``; with less than :data:`MIN_SLICE_S` left the job does not start."""
    finish_reserve_s: float = 60.0
    checkpoint: str = "latest"
    """Which checkpoint is evaluated: ``latest`` or ``best`` (sample-factory's ``best_*.pth``)."""


OPERATIONAL_KEYS = (
    "train_dir",  # where the run folders live: a sweep folder moved to another machine or path is the same sweep
    "restart",
    "train_for_seconds",
    "log_interval_s",
    "save_every_sec",
    "keep_checkpoints",
    "sf_log_level",
    "wandb",
    "wandb_project",
    "batched_envs",  # the same episodes, stepped in one batch or one env after another
    "compile",  # the same model, its learner step compiled or not
    "compile_scope",
    "host_outputs",
)
"""``train`` keys that do not change what a run trains (with ``budget=steps``): a run may be resumed with
other values of them, e.g. another wall-clock limit per invocation."""


def config_digest(config_yaml: str) -> str:
    """A digest of a resolved config without ``device``, ``eval`` and :data:`OPERATIONAL_KEYS`: what decides
    what is trained. The config is read through the current schema first, so a key added to srmt after a
    run was trained counts with its default (a run folder of an earlier version is still the same run)."""
    import yaml

    import configs
    from agents.config import load_experiment

    data = configs.to_dict(load_experiment(yaml.safe_load(config_yaml)))
    data.pop("device", None)
    data.pop("eval", None)
    for key in OPERATIONAL_KEYS:
        data.get("train", {}).pop(key, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def folder_state(run_dir: Path, config_yaml: str) -> str:
    """``new`` (no run yet), ``done`` (finished, same config), ``partial`` (same config, unfinished) or
    ``different`` (the folder holds another config: nothing may be resumed from it)."""
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        return "new" if not run_dir.exists() or not any(run_dir.iterdir()) else "different"
    if config_digest(saved.read_text()) != config_digest(config_yaml):
        return "different"
    # the marker is removed before any training starts, so one next to a matching config is this config's
    # finished run; its own digest is not compared: it was computed with the schema of its day, and a key
    # srmt gained since would make every finished run of an older sweep look unfinished (and retrain it)
    return "done" if (run_dir / TRAIN_MARKER).is_file() else "partial"


def steps_to_csr(run_dir: Path, threshold: float) -> tuple[int | None, float | None]:
    """First agent-step at which the logged training CSR (``episode/CSR``) reached ``threshold``, and the
    last logged value; (None, None) without TensorBoard scalars."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    summary = run_dir / ".summary" / "0"
    if not summary.is_dir():
        return None, None
    acc = EventAccumulator(str(summary), size_guidance={"scalars": 0})
    acc.Reload()
    if "episode/CSR" not in acc.Tags().get("scalars", []):
        return None, None
    points = sorted((e.step, e.value) for e in acc.Scalars("episode/CSR"))
    reached = next((int(s) for s, v in points if v >= threshold), None)
    return reached, float(points[-1][1]) if points else None


def _tail(path: Path) -> str:
    lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("srmt ") or "Error" in ln]
    return (errors or lines or ["(no output)"])[-1][:300]


JOB_STOP_GRACE_S = 60.0
"""After ``timeout_s``, how long a job's process gets to stop by itself after SIGTERM (``srmt train`` stops
in order, saves a checkpoint and ends its own processes) before it and every process it started is killed."""


def _run(cmd: list[str], log: Path, timeout_s: float) -> tuple[int, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with log.open("a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
        try:
            rc = proc.wait(timeout=timeout_s or None)
        except subprocess.TimeoutExpired:
            _stop_job(proc)
            return 124, f"stopped after timeout_s={timeout_s:g} s"
        except BaseException:  # e.g. Ctrl-C in the thread that waits: the job does not outlive the sweep
            _stop_job(proc)
            raise
    return rc, "" if rc == 0 else _tail(log)


def _stop_job(proc: subprocess.Popen, grace_s: float | None = None) -> None:
    """SIGTERM to the job's process, up to ``grace_s`` (default :data:`JOB_STOP_GRACE_S`) for it to exit,
    then SIGKILL to it and to every process it started that is still running. (``subprocess.run``'s own
    timeout sends SIGKILL at once, which left the training's sample-factory processes orphaned.) Its
    descendants are listed while it still runs: once it is gone, orphans are no longer its children."""
    import psutil  # a dependency of sample-factory

    def descendants() -> list[psutil.Process]:
        try:
            return psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    tree = descendants()
    proc.terminate()
    try:
        proc.wait(timeout=JOB_STOP_GRACE_S if grace_s is None else grace_s)
        _, left = psutil.wait_procs(tree, timeout=5)  # helpers (resource tracker) exit shortly after it
    except subprocess.TimeoutExpired:
        left = tree + descendants()
        proc.kill()
        proc.wait()
    for p in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(left, timeout=5)


MIN_SLICE_S = 60.0
"""The shortest training slice ``finish_by_s`` starts: less would be mostly the run's start-up."""


def _cut_to_deadline(config_yaml: str, seconds: float) -> str:
    """``config_yaml`` with ``train.train_for_seconds`` at most ``seconds`` (an operational key: the run's
    identity, :func:`config_digest`, does not change)."""
    import yaml

    data = yaml.safe_load(config_yaml)
    train = data.setdefault("train", {})
    limit = float(train.get("train_for_seconds") or 0.0)
    train["train_for_seconds"] = round(seconds if limit <= 0 else min(limit, seconds), 1)
    return yaml.safe_dump(data, sort_keys=False)


def _not_started(spec: JobSpec, why: str) -> dict[str, Any]:
    return dict(
        core=spec.core, seed=spec.seed, run=spec.run, run_dir=spec.run_dir, status="not_started", error=why
    )


def run_job(spec: JobSpec | dict) -> dict[str, Any]:
    """Train (unless a finished run of the same config is there) and evaluate one run; a result dict."""
    if isinstance(spec, dict):
        spec = JobSpec(**spec)
    t0 = time.time()
    run_dir, log_dir = Path(spec.run_dir), Path(spec.log_dir)
    state = "new" if spec.existing == "overwrite" else folder_state(run_dir, spec.config_yaml)
    eval_path = Path(spec.result_path).with_suffix(".eval.json")
    # stop_after_s stops new work only: a finished run whose evaluation is cached is still reported
    if (
        spec.start_before
        and t0 > spec.start_before
        and not (state == "done" and _eval_cached(spec, eval_path))
    ):
        return _not_started(spec, "stop_after_s reached before this run started")
    config_yaml = spec.config_yaml
    if spec.finish_by and state != "done":
        left = spec.finish_by - time.time() - spec.finish_reserve_s
        if left < MIN_SLICE_S:
            return _not_started(
                spec, f"finish_by_s: {max(left, 0.0):.0f} s of training left, under {MIN_SLICE_S:.0f} s"
            )
        config_yaml = _cut_to_deadline(config_yaml, left)
    log_dir.mkdir(parents=True, exist_ok=True)
    Path(spec.config_path).parent.mkdir(parents=True, exist_ok=True)
    Path(spec.config_path).write_text(config_yaml)
    result: dict[str, Any] = dict(core=spec.core, seed=spec.seed, run=spec.run, run_dir=str(run_dir))

    def failed(error: str) -> dict[str, Any]:
        result.update(status="failed", error=error, wall_s=time.time() - t0)
        return result

    if state == "different":
        return failed(
            f"run folder {run_dir} holds another config; nothing is resumed from it (existing=overwrite "
            "retrains, or pick another name=/out_dir=)"
        )
    result["trained"] = state != "done"
    if state != "done":
        (run_dir / TRAIN_MARKER).unlink(missing_ok=True)  # a marker means: this config's training finished
        restart = "resume" if state == "partial" else "overwrite"
        cmd = [sys.executable, "-m", "agents.cli", "train", spec.config_path, f"train.restart={restart}"]
        rc, err = _run(cmd, log_dir / f"{spec.run}.train.log", spec.timeout_s)
        if rc != 0:
            return failed(f"training failed (exit {rc}): {err}")
        from agents.sf.checkpoint import find_checkpoint, read_checkpoint

        steps = int(read_checkpoint(find_checkpoint(run_dir))["env_steps"])
        if spec.budget == "steps" and steps < spec.target_steps:
            result.update(
                status="incomplete",
                env_steps=steps,
                error=f"{steps:,} of {spec.target_steps:,} agent-steps (the next invocation resumes it)",
                wall_s=time.time() - t0,
            )
            return result
        # the checkpoint evaluated is recorded: a finished, evaluated run is reused from this marker and its
        # evaluation alone, so its checkpoint file need not travel with a sweep folder carried between hosts
        checkpoint = str(find_checkpoint(run_dir).relative_to(run_dir))
        marker = dict(
            config=config_digest(spec.config_yaml),
            env_steps=steps,
            wall_s=time.time() - t0,
            checkpoint=checkpoint,
        )
        best = _best_checkpoint(run_dir)
        if best is not None:  # what checkpoint=best evaluates, recorded for the same reason
            marker["best_checkpoint"] = best
        (run_dir / TRAIN_MARKER).write_text(json.dumps(marker))
    marker = json.loads((run_dir / TRAIN_MARKER).read_text())
    result["env_steps"] = int(marker["env_steps"])
    result["train_wall_s"] = float(marker.get("wall_s", math.nan))

    try:
        key = _eval_key(spec)
    except FileNotFoundError as e:
        return failed(str(e))
    if spec.checkpoint != "latest":
        result["checkpoint"] = spec.checkpoint
        result["checkpoint_file"] = key["checkpoint"]
    cached = json.loads(eval_path.read_text()) if eval_path.is_file() else None
    if not _eval_cached(spec, eval_path) or spec.existing == "overwrite" or result["trained"]:
        stored = (cached or {}).get("key")
        if not result["trained"] and spec.existing != "overwrite" and isinstance(stored, dict):
            # a control asked for beside stored ones of the same evaluation: evaluate them all, so that
            # the file (one per run) does not lose what it held
            if _covers({**stored, "controls": key.get("controls")}, key) and "controls" in key:
                key = {
                    **key,
                    "controls": list(dict.fromkeys([*(stored.get("controls") or []), *key["controls"]])),
                }
        options = dict(spec.eval_options, restart="overwrite" if spec.existing == "overwrite" else "resume")
        cmd = [sys.executable, "-m", "agents.sweep.evaluate", str(run_dir), str(eval_path), json.dumps(key)]
        cmd.append(json.dumps(options))
        rc, err = _run(cmd, log_dir / f"{spec.run}.eval.log", spec.timeout_s)
        if rc != 0:
            return failed(f"evaluation failed (exit {rc}): {err}")
        cached = json.loads(eval_path.read_text())
    wanted = {"shared", *(spec.eval.get("controls") or ())}
    result["eval"] = {c: rows for c, rows in cached["eval"].items() if c in wanted}
    result["eval_wall_s"] = cached.get("wall_s")
    result["steps_to_train_csr"], result["train_csr_last"] = steps_to_csr(run_dir, spec.train_csr)
    result.update(status="ok", error=None, wall_s=time.time() - t0)
    Path(spec.result_path).parent.mkdir(parents=True, exist_ok=True)
    Path(spec.result_path).write_text(json.dumps(result, indent=1))
    return result


def _best_checkpoint(run_dir: Path) -> str | None:
    """The run's ``best_*.pth`` (sample-factory's best by training reward) relative to the run folder, or
    None if it saved none."""
    from agents.sf.checkpoint import find_checkpoint

    try:
        return str(find_checkpoint(run_dir, kind="best").relative_to(run_dir))
    except FileNotFoundError:
        return None


def _eval_key(spec: JobSpec) -> dict[str, Any]:
    """What a cached evaluation must match: the checkpoint evaluated and the evaluation keys. The
    checkpoint is the one the training marker names (``checkpoint=latest``: the one training ended with,
    a marker of an earlier srmt without it: the run folder's latest; ``checkpoint=best``: its
    ``best_*.pth``), relative to the run folder, so that a sweep folder moved to another path keeps its
    evaluations, and an evaluation of the other kind (another file) is never taken for this one. A run
    without a best checkpoint under ``checkpoint=best`` is a one-line FileNotFoundError."""
    from agents.sf.checkpoint import CHECKPOINT_SUBDIR, find_checkpoint

    run_dir = Path(spec.run_dir)
    marker = run_dir / TRAIN_MARKER
    recorded = json.loads(marker.read_text()) if marker.is_file() else {}
    if spec.checkpoint == "best":
        checkpoint = recorded.get("best_checkpoint") or _best_checkpoint(run_dir)
        if checkpoint is None:
            raise FileNotFoundError(
                f"checkpoint=best: run folder {run_dir} has no best_*.pth in {CHECKPOINT_SUBDIR}/ (sample-factory "
                "saves one only after 100,000 agent-steps); allowed: checkpoint=latest, or checkpoint=best "
                "for runs that saved one"
            )
        return dict(checkpoint=checkpoint, **spec.eval)
    checkpoint = recorded.get("checkpoint")
    if checkpoint is None:
        checkpoint = str(find_checkpoint(run_dir).relative_to(run_dir))
    return dict(checkpoint=checkpoint, **spec.eval)


def _covers(stored: Any, wanted: dict[str, Any]) -> bool:
    """Whether an evaluation stored under key ``stored`` answers key ``wanted``: the same key, or the same
    but with more pool ``controls`` (their extra entries are dropped from what is reported). So a sweep
    run without ``controls=`` does not evaluate again, and overwrite, the runs whose controls it has."""
    if not isinstance(stored, dict):
        return False
    if stored == wanted:
        return True
    rest = {k: v for k, v in stored.items() if k != "controls"}
    return rest == {k: v for k, v in wanted.items() if k != "controls"} and set(
        wanted.get("controls") or ()
    ) <= set(stored.get("controls") or ())


def _eval_cached(spec: JobSpec, eval_path: Path) -> bool:
    if spec.existing == "overwrite" or not eval_path.is_file():
        return False
    try:
        return _covers(json.loads(eval_path.read_text()).get("key"), _eval_key(spec))
    except (OSError, ValueError, FileNotFoundError):
        return False


def spec_dict(spec: JobSpec) -> dict[str, Any]:
    return asdict(spec)
