"""`srmt --version` and `srmt <cmd> --help`: plain text, every config key with its default, no pointers to
files the installed package does not have."""

from __future__ import annotations

import re

import pytest

from agents import cli
from agents.config_docs import rows
from agents.eval_config import EvalConfig

HELPS = {
    "train": ["train", "--help"],
    "demo": ["demo", "--help"],
    "eval": ["eval", "--help"],
    "enjoy": ["enjoy", "--help"],
    "offline": ["offline", "--help"],
    "envs play": ["envs", "play", "--help"],
    "data": ["data", "--help"],
    "top": ["--help"],
}


def _help(capsys, argv: list[str]) -> str:
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse's --help exits
        code = e.code
    assert code == 0, argv
    return capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(HELPS))
def test_help_is_plain_text_without_doc_pointers(name, capsys):
    out = _help(capsys, HELPS[name])
    assert "``" not in out and ":class:" not in out and ":mod:" not in out, name
    assert not re.search(r"docs/\w+\.md", out), f"{name} --help points to docs the wheel lacks"


def test_help_lists_the_config_keys_with_defaults(capsys):
    out = _help(capsys, ["eval", "--help"])
    for key, *_ in rows(EvalConfig):
        if "<name>" not in key:
            assert f"  {key} = " in out, key
    assert "  benchmark_dir = 'pogema-benchmark'" in out
    out = _help(capsys, ["train", "--help"])
    assert "  train.train_for_env_steps = 1000000" in out and "  model.core = 'srmt'" in out
    out = _help(capsys, ["demo", "--help"])  # the demo's own config values, not the dataclass defaults
    assert "  train.train_for_env_steps = 2500000" in out and "  env.reward = 'directional_negative'" in out
    assert "  train.train_for_seconds = 0.0" in out
    out = _help(capsys, ["offline", "--help"])
    assert re.search(r"^  train\.\w+ = ", out, re.M)
    assert "  enjoy.num_agents = 16" in _help(capsys, ["enjoy", "--help"])


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out.strip()
    assert re.fullmatch(r"srmt (\d+\.\d+\.\d+.*|unknown.*)", out)
