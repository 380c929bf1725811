"""``srmt offline``: a tiny end-to-end smoke (record 2 episodes, train a few updates, evaluate 1 episode),
one-line errors for bad sub-commands and keys, the RATE policy under the generic evaluation loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import agents.offline as offline


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tensors are tiny: one torch thread is fastest, and on a busy machine extra threads stall."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TINY = [
    "record.episodes=2",
    "train.steps=3",
    "train.train_for_seconds=0",
    "train.batch_envs=2",
    "train.warmup_steps=1",
    "eval.episodes=1",
    "env.options.corridor_lengths=[3]",
    "env.max_episode_steps=40",
    "model.hidden_size=16",
    "model.num_layers=1",
    "model.segment_len=4",
    "device=cpu",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("offline")
    assert offline.main(["run", "bottleneck", f"out_dir={out}", *TINY]) == 0
    return out / "bottleneck"


def test_run_writes_dataset_checkpoint_tensorboard_and_table(run_dir, capsys):
    assert (run_dir / "dataset" / "dataset.json").is_file() and (run_dir / "rate.pt").is_file()
    assert any((run_dir / "tb").iterdir())
    table = (run_dir / "eval.md").read_text()
    for label in ("RATE (target", "expert (pibt)", "random", "| CSR |"):
        assert label in table


def test_sub_commands_reuse_the_run_folder(run_dir, capsys):
    out = str(run_dir.parent)
    assert offline.main(["train", "bottleneck", f"out_dir={out}", *TINY]) == 0
    assert offline.main(["eval", "bottleneck", f"out_dir={out}", *TINY, "eval.compare=false"]) == 0
    assert "RATE (target" in capsys.readouterr().out


@pytest.mark.parametrize("on_target", ["finish", "nothing"])
@pytest.mark.parametrize("reward", ["dense", "moving_negative", "directional_negative"])
def test_rate_policy_infers_rewards_without_observe(run_dir, on_target, reward):
    """Under a loop that never calls observe() (e.g. agents.eval's run_episode) the policy recomputes
    the env's rewards from consecutive world states. PIBT drives, so that goals are actually reached."""
    from agents.offline.policy import RATEPolicy
    from agents.offline.rollout import build_expert, make_eval_env, play_episode
    from envs.config import EnvConfig

    cfg = EnvConfig(
        name="bottleneck",
        options={"corridor_lengths": [3]},
        max_episode_steps=40,
        reward=reward,
        on_target=on_target,
    )
    policy = RATEPolicy(str(run_dir / "rate.pt"), target_return=0.5)
    policy.env_config, policy.reward_name = cfg, reward  # score the episode with this env's reward
    expert = build_expert("pibt")
    seen = []

    class Driver:
        """Forwards reset/act to the policy (no observe()), but plays the expert's actions."""

        def reset(self, state, seed):
            policy.reset(state, seed)
            expert.reset(state, seed)

        def act(self, state):
            policy.act(state)
            seen.append(policy.rtg.copy())  # after act k: target minus the rewards of steps 0..k-1
            policy.prev_actions = expert.act(state)
            return policy.prev_actions

    rewards = []
    metrics = play_episode(
        make_eval_env(cfg, seed=0), Driver(), 0, on_step=lambda tr: rewards.append(tr.rewards)
    )
    assert metrics["ISR"] == 1.0 and len(seen) == len(rewards) > 2
    if on_target == "finish":  # agents finished at different steps (else the test sees less)
        assert (np.stack(rewards) == 1.0).argmax(0).tolist() != [len(rewards) - 1] * 2
    expected = 0.5 - np.cumsum(np.stack(rewards), axis=0)  # rtg after each step, from the env's rewards
    np.testing.assert_allclose(np.stack(seen[1:]), expected[:-1], atol=1e-6)


@pytest.mark.parametrize(
    "argv, match",
    [
        (["frob"], "unknown sub-command 'frob'; choose one of: record, train, eval, run"),
        (["train", "bottleneck", "train.nope=1"], "nope"),
        (["train", "bottleneck", "record.algorithm=dijkstra"], "dijkstra"),
        (["eval", "bottleneck", "out_dir=/nonexistent/x"], "not found"),
        (["record", "bottleneck", "stray"], "must look like key=value"),
        (["train", "no-such-config"], "not found"),
        (["train", "bottleneck", "train.threads=-1"], "train.threads=-1"),
        (["eval", "bottleneck", "eval.threads=-2"], "eval.threads=-2"),
    ],
)
def test_bad_input_is_a_one_line_error(argv, match, capsys):
    assert offline.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1


def test_cli_dispatches_to_offline(capsys):
    from agents import cli

    assert cli.main(["offline", "--help"]) == 0
    assert "record,train,eval,run" in capsys.readouterr().out


def test_docs_list_every_offline_config_key():
    from pathlib import Path

    from agents.config_docs import rows
    from agents.offline_config import OfflineConfig

    doc = (Path(__file__).resolve().parents[1] / "docs" / "offline.md").read_text()
    missing = [k for k, *_ in rows(OfflineConfig) if not k.startswith("env.") and f"| `{k}` |" not in doc]
    assert not missing, f"docs/offline.md lacks {missing}"


def test_rate_checkpoint_plugs_into_srmt_eval(run_dir, tmp_path, capsys):
    """``srmt eval`` runs a RATE checkpoint like any algorithm (envs backend, its own observations)."""
    from agents import evaluate as eval_cmd
    from agents.eval.results import read_results

    out = tmp_path / "ev"
    args = ["eval/smoke", f"out_dir={out}", "run=[R,PIBT]", "algorithms.R.kind=rate", "max_episodes=2"]
    args += [f"algorithms.R.checkpoint={run_dir / 'rate.pt'}", "plots=false", "workers=1"]
    assert eval_cmd.main([*args, "algorithms.R.target_return=0.5"]) == 0, capsys.readouterr().err
    rows = read_results(out)
    assert sorted(r["algorithm"] for r in rows) == ["PIBT", "PIBT", "R", "R"]
    assert all(0.0 <= r["metrics"]["avg_throughput"] for r in rows)
    assert "| R |" in (out / "summary.md").read_text()
    capsys.readouterr()
    assert eval_cmd.main([*args, "algorithms.R.target_return=lots"]) == 2
    err = capsys.readouterr().err
    assert "target_return='lots'" in err and err.count("\n") == 1


def test_eval_refuses_an_env_whose_reward_or_radius_differs_from_the_checkpoint(run_dir, capsys):
    out = str(run_dir.parent)
    for override, key in (
        ("eval.env_overrides={reward: sparse}", "reward"),
        ("eval.env_overrides={obs_radius: 3}", "radius"),
    ):
        assert offline.main(["eval", "bottleneck", f"out_dir={out}", *TINY, override]) == 2
        err = capsys.readouterr().err.strip()
        assert f"eval env {key}=" in err and len(err.splitlines()) == 1


def test_train_on_random_windows_and_on_a_single_npz(run_dir, tmp_path, capsys):
    """``train.sampling=windows`` (synchronous and prefetched) and the earlier one-file format."""
    from agents.offline.shards import open_dataset

    out = str(run_dir.parent)
    for prefetch in (0, 2):
        args = [
            "train",
            "bottleneck",
            f"out_dir={out}",
            *TINY,
            "train.sampling=windows",
            f"train.prefetch={prefetch}",
        ]
        assert offline.main(args) == 0, capsys.readouterr().err
    assert "sampling windows" in capsys.readouterr().out
    npz = open_dataset(run_dir / "dataset").shards[0].save(tmp_path / "one.npz")
    assert offline.main(["train", "bottleneck", f"out_dir={tmp_path}", *TINY, f"train.dataset={npz}"]) == 0
    assert (tmp_path / "bottleneck" / "rate.pt").is_file()
