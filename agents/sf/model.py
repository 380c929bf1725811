"""The srmt actor-critic behind sample-factory's ``ActorCritic`` interface.

sample-factory calls the model in three ways, all with flat rows:

* ``forward(obs, rnn_states)`` on the inference worker (rows = whole environments) and for the learner's
  bootstrap value of step T+1 (rows = trajectories, also whole environments): one ``step`` on ``[G, A]``.
* ``forward_head -> forward_core -> forward_tail`` in the learner on a minibatch of ``G*A*T`` rows with the
  state at each BPTT-chunk start: ``forward_head`` packs each row's observation and flags into one
  tensor, ``forward_core`` regroups it into ``[G*T/R, A, R]`` chunks and runs ``sequence`` (gradients
  through the memory and through the shared pool recomputed with current parameters), ``forward_tail``
  turns the rows back into sample-factory's values and action distribution.

All reshapes live in ``agents.sf.layout``.  The state travels through sample-factory's float32 buffers
as :func:`pack_state` makes it: as is, or (``model.state_precision=bfloat16``) two bfloat16 values per
float32 slot, which halves the bytes that the inference worker stacks, copies to the device and back at
every step (docs/bench-train.md).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from sample_factory.algo.utils.action_distributions import get_action_distribution
from sample_factory.algo.utils.tensor_dict import TensorDict
from sample_factory.model.actor_critic import ActorCritic as SFActorCriticBase
from sample_factory.model.model_utils import model_device
from torch import Tensor

from agents.sf import layout
from srmt import build_actor_critic


def transport_size(state_size: int, precision: str) -> int:
    """float32 slots per agent in sample-factory's state buffers for a model state of ``state_size``."""
    return (state_size + 1) // 2 if precision == "bfloat16" else state_size


def pack_state(state: Tensor, precision: str) -> Tensor:
    """Model state ``[..., S]`` -> sample-factory rows ``[..., transport_size]`` (float32).

    With ``bfloat16`` the values are already bf16-exact (the core rounds every new state), so the bit
    copy into pairs is lossless.  Only copies and selections touch the packed slots on sample-factory's
    side (its rollout worker multiplies them by a 0/1 ``not_done``, which keeps finite values and
    zeroes reset agents), and a finite bf16 high half can never make the float32 a NaN or Inf."""
    if precision != "bfloat16":
        return state
    half = state.to(torch.bfloat16)
    if half.shape[-1] % 2:
        half = torch.cat([half, half.new_zeros(*half.shape[:-1], 1)], dim=-1)
    return half.contiguous().view(torch.float32)


def unpack_state(rows: Tensor, state_size: int, precision: str) -> Tensor:
    """Inverse of :func:`pack_state`: ``[..., transport_size]`` float32 -> ``[..., S]`` float32."""
    if precision != "bfloat16":
        return rows
    return rows.contiguous().view(torch.bfloat16)[..., :state_size].float()


class SFActorCritic(SFActorCriticBase):
    """sample-factory view of :class:`srmt.ActorCritic` (kept as ``self.net``)."""

    def __init__(self, obs_space: Any, action_space: Any, cfg: Any) -> None:
        super().__init__(obs_space, action_space, cfg)
        from agents.sf.sf_config import experiment_from_sf, setup_process

        setup_process(cfg)
        exp = experiment_from_sf(cfg)
        self.obs_shape = tuple(int(s) for s in obs_space["obs"].shape)
        self.num_actions = int(action_space.n)
        self.net = build_actor_critic(exp.model, self.obs_shape, self.num_actions)
        self.state_precision = exp.model.state_precision
        if transport_size(self.net.state_size, self.state_precision) != int(cfg.rnn_size):
            raise ValueError(
                f"model state size {self.net.state_size} ({self.state_precision}) does not fit "
                f"sample-factory rnn_size {cfg.rnn_size}"
            )
        # bf16 autocast of the model body on CUDA (train.autocast); heads and losses stay float32
        self.autocast = exp.train.autocast == "bf16"
        self.host_outputs = exp.train.host_outputs
        if exp.train.compile != "off":  # only the learner calls ``sequence``
            self.net.core.compile_sequence(exp.train.compile, exp.train.compile_scope)
        self.num_agents = int(cfg.srmt_agents_per_env)
        self.rollout = int(cfg.rollout)
        self.bptt = int(cfg.recurrence)
        self.debug_layout = bool(cfg.srmt_debug_layout)
        self._obs_numel = math.prod(self.obs_shape)
        self._dtypes = {key: _torch_dtype(space.dtype) for key, space in obs_space.spaces.items()}
        self._dtypes["obs"] = torch.float32

    # --------------------------------------------------------------- sample-factory plumbing

    def device_for_input_tensor(self, input_tensor_name: str) -> torch.device:
        return model_device(self)

    def type_for_input_tensor(self, input_tensor_name: str) -> torch.dtype:
        return self._dtypes[input_tensor_name]

    # --------------------------------------------------------------- inference and bootstrap values

    def forward(self, normalized_obs_dict: dict[str, Tensor], rnn_states: Tensor, values_only: bool = False):
        A = self.num_agents
        obs = layout.rows_to_groups(normalized_obs_dict["obs"], A)  # (G, A, C, H, W)
        reset = layout.rows_to_groups(normalized_obs_dict["first"], A).bool()  # (G, A)
        active = layout.rows_to_groups(normalized_obs_dict["active"], A).bool()  # (G, A)
        state = layout.rows_to_groups(self._unpack(rnn_states), A)  # (G, A, S)
        if self.debug_layout:
            layout.check_group_ids(
                layout.rows_to_groups(normalized_obs_dict["env_id"], A),
                layout.rows_to_groups(normalized_obs_dict["agent_id"], A),
                "inference/bootstrap rows",
            )
        with self._autocast(obs):
            out = self.net.step(obs, state, reset=reset, active=active)
        result = TensorDict(values=layout.groups_to_rows(out.value))
        if values_only:
            return result
        logits = layout.groups_to_rows(out.logits)  # (N, n)
        self.last_action_distribution = get_action_distribution(self.action_space, logits)
        result["action_logits"] = logits
        self._maybe_sample_actions(True, result)
        result["new_rnn_states"] = pack_state(layout.groups_to_rows(out.state), self.state_precision)
        if self.host_outputs and logits.is_cuda:
            result = _to_host(result)
        return result

    def _unpack(self, rows: Tensor) -> Tensor:
        return unpack_state(rows, self.net.state_size, self.state_precision)

    def _autocast(self, x: Tensor):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast and x.device.type == "cuda")

    # --------------------------------------------------------------- learner: head -> core -> tail

    def forward_head(self, normalized_obs_dict: dict[str, Tensor]) -> Tensor:
        """Rows ``[B*T]`` -> ``[B*T, C*H*W + 2]``: observation, reset flag, active flag side by side."""
        obs = normalized_obs_dict["obs"]
        if self.debug_layout:
            self._check_learner_ids(normalized_obs_dict)
        flags = torch.stack([normalized_obs_dict["first"], normalized_obs_dict["active"]], dim=1).to(
            obs.dtype
        )
        return torch.cat([obs.reshape(obs.shape[0], -1), flags], dim=1)

    def forward_core(self, head_output: Tensor, rnn_states: Tensor):
        """``head_output [B*T, F]``, ``rnn_states [B*T/R, S]`` (state at each chunk start) ->
        ``[B*T, n + 1]`` (logits and value per row) and the final states ``[B*T/R, S]``."""
        A, T, R = self.num_agents, self.rollout, self.bptt
        x = layout.learner_rows_to_chunks(head_output, A, T, R)  # (G', A, R, F)
        Gc = x.shape[0]
        obs = x[..., : self._obs_numel].reshape(Gc, A, R, *self.obs_shape)
        reset = x[..., self._obs_numel] > 0.5  # (G', A, R)
        active = x[..., self._obs_numel + 1] > 0.5
        state = layout.chunk_states(self._unpack(rnn_states), A, T, R)  # (G', A, S)
        with self._autocast(obs):
            out = self.net.sequence(obs, state, reset=reset, active=active)
        core = torch.cat([out.logits, out.value.unsqueeze(-1)], dim=-1)  # (G', A, R, n + 1)
        final = pack_state(out.state.reshape(Gc, A, -1), self.state_precision)
        return layout.chunks_to_learner_rows(core, A, T, R), final

    def forward_tail(self, core_output: Tensor, values_only: bool, sample_actions: bool) -> TensorDict:
        result = TensorDict(values=core_output[:, -1])
        if values_only:
            return result
        logits = core_output[:, :-1]
        self.last_action_distribution = get_action_distribution(self.action_space, logits)
        result["action_logits"] = logits
        self._maybe_sample_actions(sample_actions, result)
        return result

    def _check_learner_ids(self, obs: dict[str, Tensor]) -> None:
        A, T, R = self.num_agents, self.rollout, self.bptt
        env_id = layout.learner_rows_to_chunks(obs["env_id"], A, T, R)  # (G', A, R)
        agent_id = layout.learner_rows_to_chunks(obs["agent_id"], A, T, R)
        step = layout.learner_rows_to_chunks(obs["step"], A, T, R)
        layout.check_group_ids(env_id, agent_id, "learner minibatch")
        layout.check_chunk_steps(step, "learner minibatch")


def _to_host(result: TensorDict) -> TensorDict:
    """All inference outputs to host memory in one device->host copy.

    sample-factory's batched inference worker copies each output key of each request into its host
    buffers separately (a synchronising device->host copy each: ~6 keys x the requests of a call);
    handed host tensors, it does host->host copies instead (docs/bench-train.md).  Actions are small
    integers, exact in float32; the packed state slots are copied bit for bit (cat and copy only)."""
    keys = list(result.keys())
    cols = [result[k].reshape(result[k].shape[0], -1) for k in keys]
    dtypes = [c.dtype for c in cols]
    flat = torch.cat([c.float() if c.dtype != torch.float32 else c for c in cols], dim=1).cpu()
    out, ofs = TensorDict(), 0
    for k, c, dt in zip(keys, cols, dtypes):
        part = flat[:, ofs : ofs + c.shape[1]]
        ofs += c.shape[1]
        out[k] = part.to(dt).reshape(result[k].shape)
    return out


def _torch_dtype(np_dtype: Any) -> torch.dtype:
    import numpy as np

    return torch.from_numpy(np.zeros(1, dtype=np_dtype)).dtype


def make_sf_actor_critic(cfg: Any, obs_space: Any, action_space: Any) -> SFActorCritic:
    """Registered with sample-factory's ``global_model_factory().register_actor_critic_factory``."""
    return SFActorCritic(obs_space, action_space, cfg)
