"""EnvConfig: presets, YAML loading and one-line errors for bad input."""

from __future__ import annotations

import pytest

import configs
from configs import paths
from envs import make_env
from envs.config import EnvConfig

PRESETS = configs.available("env")


def test_presets_exist():
    for name in ["bottleneck-train", "bottleneck-test", "random-32x32-lifelong", "mazes-lifelong"]:
        assert f"env/{name}.yaml" in PRESETS


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_builds_and_resets(preset):
    cfg = configs.load(EnvConfig, preset)
    if cfg.maps_file and not any(c.is_file() for c in paths.candidates(cfg.maps_file)):
        pytest.skip(f"benchmark data {cfg.maps_file} not present (`srmt data fetch` or SRMT_DATA)")
    env = make_env(cfg, seed=0)
    obs, infos = env.reset()
    assert obs.shape == (cfg.num_agents, *env.observation_space.shape) and len(infos) == cfg.num_agents


def test_overrides_and_derived_values():
    cfg = configs.load(EnvConfig, "env/bottleneck-train", ["reward=dense", "options.corridor_lengths=[5,6]"])
    assert cfg.reward == "dense" and cfg.opts.corridor_lengths == [5, 6] and cfg.obs_radius == 2
    assert cfg.opts.split == "train"
    cfg = configs.load(EnvConfig, {"name": "pogema", "width": 12, "height": 7})
    assert (cfg.grid_height, cfg.grid_width) == (7, 12)


def _one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


def test_unknown_reward_names_value_and_choices():
    with pytest.raises(configs.ConfigError, match=r"Invalid value 'shaped', expected one of \['sparse'") as e:
        configs.load(EnvConfig, "env/bottleneck-train", ["reward=shaped"])
    _one_line(e)
    with pytest.raises(
        ValueError,
        match=r"unknown reward 'shaped'; allowed: sparse, dense, moving_negative, directional, directional_negative",
    ) as e:
        EnvConfig(reward="shaped")
    _one_line(e)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (
            {"name": "gridworld"},
            r"unknown env name 'gridworld'; registered: (.*, )?bottleneck, (.*, )?pogema",
        ),
        (
            {"collision_system": "bounce"},
            r"unknown collision_system 'bounce'; allowed: block_both, priority, soft",
        ),
        ({"on_target": "stay"}, r"unknown on_target 'stay'; allowed: finish, nothing, restart"),
        (
            {"options": {"corridor_lengths": [0]}},
            r"corridor length 0 is invalid; corridor lengths must be integers in 1\.\.4092",
        ),
        # a corridor of 10**8 cells would allocate gigabytes before failing with a MemoryError (issue 15)
        (
            {"options": {"corridor_lengths": [100000000]}},
            r"corridor length 100000000 is invalid; .* 1\.\.4092",
        ),
        (
            {"name": "cue", "options": {"corridor_lengths": [100000000]}},
            r"corridor length 100000000 is invalid; .* 1\.\.4092",
        ),
        (
            {"options": {"split": "val"}},
            r"env.options.split: Invalid value 'val', expected one of \['train', 'test'\]",
        ),
        (
            {"options": {"corridor_length": [3]}},
            r"env.options.corridor_length is not an option of env 'bottleneck'; allowed: split, corridor_lengths",
        ),
        (
            {"name": "cue_partner", "options": {"corridor_length": [3]}},
            r"env.options.corridor_length is not an option of env 'cue_partner'; allowed: split, corridor_lengths",
        ),
        (
            {"name": "pogema", "options": {"split": "test"}},
            r"env 'pogema' takes no options; got env.options.split",
        ),
        ({"num_agents": 0}, r"num_agents=0 is invalid"),
        ({"obs_radius": 0}, r"obs_radius=0 is out of range; allowed: 1..128"),
        ({"max_episode_steps": 0}, r"max_episode_steps=0 is invalid"),
        ({"density": 1.5}, r"density=1.5 is out of range"),
        ({"width": 5}, r"width=5, height=None: give both or neither"),
        ({"map": ".", "maps_file": "x.yaml"}, r"map and maps_file are exclusive"),
        ({"map_name": "x"}, r"select maps from a maps_file"),
    ],
)
def test_bad_values_are_one_line_errors(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern) as e:
        EnvConfig(**kwargs)
    _one_line(e)


def test_yaml_errors_name_the_key():
    with pytest.raises(configs.ConfigError, match="corridor length 0 is invalid") as e:
        configs.load(EnvConfig, {"options": {"corridor_lengths": [3, 0]}})
    _one_line(e)
    with pytest.raises(configs.ConfigError, match="Key 'map_file' not in 'EnvConfig'"):
        configs.load(EnvConfig, {"map_file": "x"})


def test_illegal_map_character():
    with pytest.raises(
        ValueError, match=r"map 'map': illegal character '%' at row 1, column 2; allowed: '.' free"
    ) as e:
        make_env(EnvConfig(name="pogema", map="....\n..%.\n...."))
    _one_line(e)


def test_more_agents_than_free_cells():
    with pytest.raises(ValueError, match=r"num_agents=5 is more than the 4 free cells of map 'map'") as e:
        make_env(EnvConfig(name="pogema", num_agents=5, map="#.#\n.#.\n#.#"))
    _one_line(e)
    with pytest.raises(ValueError, match=r"num_agents=17 is more than the 16 cells of a 4x4 map"):
        make_env(EnvConfig(name="pogema", num_agents=17, size=4))
    # fits the free cells but not pogema's placement (start and goal per agent): still one line
    with pytest.raises(ValueError, match=r"cannot place num_agents=3 on map") as e:
        make_env(EnvConfig(name="pogema", num_agents=3, map="...#\n####")).reset()
    _one_line(e)


def test_letter_maps():
    with pytest.raises(ValueError, match=r"fixes 2 agents with letters but num_agents=3"):
        make_env(EnvConfig(name="pogema", num_agents=3, map="a.A\nb.B"))
    with pytest.raises(ValueError, match=r"on_target='restart' needs goal sequences"):
        make_env(EnvConfig(name="pogema", num_agents=2, map="a.A\nb.B", on_target="restart"))


def test_pogema_rejections_become_one_line():
    with pytest.raises(ValueError, match=r"invalid pogema grid config \(.*requires goal sequences") as e:
        make_env(
            EnvConfig(
                name="pogema",
                num_agents=1,
                map="...",
                agents_xy=[[0, 0]],
                targets_xy=[[0, 2]],
                on_target="restart",
            )
        )
    _one_line(e)
    with pytest.raises(ValueError, match=r"env 'pogema' takes no options; got env.options.corridor_lengths"):
        make_env(EnvConfig(name="pogema", options={"corridor_lengths": [3]}))


def test_obs_radius_task_defaults():
    assert EnvConfig(name="bottleneck").radius == 2
    assert EnvConfig(name="pogema").radius == 5
    assert EnvConfig(name="bottleneck", obs_radius=4).radius == 4
