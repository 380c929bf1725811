"""Plugins, per-env typed options and the env registry (issue 12)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import configs
from envs import env_spec, import_plugin, make_env, register_env, registered_envs, unregister_env
from envs.config import EnvConfig, upgrade_legacy
from envs.plugins import PluginError

ROOT = Path(__file__).resolve().parents[1]

HELPER = """
SIZE = 4
"""

PLUGIN = """
from dataclasses import dataclass

import gymnasium
import numpy as np

from envs import MultiAgentEnv, register_env
from helpers_{tag} import SIZE  # a sibling module of this file


@dataclass
class CountOptions:
    target: int = 3
    '''Steps until the episode ends.'''


class CountEnv(MultiAgentEnv):
    def __init__(self, cfg, seed):
        self.num_agents = cfg.num_agents or 2
        self.target = cfg.opts.target
        self.observation_space = gymnasium.spaces.Box(0, 1, (SIZE,), np.float32)
        self.action_space = gymnasium.spaces.Discrete(2)
        self._t = 0

    @property
    def active(self):
        return np.ones(self.num_agents, bool)

    def reset(self, seed=None):
        self._t = 0
        return np.zeros((self.num_agents, SIZE), np.float32), [{{}} for _ in range(self.num_agents)]

    def step(self, actions):
        self._t += 1
        done = np.full(self.num_agents, self._t >= self.target)
        infos = [{{"metrics": {{"steps": float(self._t)}}}} if done[0] else {{}} for _ in range(self.num_agents)]
        obs = np.zeros((self.num_agents, SIZE), np.float32)
        return obs, np.asarray(actions, np.float32), done, np.zeros_like(done), infos


register_env("count-{tag}", CountEnv, CountOptions)
"""


def _write_plugin(folder: Path, tag: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"helpers_{tag}.py").write_text(HELPER)
    path = folder / f"count_{tag}.py"
    path.write_text(PLUGIN.format(tag=tag))
    return path


def _one_line(e: pytest.ExceptionInfo) -> None:
    assert "\n" not in str(e.value)


def test_file_plugin_with_sibling_import_registers_an_env_with_typed_options(tmp_path):
    path = _write_plugin(tmp_path / "plugin", "file")
    try:
        cfg = EnvConfig(name="count-file", plugin=str(path), options={"target": 2})
        assert cfg.opts.target == 2 and cfg.plugin == str(path.resolve())
        assert env_spec("count-file").plugin == str(path.resolve())
        env = make_env(cfg, seed=0)
        obs, _ = env.reset()
        assert obs.shape == (2, 4)
        env.step(np.zeros(2, int))
        *_, infos = env.step(np.ones(2, int))
        assert infos[0]["metrics"] == {"steps": 2.0}
        # without env.plugin the registry names the plugin, so the saved config does too
        again = EnvConfig(name="count-file")
        assert again.plugin == str(path.resolve()) and again.opts.target == 3
        # options are checked against the env's own dataclass
        with pytest.raises(
            ValueError, match=r"env.options.steps is not an option of env 'count-file'; allowed: target"
        ) as e:
            EnvConfig(name="count-file", options={"steps": 2})
        _one_line(e)
        with pytest.raises(configs.ConfigError, match=r"env.options.target: Value 'many'.*Integer") as e:
            configs.load(EnvConfig, {"name": "count-file"}, ["options.target=many"])
        _one_line(e)
        # a POGEMA grid key on a non-grid env is refused, naming the env's own options
        with pytest.raises(
            ValueError,
            match=r"env.reward='dense' is a POGEMA grid key; env 'count-file' does not read it.*options: target",
        ):
            EnvConfig(name="count-file", reward="dense")
    finally:
        unregister_env("count-file")


def test_saved_config_rebuilds_a_plugin_env_in_a_fresh_process(tmp_path):
    path = _write_plugin(tmp_path / "elsewhere", "fresh")
    try:
        saved = configs.to_dict(EnvConfig(name="count-fresh", plugin=str(path), options={"target": 5}))
    finally:
        unregister_env("count-fresh")
    code = textwrap.dedent(
        """
        import json, sys
        import configs
        from envs import make_env
        from envs.config import EnvConfig
        cfg = configs.load(EnvConfig, json.loads(sys.argv[1]))
        env = make_env(cfg, seed=0)
        print(cfg.opts.target, env.reset()[0].shape)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(saved)],
        cwd=tmp_path,  # neither the plugin's folder nor the project's
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["5", "(2,", "4)"]


def test_module_plugin_is_imported_from_the_working_directory(tmp_path, monkeypatch):
    pkg = tmp_path / "my_pkg"
    _write_plugin(pkg, "mod")
    (pkg / "__init__.py").write_text("")
    # the package's modules import their sibling as a top-level module, so give that folder too
    monkeypatch.syspath_prepend(str(pkg))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        cfg = EnvConfig(name="count-mod", plugin="my_pkg.count_mod")
        assert cfg.plugin == "my_pkg.count_mod" and "count-mod" in registered_envs()
    finally:
        unregister_env("count-mod")


@pytest.mark.parametrize(
    "spec, source, match",
    [
        ("missing_dir/nope.py", None, r"plugin file 'missing_dir/nope.py' not found"),
        (
            "no_such_pkg.envs",
            None,
            r"plugin module 'no_such_pkg.envs' not found \(no module named 'no_such_pkg'",
        ),
        ("broken.py", "def f(:\n", r"plugin 'broken.py' failed to import: SyntaxError"),
        (
            "raising.py",
            "raise RuntimeError('bad plugin\\nsecond line')\n",
            r"plugin 'raising.py' failed to import: RuntimeError: bad plugin$",
        ),
        (
            "importer.py",
            "import not_installed_module\n",
            r"failed to import: ModuleNotFoundError: No module named 'not_installed_module'",
        ),
    ],
)
def test_plugin_errors_are_one_line(tmp_path, monkeypatch, spec, source, match):
    monkeypatch.chdir(tmp_path)
    if source is not None:
        (tmp_path / spec).write_text(source)
    with pytest.raises(PluginError, match=match) as e:
        import_plugin(spec)
    _one_line(e)
    with pytest.raises(ValueError, match=match):
        EnvConfig(name="pogema", plugin=spec)


def test_registry_lookup_and_registration_errors():
    with pytest.raises(
        ValueError, match=r"unknown env name 'nope'; registered: .*bottleneck.*pogema.*env.plugin"
    ) as e:
        env_spec("nope")
    _one_line(e)
    with pytest.raises(ValueError, match=r"options_type for env 'x' must be a dataclass type or None"):
        register_env("x", lambda cfg, seed: None, dict)
    assert env_spec("bottleneck").grid and env_spec("bottleneck").options_type is not None
    assert env_spec("pogema").options_type is None and env_spec("pogema").plugin is None


def test_legacy_bottleneck_keys_move_under_options():
    old = {"name": "bottleneck", "split": "test", "corridor_lengths": [5], "reward": "dense"}
    new = upgrade_legacy(old)
    assert new == {
        "name": "bottleneck",
        "reward": "dense",
        "options": {"split": "test", "corridor_lengths": [5]},
    }
    assert EnvConfig(**new).opts.corridor_lengths == [5]
    assert upgrade_legacy({"name": "pogema", "corridor_lengths": []}) == {"name": "pogema"}
    assert upgrade_legacy({"name": "pogema"}) == {"name": "pogema"}
    # the Cue tasks (written by main before they registered the Bottleneck's options) upgrade the same way
    cue = upgrade_legacy({"name": "cue_partner", "split": "train", "corridor_lengths": [3, 4]})
    assert cue == {"name": "cue_partner", "options": {"split": "train", "corridor_lengths": [3, 4]}}
    assert EnvConfig(**cue).opts.corridor_lengths == [3, 4]


def test_shipped_bottleneck_presets_keep_their_meaning():
    train = configs.load(EnvConfig, "env/bottleneck-train")
    test = configs.load(EnvConfig, "env/bottleneck-test")
    assert (train.opts.split, test.opts.split) == ("train", "test")
    assert train.num_agents == 2 and train.radius == 2


def test_env_with_a_dict_observation_space_is_refused_in_one_line():
    import gymnasium

    class ImageAndVector:
        num_agents = 2
        observation_space = gymnasium.spaces.Dict(
            {"image": gymnasium.spaces.Box(0, 1, (3, 5, 5)), "vector": gymnasium.spaces.Box(0, 1, (4,))}
        )
        action_space = gymnasium.spaces.Discrete(5)

    register_env("image-and-vector", lambda cfg, seed: ImageAndVector())
    try:
        with pytest.raises(
            ValueError, match=r"env 'image-and-vector': observation_space Dict has several parts"
        ) as e:
            make_env(EnvConfig(name="image-and-vector"))
        _one_line(e)
    finally:
        unregister_env("image-and-vector")
