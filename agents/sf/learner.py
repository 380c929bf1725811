"""sample-factory's learner with the changes srmt needs, made by subclassing (no fork, no patching).

* The learner runs sample-factory's *non-recurrent* loss path: it hands the model the flat minibatch rows
  plus the state at each BPTT-chunk start (``rnn_states[::recurrence]``), and the shared-memory core does
  its own recurrence over ``[G, A, R]``. The recurrent path would repack rows into PackedSequences split
  at episode ends and invalid steps, which breaks the grouping of an environment's agents. (The runner's
  config keeps ``use_rnn=True`` only so that sample-factory sizes the state buffers.)
* Rows of agents that already finished (``active`` = 0) are marked invalid (policy id -1), so they add no
  loss, no gradient and no advantage statistics; GAE treats the finishing step as terminal.
* With ``train.debug_layout`` and ``train.async_rl=false`` the first minibatch is checked to have a PPO
  ratio of 1 (within ``RATIO_TOL``) on every valid row: nothing has been learnt yet, so the learner's
  replay of the chunk (states at chunk starts, flags, the shared pool) must reproduce exactly what the
  inference worker computed.  A mismatch is a ``LayoutError``.
* Checkpoints hold plain Python numbers plus the experiment config, and are loaded with
  ``weights_only=True``; a checkpoint that cannot be loaded is skipped with a warning for the newest one
  that loads, and if none loads that is an error, not a silent fresh start (sample-factory 2.1.1 logs
  the failure and trains from scratch, which is what happens under torch >= 2.6 once a numpy scalar is
  in the checkpoint).
* ``train.init_checkpoint`` (``cfg.srmt_init_checkpoint``, chosen and checked by ``train()``): a new run
  takes the weights and step counters of another checkpoint, with a fresh optimiser.
* Checkpoints are written atomically (temp file, fsync, rename) and found by their exact names, so a
  kill mid-save never breaks a later resume (see the comment above ``get_checkpoints``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from threading import Thread
from typing import Any

import torch
from sample_factory.algo.learning.learner import Learner
from sample_factory.algo.learning.learner_worker import LearnerWorker
from sample_factory.utils.attr_dict import AttrDict
from sample_factory.utils.utils import log

from agents.checkpoint_io import load_weights_only, save_atomic
from agents.sf import layout
from agents.sf.checkpoint import checkpoint_files, latest_valid_checkpoint
from agents.sf.sf_config import experiment_from_sf

RATIO_TOL = 1e-5
"""Largest allowed |ratio - 1| on the first synchronous minibatch (debug mode)."""

BF16_RATIO_TOL = 5e-4
"""The same under bf16 autocast on CUDA (``train.autocast=bf16``).  The inference worker's eager step and
the learner's (compiled) step round to bf16 (8 significant bits) at different points, so their
log-probabilities differ by more than float32 noise: measured 6.6e-5 with bf16 + ``train.compile`` on an
H200.  A wrong replay (states at chunk starts forgotten) moves the ratio by 3e-3 even on the tiny test
model, whose initial policy is near uniform, so this still separates the two."""


def ratio_tolerance(autocast: str, device: str) -> float:
    """The tolerance of the first-minibatch ratio check for a run's ``train.autocast`` and torch device."""
    return BF16_RATIO_TOL if autocast == "bf16" and str(device).startswith("cuda") else RATIO_TOL


CHECKPOINT_FORMAT = 1
"""Version of the ``srmt`` entry in checkpoints (bump on incompatible changes)."""


class SrmtLearner(Learner):
    def __init__(
        self, cfg: Any, env_info: Any, policy_versions_tensor: Any, policy_id: int, param_server: Any
    ):
        learner_cfg = AttrDict(dict(cfg))
        learner_cfg.use_rnn = False  # see the module docstring: non-recurrent loss path, our core recurs
        super().__init__(learner_cfg, env_info, policy_versions_tensor, policy_id, param_server)
        self._ratio_check_pending = bool(cfg.srmt_debug_layout) and not bool(cfg.async_rl)

    # ------------------------------------------------------------------ batches

    def _prepare_batch(self, batch):
        with torch.no_grad():
            obs = batch["obs"]
            if self.cfg.srmt_debug_layout:
                self._check_batch_layout(obs)
            # finished agents: invalid rows (no loss, no gradient, no advantage statistics)
            inactive = obs["active"][:, :-1] == 0  # (num_traj, T)
            batch["policy_id"].masked_fill_(inactive.to(batch["policy_id"].device), -1)
        return super()._prepare_batch(batch)

    def _calculate_losses(self, mb, num_invalids):
        out = super()._calculate_losses(mb, num_invalids)
        if self._ratio_check_pending:
            self._ratio_check_pending = False
            tol = ratio_tolerance(experiment_from_sf(self.cfg).train.autocast, str(self.device))
            self.check_first_ratio(out[-1]["ratio"], mb.valids, tol)
        return out

    @staticmethod
    def check_first_ratio(ratio, valids, tol: float = RATIO_TOL) -> float:
        """Max |ratio - 1| over the valid rows; LayoutError above ``tol``."""
        with torch.no_grad():
            dev = float((ratio.detach().float() - 1.0).abs()[valids.bool()].max())
        log.info("srmt: PPO ratio on the first synchronous minibatch: max |ratio - 1| = %.3g", dev)
        if not dev <= tol:
            raise layout.LayoutError(
                f"PPO ratio on the first synchronous minibatch deviates from 1 by {dev:.3g} (> {tol}): "
                "the learner's replay of the rollout differs from what the inference worker computed"
            )
        return dev

    def _check_batch_layout(self, obs: dict) -> None:
        """The whole training batch ``[num_traj, T+1]``: trajectories grouped by env, steps consecutive."""
        A = int(self.cfg.srmt_agents_per_env)
        env_id = layout.rows_to_groups(obs["env_id"], A)  # (G, A, T+1)
        agent_id = layout.rows_to_groups(obs["agent_id"], A)
        step = layout.rows_to_groups(obs["step"], A)
        layout.check_group_ids(env_id, agent_id, "training batch")
        layout.check_chunk_steps(step, "training batch")

    # ------------------------------------------------------------------ checkpoints

    # sample-factory 2.1.1 saves to `<prefix>_temp`, renames without fsync, and finds checkpoints with the
    # glob `<prefix>_*`, so a kill mid-save leaves `checkpoint_temp`, which sorts after every real
    # checkpoint and is loaded (and fails) on every later resume. Upstream has no hook for any of this;
    # these four overrides are the one place that replaces it: checkpoints are matched by their exact
    # name, written atomically (agents.checkpoint_io.save_atomic), and resume loads the newest file that
    # loads, or exactly the one the main process chose and announced (cfg.srmt_resume_checkpoint).

    @staticmethod
    def get_checkpoints(checkpoints_dir, pattern="checkpoint_*"):
        kind = pattern.split("_", 1)[0]
        return [str(p) for p in checkpoint_files(checkpoints_dir, kind)]

    @staticmethod
    def load_checkpoint(checkpoints, device):
        if len(checkpoints) <= 0:
            log.warning("No checkpoints found")
            return None
        found = latest_valid_checkpoint(Path(checkpoints[-1]).parent, device=device)
        if found is None:
            return None
        log.warning("Loading state from checkpoint %s...", found[0])
        return found[1]

    def load_from_checkpoint(self, policy_id, load_progress=True):
        chosen = self.cfg.get("srmt_resume_checkpoint") or ""
        if not chosen:
            init = self.cfg.get("srmt_init_checkpoint") or ""
            if init:
                return self._load_init_weights(init, load_progress)
            return super().load_from_checkpoint(policy_id, load_progress)
        # exactly the file train() validated and printed; a failure here is an error, never a fresh start
        ckpt = load_weights_only(chosen, map_location=self.device)
        self._load_state(ckpt, load_progress=load_progress)
        return None

    def _load_init_weights(self, path: str, load_progress: bool = True) -> None:
        """``train.init_checkpoint``: the weights (``net.*``, strictly) and the step counters of another
        run's checkpoint; the optimiser stays fresh and the learning rate is the config's. The returns
        normaliser's statistics come along when both the checkpoint and this model have one."""
        ckpt = load_weights_only(path, what="train.init_checkpoint", map_location=self.device)
        theirs = ckpt["model"]
        state = self.actor_critic.state_dict()
        net = {k for k in state if k.startswith("net.")}
        if net != {k for k in theirs if k.startswith("net.")}:  # train() checked this; the file changed?
            raise ValueError(f"train.init_checkpoint {path!r} does not fit the model (its net.* keys differ)")
        norm = "returns_normalizer."
        keep = {k for k in state if k.startswith(norm)}
        take_norm = bool(keep) and keep == {k for k in theirs if k.startswith(norm)}
        state.update({k: theirs[k] for k in net | (keep if take_norm else set())})
        self.actor_critic.load_state_dict(state, strict=True)
        if load_progress:
            self.train_step = int(ckpt.get("train_step") or 0)
            self.env_steps = int(ckpt.get("env_steps") or 0)
        log.info(
            "Started from the weights of %s at train_step=%d, env_steps=%d (fresh optimiser%s)",
            path,
            self.train_step,
            self.env_steps,
            "" if take_norm else "; returns normaliser not in the checkpoint, kept fresh" if keep else "",
        )

    def _save_impl(self, name_prefix, name_suffix, keep_checkpoints, verbose=True) -> bool:
        if not self.is_initialized:
            return False
        checkpoint = self._get_checkpoint_dict()
        folder = Path(self.checkpoint_dir(self.cfg, self.policy_id))
        path = folder / f"{name_prefix}_{self.train_step:09d}_{self.env_steps}{name_suffix}.pth"
        if verbose:
            log.info("Saving %s...", path)
        save_atomic(checkpoint, path)
        for leftover in folder.glob(f"{name_prefix}_temp"):  # written by sample-factory's own saver
            leftover.unlink(missing_ok=True)
        while len(files := checkpoint_files(folder, name_prefix)) > keep_checkpoints:
            if verbose:
                log.debug("Removing %s", files[0])
            files[0].unlink(missing_ok=True)
        return True

    def _get_checkpoint_dict(self):
        ckpt = super()._get_checkpoint_dict()
        # plain Python numbers: weights-only loading refuses numpy scalars (np.mean of the best metric, ...)
        ckpt["train_step"] = int(ckpt["train_step"])
        ckpt["env_steps"] = int(ckpt["env_steps"])
        ckpt["best_performance"] = float(ckpt["best_performance"])
        ckpt["curr_lr"] = float(ckpt["curr_lr"]) if ckpt["curr_lr"] is not None else None
        ac = self.actor_critic
        ckpt["srmt"] = dict(
            format=CHECKPOINT_FORMAT,
            experiment=self.cfg.srmt,
            obs_shape=list(ac.obs_shape),
            num_actions=int(ac.num_actions),
            num_agents=int(ac.num_agents),
            state_size=int(ac.net.state_size),
        )
        return ckpt


class SrmtLearnerWorker(LearnerWorker):
    """sample-factory's learner worker with :class:`SrmtLearner` inside."""

    def __init__(self, evt_loop, cfg, env_info, buffer_mgr, batcher, policy_id):
        super().__init__(evt_loop, cfg, env_info, buffer_mgr, batcher, policy_id)
        # the parent built a stock Learner (cheap: it allocates nothing before init()); replace it
        self.learner = SrmtLearner(cfg, env_info, buffer_mgr.policy_versions, policy_id, self.param_server)

    def start_batcher_thread(self):
        # sample-factory 2.1.1 starts the batcher as a non-daemon thread, so when the learner's event loop
        # dies of an exception (a LayoutError, a bad batch) the process cannot exit: it waits for that
        # thread forever and the run stalls at 0 agent-steps/s. A daemon thread lets the process exit
        # with its error, which the runner's watchdog reports within a second; an exception inside the
        # batcher thread ends the process the same way.
        self.batcher.event_loop.process = self.event_loop.process
        self.batcher_thread = Thread(target=self._run_batcher, name="batcher", daemon=True)
        self.batcher_thread.start()

    def _run_batcher(self) -> None:
        try:
            self.batcher.event_loop.exec()
        except BaseException as e:  # noqa: BLE001 - any error here must end the process, not stall the run
            log.exception("batcher thread failed")
            print(f"{type(e).__module__}.{type(e).__qualname__}: {e}", file=sys.stderr, flush=True)
            os._exit(1)
