"""The console script: help lists every sub-command; unknown commands are one-line errors."""

import subprocess
import sys

import pytest

from agents import cli


def test_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert f"  {name} " in out


def test_unknown_command_is_one_line_error(capsys):
    assert cli.main(["frobnicate"]) == 2
    err = capsys.readouterr().err.strip()
    assert "frobnicate" in err and "train" in err
    assert len(err.splitlines()) == 1


def test_bench_unknown_target(capsys):
    assert cli.main(["bench", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("args", [["--help"]])
def test_console_script_entry_point_runs(args):
    # the installed entry point, not just the function
    r = subprocess.run(
        [sys.executable, "-m", "agents.cli", *args], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert "usage: srmt" in r.stdout
