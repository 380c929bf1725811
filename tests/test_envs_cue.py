"""The Cue Bottleneck (envs/cue.py): the cue is shown once, the trap removes an agent as a failure, and a
scripted memory policy solves the task while the scripted reactive ones do not (docs/memory-task.md)."""

from __future__ import annotations

import numpy as np
import pytest

from agents.cue_policies import ScriptedCuePolicy, evaluate, play, read_cue
from envs import (
    BottleneckOptions,
    CueOptions,
    EnvConfig,
    env_spec,
    make_env,
    make_vector_env,
    registered_envs,
)
from envs.cue import cue_config, cue_map, end_cells

R = 2


def test_registered_with_the_bottleneck_api():
    assert {"cue", "cue_partner"} <= set(registered_envs())
    env = make_env(EnvConfig(name="cue", obs_radius=R), seed=0)  # train split, lengths drawn per episode
    obs, infos = env.reset()
    assert obs.shape == (2, 3, 2 * R + 1, 2 * R + 1) and len(infos) == 2
    assert make_env(EnvConfig(name="cue"), seed=0).observation_space.shape == (3, 5, 5)  # default radius 2
    grid = cue_map(4)
    assert grid.shape == (8, 11) and not grid[0].any() and not grid[7].any()
    assert grid[1, 0] and grid[1, 10] and grid[2:6].sum() == 4 * 10


def test_cue_tasks_take_the_bottleneck_options():
    for name in ("cue", "cue_partner"):
        spec = env_spec(name)
        assert spec.options_type is CueOptions and issubclass(CueOptions, BottleneckOptions) and spec.grid
    cfg = cue_config(7, name="cue_partner")
    assert cfg.opts == CueOptions(split="test", corridor_lengths=[7])
    env = make_env(cfg, seed=0)
    env.reset(seed=0)
    assert env.episode.labels["corridor_length"] == 7 and env.max_episode_steps == 2 * 7 + 100  # test split
    train = make_env(EnvConfig(name="cue", options={"corridor_lengths": [5]}), seed=0)
    assert train.num_agents == 2  # the Bottleneck's default agent count
    with pytest.raises(ValueError, match=r"env.options.corridor_length is not an option of env 'cue'"):
        EnvConfig(name="cue", options={"corridor_length": [3]})
    with pytest.raises(TypeError, match="corridor_lengths"):
        EnvConfig(name="cue", corridor_lengths=[3])  # type: ignore[call-arg]  # the pre-issue-12 top-level key


def test_cue_only_in_the_first_observation_and_goal_at_an_end_cell():
    for seed in range(20):
        env = make_env(cue_config(5), seed=seed)
        obs, _ = env.reset(seed=seed)
        ends = {tuple(c) for c in end_cells(5).reshape(-1, 2).tolist()}
        assert all(tuple(g) in ends for g in env.targets_xy().tolist())
        np.testing.assert_array_equal(read_cue(obs), env.sides)
        np.testing.assert_array_equal(env.traps[:, 1], 10 - env.targets_xy()[:, 1])
        obs, *_ = env.step(np.zeros(2, dtype=np.int64))
        marker_cols = obs[:, 2].max(axis=1).argmax(axis=1)
        assert (marker_cols == R).all(), "after the cue the goal channel must not show the side"
        assert obs[:, 2].sum() == 2  # still one marker per agent (its row says above/below)


def test_partner_cue_shows_the_partners_side():
    seen_different = False
    for seed in range(20):
        env = make_env(cue_config(3, name="cue_partner", num_agents=3), seed=seed)
        obs, _ = env.reset(seed=seed)
        sides = env.sides
        np.testing.assert_array_equal(read_cue(obs), sides[[1, 0, 2]])  # odd last agent: its own
        seen_different |= sides[0] != sides[1]
    assert seen_different


def _walk_into_the_trap(env):
    """Reset ``env`` (1 agent, L = 3) to an episode whose goal is at the right end, walk the agent into the
    left end cell (its trap); returns (steps taken, the path's length, the last step's outputs)."""
    for seed in range(50):
        env.reset(seed=seed)
        if env.sides[0] > 0:
            break
    x, y = env.agents_xy()[0]
    # to the corridor's column, down to the far row of the bottom room, then left to the end cell
    path = [4 if y < 5 else 3] * abs(5 - y) + [2] * (env.obstacles.shape[0] - 1 - x) + [3] * 5
    steps, out = 0, None
    for a in path:
        out = env.step(np.array([a]))
        steps += 1
        if out[2][0]:
            break
    return steps, len(path), out


def test_trap_removes_the_agent_as_a_failure():
    env = make_env(cue_config(3, num_agents=1), seed=0)
    steps, n, (obs, rew, term, trunc, infos) = _walk_into_the_trap(env)
    assert steps == n, "the agent must be removed exactly when it steps onto its trap"
    assert env.trapped[0] and not env.active[0] and rew[0] == 0.0 and env.trap_on
    m = infos[0]["metrics"]
    assert m["CSR"] == 0.0 and m["ISR"] == 0.0 and m["trapped"] == 1.0


def test_trap_free_share_is_a_training_curriculum_that_the_test_split_ignores():
    # train split, every episode without the trap: the wrong end cell is a plain cell, the goal still counts
    free = make_env(
        EnvConfig(name="cue", num_agents=1, options={"corridor_lengths": [3], "trap_free_share": 1.0})
    )
    steps, n, (obs, rew, term, trunc, infos) = _walk_into_the_trap(free)
    assert steps == n and not free.trap_on and free.active[0] and not free.trapped[0] and not term[0]
    for _ in range(10):  # on along the far row to the goal at the right end
        obs, rew, term, trunc, infos = free.step(np.array([4]))
    assert term[0] and rew[0] == 1.0 and infos[0]["metrics"]["CSR"] == 1.0
    assert infos[0]["metrics"]["trapped"] == 0.0
    # the test split (what evaluation plays: the training options switched to split=test) keeps the trap
    test = make_env(cue_config(3, num_agents=1, options={"trap_free_share": 1.0}), seed=0)
    assert test.cfg.opts.trap_free_share == 1.0
    steps, n, (obs, rew, term, trunc, infos) = _walk_into_the_trap(test)
    assert steps == n and test.trapped[0] and test.trap_on and infos[0]["metrics"]["trapped"] == 1.0
    # a share of the episodes, drawn per episode, the same in the batched env
    cfg = EnvConfig(name="cue", options={"corridor_lengths": [3], "trap_free_share": 0.3})
    env = make_env(cfg, seed=1)
    on = []
    for _ in range(300):
        env.reset()
        on.append(env.trap_on)
    assert 0.6 < np.mean(on) < 0.8, np.mean(on)  # 0.7 expected; 300 draws: sd 0.026
    vec = make_vector_env(cfg, [1])
    vec.reset()
    assert bool(vec.trap_on[0]) == on[0]
    # the test split draws nothing for it: its episodes are those of a config without the option
    a = make_env(cue_config(5), seed=3)
    b = make_env(cue_config(5, options={"trap_free_share": 0.5}), seed=3)
    for _ in range(5):
        a.reset(), b.reset()
        assert a.agents_xy().tolist() == b.agents_xy().tolist() and a.sides.tolist() == b.sides.tolist()
        assert a.episode.seed == b.episode.seed and b.trap_on


def test_cue_shown_share_shows_the_side_throughout_in_training_only():
    def marker_cols_after_the_cue(cfg, seed):
        env = make_env(cfg, seed=seed)
        obs, _ = env.reset(seed=seed)
        np.testing.assert_array_equal(read_cue(obs), env.sides)
        cols = []
        for _ in range(3):
            obs, *_ = env.step(np.zeros(2, dtype=np.int64))
            cols.append(obs[:, 2].max(axis=1).argmax(axis=1))
        return env, np.stack(cols)

    for seed in range(5):
        train = EnvConfig(name="cue", options={"corridor_lengths": [5], "cue_shown_share": 1.0})
        env, cols = marker_cols_after_the_cue(train, seed)
        assert env.cue_always and (cols == R + R * env.sides).all(), "the side must stay in the goal channel"
        test = cue_config(5, options={"cue_shown_share": 1.0})  # what evaluation plays
        env, cols = marker_cols_after_the_cue(test, seed)
        assert not env.cue_always and (cols == R).all(), "the test split shows the side once"
    cfg = EnvConfig(name="cue", options={"corridor_lengths": [3], "cue_shown_share": 0.3})
    env = make_env(cfg, seed=2)
    shown = []
    for _ in range(300):
        env.reset()
        shown.append(env.cue_always)
    assert 0.2 < np.mean(shown) < 0.4, np.mean(shown)
    assert env.trap_on  # the other curriculum stays off


@pytest.mark.parametrize(
    "share, match",
    [
        (-0.1, r"trap_free_share=-0.1 is invalid; allowed: a number in \[0, 1\]"),
        (1.5, r"trap_free_share=1.5 is invalid; allowed: a number in \[0, 1\]"),
        (True, r"env.options.trap_free_share: Value 'True' of type 'bool' could not be converted to Float"),
        ("half", r"env.options.trap_free_share: Value 'half' .*could not be converted to Float"),
    ],
)
def test_bad_curriculum_shares_are_one_line_errors(share, match):
    with pytest.raises(ValueError, match=match):
        EnvConfig(name="cue", options={"trap_free_share": share})
    with pytest.raises(ValueError, match=match.replace("trap_free_share", "cue_shown_share")):
        EnvConfig(name="cue", options={"cue_shown_share": share})


@pytest.mark.parametrize("offset", [5, 1])
@pytest.mark.parametrize("name", ["cue", "cue_partner"])
def test_memory_solves_it_and_the_reactive_policies_do_not(name, offset):
    lengths, episodes = [3, 8, 20], 12
    mem = evaluate(name, "memory", lengths, episodes, offset=offset)
    assert mem["CSR"] == 1.0 and mem["trapped"] == 0.0
    for kind in ("reactive_left", "reactive_random"):
        m = evaluate(name, kind, lengths, episodes, offset=offset)
        assert m["CSR"] < 0.45 and 0.3 < m["ISR"] < 0.7, (kind, m)  # ~1/4 and ~1/2 with 2 agents
    own = evaluate(name, "own_memory", lengths, episodes, offset=offset)
    assert (own["CSR"] == 1.0) == (name == "cue")  # own memory suffices only when the cue is one's own


@pytest.mark.parametrize("offset", [1, 3, 5])
def test_end_offset_moves_goal_and_trap_symmetrically_in_both_splits(offset):
    for split in ("train", "test"):
        seen = set()
        for seed in range(12):
            env = make_env(cue_config(4, split=split, options={"end_offset": offset}), seed=seed)
            obs, _ = env.reset(seed=seed)
            goals = env.targets_xy()
            far = np.where(np.arange(env.num_agents) % 2 == 0, 4 + 3, 0)  # L + 3 for down-agents, 0 for up
            np.testing.assert_array_equal(goals[:, 0], far)
            np.testing.assert_array_equal(goals[:, 1], 5 + env.sides * offset)
            np.testing.assert_array_equal(env.traps[:, 1], 10 - goals[:, 1])  # the mirror cell
            np.testing.assert_array_equal(read_cue(obs), env.sides)
            seen |= set(goals[:, 1].tolist())
        assert seen == {5 - offset, 5 + offset}, seen
    np.testing.assert_array_equal(end_cells(4, offset)[:, :, 1], [[5 - offset, 5 + offset]] * 2)


def test_end_offset_one_is_a_t_junction_that_the_trap_decides():
    """Offset 1: from the cell under the corridor's mouth one step sideways reaches the goal or the trap."""
    env = make_env(cue_config(3, options={"end_offset": 1}, num_agents=1), seed=0)
    env.reset(seed=3)
    side = int(env.sides[0])
    start = env.agents_xy()[0]
    lateral = 3 if start[1] > 5 else 4  # pogema's left / right, towards the corridor's column
    # along the start row to column 5, then down through the corridor (L = 3) to the far row
    moves = [lateral] * abs(int(start[1]) - 5) + [2] * (6 - int(start[0]))
    for a in moves:
        env.step(np.array([a]))
    assert env.agents_xy()[0].tolist() == [6, 5]  # under the mouth, on the far row (L + 3 = 6)
    trap_move = 3 if side > 0 else 4  # away from the goal's side
    _, _, term, _, infos = env.step(np.array([trap_move]))
    assert term[0] and env.trapped[0] and infos[0]["metrics"]["ISR"] == 0.0


@pytest.mark.parametrize("bad", [0, 6, -1, True, 2.5])
def test_bad_end_offset_is_a_one_line_error(bad):
    with pytest.raises(ValueError, match="end_offset"):
        EnvConfig(name="cue", options={"end_offset": bad})


def test_scripted_policy_plays_on_its_own_episode_seed():
    env = make_env(cue_config(4), seed=0)
    a = play(env, ScriptedCuePolicy("memory"), seed=7)
    b = play(env, ScriptedCuePolicy("memory"), seed=7)
    assert a == b and a["CSR"] == 1.0


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(on_target="restart"), "on_target='restart' is not supported by 'cue'"),
        (dict(num_agents=40), "more than the Cue Bottleneck rooms hold"),
        (dict(map="..\n.."), "builds its own map"),
    ],
)
def test_bad_configs_are_one_line_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        make_env(EnvConfig(name="cue", **kw), seed=0)
    with pytest.raises(ValueError, match="unknown scripted policy"):
        ScriptedCuePolicy("oracle")
