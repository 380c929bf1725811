"""Sharded offline datasets (issue 14): memory-mapped round trip, one-line errors naming a bad shard
(truncated ``.npy``, manifest mismatch, corrupt bytes, missing manifest, duplicate episodes), the batch
sampler and the prefetching loader against a slow per-step reference, and the parallel recorder: the same
episodes with 1 or 2 workers, a SIGKILLed recording resumed without duplicates or gaps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.offline import shards
from agents.offline.data import OfflineDataset, SegmentSampler
from agents.offline.loader import BatchLoader
from agents.offline.shards import ShardedDataset, open_dataset, shard_folders, write_json_atomic, write_shard

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_dataset(lengths, A=3, obs_shape=(2, 3, 3), n_actions=5, seed=0) -> OfflineDataset:
    rng = np.random.default_rng(seed)
    S = int(sum(lengths))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    active = rng.random((S, A)) < 0.8  # some inactive steps (finish mode), masked out of the batches
    rewards = np.where(active, rng.normal(size=(S, A)), 0.0).astype(np.float32)
    returns = np.stack([rewards[s : s + n].sum(0) for s, n in zip(starts, lengths)]).astype(np.float32)
    dones = np.zeros((S, A), dtype=bool)
    dones[starts + np.asarray(lengths) - 1] = True
    return OfflineDataset(
        obs=rng.integers(0, 256, size=(S, A, *obs_shape), dtype=np.uint8),
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


def episodes_of(ds: OfflineDataset, a: int, b: int) -> OfflineDataset:
    """Episodes a..b-1 of ``ds`` as a dataset of their own."""
    s0 = int(ds.episode_starts[a])
    s1 = int(ds.episode_starts[b - 1] + ds.episode_lengths[b - 1])
    cut = lambda x: x[s0:s1]  # noqa: E731
    return OfflineDataset(
        obs=cut(ds.obs),
        actions=cut(ds.actions),
        rewards=cut(ds.rewards),
        dones=cut(ds.dones),
        active=cut(ds.active),
        episode_starts=ds.episode_starts[a:b] - s0,
        episode_lengths=ds.episode_lengths[a:b],
        episode_returns=ds.episode_returns[a:b],
        num_actions=ds.num_actions,
        meta={"episode_seeds": list(range(a, b))},
    )


LENGTHS = (5, 3, 9, 1, 12, 7, 4)
SPLITS = ((0, 3), (3, 4), (4, 7))


def write_dataset(root: Path, full: OfflineDataset, splits=SPLITS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(root / shards.HEADER, {"format": shards.FORMAT, "recording": {"env": {"name": "t"}}})
    for a, b in splits:
        ids = np.stack([np.zeros(b - a, np.int64), np.arange(a, b)], 1)
        write_shard(root, shards.shard_name(a), episodes_of(full, a, b), ids)
    return root


@pytest.fixture
def full():
    return make_dataset(LENGTHS)


@pytest.fixture
def root(tmp_path, full):
    return write_dataset(tmp_path / "ds", full)


def test_round_trip_is_memory_mapped_and_matches(root, full):
    ds = open_dataset(root, verify="sha256")
    assert [Path(n).name for n in ds.names] == ["shard-000000000", "shard-000000003", "shard-000000004"]
    assert all(isinstance(sh.obs, np.memmap) for sh in ds.shards)  # not read into memory
    np.testing.assert_array_equal(np.concatenate([sh.obs for sh in ds.shards]), full.obs)
    np.testing.assert_array_equal(np.concatenate([sh.actions for sh in ds.shards]), full.actions)
    np.testing.assert_array_equal(ds.episode_lengths, full.episode_lengths)
    assert ds.episode_ids[:, 1].tolist() == list(range(len(LENGTHS)))
    assert ds.num_agents == 3 and ds.obs_shape == (2, 3, 3) and ds.agent_steps == int(full.active.sum())
    assert ds.meta == {"env": {"name": "t"}}
    assert not any(p.name.startswith(shards.TEMP_PREFIX) for p in root.iterdir())


def _one_line_error(root, match, verify="size"):
    with pytest.raises(ValueError, match=match) as e:
        open_dataset(root, verify=verify)
    assert len(str(e.value).splitlines()) == 1
    return str(e.value)


def test_truncated_npy_names_the_shard(root):
    f = root / "shard-000000003" / "obs.npy"
    f.write_bytes(f.read_bytes()[:-7])
    _one_line_error(
        root, r"shard '.*shard-000000003': obs\.npy is truncated \(\d+ bytes, the manifest says \d+\)"
    )


def test_truncated_npy_with_a_matching_manifest_size_names_the_shard(root):
    """Truncated data whose manifest was (wrongly) updated too: numpy refuses the short memory map."""
    shard = root / "shard-000000004"
    f = shard / "actions.npy"
    f.write_bytes(f.read_bytes()[:-5])
    m = json.loads((shard / "manifest.json").read_text())
    m["files"]["actions"]["bytes"] = f.stat().st_size
    (shard / "manifest.json").write_text(json.dumps(m))
    _one_line_error(root, r"shard '.*shard-000000004': actions\.npy cannot be read")


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m.update(num_episodes=m["num_episodes"] + 1), r"lists 3 episode ids but num_episodes=4"),
        (
            lambda m: m["files"]["rewards"].update(shape=[2, 3]),
            r"rewards\.npy holds <f4 \[\d+, 3\], the manifest says <f4 \[2, 3\]",
        ),
        (lambda m: m["files"]["obs"].update(dtype="<f4"), r"obs\.npy holds \|u1 .* the manifest says <f4"),
        (
            lambda m: m.update(num_steps=1),
            r"actions\.npy has shape \(23, 3\), but the manifest's num_episodes=3, num_steps=1",
        ),
        (lambda m: m.update(num_actions=2), r"field 'actions' has values"),
        (lambda m: m.pop("files"), r"manifest.json lacks files"),
        (lambda m: m.update(format="other"), r"is not an srmt-offline-shard-v1 manifest"),
    ],
)
def test_manifest_mismatch_names_the_shard(root, edit, match):
    mpath = root / "shard-000000004" / "manifest.json"
    m = json.loads(mpath.read_text())
    edit(m)
    mpath.write_text(json.dumps(m))
    msg = _one_line_error(root, match)
    assert "shard-000000004" in msg


def test_corrupt_bytes_fail_the_sha256_check_only(root):
    f = root / "shard-000000000" / "rewards.npy"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF  # same size, different content
    f.write_bytes(bytes(data))
    _one_line_error(root, r"shard-000000000': rewards\.npy does not match its sha256", verify="sha256")
    # the size check passes; the data check then sees returns that no longer sum up
    _one_line_error(root, r"shard-000000000': field 'episode_returns' differs from the sum")


def test_incomplete_shard_duplicates_and_missing_dataset(root, full, tmp_path):
    (root / "shard-000000003" / "manifest.json").unlink()
    _one_line_error(root, r"shard-000000003': manifest.json is missing \(an incomplete shard")
    other = write_dataset(tmp_path / "dup", full, splits=((0, 3), (2, 4)))
    _one_line_error(other, r"shard-000000002': episode \(seed 0, index 2\) is also in .*shard-000000000")
    _one_line_error(tmp_path / "nope", r"'.*nope' not found; record one")
    (tmp_path / "empty").mkdir()
    _one_line_error(tmp_path / "empty", r"has no dataset.json; it is not an srmt sharded dataset")
    with pytest.raises(ValueError, match="verify='md5' is unknown; allowed: size, sha256"):
        shards.open_shard(root / "shard-000000000", "md5")


def test_temp_folders_are_ignored(root):
    tmp = root / ".tmp-shard-000000009-123"
    tmp.mkdir()
    (tmp / "obs.npy").write_bytes(b"half a shard")
    assert open_dataset(root).num_episodes == len(LENGTHS)


# --- batches: fast gather from the memory maps vs a per-step loop over the original episodes ---


def reference_batch(full: OfflineDataset, episodes, starts, T):
    """Slow reference: every (sample, agent, step) read one by one from the in-memory dataset."""
    rtg_all = np.zeros(full.rewards.shape)
    for s, n in zip(full.episode_starts, full.episode_lengths):  # returns-to-go by a loop
        acc = np.zeros(full.num_agents)
        for t in reversed(range(s, s + n)):
            acc = acc + full.rewards[t]
            rtg_all[t] = acc
    G, A = len(episodes), full.num_agents
    obs = np.zeros((G, A, T, *full.obs_shape), np.uint8)
    actions = np.zeros((G, A, T), np.int64)
    rtg = np.zeros((G, A, T), np.float32)
    ts = np.zeros((G, A, T), np.int64)
    valid = np.zeros((G, A, T), bool)
    for g, (e, t0) in enumerate(zip(episodes, starts)):
        for a in range(A):
            for t in range(T):
                ts[g, a, t] = t0 + t
                if t0 + t >= full.episode_lengths[e]:
                    continue
                step = full.episode_starts[e] + t0 + t
                obs[g, a, t] = full.obs[step, a]
                if full.active[step, a]:
                    valid[g, a, t] = True
                    actions[g, a, t] = full.actions[step, a]
                    rtg[g, a, t] = rtg_all[step, a]
    return obs, actions, rtg, ts, valid


def assert_batch_equal(batch, ref):
    for got, want in zip((batch.obs, batch.actions, batch.rtg, batch.timesteps, batch.valid), ref):
        got = got.numpy() if isinstance(got, torch.Tensor) else got
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("mode", ["episodes", "windows"])
def test_sampler_matches_the_slow_reference(root, full, mode):
    ds = open_dataset(root)
    sampler = SegmentSampler(ds, batch_envs=4, segment_len=3, seed=1, mode=mode, window_segments=2)
    for _ in range(6):
        if mode == "windows":
            episodes, starts = sampler.sample_windows()
            batch, T = sampler.gather(episodes, starts, 6), 6
            assert batch.actions.shape[2] == T
        else:
            episodes = sampler.epoch()[0]
            starts = np.zeros(len(episodes), np.int64)
            batch = sampler.batch(episodes)
            T = batch.actions.shape[2]
            assert T % 3 == 0 and T >= full.episode_lengths[episodes].max()
        assert_batch_equal(batch, reference_batch(full, episodes, starts, T))


def test_windows_are_uniform_over_all_windows(root):
    ds = open_dataset(root)
    sampler = SegmentSampler(ds, batch_envs=512, segment_len=2, seed=0, mode="windows", window_segments=2)
    counts: dict[tuple[int, int], int] = {}
    for _ in range(40):
        episodes, starts = sampler.sample_windows()
        for e, t0 in zip(episodes.tolist(), starts.tolist()):
            L = int(ds.episode_lengths[e])
            assert 0 <= t0 <= max(L - 4, 0)  # a full window when the episode is long enough
            counts[(e, t0)] = counts.get((e, t0), 0) + 1
    expected = sum(max(L - 3, 1) for L in LENGTHS)  # windows of 4 steps, one for shorter episodes
    assert len(counts) == expected
    mean = 40 * 512 / expected
    assert all(0.6 * mean < c < 1.4 * mean for c in counts.values())


@pytest.mark.parametrize("prefetch", [0, 3])
def test_loader_yields_the_sampler_batches_in_order(root, full, prefetch):
    ds = open_dataset(root)
    make = lambda: SegmentSampler(ds, batch_envs=3, segment_len=4, seed=7, mode="windows", window_segments=2)  # noqa: E731
    ref = make()
    expected = [ref.next_batch() for _ in range(5)]
    with BatchLoader(make(), "cpu", prefetch=prefetch) as loader:
        assert loader.pin is False  # pinned memory only for a CUDA device
        for want in expected:
            got = next(loader)
            assert got.obs.device.type == "cpu" and got.obs.dtype == torch.uint8
            assert_batch_equal(got, (want.obs, want.actions, want.rtg, want.timesteps, want.valid))


def test_loader_raises_the_thread_error():
    class Broken:
        def next_batch(self):
            raise RuntimeError("boom in the loader thread")

    loader = BatchLoader(Broken(), "cpu", prefetch=2)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="boom in the loader thread"):
        next(loader)
    loader.close()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_loader_pins_memory_for_cuda(root):  # pragma: no cover - runs on a GPU machine
    ds = open_dataset(root)
    with BatchLoader(SegmentSampler(ds, 2, 4, mode="windows"), "cuda", prefetch=2) as loader:
        assert loader.pin and next(loader).obs.is_cuda


# --- the recorder: parallel workers, resume after a kill ---

RECORD = [
    "env.options.corridor_lengths=[3]",
    "env.max_episode_steps=40",
    "record.epsilon=0.3",
    "progress=false",
]


def _config(out, *extra):
    from agents.offline import load_config

    return load_config("bottleneck", [f"out_dir={out}", *RECORD, *extra])


def _arrays(ds: ShardedDataset) -> dict[str, np.ndarray]:
    order = np.argsort(ds.episode_ids[:, 1])  # shard boundaries may differ; compare episode by episode
    out: dict[str, list[np.ndarray]] = {}
    for e in order.tolist():
        sh = ds.shards[ds.episode_shard[e]]
        s, n = int(ds.episode_starts[e]), int(ds.episode_lengths[e])
        for k in ("obs", "actions", "rewards", "active", "dones", "labels"):
            out.setdefault(k, []).append(np.asarray(getattr(sh, k)[s : s + n]))
    return {k: np.concatenate(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    from agents.offline.record import record

    ds, _ = record(
        _config(tmp_path_factory.mktemp("ref"), "record.episodes=40", "record.episodes_per_shard=40")
    )
    return ds


def test_two_workers_record_the_same_episodes(tmp_path, reference):
    from agents.offline.record import record

    ds, path = record(
        _config(tmp_path, "record.episodes=40", "record.workers=2", "record.episodes_per_shard=6")
    )
    assert len(shard_folders(path)) == 7 and ds.episode_ids[:, 1].tolist() == list(range(40))
    for k, v in _arrays(reference).items():
        np.testing.assert_array_equal(_arrays(ds)[k], v)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_killed_recording_resumes_without_duplicates(tmp_path, reference, sig):
    """SIGKILL (or Ctrl-C) the recorder and its workers once shards are committed, then run it again."""
    from agents.offline.record import record

    out = tmp_path / "run"
    args = ["record.episodes=40", "record.workers=2", "record.episodes_per_shard=1"]
    cmd = [
        sys.executable,
        "-m",
        "agents.cli",
        "offline",
        "record",
        "bottleneck",
        f"out_dir={out}",
        *RECORD,
        *args,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, stderr=subprocess.PIPE)
    folder = out / "bottleneck" / "dataset"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if folder.is_dir() and len(shard_folders(folder)) >= 2:
            break
        time.sleep(0.005)
    os.killpg(proc.pid, sig)  # this test's own process group: the recorder and its workers (as Ctrl-C does)
    _, err = proc.communicate(timeout=30)
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL, err.decode()[-500:]
    else:  # one line, the shell's code for SIGINT, the workers stopped
        assert proc.returncode == 130 and err.decode().strip() == "srmt offline: interrupted", err.decode()[
            -500:
        ]
    committed = shard_folders(folder)
    assert 2 <= len(committed) < 40  # killed mid-way
    partial = open_dataset(folder, verify="sha256")  # what was committed is whole
    assert len(set(partial.episode_ids[:, 1].tolist())) == partial.num_episodes

    ds, _ = record(_config(out, *args[:1], "record.episodes_per_shard=8"))  # resume, in this process
    ids = ds.episode_ids[:, 1].tolist()
    assert sorted(ids) == list(range(40))  # complete, no duplicates
    assert not any(p.name.startswith(".tmp-") for p in folder.iterdir())
    for k, v in _arrays(reference).items():
        np.testing.assert_array_equal(_arrays(ds)[k], v)


def test_resume_refuses_other_settings_and_record_into_a_file(tmp_path, reference):
    from agents.offline.record import record

    record(_config(tmp_path, "record.episodes=2"))
    with pytest.raises(ValueError, match=r"was recorded with epsilon=0.3, not 0.1; record to a new") as e:
        record(_config(tmp_path, "record.episodes=3", "record.epsilon=0.1"))
    assert len(str(e.value).splitlines()) == 1
    ds, _ = record(_config(tmp_path, "record.episodes=5"))  # more episodes of the same settings: resumed
    assert ds.episode_ids[:, 1].tolist() == list(range(5))
    with pytest.raises(ValueError, match="writes a dataset folder, not a file"):
        record(_config(tmp_path, f"record.dataset={tmp_path / 'x.npz'}"))


def test_recorder_workers_do_not_import_torch():
    code = "import sys, agents.offline.record; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


DYING_PLUGIN = '''
"""Test plugin: a Bottleneck env whose process is SIGKILLed when it resets episode SRMT_TEST_DIE_AT."""
import os
import signal

from envs import make_env, register_env
from envs.config import EnvConfig


def build(cfg, seed=None):
    env = make_env(EnvConfig(name="bottleneck", options={"corridor_lengths": [3]}, max_episode_steps=40), seed)
    reset = env.reset

    def dying_reset(seed=None):
        die_at = os.environ.get("SRMT_TEST_DIE_AT", "")  # read now: the test unsets it for the resume
        if die_at and seed == int(die_at):
            os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer would
        return reset(seed=seed)

    env.reset = dying_reset
    return env


register_env("dying", build, grid=True, replace=True)  # reads the grid keys of the Bottleneck config
'''


def test_a_killed_worker_ends_the_recording_with_one_line_and_resumes(tmp_path, monkeypatch):
    """A worker that dies mid-shard does not hang the recorder; the next run records what is missing."""
    import configs
    from agents.offline.record import record
    from agents.offline_config import OfflineConfig

    plugin = tmp_path / "dying_plugin.py"
    plugin.write_text(DYING_PLUGIN)
    monkeypatch.setenv("SRMT_TEST_DIE_AT", "13")
    base = {"out_dir": str(tmp_path), "progress": False, "env": {"name": "dying", "plugin": str(plugin)}}
    args = ["record.episodes=20", "record.episodes_per_shard=2", "record.workers=2"]
    cfg = configs.load(OfflineConfig, base, args)
    with pytest.raises(
        ValueError, match=r"a recording worker died or failed to start .*run the same command again"
    ) as e:
        record(cfg)
    assert len(str(e.value).splitlines()) == 1
    folder = cfg.dataset_path
    assert "shard-000000012" not in [p.name for p in shard_folders(folder)]
    monkeypatch.delenv("SRMT_TEST_DIE_AT")  # the same settings (the env var is not one): resumed
    ds, _ = record(configs.load(OfflineConfig, base, [*args[:-1], "record.workers=1"]))
    assert sorted(ds.episode_ids[:, 1].tolist()) == list(range(20))
