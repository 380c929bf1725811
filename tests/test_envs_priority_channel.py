"""``env.priority_channel`` (issue 14): the agents in view that outrank the observing one in PIBT's
priority rule. Fast path (one vectorised gather per step) against a per-agent loop that replays the
goal ages from the positions and goals alone; PIBT with ``tie_break='index'`` decides by exactly that
order; bad uses are one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from agents.offline.rollout import build_expert, world_state
from agents.planners.pibt import PIBT
from envs import make_env
from envs.config import EnvConfig


def _cfg(**kw) -> EnvConfig:
    base = dict(
        name="pogema",
        num_agents=8,
        size=10,
        density=0.2,
        on_target="restart",
        collision_system="soft",
        obs_radius=3,
        max_episode_steps=40,
        priority_channel=True,
    )
    base.update(kw)
    return EnvConfig(**base)


def _reference_channel(pos: np.ndarray, active: np.ndarray, age: np.ndarray, r: int) -> np.ndarray:
    """[A, d, d] by loops: 1 where an active agent j in i's window has an older goal, or as old and j < i."""
    A, d = len(pos), 2 * r + 1
    out = np.zeros((A, d, d), dtype=np.float32)
    for i in range(A):
        for j in range(A):
            if j == i or not active[j]:
                continue
            dx, dy = pos[j] - pos[i]
            if abs(dx) > r or abs(dy) > r:
                continue
            if age[j] > age[i] or (age[j] == age[i] and j < i):
                out[i, r + dx, r + dy] = 1.0
    return out


@pytest.mark.parametrize(
    "kw, channel",
    [
        ({}, 3),
        ({"planner_path": True, "planner_costs": "unit"}, 4),
        ({"on_target": "nothing", "collision_system": "block_both"}, 3),
        ({"on_target": "finish", "num_agents": 6}, 3),
    ],
)
def test_channel_matches_a_loop_over_agents_with_replayed_goal_ages(kw, channel):
    cfg = _cfg(**kw)
    env = make_env(cfg, seed=3)
    rng = np.random.default_rng(0)
    r = cfg.obs_radius
    for episode in range(2):
        obs, _ = env.reset(seed=50 + episode)
        assert obs.shape[1] == channel + 1
        age = np.zeros(cfg.num_agents, dtype=np.int64)
        goals = env.targets_xy()
        seen_any = False
        for _ in range(cfg.max_episode_steps):
            ref = _reference_channel(env.agents_xy(), env.active, age, r)
            np.testing.assert_array_equal(obs[:, channel], ref)
            seen_any |= bool(ref.any())
            # the other channels are the env's usual ones: agents are where the agent channel says
            assert np.all(obs[:, 1][obs[:, channel] == 1] == 1)
            actions = rng.integers(5, size=cfg.num_agents)
            obs, _, term, trunc, _ = env.step(actions)
            pos, new_goals = env.agents_xy(), env.targets_xy()
            # PIBT's clock: +1 per step, back to 0 on the goal or when the goal changed
            fresh = np.any(new_goals != goals, axis=1) | np.all(pos == goals, axis=1)
            age = np.where(fresh, 0, age + 1)
            goals = new_goals
            if np.all(term) or np.all(trunc):
                break
        assert seen_any  # the check compared a non-empty channel


def _next_cells(obs: np.ndarray, pos: np.ndarray, r: int) -> np.ndarray:
    """[A, 2] each agent's next planned cell, read off its own path channel (the marked neighbour)."""
    out = pos.copy()
    for i in range(len(pos)):
        for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            if obs[i, 3, r + dx, r + dy]:
                out[i] = pos[i] + (dx, dy)
    return out


def test_intention_channel_marks_the_next_cells_of_the_agents_that_outrank():
    cfg = _cfg(planner_path=True, planner_costs="unit", intention_channel=True, num_agents=10)
    env = make_env(cfg, seed=5)
    r = cfg.obs_radius
    rng = np.random.default_rng(1)
    obs, _ = env.reset(seed=9)
    assert obs.shape[1] == 6
    marked = 0
    for _ in range(cfg.max_episode_steps):
        pos, rank = env.agents_xy(), env.outranks()
        nxt = _next_cells(obs, pos, r)
        ref = np.zeros_like(obs[:, 5])
        for i in range(cfg.num_agents):
            for j in range(cfg.num_agents):
                d, to = pos[j] - pos[i], nxt[j] - pos[i]
                if rank[i, j] and np.all(np.abs(d) <= r) and np.all(np.abs(to) <= r):
                    ref[i, r + to[0], r + to[1]] = 1.0
        np.testing.assert_array_equal(obs[:, 5], ref)
        marked += int(ref.sum())
        obs, *_ = env.step(rng.integers(5, size=cfg.num_agents))
    assert marked > 0


def test_fixed_move_ties_take_the_paths_move_when_nothing_is_in_the_way():
    cfg = _cfg(planner_path=True, planner_costs="unit", obs_radius=5, size=12, max_episode_steps=60)
    env = make_env(cfg, seed=0)
    pibt = build_expert("pibt", cfg)
    assert (pibt.tie_break, pibt.move_ties) == ("index", "fixed")
    obs, _ = env.reset(seed=3)
    state = world_state(env, obs, 0)
    pibt.reset(state, 3)
    n = same = 0
    for t in range(cfg.max_episode_steps):
        actions = pibt.act(state)
        pos = env.agents_xy()
        nxt = _next_cells(obs, pos, 5)
        moved = [(-1, 0), (1, 0), (0, -1), (0, 1)]
        for i in range(cfg.num_agents):
            if obs[i, 1, 4:7, 4:7].sum() > 1 or np.all(nxt[i] == pos[i]):
                continue  # another agent next to it, or no move planned
            n += 1
            same += actions[i] != 0 and tuple(nxt[i] - pos[i]) == moved[actions[i] - 1]
        obs, *_ = env.step(actions)
        state = world_state(env, obs, t + 1)
    assert n > 50 and same / n > 0.95  # the rest: pushes and backtracking of agents further away
    # random move ties differ from the path clearly more often on the same episode
    rnd = PIBT(tie_break="index")
    obs, _ = env.reset(seed=3)
    state = world_state(env, obs, 0)
    rnd.reset(state, 3)
    n2 = same2 = 0
    for t in range(cfg.max_episode_steps):
        actions = rnd.act(state)
        pos = env.agents_xy()
        nxt = _next_cells(obs, pos, 5)
        for i in range(cfg.num_agents):
            if obs[i, 1, 4:7, 4:7].sum() > 1 or np.all(nxt[i] == pos[i]):
                continue
            n2 += 1
            same2 += actions[i] != 0 and tuple(nxt[i] - pos[i]) == moved[actions[i] - 1]
        obs, *_ = env.step(actions)
        state = world_state(env, obs, t + 1)
    assert same2 / n2 < same / n


def test_pibt_with_index_ties_decides_by_the_order_the_channel_shows():
    cfg = _cfg(num_agents=10, size=9, max_episode_steps=60)
    env = make_env(cfg, seed=0)
    for stuck_steps in (0, 16):
        obs, _ = env.reset(seed=7)
        state = world_state(env, obs, 0)
        pibt = PIBT(stuck_steps=stuck_steps, tie_break="index")
        pibt.reset(state, 7)
        differ = 0
        for t in range(cfg.max_episode_steps):
            shown = env.outranks()
            actions = pibt.act(state)
            prio = np.asarray(pibt.priorities)  # the rule's priority, without escape mode
            np.testing.assert_array_equal(shown, prio[None, :] > prio[:, None])
            used = prio + np.asarray(pibt.boost)
            differ += int((shown != (used[None, :] > used[:, None])).sum())
            obs, *_ = env.step(actions)
            state = world_state(env, obs, t + 1)
        if stuck_steps == 0:
            assert differ == 0  # no escape mode: the channel is PIBT's exact order


def test_index_tie_break_orders_the_base_priorities_and_random_stays_the_default():
    cfg = _cfg()
    env = make_env(cfg, seed=1)
    obs, _ = env.reset(seed=1)
    state = world_state(env, obs, 0)
    p = PIBT(tie_break="index")
    p.reset(state, 1)
    assert p.base == sorted(p.base, reverse=True) and len(set(p.base)) == cfg.num_agents
    assert PIBT().tie_break == "random"
    assert build_expert("pibt", cfg).tie_break == "index"
    assert build_expert("pibt", _cfg(priority_channel=False)).tie_break == "random"
    assert build_expert("pibt").tie_break == "random"


def test_channel_off_leaves_the_observation_unchanged():
    on, off = make_env(_cfg(), seed=2), make_env(_cfg(priority_channel=False), seed=2)
    a, _ = on.reset(seed=4)
    b, _ = off.reset(seed=4)
    np.testing.assert_array_equal(a[:, :3], b)
    acts = np.random.default_rng(1).integers(5, size=8)
    a, *_ = on.step(acts)
    b, *_ = off.step(acts)
    np.testing.assert_array_equal(a[:, :3], b)


def test_bad_uses_are_one_line_errors():
    with pytest.raises(ValueError, match="tie_break='first'; allowed: random, index"):
        PIBT(tie_break="first")
    with pytest.raises(ValueError, match="move_ties='up'; allowed: random, fixed"):
        PIBT(move_ties="up")
    with pytest.raises(
        ValueError, match="intention_channel=true needs planner_path=true and priority_channel=true"
    ):
        _cfg(intention_channel=True)
    with pytest.raises(ValueError, match="priority_channel=true is not supported by env 'tmaze'"):
        make_env(EnvConfig(name="tmaze", priority_channel=True))
    from envs.bottleneck_vec import BottleneckVector, build_bottleneck_vector

    cfg = EnvConfig(name="bottleneck", priority_channel=True)
    assert build_bottleneck_vector(cfg, [0]) is None  # falls back to the per-env loop
    with pytest.raises(ValueError, match="priority_channel"):
        BottleneckVector(cfg, [0])
    env = make_env(cfg, seed=0)  # the per-env Bottleneck draws it
    obs, _ = env.reset(seed=0)
    assert obs.shape[1] == 4


def test_the_offline_recorder_and_eval_use_the_pibt_the_channels_show(tmp_path):
    import dataclasses

    from agents.offline import load_config
    from agents.offline.record import EpisodeRecorder

    cfg = load_config(
        "lifelong-cpu", [f"out_dir={tmp_path}", "env.num_agents=4", "env.size=8", "progress=false"]
    )
    assert cfg.env.priority_channel and cfg.env.intention_channel  # the shipped CPU config draws both
    fields = {f.name: getattr(cfg.env, f.name) for f in dataclasses.fields(cfg.env)}
    rec = EpisodeRecorder(fields, dataclasses.asdict(cfg.record))
    assert (rec.expert.tie_break, rec.expert.move_ties) == ("index", "fixed")
    arrays, _ = rec.episode(0)
    assert arrays["obs"].shape[2] == 6  # obstacles, agents, goal, path, outranking agents, their next cells
    rec.env.close()
