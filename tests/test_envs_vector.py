"""The batched Bottleneck (envs.bottleneck_vec) against k independent GridEnvs (the reference), the
vector API's fallback, and the sample-factory adapter on top of both."""

from __future__ import annotations

import numpy as np
import pytest

from agents.sf.env import SFMultiEnv
from envs import LoopVectorEnv, make_env, make_vector_env
from envs.bottleneck_vec import BottleneckVector
from envs.config import EnvConfig
from envs.cue_vec import CueVector


def _policy(rng, pos, goal, active, lengths, p_random, corridor=4):
    """Mostly towards the goal through the corridor (column 4), up-going agents waiting until their
    partner is through, sometimes random: many finishes, some collisions, some agents that never make it."""
    x, y = pos[..., 0], pos[..., 1]
    gx, gy = goal[..., 0], goal[..., 1]
    same_room = np.abs(x - gx) <= 1
    col = np.where(same_room, gy, corridor)
    act = np.where(y < col, 4, np.where(y > col, 3, np.where(x < gx, 2, np.where(x > gx, 1, 0))))
    partner_through = ~active[:, 0::2] | (x[:, 0::2] >= lengths[:, None] + 2)
    act[:, 1::2] = np.where(partner_through[:, : act[:, 1::2].shape[1]], act[:, 1::2], 0)
    rand = rng.integers(0, 5, size=act.shape)
    return np.where(rng.random(act.shape) < p_random, rand, act).reshape(-1)


CASES = [
    dict(name="cue", max_episode_steps=40, options={"corridor_lengths": [3, 4]}),
    dict(
        name="cue",
        max_episode_steps=40,
        options={"corridor_lengths": [3], "trap_free_share": 0.5, "cue_shown_share": 0.5},
    ),
    dict(name="cue_partner", reward="directional", num_agents=3, obs_radius=3, max_episode_steps=60),
    dict(name="cue", max_episode_steps=40, options={"corridor_lengths": [3, 4], "end_offset": 1}),
    dict(name="cue_partner", num_agents=4, max_episode_steps=50, options={"end_offset": 3}),
    dict(reward="sparse", max_episode_steps=48),
    dict(reward="directional_negative", options={"corridor_lengths": [3, 5, 8]}),
    dict(reward="directional", collision_system="priority", max_episode_steps=60, num_agents=4),
    dict(
        reward="dense",
        on_target="nothing",
        collision_system="soft",
        max_episode_steps=40,
        num_agents=3,
        options={"corridor_lengths": [4, 6]},
    ),
    dict(reward="moving_negative", obs_radius=3, options={"split": "test", "corridor_lengths": [3, 40]}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_batched_bottleneck_equals_independent_envs(case):
    case = dict(case)
    options = {"split": "train", **case.pop("options", {})}
    cfg = EnvConfig(**{"name": "bottleneck", **case, "options": options})
    k, seeds = 6, [11, 12, 13, 14, 15, 2**40]
    vec = make_vector_env(cfg, seeds)
    assert isinstance(vec, CueVector if cfg.name.startswith("cue") else BottleneckVector)
    refs = [make_env(cfg, seed=s) for s in seeds]
    A = refs[0].num_agents
    obs = vec.reset()
    ref_obs = np.concatenate([e.reset()[0] for e in refs])
    np.testing.assert_array_equal(obs, ref_obs)
    assert obs.dtype == np.float32 and obs.shape == (k * A, *refs[0].observation_space.shape)
    rng = np.random.default_rng(0)
    ended_total, csr_ones, truncs, traps = 0, 0, 0, 0
    for t in range(700):
        pos, goal = vec.agents_xy(), vec.targets_xy()
        np.testing.assert_array_equal(pos, np.stack([e.agents_xy() for e in refs]))
        np.testing.assert_array_equal(goal, np.stack([e.targets_xy() for e in refs]))
        p_random = 0.1 if t % 200 < 150 else 1.0
        if isinstance(vec, CueVector):  # agents of odd envs head for their trap (the other end cell)
            goal = goal.copy()
            goal[1::2, :, 1] = vec.width - 1 - goal[1::2, :, 1]
        actions = _policy(rng, pos, goal, vec.active, vec.corridor_lengths, p_random, vec.width // 2)
        obs, rew, term, trunc, ended, metrics = vec.step(actions)
        assert rew.dtype == np.float32 and rew.shape == (k, A)
        for i, env in enumerate(refs):
            o, r, te, tr, infos = env.step(actions[i * A : (i + 1) * A])
            np.testing.assert_array_equal(rew[i], r, err_msg=f"step {t} env {i}")
            np.testing.assert_array_equal(term[i], te, err_msg=f"step {t} env {i}")
            np.testing.assert_array_equal(trunc[i], tr, err_msg=f"step {t} env {i}")
            done = bool(np.all(te | tr))
            assert ended[i] == done, f"step {t} env {i}"
            if done:
                assert metrics[i] == infos[0]["metrics"], f"step {t} env {i}"
                ended_total += 1
                csr_ones += metrics[i]["CSR"] == 1.0
                truncs += bool(tr.all())
                traps += metrics[i].get("trapped", 0.0) > 0
                o, _ = env.reset()
            else:
                assert metrics[i] is None
            np.testing.assert_array_equal(obs[i * A : (i + 1) * A], o, err_msg=f"step {t} env {i}")
            np.testing.assert_array_equal(vec.active[i], env.active, err_msg=f"step {t} env {i}")
            if isinstance(vec, CueVector):
                np.testing.assert_array_equal(vec.sides[i], env.sides, err_msg=f"step {t} env {i}")
                np.testing.assert_array_equal(vec.trapped[i], env.trapped, err_msg=f"step {t} env {i}")
                np.testing.assert_array_equal(vec.trap_on[i], env.trap_on, err_msg=f"step {t} env {i}")
                assert vec.cue_always[i] == env.cue_always, f"step {t} env {i}"
        np.testing.assert_array_equal(vec.elapsed_steps, [e.elapsed_steps for e in refs])
        np.testing.assert_array_equal(vec.episode_seeds, [e.episode.seed for e in refs])
        np.testing.assert_array_equal(
            vec.corridor_lengths, [e.episode.labels["corridor_length"] for e in refs]
        )
    # the run went through what it claims to check
    short_limit = (
        cfg.max_episode_steps is not None or options["split"] == "test"
    )  # 512-step episodes don't time out here
    assert traps >= 1 or not isinstance(vec, CueVector), traps
    assert ended_total >= 3 * k and csr_ones >= 1 and (truncs >= 1 or not short_limit), (
        ended_total,
        csr_ones,
        truncs,
    )


def test_uint8_observations_and_reset_continue_each_stream():
    cfg = EnvConfig(name="bottleneck", max_episode_steps=20, options={"corridor_lengths": [3, 4]})
    seeds = [0, 1, 2]
    f32, u8 = make_vector_env(cfg, seeds), make_vector_env(cfg, seeds, np.uint8)
    loop = LoopVectorEnv([make_env(cfg, seed=s) for s in seeds])
    rng = np.random.default_rng(1)
    for _ in range(2):  # a second reset() starts each env's next episode from its own stream
        a, b, c = f32.reset(), u8.reset(), loop.reset()
        assert b.dtype == np.uint8
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
        for _ in range(45):
            act = rng.integers(0, 5, size=6)
            ra, rb, rc = f32.step(act), u8.step(act.reshape(3, 2)), loop.step(act)
            for x, y, z in zip(ra[:5], rb[:5], rc[:5]):
                np.testing.assert_array_equal(x, y)
                np.testing.assert_array_equal(x, z)
            assert ra[5] == rb[5] == rc[5]


def test_make_vector_env_falls_back_to_the_loop():
    for cfg in (
        EnvConfig(name="bottleneck", reward="follower"),
        EnvConfig(name="bottleneck", planner_path=True),
        EnvConfig(name="pogema", num_agents=4, size=8, max_episode_steps=16),
        EnvConfig(name="cue", planner_path=True),
    ):
        vec = make_vector_env(cfg, [0, 1])
        assert isinstance(vec, LoopVectorEnv), cfg.name
        obs = vec.reset()
        assert obs.shape[0] == 2 * vec.num_agents
    assert isinstance(make_vector_env(EnvConfig(name="bottleneck"), [0], batched=False), LoopVectorEnv)


def test_sf_adapter_same_through_batched_and_loop():
    cfg = EnvConfig(name="bottleneck", max_episode_steps=12, options={"corridor_lengths": [3]})
    seeds, uids = [5, 6, 7, 8], [0, 1, 2, 3]
    fast = SFMultiEnv(make_vector_env(cfg, seeds, np.uint8), uids, debug_ids=True)
    slow = SFMultiEnv([make_env(cfg, seed=s) for s in seeds], uids, debug_ids=True)
    assert isinstance(fast.vec, BottleneckVector) and isinstance(slow.vec, LoopVectorEnv)
    assert fast.observation_space == slow.observation_space
    a, b = fast.reset()[0], slow.reset()[0]
    rng = np.random.default_rng(2)
    episodes = 0
    for _ in range(40):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
            assert a[key].dtype == b[key].dtype, key
        act = rng.integers(0, 5, size=8)
        (a, ra, ta, tra, ia), (b, rb, tb, trb, ib) = fast.step(act), slow.step(act)
        for x, y in ((ra, rb), (ta, tb), (tra, trb)):
            np.testing.assert_array_equal(x, y)
        assert ia.keys() == ib.keys()
        if "episode" in ia:
            episodes += 1
            for key in ia["episode"]:
                np.testing.assert_array_equal(
                    ia["episode"][key].numpy(), ib["episode"][key].numpy(), err_msg=key
                )
    assert episodes >= 3


def test_bad_input_is_a_one_line_error():
    cfg = EnvConfig(name="bottleneck")
    vec = make_vector_env(cfg, [0, 1])
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(np.zeros(4, dtype=np.int64))
    vec.reset()
    for bad, match in (
        (np.zeros(3, dtype=np.int64), r"shape \(4,\) or \(2, 2\)"),
        (np.array([0, 1, 5, 0]), "action 5 is out of range; allowed: 0..4"),
        (np.array([0, -1, 0, 0]), "action -1 is out of range"),
        (np.array([0.5, 1, 0, 0]), "must be integers"),
    ):
        with pytest.raises(ValueError, match=match) as e:
            vec.step(bad)
        assert "\n" not in str(e.value)
    vec.step(np.array([0.0, 1.0, 2.0, 3.0]))  # integral floats are fine
    with pytest.raises(ValueError, match="at least one environment"):
        make_vector_env(cfg, [])
    with pytest.raises(ValueError, match="seed=-1 is invalid"):
        make_vector_env(cfg, [0, -1])
    with pytest.raises(ValueError, match="obs_dtype int32 is not supported; allowed: float32, uint8"):
        BottleneckVector(cfg, [0], np.int32)
    with pytest.raises(ValueError, match="on_target='restart' is not supported"):
        make_vector_env(EnvConfig(name="bottleneck", on_target="restart"), [0])
    with pytest.raises(ValueError, match="does not support the planner"):
        BottleneckVector(EnvConfig(name="bottleneck", reward="follower"), [0])
    with pytest.raises(ValueError, match="pass seeds=None"):
        SFMultiEnv(vec, [0, 1], seeds=[0, 1])
    with pytest.raises(ValueError, match="got 1 env_uids for 2 environments"):
        SFMultiEnv(vec, [0])


@pytest.mark.parametrize("batched", [True, False])
def test_training_env_factory_follows_train_batched_envs(tmp_path, batched):
    from sample_factory.utils.attr_dict import AttrDict

    from agents.config import load_experiment
    from agents.sf.env import make_sf_env
    from agents.sf.sf_config import make_sf_config

    exp = load_experiment(
        {
            "name": "vec",
            "env": {"name": "bottleneck", "max_episode_steps": 8},
            "train": {"train_dir": str(tmp_path), "envs_per_worker": 4, "batched_envs": batched},
        }
    )
    cfg = make_sf_config(exp, agents_per_env=2, state_size=4)
    env = make_sf_env("srmt", cfg, AttrDict(env_id=0))
    assert isinstance(env.vec, BottleneckVector if batched else LoopVectorEnv)
    obs, _ = env.reset()
    assert obs["obs"].dtype == np.uint8 and obs["obs"].shape[0] == env.num_agents


def test_bench_train_raw_worker_steps_the_vector_env():
    import queue

    from agents.bench.train import _raw_worker

    out: queue.Queue = queue.Queue()
    _raw_worker({"name": "bottleneck", "num_agents": 2}, 16, 0.05, 0, out)
    steps, elapsed = out.get_nowait()
    assert steps > 0 and steps % 32 == 0 and elapsed >= 0.05
