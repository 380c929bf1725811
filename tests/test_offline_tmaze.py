"""T-Maze offline path: the expert, record -> train -> per-length evaluation end to end on tiny corridors,
the memory-gradient switch (detach vs BPTT across segments), the comparison table and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import agents.offline as offline
from agents.offline.rollout import build_expert, make_eval_env, play_episode
from agents.offline.train import chunk_loss
from envs.tmaze import tmaze_config
from srmt.rate import RATEConfig, RATEModel


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TINY = [
    "env.options.corridor_lengths=[1,2,3]",
    "record.episodes=24",
    "model.hidden_size=16",
    "model.num_layers=1",
    "model.segment_len=2",
    "train.batch_envs=8",
    "train.steps=150",
    "train.warmup_steps=5",
    "train.learning_rate=0.01",
    "train.tensorboard=false",
    "eval.episodes=2",
    "eval.lengths=[3,20]",
    "eval.length_episodes=16",
    "finetune.steps=0",
    "device=cpu",
    "progress=false",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tmaze")
    assert offline.main(["run", "tmaze", f"out_dir={out}", *TINY]) == 0
    return out


def test_expert_solves_every_length():
    expert = build_expert("tmaze")
    for length in (1, 7, 200):
        env = make_eval_env(tmaze_config(length, num_agents=32), seed=0)
        m = play_episode(env, expert, seed=length)
        assert m["success"] == 1.0 and m["episode_length"] == length + 1
    env = make_eval_env(tmaze_config(10, num_agents=64), seed=0)
    assert play_episode(env, build_expert("random"), seed=0)["success"] < 0.2


def test_record_train_and_lengths_end_to_end(run_dir, capsys):
    """The ordinary recorder writes the usual dataset; the trained model solves the training lengths in
    step mode (memory carried across segments of 2 steps) and the per-length table is written."""
    from agents.offline.shards import open_dataset

    ds = open_dataset(run_dir / "tmaze" / "dataset")
    assert ds.obs_shape == (3, 1, 1) and ds.num_actions == 5 and ds.meta["algorithm"] == "tmaze"
    assert (ds.episode_returns == 1.0).all()  # the expert always turns to the cued side
    assert offline.main(["lengths", "tmaze", f"out_dir={run_dir}", *TINY]) == 0
    out = capsys.readouterr().out
    assert "| RATE |" in out and "| expert | 1.000 | 1.000 |" in out
    rows = json.loads((run_dir / "tmaze" / "lengths.json").read_text())["success"]
    # L=3 spans 2 segments: the cue must cross a memory write; a memoryless policy would be at 1/2
    assert rows["RATE"]["3"] == 1.0
    assert rows["random"]["20"] == 0.0


def _two_segments(G=2, A=1, K=3):
    """A batch of 2 segments whose loss-bearing step is in segment 2 (the junction turn)."""
    T = 2 * K
    obs = torch.zeros(G, A, T, 3, 1, 1)
    obs[0, :, 0, 0] = 1  # cue up in episode 0, down in episode 1
    obs[1, :, 0, 1] = 1
    obs[:, :, T - 1, 2] = 1
    actions = torch.full((G, A, T), 4)
    actions[0, :, T - 1], actions[1, :, T - 1] = 1, 2
    rtg = torch.ones(G, A, T)
    ts = torch.zeros(G, A, T, dtype=torch.long)
    valid = torch.ones(G, A, T, dtype=torch.bool)
    return [obs, actions, rtg, ts, valid], K


@pytest.mark.parametrize("mode", ["detach", "bptt"])
def test_memory_gradient_switch_controls_gradient_flow(mode):
    """The write embedding shapes only the memory that segment 2 reads (segment 1's loss cannot see its
    own write tokens): detached, its gradient is exactly zero; with BPTT it is not. The forward values
    (losses, carried memory) are the same either way."""
    torch.manual_seed(0)
    model = RATEModel(
        RATEConfig(hidden_size=16, num_layers=1, segment_len=3, shared_memory=False), (3, 1, 1), 5
    )
    tensors, K = _two_segments()
    loss, n, _, memory = chunk_loss(model, tensors, range(2), K, None, mode)
    loss.backward()
    write = model.transformer.write_emb.grad
    read = model.memory_init.grad
    assert n == 12 and read is not None and read.abs().sum() > 0  # the read path learns in both modes
    if mode == "detach":
        assert write is None or torch.count_nonzero(write) == 0
        assert not memory.requires_grad
    else:
        assert write is not None and write.abs().sum() > 1e-8
    torch.manual_seed(0)
    twin = RATEModel(
        RATEConfig(hidden_size=16, num_layers=1, segment_len=3, shared_memory=False), (3, 1, 1), 5
    )
    other = "bptt" if mode == "detach" else "detach"
    loss2, _, _, memory2 = chunk_loss(twin, tensors, range(2), K, None, other)
    torch.testing.assert_close(loss.detach(), loss2.detach())
    torch.testing.assert_close(memory.detach(), memory2.detach())


def test_compare_runs_both_modes_over_seeds(tmp_path, capsys):
    args = ["compare", "tmaze", f"out_dir={tmp_path}", *TINY, "train.steps=3", "compare_seeds=[0,1]"]
    args += ["finetune.steps=2", "finetune.episodes=3", "finetune.env_options.corridor_lengths=[5]"]
    assert offline.main([*args, "eval.lengths=[2]", "eval.length_episodes=4"]) == 0
    table = (tmp_path / "tmaze" / "compare.md").read_text()
    assert "| detach | 2 |" in table and "| bptt | 2 |" in table
    for mode in ("detach", "bptt"):
        for seed in (0, 1):
            assert (tmp_path / "tmaze" / f"{mode}-s{seed}" / "rate.pt").is_file()
    data = json.loads((tmp_path / "tmaze" / "compare.json").read_text())
    assert set(data["success"]) == {"detach", "bptt"} and set(data["success"]["bptt"]) == {"0", "1"}
    assert all(run["updates"] == 2 for mode in data["train"].values() for run in mode.values())  # 2nd stage
    assert (tmp_path / "tmaze" / "compare.png").stat().st_size > 0
    from agents.offline.shards import open_dataset

    stage2 = open_dataset(tmp_path / "tmaze" / "dataset-finetune")  # recorded once, for all four runs
    assert stage2.num_episodes == 3 and set(stage2.episode_lengths.tolist()) == {6}


def test_compare_table_means_and_intervals():
    from agents.offline.tmaze import compare_table

    results = {"detach": {0: {10: 0.5, 100: 0.4}, 1: {10: 0.7, 100: 0.6}}, "bptt": {0: {10: 1.0, 100: 1.0}}}
    table = compare_table(results, 8)
    assert "| detach | 2 | 0.600 [0.50, 0.70] | 0.500 [0.40, 0.60] |" in table
    assert "| bptt | 1 | 1.000 [nan, nan] | 1.000 [nan, nan] |" in table


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train", "tmaze", "train.memory_gradient=sometimes"], "memory_gradient"),
        (["lengths", "tmaze", "eval.lengths=[0,10]"], "eval.lengths holds 0"),
        (["lengths", "tmaze", "eval.lengths=[]"], "eval.lengths is empty"),
        (["lengths", "bottleneck", "eval.lengths=[5]"], "allowed: tmaze"),
        (["compare", "tmaze", "compare_seeds=[]"], "compare_seeds is empty"),
        (["record", "tmaze", "env.options.corridor_lengths=[-3]"], "corridor length -3 is invalid"),
    ],
)
def test_bad_input_is_a_one_line_error(argv, match, capsys, tmp_path):
    assert offline.main([*argv, f"out_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1, err


def test_lengths_refuses_a_shared_memory_checkpoint(run_dir, tmp_path, capsys):
    args = ["tmaze", f"out_dir={tmp_path}", *TINY, "model.shared_memory=true", "train.steps=1"]
    args.append(f"train.dataset={run_dir / 'tmaze' / 'dataset'}")
    assert offline.main(["train", *args]) == 0
    assert offline.main(["lengths", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs shared_memory=false" in err and len(err.splitlines()) == 1


def test_observation_only_world_state_counts_steps():
    from agents.offline.rollout import world_state

    env = make_eval_env(tmaze_config(4, num_agents=3), seed=0)
    obs, _ = env.reset()
    s = world_state(env, obs)
    assert s.num_agents == 3 and s.step == 0 and s.active.all() and s.observations is obs
    env.step(np.full(3, 4))
    assert world_state(env, obs).step == 1


def test_init_checkpoint_starts_from_its_weights(run_dir, tmp_path, capsys):
    from agents.offline.train import load_checkpoint

    source = run_dir / "tmaze" / "rate.pt"
    args = [
        "train",
        "tmaze",
        f"out_dir={tmp_path}",
        *TINY,
        f"train.dataset={run_dir / 'tmaze' / 'dataset'}",
    ]
    args += ["train.steps=1", "train.learning_rate=1e-12", "train.weight_decay=0"]
    assert offline.main([*args, f"train.init_checkpoint={source}"]) == 0
    a, _ = load_checkpoint(source)
    b, _ = load_checkpoint(tmp_path / "tmaze" / "rate.pt")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, atol=1e-6, rtol=0, msg=name)
    assert offline.main([*args, f"train.init_checkpoint={source}", "model.hidden_size=8"]) == 2
    err = capsys.readouterr().err.strip()
    assert "train.init_checkpoint=" in err and "another config" in err and len(err.splitlines()) == 1
