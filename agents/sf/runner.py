"""sample-factory runners with srmt's learner, a working wall-clock limit, a dead-worker watchdog and a
console progress line (subclasses of the released runners; nothing in site-packages is changed).

* ``train_for_seconds``: sample-factory 2.1.1 compares it with ``total_train_seconds``, which nothing ever
  updates, so the limit never fires; here a 1-second timer measures wall time since the runner started.
* A worker that raises dies, and sample-factory keeps waiting at 0 FPS until heartbeats time out
  (minutes). The same timer checks every child process' exit code and ends the run as a failure within
  about a second, terminating the other processes. (The learner process exits too: its batcher thread
  is a daemon, see ``agents.sf.learner.SrmtLearnerWorker``.)
* A worker that hangs (an env step that never returns, a deadlock) stays alive and sends no more
  heartbeats; sample-factory only logs that. In parallel mode the timer ends the run when a component's
  last heartbeat, or the learner's last new agent-step, is older than ``train.stall_timeout_s``
  (components that never reported get ``STARTUP_GRACE_S`` more). Serial mode runs everything in this one
  event loop, so a hang there blocks the timer too: serial mode is for debugging.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from sample_factory.algo.runners.runner_parallel import ParallelRunner
from sample_factory.algo.runners.runner_serial import SerialRunner
from sample_factory.algo.utils.misc import ExperimentStatus
from sample_factory.utils.utils import log
from signal_slot.signal_slot import Timer

from agents.sf.learner import SrmtLearnerWorker
from envs.config import real_agent_share


def _fmt_count(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{unit}"
    return f"{x:.0f}"


def _fmt_time(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


STARTUP_GRACE_S = 60.0
"""Extra seconds a component that has not sent its first heartbeat yet gets (process start, imports)."""


class _SrmtRunnerMixin:
    """Mixed into sample-factory's Serial/ParallelRunner (see the module docstring)."""

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)  # type: ignore[call-arg]
        train = cfg.srmt["train"]
        self.time_limit_s = float(train["train_for_seconds"])
        self.log_interval_s = float(train["log_interval_s"])
        self.wall_start = time.time()
        self.stall_timeout_s = 0.0 if cfg.serial_mode else float(train.get("stall_timeout_s", 0.0))
        self._loop_start: float | None = None  # first tick of the 1-second timer (processes started)
        self._steps_seen: tuple[float, int, bool] | None = (
            None  # (time the count last changed, count, start-up)
        )
        self.failure: str | None = None
        self.throughput_samples: list[tuple[float, int]] = []  # (wall time, agent-steps since resume)
        # mixed agent counts (env.num_agents_choices): sample-factory counts agent slots, padding included;
        # the reported rate counts real agents only (their expected share of the slots)
        self.real_share = real_agent_share(list(cfg.srmt["env"].get("num_agents_choices") or []))
        self._add_timer(1.0, self._every_second)
        self._add_timer(self.log_interval_s, self._print_progress)

    # ------------------------------------------------------------------ sample-factory hooks

    def _make_learner(self, event_loop, policy_id, batcher):
        return SrmtLearnerWorker(
            event_loop, self.cfg, self.env_info, self.buffer_mgr, batcher, policy_id=policy_id
        )

    def _should_end_training(self) -> bool:
        return super()._should_end_training() or self._out_of_time()  # type: ignore[misc]

    # ------------------------------------------------------------------ timers

    def _add_timer(self, period: float, callback) -> None:
        timer = Timer(self.event_loop, period)
        timer.timeout.connect(callback)
        self.timers.append(timer)  # stopped together with sample-factory's own timers

    def _out_of_time(self) -> bool:
        return self.time_limit_s > 0 and time.time() - self.wall_start >= self.time_limit_s

    def _every_second(self) -> None:
        if self.total_env_steps_since_resume is not None:
            self.throughput_samples.append((time.time(), int(self.total_env_steps_since_resume)))
        if self.stopped:
            return
        dead = [p for p in self.child_processes() if p.exitcode is not None]
        if dead:
            names = ", ".join(f"{p.name} (exit code {p.exitcode})" for p in dead)
            self._fail(f"worker process died: {names}")
        elif (stall := self._stall()) is not None:
            self._fail(stall)
        elif self._out_of_time():
            log.warning("Wall-clock limit of %.0f s reached, stopping", self.time_limit_s)
            self._stop_training()

    def _stall(self) -> str | None:
        """A one-line description of what stopped making progress, or None."""
        now = time.time()
        if self._loop_start is None:
            self._loop_start = now
        limit = self.stall_timeout_s
        if limit <= 0:
            return None
        since_start = now - self._loop_start
        steps = self.env_steps_total()
        if self._steps_seen is None:
            self._steps_seen = (self._loop_start, steps, True)  # True: still starting up
        elif steps != self._steps_seen[1]:
            self._steps_seen = (now, steps, False)
        since, _, starting = self._steps_seen
        # start-up lasts until the first trained batch; the learner's first batch compiles its step
        # (train.compile) without sending heartbeats, so until then the learner gets the start-up grace
        grace = STARTUP_GRACE_S if starting else 0.0
        stale = []
        for components in getattr(self, "heartbeat_dict", {}).values():
            for name, last in components.items():
                learner_grace = grace if str(name).startswith("LearnerWorker") else 0.0
                if last is None and since_start > limit + STARTUP_GRACE_S:
                    stale.append(f"{name} (no heartbeat since start, {since_start:.0f} s)")
                elif last is not None and now - last > limit + learner_grace:
                    stale.append(f"{name} (no heartbeat for {now - last:.0f} s)")
        if stale:
            return (
                f"no progress for more than train.stall_timeout_s={limit:g} s: {', '.join(stale)}; "
                "a hung env step/reset or a deadlock"
            )
        idle = now - since
        if idle > limit + grace:
            return (
                f"no progress for more than train.stall_timeout_s={limit:g} s: the learner's agent-step count "
                f"stayed at {steps:,} for {idle:.0f} s"
            )
        return None

    def child_processes(self) -> list:
        procs = list(getattr(self, "processes", []))
        procs += list(getattr(self.sampler, "processes", []) or [])
        return procs

    def _fail(self, message: str) -> None:
        log.error(message)
        self.failure = message
        self.status = ExperimentStatus.FAILURE
        self.stopped = True
        for timer in self.timers:
            timer.stop()
        for p in self.child_processes():
            if p.is_alive():
                p.terminate()
        self.event_loop.stop()

    # ------------------------------------------------------------------ progress

    def env_steps_total(self) -> int:
        return int(sum(self.env_steps.values())) if self.env_steps else 0

    def rate(self, since_s: float = 0.0, window_s: float | None = None, slots: bool = False) -> float:
        """Agent-steps/s from the 1-second samples: those after ``since_s`` of the run, or the last window;
        real agents only (padding slots of mixed agent counts left out) unless ``slots``."""
        samples = self.throughput_samples
        if window_s is not None and samples:
            samples = [s for s in samples if s[0] >= samples[-1][0] - window_s]
        else:
            samples = [s for s in samples if s[0] - self.wall_start >= since_s]
        if len(samples) < 2 or samples[-1][0] <= samples[0][0]:
            return math.nan
        rate = (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0])
        return rate if slots else rate * self.real_share

    def episode_stat(self, key: str) -> float:
        values = self.policy_avg_stats.get(key)
        if not values or len(values[0]) == 0:
            return math.nan
        return float(np.mean(values[0]))

    def progress_line(self) -> str:
        steps = self.env_steps_total()
        total = int(self.cfg.train_for_env_steps)
        rate = self.rate(window_s=max(self.log_interval_s, 5.0))
        elapsed = time.time() - self.wall_start
        steady = self.rate(
            window_s=60.0
        )  # the ETA from the last minute: a 10 s window jumps on a busy machine
        eta = (total - steps) / steady if steady > 0 else math.inf
        if self.time_limit_s > 0:
            eta = min(eta, self.time_limit_s - elapsed)
        parts = [f"[srmt] {_fmt_count(steps)}/{_fmt_count(total)} agent-steps"]
        if not math.isnan(rate):  # no nan on the console: fields without data yet are left out
            parts.append(f"{_fmt_count(rate)} agent-steps/s")
            if self.real_share < 1.0:
                slot_rate = self.rate(window_s=max(self.log_interval_s, 5.0), slots=True)
                parts[-1] += f" (real agents; {_fmt_count(slot_rate)} slot-steps/s with padding)"
        reward = self.episode_stat("reward")
        per_agent = self.episode_stat("episode/reward_per_agent")
        if self.real_share < 1.0 and not math.isnan(per_agent):
            # sample-factory's reward averages over all slots, padding (reward 0) included
            parts.append(f"reward {per_agent:.3f} per real agent")
        else:
            parts.append("no episode finished yet" if math.isnan(reward) else f"reward {reward:.3f}")
        for key in ("CSR", "ISR", "throughput"):
            value = self.episode_stat(f"episode/{key}")
            if not math.isnan(value):
                parts.append(f"{key} {value:.3f}")
        parts.append(f"{_fmt_time(elapsed)} elapsed, ETA {_fmt_time(max(eta, 0.0))}")
        return " | ".join(parts)

    def _print_progress(self) -> None:
        if self.stopped:
            return
        if not self.env_steps:  # start-up (spawning, first rollouts): say so instead of staying silent
            waited = _fmt_time(time.time() - self.wall_start)
            print(f"[srmt] starting: waiting for the first samples ({waited} elapsed)", flush=True)
            return
        print(self.progress_line(), flush=True)
        rate = self.rate(window_s=max(self.log_interval_s, 5.0))
        if not math.isnan(rate) and 0 in self.writers:
            self.writers[0].add_scalar("perf/agent_steps_per_sec", rate, self.env_steps_total())
            if self.real_share < 1.0:
                slot_rate = self.rate(window_s=max(self.log_interval_s, 5.0), slots=True)
                self.writers[0].add_scalar("perf/slot_steps_per_sec", slot_rate, self.env_steps_total())


class SrmtSerialRunner(_SrmtRunnerMixin, SerialRunner):
    pass


class SrmtParallelRunner(_SrmtRunnerMixin, ParallelRunner):
    pass
