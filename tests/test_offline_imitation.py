"""Imitation of a planner (issue 14): the expert's own actions as the training targets (not the
epsilon-random ones executed), DAgger rounds (a RATE checkpoint plays, the expert labels its states),
several datasets trained on together. Slow references: the labels replayed step by step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.offline import load_config
from agents.offline.data import SegmentSampler, validate
from agents.offline.record import record
from agents.offline.rollout import build_expert, make_eval_env, play_episode, world_state
from agents.offline.shards import open_dataset, open_datasets
from agents.offline.train import chunk_loss, sequence_loss, train
from srmt.rate import RATEConfig, RATEModel


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


SMALL = [
    "env.num_agents=4",
    "env.size=8",
    "env.max_episode_steps=24",
    "record.episodes=4",
    "record.episodes_per_shard=2",
    "record.epsilon=0.5",
    "record.epsilon_mode=fixed",
    "train.steps=2",
    "dagger.steps=2",
    "train.train_for_seconds=0",
    "train.batch_envs=2",
    "train.warmup_steps=1",
    "train.tensorboard=false",
    "model.hidden_size=16",
    "model.num_layers=1",
    "model.segment_len=4",
    "eval.episodes=1",
    "device=cpu",
    "progress=false",
]


def _cfg(out, *extra):
    return load_config("lifelong-cpu", [f"out_dir={out}", *SMALL, *extra])


class Constant:
    """Always the same action (a trivially known expert)."""

    def __init__(self, action: int) -> None:
        self.action = action

    def reset(self, state, seed) -> None:
        pass

    def act(self, state) -> np.ndarray:
        return np.full(state.num_agents, self.action, dtype=np.int64)


def _play(cfg, algorithm, seed, epsilon, labeler=None):
    env = make_eval_env(cfg.env, seed=seed)
    steps = []
    play_episode(
        env,
        algorithm,
        seed,
        epsilon=epsilon,
        rng=np.random.default_rng(seed),
        on_step=steps.append,
        labeler=labeler,
    )
    return steps


def test_labels_are_the_experts_action_not_the_epsilon_one(tmp_path):
    cfg = _cfg(tmp_path)
    steps = _play(cfg, Constant(2), 3, epsilon=0.5)
    labels = np.stack([s.labels for s in steps])
    actions = np.stack([s.actions for s in steps])
    assert (labels == 2).all()
    replaced = actions != 2  # an epsilon draw of action 2 is indistinguishable, hence ~0.5 * 4/5
    assert 0.25 < replaced.mean() < 0.55
    clean = _play(cfg, Constant(2), 3, epsilon=0.0)
    assert all((s.labels == s.actions).all() for s in clean)


def test_a_shadow_labeller_gives_the_acting_experts_labels(tmp_path):
    """PIBT keeps priorities from step to step: a second PIBT that only labels (reset with the same seed,
    shown every state) must give exactly the actions the acting PIBT chose before epsilon."""
    cfg = _cfg(tmp_path)
    for seed in (0, 1):
        acting = _play(cfg, build_expert("pibt"), seed, epsilon=0.3)
        shadow = _play(cfg, build_expert("pibt"), seed, epsilon=0.3, labeler=build_expert("pibt"))
        assert len(acting) == len(shadow)
        for a, b in zip(acting, shadow):
            np.testing.assert_array_equal(a.actions, b.actions)
            np.testing.assert_array_equal(a.labels, b.labels)
        assert any((a.labels != a.actions).any() for a in acting)


def _replayed_pibt_labels(cfg, seed, actions):
    """Slow reference: replay the recorded actions in a fresh env and ask a fresh PIBT each state."""
    env = make_eval_env(cfg.env, seed=seed)
    obs, _ = env.reset(seed=seed)
    state = world_state(env, obs, 0)
    pibt = build_expert("pibt", cfg.env)  # the recorder's expert: its ties as the channels show
    pibt.reset(state, seed)
    out = []
    for t, a in enumerate(actions):
        out.append(pibt.act(state))
        obs, *_ = env.step(np.asarray(a, dtype=np.int64))
        state = world_state(env, obs, t + 1)
    return np.stack(out)


def test_recorded_shards_hold_labels_and_the_sampler_targets_them(tmp_path):
    cfg = _cfg(tmp_path)
    ds, root = record(cfg)
    assert all(sh.labels is not None for sh in ds.shards)
    for e in range(ds.num_episodes):
        sh = ds.shards[ds.episode_shard[e]]
        s, n = int(ds.episode_starts[e]), int(ds.episode_lengths[e])
        ref = _replayed_pibt_labels(
            cfg, int(ds.episode_ids[e, 0] + ds.episode_ids[e, 1]), sh.actions[s : s + n]
        )
        np.testing.assert_array_equal(sh.labels[s : s + n], ref)
    assert any((sh.labels != sh.actions).any() for sh in ds.shards)
    batch = SegmentSampler(ds, 2, 4).batch(np.array([1, 2]))
    for g, e in enumerate((1, 2)):
        sh = ds.shards[ds.episode_shard[e]]
        s, n = int(ds.episode_starts[e]), int(ds.episode_lengths[e])
        np.testing.assert_array_equal(batch.labels[g, :, :n], sh.labels[s : s + n].T)
        np.testing.assert_array_equal(batch.actions[g, :, :n], sh.actions[s : s + n].T)
    # a shard recorded before labels were stored: its taken actions are the targets
    import json

    folder = sorted(root.glob("shard-*"))[0]
    m = json.loads((folder / "manifest.json").read_text())
    del m["files"]["labels"]
    (folder / "manifest.json").write_text(json.dumps(m))
    (folder / "labels.npy").unlink()
    old = open_dataset(root)
    assert old.shards[0].labels is None and old.shards[1].labels is not None
    b = SegmentSampler(old, 1, 4).batch(np.array([0]))
    np.testing.assert_array_equal(b.labels, b.actions)


def test_bad_labels_are_a_one_line_error(tmp_path):
    ds, _ = record(_cfg(tmp_path, "record.episodes=1"))
    arrays = {k: np.asarray(v) for k, v in ds.shards[0].arrays().items()}
    arrays["labels"] = np.full(arrays["actions"].shape, 7, dtype=np.int8)
    with pytest.raises(ValueError, match=r"field 'labels' has values 7\.\.7 outside 0\.\.4"):
        validate(arrays, "d")
    arrays["labels"] = arrays["actions"][:2]
    with pytest.raises(ValueError, match="field 'labels' has shape"):
        validate(arrays, "d")


def test_chunk_loss_imitates_the_labels_and_feeds_the_taken_actions():
    torch.manual_seed(0)
    model = RATEModel(RATEConfig(hidden_size=16, num_layers=1, segment_len=4), (3, 5, 5), 5)
    G, A, T = 2, 3, 8
    obs = (torch.rand(G, A, T, 3, 5, 5) < 0.3).to(torch.uint8)
    actions = torch.randint(5, (G, A, T))
    labels = (actions + 1) % 5
    rtg = torch.rand(G, A, T)
    ts = torch.arange(T).expand(G, A, T)
    valid = torch.rand(G, A, T) < 0.8
    loss, n, correct, _ = chunk_loss(model, (obs, actions, rtg, ts, valid, labels), range(2), 4, None)
    ref, n_ref, right = torch.zeros(()), 0, 0
    mem = None
    for s in range(2):
        sl = slice(4 * s, 4 * s + 4)
        out = model(obs[:, :, sl], actions[:, :, sl], rtg[:, :, sl], ts[:, :, sl], valid[:, :, sl], mem)
        mem = out.memory
        lo, k = sequence_loss(out.logits, labels[:, :, sl], valid[:, :, sl])
        ref, n_ref = ref + lo * k, n_ref + k
        right += int((out.logits[valid[:, :, sl]].argmax(-1) == labels[:, :, sl][valid[:, :, sl]]).sum())
    assert n == n_ref and correct == right
    torch.testing.assert_close(loss, ref / n_ref)
    taken, *_ = chunk_loss(model, (obs, actions, rtg, ts, valid), range(2), 4, None)
    assert not torch.allclose(taken, loss)


def test_dagger_round_records_the_policys_states_with_expert_labels(tmp_path):
    cfg = _cfg(tmp_path, "dagger.rounds=1", "dagger.episodes=2")
    record(cfg)
    train(cfg)
    rnd = cfg.dagger_round(0)
    assert rnd.record.policy_action_selection == "sample"  # the round plays as eval does
    import shutil

    shutil.copyfile(cfg.checkpoint_path, rnd.record.policy)
    ds, root = record(rnd)
    from agents.offline.policy import RATEPolicy

    for e in range(ds.num_episodes):
        sh = ds.shards[ds.episode_shard[e]]
        s, n = int(ds.episode_starts[e]), int(ds.episode_lengths[e])
        seed = int(ds.episode_ids[e, 0] + ds.episode_ids[e, 1])
        # the labels: PIBT asked in the states the policy reached
        ref = _replayed_pibt_labels(rnd, seed, sh.actions[s : s + n])
        np.testing.assert_array_equal(sh.labels[s : s + n], ref)
        # the actions: the policy's own (plus epsilon), as when it plays alone with the same RNG
        env = make_eval_env(rnd.env, seed=seed)
        alone = []
        play_episode(
            env,
            RATEPolicy(
                rnd.record.policy,
                "cpu",
                "mean",
                rnd.record.policy_action_selection,  # the config's eval: sampled, seeded per episode
                rnd.record.policy_temperature,
            ),
            seed,
            epsilon=0.5,
            rng=np.random.default_rng((rnd.record.seed, int(ds.episode_ids[e, 1]))),
            on_step=alone.append,
        )
        np.testing.assert_array_equal(np.stack([a.actions for a in alone]), sh.actions[s : s + n])
    assert ds.meta["policy_sha256"] and ds.meta["seed"] == cfg.record.seed + 1_000_000
    # the round trains on both datasets
    both = open_datasets([cfg.train_dataset_path, *rnd.train.extra_datasets])
    assert both.num_episodes == cfg.record.episodes + 2
    # a different checkpoint under the same name is another policy: its round is not resumed into
    import dataclasses

    train(dataclasses.replace(cfg, seed=1))
    shutil.copyfile(cfg.checkpoint_path, rnd.record.policy)
    with pytest.raises(ValueError, match="policy_sha256"):
        record(rnd)


def test_open_datasets_refuses_another_env(tmp_path):
    a, pa = record(_cfg(tmp_path / "a"))
    b, pb = record(_cfg(tmp_path / "b", "env.size=9"))
    with pytest.raises(ValueError, match="recorded in another env"):
        open_datasets([pa, pb])


@pytest.mark.parametrize(
    "override, match",
    [
        ("dagger.rounds=-1", "dagger.rounds"),
        ("record.policy_target=high", "record.policy_target"),
        ("dagger.train_for_seconds=-2", "dagger.train_for_seconds"),
    ],
)
def test_bad_dagger_keys(tmp_path, override, match):
    import configs

    with pytest.raises((ValueError, configs.ConfigError), match=match):
        _cfg(tmp_path, override)


def test_run_with_a_dagger_round(tmp_path, capsys):
    import agents.offline as offline

    args = ["run", "lifelong-cpu", f"out_dir={tmp_path}", *SMALL, "dagger.rounds=1", "dagger.episodes=2"]
    assert offline.main(args) == 0
    run = tmp_path / "lifelong-cpu"
    assert (run / "rate-dagger0.pt").is_file() and (run / "dagger-0" / "dataset.json").is_file()
    assert "RATE (target" in (run / "eval.md").read_text()


def test_the_evaluated_policy_acts_as_the_training_forward_predicts(tmp_path):
    """The eval path (RATEPolicy in play_episode: float observations from the env, timesteps, the
    return-to-go counted down from the target, memory carried over segments) against the training path
    (the segment forward on the recorded uint8 observations): a DAgger round without epsilon records the
    policy's own argmax actions, and the forward's argmax on them, with the return-to-go the policy saw,
    must be exactly those actions."""
    cfg = _cfg(tmp_path, "record.epsilon=0", "env.max_episode_steps=20", "eval.action_selection=argmax")
    record(cfg)
    train(cfg)
    rnd = cfg.dagger_round(0)
    import shutil

    shutil.copyfile(cfg.checkpoint_path, rnd.record.policy)
    ds, _ = record(rnd)
    from agents.offline.train import load_checkpoint

    model, ckpt = load_checkpoint(rnd.record.policy)
    target = ckpt["returns"]["mean"]
    K = model.cfg.segment_len
    batch = SegmentSampler(ds, ds.num_episodes, K).batch(np.arange(ds.num_episodes))
    for g in range(ds.num_episodes):
        e = g
        sh = ds.shards[ds.episode_shard[e]]
        s, n = int(ds.episode_starts[e]), int(ds.episode_lengths[e])
        received = np.concatenate([np.zeros((1, ds.num_agents)), np.cumsum(sh.rewards[s : s + n - 1], 0)])
        batch.rtg[g, :, :n] = (target - received).T
    obs, actions, rtg, ts, valid = (
        torch.as_tensor(x) for x in (batch.obs, batch.actions, batch.rtg, batch.timesteps, batch.valid)
    )
    mem, preds = None, []
    with torch.no_grad():
        for i in range(batch.num_segments):
            sl = slice(i * K, (i + 1) * K)
            out = model(obs[:, :, sl], actions[:, :, sl], rtg[:, :, sl], ts[:, :, sl], valid[:, :, sl], mem)
            mem = out.memory
            preds.append(out.logits.argmax(-1))
    pred = torch.cat(preds, 2)
    assert valid.any()
    np.testing.assert_array_equal(pred[valid].numpy(), actions[valid].numpy())


def test_sampling_temperature_towards_zero_is_argmax_and_bad_temperature(tmp_path):
    from agents.offline.policy import RATEPolicy

    cfg = _cfg(tmp_path, "record.episodes=2")
    record(cfg)
    train(cfg)
    env = make_eval_env(cfg.env, seed=5)
    runs = {}
    for label, sel, temp in (("argmax", "argmax", 1.0), ("cold", "sample", 1e-4), ("hot", "sample", 5.0)):
        steps = []
        play_episode(
            env, RATEPolicy(str(cfg.checkpoint_path), "cpu", "mean", sel, temp), 5, on_step=steps.append
        )
        runs[label] = np.stack([s.actions for s in steps])
    np.testing.assert_array_equal(runs["cold"], runs["argmax"])
    assert (runs["hot"] != runs["argmax"]).any()
    with pytest.raises(ValueError, match="temperature=0"):
        RATEPolicy(str(cfg.checkpoint_path), "cpu", "mean", "sample", 0)
    import configs

    with pytest.raises((ValueError, configs.ConfigError), match="eval.temperature"):
        _cfg(tmp_path, "eval.temperature=-1")


@pytest.mark.parametrize(
    "name", ["bottleneck", "tmaze", "lifelong-cpu", "lifelong-random", "imitation-lifelong"]
)
def test_shipped_offline_configs_load(name):
    cfg = load_config(name, [])
    if name.startswith(("lifelong", "imitation")):
        # the fixes of docs/offline.md "Why the lifelong imitation failed"
        assert cfg.env.planner_path and cfg.env.planner_costs == "unit"
        assert cfg.eval.action_selection == "sample" and cfg.train.targets == "expert"
