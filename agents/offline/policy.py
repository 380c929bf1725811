"""A trained RATE checkpoint as an evaluated algorithm (:class:`agents.planners.base.Algorithm`).

Return conditioning as in the decision transformer: every agent starts from the target return and its
return-to-go drops by each reward it receives. Rewards come from ``observe(rewards)`` when the episode
loop calls it (:func:`agents.offline.rollout.play_episode` does); a loop that does not (e.g.
``agents.eval.episode.run_episode``) leaves them to the policy, which recomputes them from consecutive
:class:`WorldState`s with the env's reward function (``envs.rewards``) named in the checkpoint.
"""

from __future__ import annotations

import numpy as np
import torch

from agents.offline.train import load_checkpoint, resolve_device
from agents.planners.base import WorldState
from envs.config import EnvConfig, upgrade_legacy
from envs.rewards import compute_rewards, needs_distances


class RATEPolicy:
    """One environment (G = 1), all its agents at once; observations from ``state.observations``."""

    def __init__(
        self,
        checkpoint: str,
        device: str = "cpu",
        target_return: str | float = "best",
        action_selection: str = "argmax",
        temperature: float = 1.0,
    ) -> None:
        self.device = resolve_device(device)
        self.model, ckpt = load_checkpoint(checkpoint, self.device)
        try:
            self.env_config = EnvConfig(**upgrade_legacy(dict(ckpt["env"])))
        except (TypeError, ValueError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ValueError(
                f"checkpoint {checkpoint!r} holds an env config this srmt cannot use: {reason}"
            ) from None
        if isinstance(target_return, str):
            if target_return not in ckpt["returns"]:
                raise ValueError(
                    f"target return {target_return!r} is unknown; allowed: {', '.join(ckpt['returns'])} or a number"
                )
            target_return = ckpt["returns"][target_return]
        self.target = float(target_return)
        if action_selection not in ("argmax", "sample"):
            raise ValueError(f"action_selection={action_selection!r}; allowed: argmax, sample")
        self.action_selection = action_selection
        if not temperature > 0:
            raise ValueError(f"temperature={temperature!r} is invalid; it must be > 0")
        self.temperature = float(temperature)
        self.generator = torch.Generator(device=self.device)
        self.reward_name = self.env_config.reward
        self._graph = None

    def reset(self, state: WorldState, seed: int) -> None:
        A = state.num_agents
        self.generator.manual_seed(int(seed))
        self.step_state = self.model.initial_step_state(1, A)
        self.rtg = np.full(A, self.target, dtype=np.float64)
        self.observed = True  # nothing to subtract before the first step
        self.prev: WorldState | None = None
        self.prev_actions: np.ndarray | None = None
        self.arrived = np.zeros(A, dtype=bool)  # classic mode: first arrivals only are rewarded
        self._graph = None

    def observe(self, rewards: np.ndarray) -> None:
        """The rewards of the step just taken (``[A]``)."""
        self.rtg -= np.asarray(rewards, dtype=np.float64)
        self.observed = True

    @torch.no_grad()
    def act(self, state: WorldState) -> np.ndarray:
        if not self.observed and self.prev is not None:
            self.rtg -= self._infer_rewards(self.prev, self.prev_actions, state)
        dev = self.device
        obs = torch.as_tensor(np.asarray(state.observations), device=dev)[None]  # (1, A, C, H, W)
        rtg = torch.as_tensor(self.rtg, dtype=torch.float32, device=dev)[None]  # (1, A)
        ts = torch.full_like(rtg, state.step, dtype=torch.long)
        valid = torch.as_tensor(state.active, device=dev)[None]
        logits, self.step_state = self.model.step_logits(self.step_state, obs, rtg, ts, valid)
        logits = logits[0]  # (A, n)
        if self.action_selection == "argmax":
            actions = logits.argmax(-1)
        else:
            probs = torch.softmax(logits.float() / self.temperature, -1)
            actions = torch.multinomial(probs, 1, generator=self.generator)[:, 0]
        self.step_state = self.model.step_commit(self.step_state, actions[None])
        self.prev, self.prev_actions, self.observed = state, actions.cpu().numpy(), False
        return self.prev_actions.astype(np.int64)

    def _infer_rewards(self, prev: WorldState, actions: np.ndarray, state: WorldState) -> np.ndarray:
        """The env's rewards of the step ``prev -> state`` (same rules as :class:`envs.GridEnv`)."""
        on_goal = np.all(state.positions == prev.goals, axis=1)
        acting = prev.active
        if state.on_target == "nothing":
            reached = on_goal & ~self.arrived
            self.arrived |= on_goal
        elif state.on_target == "finish":
            reached = on_goal & acting
        else:
            reached = on_goal
        closer = None
        if needs_distances(self.reward_name):
            from agents.planners.grid import GridGraph

            if self._graph is None:  # one map per episode: built once, dropped at reset
                self._graph = GridGraph(prev.obstacles)
            g = self._graph
            closer = np.array(
                [
                    g.distances_from(goal)[p] - g.distances_from(goal)[n] == 1
                    for goal, p, n in zip(
                        g.cells(prev.goals), g.cells(prev.positions), g.cells(state.positions)
                    )
                ]
            )
        return compute_rewards(self.reward_name, reached, on_goal, acting, actions != 0, closer).astype(
            np.float64
        )
