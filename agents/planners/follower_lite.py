"""FollowerLite (Skrynnik et al., "Learn to Follow", AAAI 2024), re-implemented from the paper and the
released ``config.json``, running the released sample-factory checkpoint loaded weights-only.

Per agent and step (decentralised, every agent on its own), planning is :class:`envs.guidance.AStarPlanner`:
the static costs, the counting, the goal fields and the drawing are the code that draws the path channel
of srmt's own envs (``EnvConfig.planner_path``), which solves the same costs vectorised in a window.
With numba installed (the ``fast`` extra) the agent runs the same planner compiled,
:class:`agents.planners.follower_planner.CompiledAStarPlanner`: identical plans, ~10x faster on 256x256
maps with 256 agents (issue 11).

1. **Dynamic cost**: every cell in which the agent currently *sees* another agent (its ``obs_radius``
   window) gets +1; the counts are cleared when the agent's goal changes (``reset_dynamic_cost``).
2. **Static cost**: entering cell c costs ``max_avg / avg(c)``, where ``avg(c)`` is c's mean BFS
   distance to every reachable cell of the map and ``max_avg`` the largest such mean: central cells,
   where traffic concentrates, cost more (up to a few times a peripheral cell).
3. **Planner**: A* on the static map from the agent to its goal, edge cost = static + dynamic cost of
   the entered cell, heuristic = exact static-cost distance to the goal (admissible, since dynamic
   costs are >= 0). The path's next cell is the agent's sub-goal. (The env's vectorised planner
   charges the counts only inside the window; with the released network that costs FollowerLite 5%
   throughput on 01-random and 16% on 02-mazes, first 8 maps; so FollowerLite keeps the exact model.)
4. **Observation**: two ``(2r+1)^2`` channels around the agent (``r = network_input_radius``):
   ``obstacles`` as -1 with the planned path drawn as +1 (from the agent's own cell until the path
   first leaves the ``obs_radius`` window), and ``agents`` (1 where any agent stands, itself included).
5. **Policy**: the network below maps the observation to 5 action logits; actions are sampled (as
   sample-factory's inference does) or taken greedily.

Network (matching the checkpoint's keys): conv3x3(2 -> F), ``num_res_blocks`` residual blocks, the
activation, flatten, then linear actor (``action_parameterization.distribution_linear``) and critic
(``critic_linear``) heads; no recurrent core (``use_rnn: false``). One quirk of the original is kept on
purpose because the weights were trained with it: its residual blocks start with an *in-place*
activation, which also rewrites the block's input, so the skip connection carries ``act(x)``, not ``x``.

Our choices where the original is unspecified or code-specific: A* ties prefer larger g (deeper nodes);
an agent standing on its goal (classic MAPF only; lifelong goals move on at once) waits there, since
the network was trained on lifelong episodes and never learned to stay.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from agents.checkpoint_io import load_error_reason
from agents.planners.base import WorldState
from agents.planners.follower_planner import make_follower_planner
from envs.guidance import Plan

_ACTIVATIONS = {"ReLU": nn.ReLU, "ELU": nn.ELU, "Mish": nn.Mish}


@dataclass(frozen=True)
class FollowerLiteSpec:
    """The parts of learn-to-follow's ``config.json`` that inference needs."""

    obs_radius: int = 5
    input_radius: int = 3
    use_static_cost: bool = True
    use_dynamic_cost: bool = True
    reset_dynamic_cost: bool = True
    num_filters: int = 8
    num_res_blocks: int = 1
    activation: str = "ReLU"
    extra_fc_layers: int = 0
    hidden_size: int = 16
    num_actions: int = 5

    @classmethod
    def from_config_json(cls, data: dict) -> FollowerLiteSpec:
        try:
            enc, pre = data["encoder"], data["preprocessing"]
            spec = cls(
                obs_radius=int(data["environment"]["grid_config"]["obs_radius"]),
                input_radius=int(pre["network_input_radius"]),
                use_static_cost=bool(pre["use_static_cost"]),
                use_dynamic_cost=bool(pre["use_dynamic_cost"]),
                reset_dynamic_cost=bool(pre["reset_dynamic_cost"]),
                num_filters=int(enc["num_filters"]),
                num_res_blocks=int(enc["num_res_blocks"]),
                activation=str(enc["activation_func"]),
                extra_fc_layers=int(enc["extra_fc_layers"]),
                hidden_size=int(enc["hidden_size"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(
                f"FollowerLite config.json lacks or mistypes {e}; expected learn-to-follow's format"
            ) from None
        if spec.activation not in _ACTIVATIONS:
            raise ValueError(
                f"FollowerLite activation {spec.activation!r} unknown; allowed: {', '.join(_ACTIVATIONS)}"
            )
        if data.get("use_rnn", False):
            raise ValueError(
                "FollowerLite config.json has use_rnn: true; only the feed-forward FollowerLite is supported"
            )
        return spec


class _ResBlock(nn.Module):
    def __init__(self, channels: int, activation: type[nn.Module]) -> None:
        super().__init__()
        # indices 1 and 3 hold the convolutions, as in the checkpoint ("res_block_core.1.weight" ...)
        self.res_block_core = nn.Sequential(
            activation(),
            nn.Conv2d(channels, channels, 3, padding=1),
            activation(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        core = self.res_block_core
        h = core[0](x)  # the original's in-place activation also replaced the skip input by act(x)
        return h + core[3](core[2](core[1](h)))


class _Encoder(nn.Module):
    def __init__(self, spec: FollowerLiteSpec, in_channels: int) -> None:
        super().__init__()
        act = _ACTIVATIONS[spec.activation]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, spec.num_filters, 3, padding=1)]
        layers += [_ResBlock(spec.num_filters, act) for _ in range(spec.num_res_blocks)]
        layers.append(act())
        self.conv_head = nn.Sequential(*layers)
        side = 2 * spec.input_radius + 1
        self.out_size = spec.num_filters * side * side  # 3x3 convs with padding 1 keep the window size
        if spec.extra_fc_layers:
            self.extra_linear = nn.Sequential(nn.Linear(self.out_size, spec.hidden_size), act())
            self.out_size = spec.hidden_size

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.conv_head(obs).flatten(1)
        return self.extra_linear(x) if hasattr(self, "extra_linear") else x


class _ActionHead(nn.Module):
    def __init__(self, in_size: int, num_actions: int) -> None:
        super().__init__()
        self.distribution_linear = nn.Linear(in_size, num_actions)


class FollowerLiteNet(nn.Module):
    """obs [N, 2, D, D] -> (logits [N, 5], value [N])."""

    in_channels = 2

    def __init__(self, spec: FollowerLiteSpec) -> None:
        super().__init__()
        self.encoder = _Encoder(spec, self.in_channels)
        self.critic_linear = nn.Linear(self.encoder.out_size, 1)
        self.action_parameterization = _ActionHead(self.encoder.out_size, spec.num_actions)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.encoder(obs)
        return self.action_parameterization.distribution_linear(x), self.critic_linear(x).squeeze(-1)


def _safe_globals() -> list:
    """What learn-to-follow checkpoints pickle besides tensors: numpy scalars (``best_performance``)."""
    # numpy 2 moved numpy.core to numpy._core (numpy 1.x has a partial numpy._core without multiarray)
    name = "numpy._core.multiarray" if int(np.__version__.split(".")[0]) >= 2 else "numpy.core.multiarray"
    scalar = importlib.import_module(name).scalar
    return [scalar, np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.int64))]


def _keep_storage(storage, location):  # map_location that keeps tensors where torch.load builds them (CPU)
    return storage


def find_config_json(checkpoint: Path) -> Path:
    """``config.json`` beside the checkpoint or one folder up (sample-factory's ``checkpoint_p0/`` layout)."""
    for folder in (checkpoint.parent, checkpoint.parent.parent):
        if (folder / "config.json").is_file():
            return folder / "config.json"
    raise ValueError(
        f"FollowerLite checkpoint {str(checkpoint)!r} has no config.json beside it or one folder up"
    )


def load_follower_lite(
    checkpoint: str | Path, device: str | torch.device | None = None
) -> tuple[FollowerLiteNet, FollowerLiteSpec]:
    """The network with the checkpoint's weights (loaded ``weights_only=True``) and its spec.

    ``device``: where to put the network (``None``: where torch loaded it, the CPU).

    A missing, corrupt or mismatching checkpoint is a one-line ``ValueError`` naming the file.
    """
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise ValueError(f"FollowerLite checkpoint {str(checkpoint)!r} not found")
    cfg_path = find_config_json(path)
    try:
        spec = FollowerLiteSpec.from_config_json(json.loads(cfg_path.read_text()))
    except json.JSONDecodeError as e:
        raise ValueError(
            f"FollowerLite config {cfg_path} is not valid JSON ({e.msg} at line {e.lineno})"
        ) from None
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            ckpt = torch.load(path, weights_only=True, map_location=_keep_storage)
    except Exception as e:  # torch raises several types for corrupt files (zip, unpickling, runtime)
        raise ValueError(
            f"FollowerLite checkpoint {str(path)!r} could not be loaded weights-only: {load_error_reason(e)}"
        ) from None
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f"FollowerLite checkpoint {str(path)!r} holds no model state_dict (expected key 'model')"
        )
    net = FollowerLiteNet(spec)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        reason = " ".join(str(e).split())[:300]
        raise ValueError(
            f"FollowerLite checkpoint {str(path)!r} does not match config {cfg_path.name}: {reason}"
        ) from None
    if device is not None:
        net = net.to(device)
    return net.eval(), spec


class FollowerLite:
    """The FollowerLite agent: planner + observation + network for every agent, decentralised."""

    def __init__(
        self, net: FollowerLiteNet, spec: FollowerLiteSpec, action_selection: str = "sample"
    ) -> None:
        if action_selection not in ("sample", "argmax"):
            raise ValueError(f"action_selection={action_selection!r}; allowed: sample, argmax")
        if spec.use_dynamic_cost and not spec.use_static_cost:
            raise ValueError("FollowerLite with dynamic but without static costs is not supported")
        self.net, self.spec, self.action_selection = net, spec, action_selection
        self.device = next(net.parameters()).device
        costs = "follower" if spec.use_dynamic_cost else "static" if spec.use_static_cost else "unit"
        # one planner for the agent's lifetime: it caches static costs and goal fields per map
        self.planner = make_follower_planner(spec.obs_radius, costs, reset_dynamic=spec.reset_dynamic_cost)
        self.generator = torch.Generator(device=self.device)
        self._fresh = True

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path, device: str | None = None, action_selection: str = "sample"
    ) -> FollowerLite:
        net, spec = load_follower_lite(checkpoint, device)
        return cls(net, spec, action_selection)

    def reset(self, state: WorldState, seed: int) -> None:
        self.generator.manual_seed(int(seed))
        self._fresh = True  # the first act() starts the planner: the reset observation counts once

    def _plan(self, state: WorldState) -> Plan:
        """Update each agent's dynamic costs and plan its path, on the map inside pogema's border (the
        free cells pogema leaves outside its obstacle ring must not enter the static costs)."""
        b = state.obs_radius
        pos, goals = state.positions - b, state.goals - b
        if self._fresh:
            self._fresh = False
            plan = self.planner.reset(state.obstacles[b:-b, b:-b] == 0, pos, goals)
            if not state.active.all():
                plan = self.planner.update(pos, goals, state.active)
            return plan
        return self.planner.update(pos, goals, state.active)

    def observations(self, state: WorldState, plan: Plan) -> np.ndarray:
        """float32 [A, 2, D, D]: (obstacles -1 / path +1, agents)."""
        r, R = self.spec.input_radius, self.spec.obs_radius
        p = max(r, R)
        obstacles = np.pad(state.obstacles, p).astype(np.float32)
        agents = np.zeros_like(obstacles)
        xy = state.positions[state.active] + p
        agents[xy[:, 0], xy[:, 1]] = 1.0
        offs = np.arange(-r, r + 1)
        rows = (state.positions[:, 0] + p)[:, None] + offs  # [A, D]
        cols = (state.positions[:, 1] + p)[:, None] + offs
        obs = np.stack(
            [-obstacles[rows[:, :, None], cols[:, None, :]], agents[rows[:, :, None], cols[:, None, :]]],
            axis=1,
        )
        # the path as the original draws it: until it first leaves the obs_radius window, then cut to r
        if r <= R:
            path = plan.mask[:, R - r : R + r + 1, R - r : R + r + 1]
        else:
            path = np.pad(plan.mask, ((0, 0), (r - R, r - R), (r - R, r - R)))
        obs[:, 0][path] = 1.0
        return obs

    @torch.no_grad()
    def act(self, state: WorldState) -> np.ndarray:
        plan = self._plan(state)
        obs = torch.from_numpy(self.observations(state, plan)).to(self.device)
        logits, _ = self.net(obs)
        if self.action_selection == "argmax":
            actions = logits.argmax(-1)
        else:
            actions = torch.multinomial(torch.softmax(logits, -1), 1, generator=self.generator).squeeze(-1)
        actions = actions.cpu().numpy().astype(np.int64)
        if state.on_target != "restart":
            # Trained on lifelong MAPF only, the network never saw an agent standing on its goal and tends
            # to wander off it; in classic MAPF an arrived agent waits (our choice, see module docstring).
            actions[np.all(state.positions == state.goals, axis=1)] = 0
        return actions
