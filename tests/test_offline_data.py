"""Offline datasets: returns-to-go vs a loop, round trip without pickle, validation errors, batches and
segments with padding masks, checkpoints (weights-only round trip, corrupt file = one line)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.offline.data import (
    OfflineDataset,
    SegmentSampler,
    load_dataset,
    returns_to_go,
    timesteps_in_episode,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tensors are tiny: one torch thread is fastest, and on a busy machine extra threads stall."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_dataset(lengths=(5, 3, 7), A=2, obs_shape=(3, 5, 5), n_actions=5, seed=0) -> OfflineDataset:
    rng = np.random.default_rng(seed)
    S = int(sum(lengths))
    rewards = rng.normal(size=(S, A)).astype(np.float32)
    active = np.ones((S, A), dtype=bool)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    # agent 1 finishes after 2 steps in the last episode (finish mode): inactive, reward 0 afterwards
    active[starts[2] + 2 : starts[2] + lengths[2], 1] = False
    rewards[~active] = 0.0
    returns = np.stack([rewards[s : s + n].sum(0) for s, n in zip(starts, lengths)]).astype(np.float32)
    dones = np.zeros((S, A), dtype=bool)
    dones[starts + np.asarray(lengths) - 1] = True
    return OfflineDataset(
        obs=(rng.random((S, A, *obs_shape)) < 0.3).astype(np.uint8),
        actions=rng.integers(n_actions, size=(S, A)).astype(np.int8),
        rewards=rewards,
        dones=dones,
        active=active,
        episode_starts=starts,
        episode_lengths=np.asarray(lengths, dtype=np.int64),
        episode_returns=returns,
        num_actions=n_actions,
        meta={"algorithm": "test"},
    )


def rtg_loop(rewards, starts, lengths):
    out = np.zeros_like(rewards, dtype=np.float64)
    for s, n in zip(starts, lengths):
        acc = np.zeros(rewards.shape[1])
        for t in reversed(range(s, s + n)):
            acc = acc + rewards[t]
            out[t] = acc
    return out


def test_returns_to_go_matches_loop():
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 40, size=25)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rewards = rng.normal(size=(int(lengths.sum()), 3)).astype(np.float32)
    np.testing.assert_allclose(
        returns_to_go(rewards, starts, lengths), rtg_loop(rewards, starts, lengths), atol=1e-5
    )
    ts = timesteps_in_episode(starts, lengths)
    assert ts[starts].tolist() == [0] * len(lengths) and ts[starts[1] - 1] == lengths[0] - 1


def test_round_trip_without_pickle(tmp_path):
    ds = make_dataset()
    path = ds.save(tmp_path / "d.npz")
    with np.load(path, allow_pickle=False) as z:  # plain arrays only
        assert set(z.files) >= {"obs", "actions", "rewards", "dones", "active", "episode_returns", "meta"}
    back = load_dataset(path)
    for name, arr in ds.arrays().items():
        if name != "meta":
            np.testing.assert_array_equal(back.arrays()[name], arr)
    assert back.meta == ds.meta and back.obs_shape == (3, 5, 5) and back.num_agents == 2


@pytest.mark.parametrize(
    "field, value, match",
    [
        (
            "actions",
            lambda a: a.astype(np.float32),
            r"field 'actions' has dtype float32; allowed: integer \[S, A\]",
        ),
        ("actions", lambda a: np.full_like(a, 7), r"field 'actions' has values 7..7 outside 0..4"),
        ("obs", lambda o: o[:, :1], r"field 'obs' has shape"),
        ("rewards", lambda r: r[:-1], r"field 'rewards' has shape"),
        ("episode_lengths", lambda n: n + 1, r"field 'episode_lengths' sums to"),
        ("episode_returns", lambda r: r + 1, r"'episode_returns' differs from the sum"),
        ("rewards", lambda r: np.where(r > 0, np.nan, r), r"'rewards' has non-finite values"),
    ],
)
def test_validation_errors_name_the_field(tmp_path, field, value, match):
    arrays = make_dataset().arrays()
    arrays[field] = value(arrays[field])
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=match) as e:
        load_dataset(path)
    assert len(str(e.value).splitlines()) == 1


def test_missing_field_and_unreadable_file(tmp_path):
    arrays = make_dataset().arrays()
    del arrays["active"]
    np.savez(tmp_path / "m.npz", **arrays)
    with pytest.raises(ValueError, match=r"missing field\(s\) active"):
        load_dataset(tmp_path / "m.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="could not be read"):
        load_dataset(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="not found"):
        load_dataset(tmp_path / "nope.npz")


def test_batches_keep_agents_together_and_pad():
    ds = make_dataset(lengths=(5, 3, 7))
    sampler = SegmentSampler(ds, batch_envs=3, segment_len=4)
    (episodes,) = sampler.epoch()
    batch = sampler.batch(episodes)
    G, A, T = batch.actions.shape
    assert (G, A, T) == (3, 2, 8) and batch.num_segments == 2
    assert batch.obs.shape == (3, 2, 8, 3, 5, 5)
    rtg = returns_to_go(ds.rewards, ds.episode_starts, ds.episode_lengths)
    for g, e in enumerate(episodes):
        s, n = ds.episode_starts[e], ds.episode_lengths[e]
        np.testing.assert_array_equal(batch.valid[g, :, :n], ds.active[s : s + n].T)
        assert not batch.valid[g, :, n:].any()  # padding
        np.testing.assert_array_equal(batch.obs[g, :, :n], np.swapaxes(ds.obs[s : s + n], 0, 1))
        v = batch.valid[g]
        np.testing.assert_array_equal(batch.actions[g][v], ds.actions[s : s + n].T[v[:, :n]])
        np.testing.assert_allclose(batch.rtg[g][v], rtg[s : s + n].T[v[:, :n]])
        assert batch.timesteps[g, 0].tolist() == list(range(T))
    seg = batch.segment(1)
    assert [x.shape[2] for x in seg] == [4] * 6


def test_checkpoint_round_trip_weights_only_and_corrupt_file(tmp_path):
    from agents.offline import load_config
    from agents.offline.train import load_checkpoint, save_checkpoint
    from srmt.rate import RATEModel

    cfg = load_config("bottleneck", [f"out_dir={tmp_path}", "model.hidden_size=16"])
    ds = make_dataset()
    torch.manual_seed(0)
    model = RATEModel(cfg.model, ds.obs_shape, ds.num_actions)
    path = save_checkpoint(tmp_path / "rate.pt", model, cfg, ds, updates=3)
    raw = torch.load(path, weights_only=True)  # plain data only
    assert raw["updates"] == 3 and raw["model_config"]["hidden_size"] == 16
    back, ckpt = load_checkpoint(path)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(back.state_dict()[k], v, rtol=0, atol=0)
    assert ckpt["returns"]["best"] == pytest.approx(float(ds.episode_returns.max()))
    (tmp_path / "bad.pt").write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="could not be loaded") as e:
        load_checkpoint(tmp_path / "bad.pt")
    assert len(str(e.value).splitlines()) == 1
    with pytest.raises(ValueError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an srmt RATE checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
