"""The README stays true: its config reference is the generated one and it names every command."""

from pathlib import Path

from agents import cli, config_docs

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_config_reference_is_current():
    block = README.split(config_docs.BEGIN, 1)[1].split(config_docs.END, 1)[0]
    assert block.strip() == config_docs.reference().strip(), "run: python -m agents.config_docs --write"


def test_every_config_key_is_documented():
    for key, _, _, doc in config_docs.rows(__import__("agents.config", fromlist=["x"]).ExperimentConfig):
        assert doc, f"config key {key} has no docstring"


def test_every_command_is_in_readme():
    for name in cli.COMMANDS:
        assert f"srmt {name}" in README, name


def test_setup_commands_present():
    assert "make demo" in README and "make test" in README
