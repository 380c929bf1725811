"""Reliability of training and configs (issue 15, issue 10 item 4): run names that cannot escape
``train_dir``, bad inputs as one-line errors (fuzzed), seeds that do not replay the first episode,
checkpoints that survive a kill mid-save, run identity on resume. The worker/learner fault injections
live in ``test_train_faults.py``."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import configs
from agents.config import ExperimentConfig, load_experiment
from envs import make_env
from envs.config import EnvConfig

# ------------------------------------------------------------------ run names


@pytest.mark.parametrize(
    "name", ["..", ".", "", " ", "/tmp/elsewhere", "a/b", "../x", "a\\b", "x\ny", "wandb", "a\x00b"]
)
def test_run_names_are_plain_folder_names(name):
    with pytest.raises(configs.ConfigError, match="name=") as e:
        load_experiment("bottleneck-srmt", [f"name={name!r}" if name else "name=''"])
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", ["my-run", "run_1", "a.b", "~", "%x", "runs old"])
def test_plain_names_are_accepted(name):
    assert load_experiment({"name": name}).name == name


# ------------------------------------------------------------------ bad overrides


@pytest.mark.parametrize(
    "override, match",
    [
        ("eval.max_maps=[", r"override 'eval.max_maps=\['.* not a valid YAML value"),
        ("eval.out_dir=@x", r"'@x' is not a valid YAML value .*quote it"),
        ("name=%x", r"'%x' is not a valid YAML value"),
        ("name=*alias", r"not a valid YAML value"),
        ("name=!tag", r"not a valid YAML value"),
        ("seed=-1", r"seed=-1 is invalid"),
        ("env.options.corridor_lengths=[100000000]", r"corridor length 100000000 is invalid; .*1\.\.4092"),
    ],
)
def test_raw_yaml_errors_and_huge_values_are_one_line(override, match):
    with pytest.raises(configs.ConfigError, match=match) as e:
        load_experiment("bottleneck-srmt", [override])
    assert "\n" not in str(e.value)


def test_quoting_as_the_message_says_passes_the_text():
    # the message shows the shell form name='"%x"'; the shell hands srmt name="%x"
    assert load_experiment("bottleneck-srmt", ['name="%x"']).name == "%x"


def test_unreadable_config_files_are_one_line(tmp_path):
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: {batch_size: [\n")
    for path, match in ((binary, "not a text"), (broken, "invalid YAML")):
        with pytest.raises(configs.ConfigError, match=match) as e:
            load_experiment(str(path))
        assert "\n" not in str(e.value)


_KEYS = [
    "name",
    "seed",
    "device",
    "env.name",
    "env.num_agents",
    "env.options.corridor_lengths",
    "env.options.split",
    "env.corridor_lengths",
    "env.map",
    "env.map_names",
    "env.density",
    "env.obs_radius",
    "model.core",
    "model.hidden_size",
    "model.dropout",
    "train.batch_size",
    "train.restart",
    "train.sf_overrides",
    "train.plugins",
    "train.learning_rate",
    "eval.max_maps",
    "eval.out_dir",
    "eval.algorithms.X.kind",
    "eval.seeds",
    "eval.enjoy.seed",
    "nonsense.key",
    "env",
    "",
]
_ATOMS = st.sampled_from(
    ["[", "]", "{", "}", "@", "%", "*", "&", "!", "`", "|", ">", "'", '"', ":", ",", "#", "-", "?", "$",
     "${", "\\", "\n", "\t", " ", "..", "/", "0", "1", "-1", "1e99", "nan", "inf", "null", "true",
     "1000000000000", "srmt", "gru", "a", "=", "\x00", "é"]
)  # fmt: skip
_VALUES = st.one_of(st.lists(_ATOMS, max_size=6).map("".join), st.text(max_size=12))
FUZZ_EXAMPLES = int(os.environ.get("SRMT_FUZZ_EXAMPLES", "200"))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=st.one_of(st.sampled_from(_KEYS), st.text(max_size=8)), value=_VALUES)
def test_fuzzed_overrides_give_a_valid_config_or_one_clean_line(key, value):
    """Any ``key=value`` is either a config that round-trips or a one-line ConfigError; nothing else
    escapes (issue 15 found 2,371 raw YAML tracebacks in 12,000 such overrides).
    ``SRMT_FUZZ_EXAMPLES=10000`` runs the long version."""
    try:
        exp = load_experiment("bottleneck-srmt", [f"{key}={value}"])
    except configs.ConfigError as e:
        assert "\n" not in str(e) and str(e)
        return
    assert isinstance(exp, ExperimentConfig)
    assert load_experiment(configs.to_dict(exp)) == exp


@pytest.mark.parametrize("value", ["\\${", "a\\${x}", "'\\\\\\${'"])
def test_a_value_with_interpolation_syntax_round_trips_as_text(value):
    """An escaped ``${`` in an override is text; the saved config (``to_dict``) loads as the same text
    instead of an OmegaConf interpolation error (found by the fuzz test above)."""
    exp = load_experiment("bottleneck-srmt", [f"env.map={value}"])
    assert "${" in exp.env.map
    assert load_experiment(configs.to_dict(exp)) == exp


# ------------------------------------------------------------------ seeds: the first episode once


def _episode_seeds(env, episodes: int) -> list[int]:
    seeds = []
    env.reset()
    for _ in range(episodes):
        seeds.append(env.episode.seed)
        while True:
            *_, term, trunc, _ = env.step(np.zeros(env.num_agents, dtype=np.int64))
            if np.all(term | trunc):
                break
        env.reset()
    return seeds


def test_reset_with_the_make_env_seed_does_not_replay_the_first_episode():
    cfg = EnvConfig(name="bottleneck", max_episode_steps=4)
    env = make_env(cfg, seed=7)
    env.reset(seed=7)  # what sample-factory's env vector used to do on top of make_env(seed=7)
    first = env.episode.seed
    env.reset()
    assert env.episode.seed != first
    # make_env(seed=s) + reset() is the same stream as reset(seed=s), and neither repeats an episode
    a = _episode_seeds(make_env(cfg, seed=7), 4)
    b = make_env(cfg)
    b.reset(seed=7)
    b_seeds = [b.episode.seed]
    for _ in range(3):
        b.reset()
        b_seeds.append(b.episode.seed)
    assert a == b_seeds and len(set(a)) == 4


def test_training_env_vector_plays_distinct_episodes(tmp_path):
    from sample_factory.utils.attr_dict import AttrDict

    from agents.sf.env import make_sf_env
    from agents.sf.sf_config import make_sf_config

    exp = load_experiment(
        {
            "name": "seeds",
            "env": {"name": "bottleneck", "max_episode_steps": 4},
            "train": {"train_dir": str(tmp_path), "envs_per_worker": 4, "rollout": 4, "batch_size": 8},
        }
    )
    cfg = make_sf_config(exp, agents_per_env=2, state_size=4)
    vec = make_sf_env("srmt", cfg, AttrDict(env_id=0))
    vec.reset()
    assert vec.envs is None  # the Bottleneck's batched vector env
    seen = [[s] for s in vec.vec.episode_seeds.tolist()]
    for _ in range(3):
        for _ in range(4):
            vec.step(np.zeros(vec.num_agents, dtype=np.int64))
        for i, s in enumerate(vec.vec.episode_seeds.tolist()):
            seen[i].append(s)
    for seeds in seen:
        assert len(set(seeds)) == len(seeds), seeds  # no episode played twice
    # a resumed run (cfg.srmt_resumed_at = the checkpoint's agent-steps) draws other episodes, reproducibly
    cfg.srmt_resumed_at = 123_456
    resumed = make_sf_env("srmt", cfg, AttrDict(env_id=0))
    again = make_sf_env("srmt", cfg, AttrDict(env_id=0))
    resumed.reset()
    again.reset()
    first = resumed.vec.episode_seeds.tolist()
    assert first == again.vec.episode_seeds.tolist()
    assert not set(first) & {s for seeds in seen for s in seeds} and len(set(first)) == len(first)


# ------------------------------------------------------------------ checkpoints: atomic, leftovers, corrupt

TINY = {"hidden_size": 8, "num_heads": 2, "num_filters": 4, "num_res_blocks": 0, "history_len": 2}


def _tiny(tmp_path, name="ckpt", train=None, **top):
    train = {
        "train_dir": str(tmp_path / "runs"),
        "serial": True,
        "num_workers": 1,
        "envs_per_worker": 2,
        "rollout": 4,
        "batch_size": 16,
        "train_for_env_steps": 200,
        "save_every_sec": 3600,
        **(train or {}),
    }
    return load_experiment(
        {
            "name": name,
            "env": {"name": "bottleneck", "max_episode_steps": 16},
            "model": {"core": "gru", **TINY},
            "train": train,
            **top,
        }
    )


def _saved_run(tmp_path, exp, steps=(100, 200)):
    """A run folder as ``srmt train`` leaves it: config.yaml and checkpoints at ``steps`` agent-steps."""
    from test_train_adapter import _learner

    from agents.sf.training import CONFIG_FILE

    learner, _ = _learner(exp)
    for i, s in enumerate(steps):
        learner.train_step, learner.env_steps = i + 1, s
        assert learner.save()
    run_dir = tmp_path / "runs" / exp.name
    (run_dir / CONFIG_FILE).write_text(configs.to_yaml(exp))
    return run_dir, run_dir / "checkpoint_p0"


def test_saves_are_atomic_and_sample_factory_leftovers_are_ignored(tmp_path):
    from agents.checkpoint_io import save_atomic
    from agents.sf.checkpoint import checkpoint_files, latest_valid_checkpoint

    exp = _tiny(tmp_path)
    _, folder = _saved_run(tmp_path, exp)
    names = [p.name for p in checkpoint_files(folder)]
    assert names == ["checkpoint_000000001_100.pth", "checkpoint_000000002_200.pth"]
    assert not [p for p in folder.iterdir() if p.name not in names]  # no temp file left behind
    # what a kill mid-save leaves: sample-factory's checkpoint_temp (sorts after every checkpoint) and a
    # half-written temp file of our own saver
    (folder / "checkpoint_temp").write_bytes(b"half a checkpoint")
    (folder / ".tmp-checkpoint_000000003_300.pth.123").write_bytes(b"half")
    assert [p.name for p in checkpoint_files(folder)] == names
    path, ckpt = latest_valid_checkpoint(folder)
    assert path.name == names[-1] and ckpt["env_steps"] == 200
    # a save that fails midway leaves neither a file under the final name nor its temp file
    target = folder / "checkpoint_000000009_900.pth"
    # a local lambda cannot be pickled: PicklingError or AttributeError, depending on the Python/torch build
    with pytest.raises((pickle.PicklingError, AttributeError)):
        save_atomic({"x": lambda: 0}, target)  # a lambda cannot be pickled: torch.save raises mid-write
    assert not target.exists() and not list(folder.glob(".tmp-checkpoint_000000009*"))


def test_resume_skips_a_corrupt_newest_checkpoint_and_names_the_file_it_loads(tmp_path, capfd):
    from agents.sf import train

    exp = _tiny(tmp_path, "resume")
    _, folder = _saved_run(tmp_path, exp)
    (folder / "checkpoint_temp").write_bytes(b"leftover")
    corrupt = folder / "checkpoint_000000003_300.pth"
    corrupt.write_bytes(b"\x00" * 64)  # the newest by name
    result = train(_tiny(tmp_path, "resume", train={"train_for_env_steps": 400}), verbose=True)
    out, err = capfd.readouterr()
    assert result.status == "success", result.error
    warning = [ln for ln in err.splitlines() if "checkpoint_000000003_300.pth" in ln]
    assert len(warning) == 1 and "skipping" in warning[0] and "cannot be loaded" in warning[0], err[-3000:]
    assert f"resuming from {folder / 'checkpoint_000000002_200.pth'} (200 agent-steps)" in out
    assert result.env_steps >= 400  # counted on from the checkpoint that was loaded


def test_a_run_whose_checkpoints_all_fail_to_load_is_one_line(tmp_path, capsys):
    from agents import train as train_cmd

    exp = _tiny(tmp_path, "broken")
    _, folder = _saved_run(tmp_path, exp, steps=(100,))
    (folder / "checkpoint_000000001_100.pth").write_bytes(b"PK\x03\x04 truncated zip")
    cfg_file = tmp_path / "broken.yaml"
    cfg_file.write_text(configs.to_yaml(exp))
    assert train_cmd.main([str(cfg_file)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("srmt train: no checkpoint in") and "train.restart=overwrite" in err[-1]
    assert not any("Traceback" in ln for ln in err)


def test_an_unsafe_checkpoint_is_refused_without_torch_advice(tmp_path):
    import torch

    from agents.offline.train import load_checkpoint as load_rate
    from agents.sf import read_checkpoint

    evil = tmp_path / "evil.pth"
    torch.save({"srmt": {}, "model": {}, "x": os.system}, evil)  # unpickling would import os.system
    for load in (read_checkpoint, load_rate):
        with pytest.raises(ValueError, match="other than tensors and plain data") as e:
            load(evil)
        message = str(e.value)
        assert "\n" not in message and "weights_only" not in message and "Re-running" not in message
        assert "evil.pth" in message


# ------------------------------------------------------------------ run identity (issue 10 item 4)


def test_resuming_with_another_seed_env_or_model_is_refused_in_one_line(tmp_path):
    from agents.sf import train

    exp = _tiny(tmp_path, "identity")
    run_dir, _ = _saved_run(tmp_path, exp)
    before = sorted(p.name for p in (run_dir / "checkpoint_p0").iterdir())
    for change, keys in (
        ({"seed": 1}, ["seed: 0 -> 1"]),
        ({"env": {"name": "bottleneck", "max_episode_steps": 16, "reward": "dense"}}, ["env.reward"]),
        ({"model": {"core": "srmt", **TINY}}, ["model.core: 'gru' -> 'srmt'"]),
        ({"train": {"learning_rate": 0.01}}, ["train.learning_rate"]),
    ):
        with pytest.raises(configs.ConfigError, match="holds another run") as e:
            train(_tiny(tmp_path, "identity", **change), verbose=False)
        message = str(e.value)
        assert "\n" not in message and all(k in message for k in keys), message
        assert "train.restart=overwrite" in message and "name=" in message
    # nothing was touched: same checkpoints, same config
    assert sorted(p.name for p in (run_dir / "checkpoint_p0").iterdir()) == before
    assert load_experiment(run_dir / "config.yaml") == exp


def test_a_run_folder_saved_before_env_options_is_the_same_run(tmp_path):
    """config.yaml of a run trained before issue 12 has Bottleneck's keys at the env's top level."""
    import yaml

    from agents.sf.training import _saved_experiment, identity_diff

    exp = _tiny(
        tmp_path, "legacy", env={"name": "bottleneck", "max_episode_steps": 16, "options": {"split": "test"}}
    )
    run_dir, _ = _saved_run(tmp_path, exp)
    data = yaml.safe_load((run_dir / "config.yaml").read_text())
    data["env"].update(data["env"].pop("options"))  # the old layout: env.split, env.corridor_lengths
    assert data["env"]["split"] == "test"
    (run_dir / "config.yaml").write_text(yaml.safe_dump(data))
    old = _saved_experiment(run_dir, None)
    assert old is not None and old.env.opts.split == "test" and identity_diff(old, exp) == []
    assert identity_diff(old, _tiny(tmp_path, "legacy")) == ["env.options.split: 'test' -> 'train'"]
    # options compare typed: {} and the defaults written out are the same run
    spelled = {
        "name": "bottleneck",
        "max_episode_steps": 16,
        "options": {"split": "train", "corridor_lengths": []},
    }
    assert identity_diff(_tiny(tmp_path, "legacy"), _tiny(tmp_path, "legacy", env=spelled)) == []


def test_budget_processes_and_logging_may_change_on_resume():
    from agents.sf.training import identity_diff

    exp = load_experiment("bottleneck-gru")
    changed = load_experiment(
        "bottleneck-gru",
        ["train.train_for_env_steps=5000000", "train.num_workers=7", "train.log_interval_s=1", "device=cpu"]
        + ["train.compile=default", "train.autocast=bf16"],  # compute settings, not what is trained
    )
    assert identity_diff(exp, changed) == []
    assert identity_diff(exp, load_experiment("bottleneck-gru", ["seed=1"])) == ["seed: 0 -> 1"]


def test_cli_seed_one_does_not_resume_the_seed_zero_run(tmp_path, capsys):
    from agents import train as train_cmd

    exp = _tiny(tmp_path, "bottleneck-gru")
    _saved_run(tmp_path, exp)
    cfg_file = tmp_path / "gru.yaml"
    cfg_file.write_text(configs.to_yaml(exp))
    assert train_cmd.main([str(cfg_file), "seed=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds another run (seed: 0 -> 1)" in err[0]


# ------------------------------------------------------------------ nothing outside the run folder


@pytest.mark.parametrize("restart", ["overwrite", "restart"])
def test_restart_modes_touch_only_the_run_folder(tmp_path, restart, capsys):
    from agents import train as train_cmd

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "other-run").mkdir()
    (runs / "other-run" / "data").write_text("keep")
    cfg_file = tmp_path / "exp.yaml"
    cfg_file.write_text(configs.to_yaml(_tiny(tmp_path)))
    for name in (str(victim), "..", "../victim", "other-run/..", "."):
        code = train_cmd.main([str(cfg_file), f"name='{name}'", f"train.restart={restart}"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "is not a plain run name" in err[0], err
    link = runs / "linked"
    link.symlink_to(victim, target_is_directory=True)
    assert train_cmd.main([str(cfg_file), "name=linked", f"train.restart={restart}"]) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert (victim / "precious.txt").read_text() == "keep me"
    assert (runs / "other-run" / "data").read_text() == "keep"
    assert sorted(p.name for p in runs.iterdir()) == ["linked", "other-run"]


# ------------------------------------------------------------------ Ctrl-C


def test_ctrl_c_ends_a_command_with_one_line(monkeypatch, capsys):
    from agents import cli

    class Interrupted:
        @staticmethod
        def main(argv):
            raise KeyboardInterrupt

    monkeypatch.setitem(sys.modules, "srmt_test_interrupted", Interrupted)
    monkeypatch.setitem(cli.COMMANDS, "eval", ("srmt_test_interrupted", "test", 0))
    assert cli.main(["eval", "eval/smoke"]) == 130
    assert capsys.readouterr().err.strip().splitlines() == ["srmt eval: interrupted"]


# ------------------------------------------------------------------ train.init_checkpoint: weights of another run


def _weights(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k.startswith("net.")}


def _same(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


def test_init_checkpoint_starts_a_new_run_from_the_weights_and_counters(tmp_path, capfd):
    from test_train_adapter import _learner

    from agents.sf import train
    from agents.sf.checkpoint import checkpoint_files, read_checkpoint

    a = train(_tiny(tmp_path, "a"), verbose=False)
    assert a.status == "success", a.error
    a_file = checkpoint_files(a.run_dir / "checkpoint_p0")[-1]
    a_ckpt = read_checkpoint(a_file)
    a_steps, a_train_step = int(a_ckpt["env_steps"]), int(a_ckpt["train_step"])
    assert a_steps >= 200 and a_train_step > 0
    a_weights = {k: v for k, v in a_ckpt["model"].items() if k.startswith("net.")}

    # the learner of the new run: a fresh model differs from A's trained one; loading gives A's weights
    # and counters with an untouched optimiser and the config's learning rate
    exp_b = _tiny(
        tmp_path,
        "b",
        train={"init_checkpoint": str(a_file), "train_for_env_steps": a_steps + 200, "learning_rate": 1e-3},
    )
    learner, _ = _learner(exp_b)  # cfg without srmt_init_checkpoint: a fresh start
    assert not _same(_weights(learner.actor_critic), a_weights)
    learner.cfg.srmt_init_checkpoint = str(a_file)
    learner.load_from_checkpoint(0)
    assert _same(_weights(learner.actor_critic), a_weights)
    assert (learner.train_step, learner.env_steps) == (a_train_step, a_steps)
    assert learner.optimizer.state_dict()["state"] == {} and learner.curr_lr == 1e-3
    del learner

    capfd.readouterr()
    b = train(exp_b, verbose=True)
    out, _ = capfd.readouterr()
    assert b.status == "success", b.error
    assert f"[srmt] starting from the weights of {a_file} ({a_steps:,} agent-steps; fresh optimiser)" in out
    assert b.env_steps >= a_steps + 200
    b_files = checkpoint_files(b.run_dir / "checkpoint_p0")
    b_first = read_checkpoint(b_files[0])
    assert b_first["env_steps"] > a_steps and b_first["train_step"] > a_train_step
    # fresh optimiser: Adam has taken B's steps only, not A's as well
    adam_steps = {int(s["step"]) for s in b_first["optimizer"]["state"].values()}
    assert adam_steps == {b_first["train_step"] - a_train_step}, (
        adam_steps,
        b_first["train_step"],
        a_train_step,
    )


def test_a_weights_only_file_works_as_init_checkpoint(tmp_path, capfd):
    import torch

    from agents.sf import train
    from agents.sf.checkpoint import checkpoint_files, read_checkpoint

    exp = _tiny(tmp_path, "source")
    _, folder = _saved_run(tmp_path, exp, steps=(300,))
    full = read_checkpoint(folder)
    weights_only = tmp_path / "weights.pth"  # as configs/data/srmt-lifelong/srmt-lifelong.pth
    torch.save({k: full[k] for k in ("model", "srmt", "env_steps", "train_step")}, weights_only)
    result = train(
        _tiny(
            tmp_path, "from-weights", train={"init_checkpoint": str(weights_only), "train_for_env_steps": 500}
        )
    )
    out, _ = capfd.readouterr()
    assert result.status == "success", result.error
    assert f"starting from the weights of {weights_only} (300 agent-steps; fresh optimiser)" in out
    assert result.env_steps >= 500
    first = read_checkpoint(checkpoint_files(result.run_dir / "checkpoint_p0")[0])
    assert first["env_steps"] > 300
    # the counters went on from the file's (a fresh run's Adam would have taken all train steps)
    assert {int(s["step"]) for s in first["optimizer"]["state"].values()} == {first["train_step"] - 1}
    # a run folder works too, as read_checkpoint reads it (its newest checkpoint)
    result = train(
        _tiny(
            tmp_path, "from-folder", train={"init_checkpoint": str(folder.parent), "train_for_env_steps": 500}
        )
    )
    out, _ = capfd.readouterr()
    assert result.status == "success", result.error
    assert f"starting from the weights of {folder / 'checkpoint_000000001_300.pth'} (300 agent-steps" in out


def test_bad_init_checkpoints_are_one_line_errors(tmp_path, capsys):
    from agents import train as train_cmd
    from agents.sf import train

    missing = tmp_path / "nowhere.pth"
    with pytest.raises((FileNotFoundError, ValueError), match="train.init_checkpoint=.*nowhere.pth") as e:
        train(_tiny(tmp_path, "x", train={"init_checkpoint": str(missing)}), verbose=False)
    assert "\n" not in str(e.value)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="train.init_checkpoint=.*cannot be loaded") as e:
        train(_tiny(tmp_path, "x", train={"init_checkpoint": str(garbage)}), verbose=False)
    assert "\n" not in str(e.value)

    # a checkpoint of another model: the first differing tensor, its shapes and the model config
    other = _tiny(tmp_path, "wide", model={"core": "gru", **TINY, "hidden_size": 16})
    _, folder = _saved_run(tmp_path, other, steps=(100,))
    with pytest.raises(ValueError, match=r"train.init_checkpoint=.* net\.\S+ has shape \[") as e:
        train(_tiny(tmp_path, "x", train={"init_checkpoint": str(folder)}), verbose=False)
    message = str(e.value)
    assert "\n" not in message and "model config" in message and "model.hidden_size=16" in message, message
    assert not (tmp_path / "runs" / "x").exists()  # refused before the runner made a run folder
    # the command prints it as one line, exit code 2
    cfg_file = tmp_path / "x.yaml"
    cfg_file.write_text(configs.to_yaml(_tiny(tmp_path, "x")))
    assert train_cmd.main([str(cfg_file), f"train.init_checkpoint={folder}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("srmt train: train.init_checkpoint=") and "has shape" in err[-1], err[-3:]
    assert not any(ln.startswith("srmt train:") for ln in err[:-1])  # the error is that one line

    # a file inside the run folder that train.restart=overwrite deletes first
    _, own = _saved_run(tmp_path, _tiny(tmp_path, "own"), steps=(100,))
    with pytest.raises(ValueError, match="lies in the run folder") as e:
        train(
            _tiny(tmp_path, "own", train={"init_checkpoint": str(own), "restart": "overwrite"}), verbose=False
        )
    assert "\n" not in str(e.value) and (own / "checkpoint_000000001_100.pth").is_file()


@pytest.mark.parametrize(
    "change, named",
    [
        ({"core": "rmt"}, "model.core='srmt' in the checkpoint, 'rmt' here"),
        ({"num_heads": 4}, "model.num_heads=2 in the checkpoint, 4 here"),
    ],
)
def test_an_init_checkpoint_of_another_model_config_with_the_same_tensors_is_refused(tmp_path, change, named):
    from agents.sf import train

    srmt = {"core": "srmt", **TINY}
    _, folder = _saved_run(tmp_path, _tiny(tmp_path, "src", model=srmt), steps=(100,))
    exp = _tiny(tmp_path, "x", model={**srmt, **change}, train={"init_checkpoint": str(folder)})
    with pytest.raises(ValueError, match="was trained with another model config") as e:
        train(exp, verbose=False)  # every tensor has the checkpoint's shape: only the config tells
    message = str(e.value)
    assert "\n" not in message and named in message and "model.dropout, model.state_precision" in message
    assert not (tmp_path / "runs" / "x").exists()


def test_an_init_checkpoint_may_differ_in_dropout_and_state_precision_only(tmp_path):
    from agents.sf.training import _init_checkpoint, probe_env
    from srmt import build_actor_critic

    srmt = {"core": "srmt", **TINY}
    _, folder = _saved_run(tmp_path, _tiny(tmp_path, "src", model=srmt), steps=(100,))
    for model in (srmt, {**srmt, "dropout": 0.1, "state_precision": "bfloat16"}, {**srmt, "encoder": "conv"}):
        exp = _tiny(tmp_path, "x", model=model, train={"init_checkpoint": str(folder)})
        _, obs_shape, n = probe_env(exp)
        net = build_actor_critic(exp.model, obs_shape, n)
        found = _init_checkpoint(exp, tmp_path / "runs" / "x", net.state_dict(), resuming=False)
        assert found is not None and found[1] == 100, model  # encoder auto = conv on grid observations


@pytest.mark.parametrize("budget", [100, 60])
def test_an_init_run_whose_budget_is_not_above_the_checkpoints_steps_is_refused(tmp_path, budget):
    from agents.sf import train

    _, folder = _saved_run(tmp_path, _tiny(tmp_path, "src"), steps=(100,))
    exp = _tiny(tmp_path, "x", train={"init_checkpoint": str(folder), "train_for_env_steps": budget})
    with pytest.raises(ValueError, match=rf"train.train_for_env_steps={budget} counts the total") as e:
        train(exp, verbose=False)  # it "succeeded" after one update before
    message = str(e.value)
    assert "\n" not in message and "must be larger than 100" in message, message
    assert not (tmp_path / "runs" / "x").exists()


def test_resume_wins_over_init_checkpoint(tmp_path, capfd):
    from agents.sf import train

    _, other = _saved_run(tmp_path, _tiny(tmp_path, "other"), steps=(1000,))
    exp = _tiny(tmp_path, "mine")
    _, folder = _saved_run(tmp_path, exp)
    # the same command as the run's first session (with train.init_checkpoint) resumes the run folder
    result = train(
        _tiny(tmp_path, "mine", train={"init_checkpoint": str(other), "train_for_env_steps": 400}),
        verbose=True,
    )
    out, _ = capfd.readouterr()
    assert result.status == "success", result.error
    assert f"resuming from {folder / 'checkpoint_000000002_200.pth'} (200 agent-steps)" in out
    lines = [ln for ln in out.splitlines() if "train.init_checkpoint" in ln]
    assert len(lines) == 1 and "ignored" in lines[0], out
    assert "starting from the weights" not in out
    assert 400 <= result.env_steps < 1000  # counted on from its own checkpoint, not the other run's


def test_the_shipped_weights_fit_their_recipe():
    """The docs' command: ``lmapf-srmt-guided-64`` with ``train.init_checkpoint`` = the shipped file."""
    from agents.sf.training import _init_checkpoint, probe_env
    from srmt import build_actor_critic

    shipped = Path(__file__).resolve().parents[1] / "configs" / "data" / "srmt-lifelong" / "srmt-lifelong.pth"
    exp = load_experiment("lmapf-srmt-guided-64", [f"train.init_checkpoint={shipped}"])
    _, obs_shape, n = probe_env(exp)
    model = build_actor_critic(exp.model, obs_shape, n)
    found = _init_checkpoint(exp, Path("train_dir") / exp.name, model.state_dict(), resuming=False)
    assert found is not None and found[0] == shipped and found[1] == 436_273_152


# ------------------------------------------------------------------ YAML 1.1 booleans (on/off/yes/no)


def test_off_is_the_choice_off_in_overrides_and_files(tmp_path):
    # PyYAML's YAML 1.1 read `off` as False, and `train.compile=off` failed against ['off', 'default', ...]
    exp = load_experiment("bottleneck-srmt", ["train.compile=off", "train.autocast=off"])
    assert (exp.train.compile, exp.train.autocast) == ("off", "off")
    f = tmp_path / "exp.yaml"
    f.write_text("base: [experiment/bottleneck-srmt.yaml]\ntrain:\n  compile: off\n  serial: yes\n")
    exp = load_experiment(str(f))
    assert exp.train.compile == "off" and exp.train.serial is True


@pytest.mark.parametrize("word", ["Off", "OFF"])
def test_other_spellings_of_off_are_a_one_line_error_not_a_silent_false(tmp_path, word):
    f = tmp_path / "exp.yaml"
    f.write_text(f"base: [experiment/bottleneck-srmt.yaml]\ntrain:\n  compile: {word}\n")
    for source, overrides in (("bottleneck-srmt", [f"train.compile={word}"]), (str(f), [])):
        with pytest.raises(configs.ConfigError, match=f"Invalid value '{word}'") as e:
            load_experiment(source, overrides)
        assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "text, value", [("yes", True), ("on", True), ("no", False), ("off", False), ("true", True)]
)
def test_yaml11_words_still_set_bool_fields(text, value):
    assert load_experiment("bottleneck-srmt", [f"train.serial={text}"]).train.serial is value
    assert configs.load_yaml(f"a: {text}") == {"a": value}  # no schema: as yaml.safe_load reads it


def test_a_yaml11_word_for_a_choice_field_that_lacks_it_is_one_line():
    with pytest.raises(
        configs.ConfigError, match=r"train.compile: Invalid value 'yes', expected one of"
    ) as e:
        load_experiment("bottleneck-srmt", ["train.compile=yes"])
    assert "\n" not in str(e.value)
