"""FollowerLite (Skrynnik et al., "Learn to Follow", AAAI 2024), re-implemented from the paper and the
released ``config.json``, running the released sample-factory checkpoint loaded weights-only.

Per agent and step (decentralised, every agent on its own):

1. **Dynamic cost**: every cell in which the agent currently *sees* another agent (its ``obs_radius``
   window) gets +1; the counts are cleared when the agent's goal changes (``reset_dynamic_cost``).
2. **Static cost**: entering cell c costs ``max_avg / avg(c)``, where ``avg(c)`` is c's mean BFS
   distance to every reachable cell of the map and ``max_avg`` the largest such mean: central cells,
   where traffic concentrates, cost more (up to a few times a peripheral cell).
3. **Planner**: A* on the static map from the agent to its goal, edge cost = static + dynamic cost of
   the entered cell, heuristic = exact static-cost distance to the goal (admissible, since dynamic
   costs are >= 0). The path's next cell is the agent's sub-goal.
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

import heapq
import importlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from agents.checkpoint_io import load_error_reason
from agents.planners.base import WorldState
from agents.planners.grid import UNREACHABLE, GridGraph

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


# ----------------------------------------------------------------------------------------- the planner


def static_penalties(graph: GridGraph, border: int) -> list[float]:
    """Cost of entering each cell: ``max_avg / avg(c)`` over the map's free cells (1.0 elsewhere).

    ``border`` is pogema's artificial border width: only cells inside it belong to the map, so the
    free cells pogema leaves outside its obstacle ring do not enter the maximum.
    """
    H, W = graph.height, graph.width
    inner = [
        c
        for c in range(H * W)
        if graph.free[c] and border <= c // W < H - border and border <= c % W < W - border
    ]
    avg = {}
    for c in inner:
        d = np.asarray(graph.distances_from(c))
        reach = d[(d > 0) & (d < UNREACHABLE)]
        avg[c] = float(reach.mean()) if reach.size else 0.0
    max_avg = max(avg.values(), default=0.0)
    pen = [1.0] * (H * W)
    for c, a in avg.items():
        if a > 0:  # an isolated cell has no average; it never lies on a path anyway
            pen[c] = max_avg / a
    return pen


def astar_path(graph: GridGraph, start: int, goal: int, cost: list[float], h: list[float]) -> list[int]:
    """Cheapest path start -> goal (cells, both ends included); ``[start]`` if the goal is unreachable.

    Entering cell v costs ``cost[v]`` (static + dynamic); ``h`` must be consistent for those costs.
    Lists indexed by cell instead of dicts: this is the hot loop of FollowerLite.
    """
    if start == goal or h[start] >= UNREACHABLE:
        return [start]
    inf = float(UNREACHABLE)
    g = [inf] * len(cost)
    parent = [-1] * len(cost)
    g[start] = 0.0
    heap = [(h[start], 0.0, start)]  # (f, -g, cell): ties go to the deeper node
    nbrs = graph.neighbors
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        _, neg_g, u = pop(heap)
        if u == goal:
            break
        gu = -neg_g
        if gu > g[u]:
            continue  # stale entry; consistent h means a popped node's g is final
        for v in nbrs[u]:
            gv = gu + cost[v]
            if gv < g[v]:
                g[v] = gv
                parent[v] = u
                push(heap, (gv + h[v], -gv, v))
    if g[goal] >= inf:
        return [start]
    path = [goal]
    while path[-1] != start:
        path.append(parent[path[-1]])
    return path[::-1]


class _MapCosts:
    """Per-map data shared by all agents and episodes on that map."""

    def __init__(self, obstacles: np.ndarray, spec: FollowerLiteSpec, border: int) -> None:
        self.graph = GridGraph(obstacles)
        n = self.graph.height * self.graph.width
        self.enter_cost = static_penalties(self.graph, border) if spec.use_static_cost else [1.0] * n
        self._h: dict[int, list[float]] = {}

    def heuristic(self, goal: int) -> list[float]:
        h = self._h.get(goal)
        if h is None:
            h = self._h[goal] = self.graph.weighted_distances_from(goal, self.enter_cost)
        return h


class FollowerLite:
    """The FollowerLite agent: planner + observation + network for every agent, decentralised."""

    def __init__(
        self, net: FollowerLiteNet, spec: FollowerLiteSpec, action_selection: str = "sample"
    ) -> None:
        if action_selection not in ("sample", "argmax"):
            raise ValueError(f"action_selection={action_selection!r}; allowed: sample, argmax")
        self.net, self.spec, self.action_selection = net, spec, action_selection
        self.device = next(net.parameters()).device
        self._maps: dict[bytes, _MapCosts] = {}
        self.costs: _MapCosts | None = None
        self.generator = torch.Generator(device=self.device)
        self.goal: list[int] = []
        self.cost: list[list[float]] = []  # per agent: static + its own dynamic cost of entering each cell
        self.pad = max(spec.obs_radius, spec.input_radius)

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path, device: str | None = None, action_selection: str = "sample"
    ) -> FollowerLite:
        net, spec = load_follower_lite(checkpoint, device)
        return cls(net, spec, action_selection)

    def reset(self, state: WorldState, seed: int) -> None:
        key = state.obstacles.tobytes() + bytes(str(state.obstacles.shape), "ascii")
        if key not in self._maps:
            if len(self._maps) >= 64:
                self._maps.clear()
            # pad so that every window crop stays inside the array, whatever the env's obs_radius
            padded = np.pad(state.obstacles, self.pad)
            self._maps[key] = _MapCosts(padded, self.spec, border=state.obs_radius + self.pad)
        self.costs = self._maps[key]
        self.generator.manual_seed(int(seed))
        A = state.num_agents
        self.goal = [-1] * A
        self.cost = [list(self.costs.enter_cost) for _ in range(A)]

    def _plan(self, state: WorldState) -> list[list[int]]:
        """Update each agent's dynamic costs and plan its path (cells of the padded grid)."""
        assert self.costs is not None, "call reset() before act()"
        spec, costs, p = self.spec, self.costs, self.pad
        pos = costs.graph.cells(state.positions + p)
        goals = costs.graph.cells(state.goals + p)
        active = state.active
        # who sees whom: Chebyshev distance within the planner's observation radius
        xy = state.positions
        sees = (np.abs(xy[:, None, :] - xy[None, :, :]).max(-1) <= spec.obs_radius) & active[None, :]
        np.fill_diagonal(sees, False)
        paths = []
        for i in range(len(pos)):
            if not active[i] or pos[i] == goals[i]:
                paths.append([pos[i]])
                continue
            if spec.reset_dynamic_cost and goals[i] != self.goal[i]:
                self.cost[i] = list(costs.enter_cost)  # forget the dynamic part
            self.goal[i] = goals[i]
            cost = self.cost[i]
            if spec.use_dynamic_cost:
                for j in np.flatnonzero(sees[i]).tolist():
                    cost[pos[j]] += 1.0
            paths.append(astar_path(costs.graph, pos[i], goals[i], cost, costs.heuristic(goals[i])))
        return paths

    def observations(self, state: WorldState, paths: list[list[int]]) -> np.ndarray:
        """float32 [A, 2, D, D]: (obstacles -1 / path +1, agents)."""
        spec, p = self.spec, self.pad
        r, R, W = spec.input_radius, spec.obs_radius, self.costs.graph.width
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
        for i, path in enumerate(paths):
            x0, y0 = state.positions[i] + p
            for c in path:
                dx, dy = c // W - x0, c % W - y0
                if abs(dx) > R or abs(dy) > R:
                    break  # the original draws the path only until it first leaves the obs window
                if abs(dx) <= r and abs(dy) <= r:
                    obs[i, 0, r + dx, r + dy] = 1.0
        return obs

    @torch.no_grad()
    def act(self, state: WorldState) -> np.ndarray:
        paths = self._plan(state)
        obs = torch.from_numpy(self.observations(state, paths)).to(self.device)
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
