"""POGEMA environments for srmt (pogema / gymnasium / numpy only; never imports torch).

    from envs import make_env
    from envs.config import EnvConfig

    env = make_env(EnvConfig(name="bottleneck"), seed=0)
    obs, infos = env.reset()                 # obs [A, 3, 2r+1, 2r+1] float32
    obs, rew, term, trunc, infos = env.step(actions)

Registered envs: ``bottleneck`` (the SRMT paper's corridor task), ``cue`` / ``cue_partner`` (the Cue
Bottleneck memory tasks, with the Bottleneck's options), ``tmaze`` (the passive T-Maze memory task of
RATE), ``pogema`` (any POGEMA grid),
``pettingzoo`` (any PettingZoo Parallel env) and ``gym_multiagent`` (a gymnasium-style multi-agent env);
add more with :func:`register_env` (docs/extending.md). ``make_vector_env(cfg, seeds)`` steps many
envs of one config as one (:mod:`envs.vector`; batched for ``bottleneck``).
"""

from envs.adapters import (
    GymMultiAgentEnv,
    GymMultiAgentOptions,
    PettingZooEnv,
    PettingZooOptions,
    build_gym_multiagent,
    build_pettingzoo,
)
from envs.base import MultiAgentEnv
from envs.bottleneck import (
    BottleneckOptions,
    bottleneck_config,
    build_bottleneck,
    test_corridor_lengths,
    train_corridor_lengths,
)
from envs.config import EnvConfig
from envs.grid_env import GridEnv
from envs.plugins import PluginError, import_plugin
from envs.pogema_task import build_pogema
from envs.registry import EnvSpec, env_spec, make_env, register_env, registered_envs, unregister_env

register_env("pogema", build_pogema, grid=True, replace=True)
register_env("bottleneck", build_bottleneck, BottleneckOptions, grid=True, replace=True)
register_env("pettingzoo", build_pettingzoo, PettingZooOptions, replace=True)
register_env("gym_multiagent", build_gym_multiagent, GymMultiAgentOptions, replace=True)

from envs.cue import CueOptions, build_cue, build_cue_partner  # noqa: E402  (needs the registry above)

register_env("cue", build_cue, CueOptions, grid=True, replace=True)
register_env("cue_partner", build_cue_partner, CueOptions, grid=True, replace=True)

from envs.tmaze import TMazeOptions, build_tmaze  # noqa: E402

register_env("tmaze", build_tmaze, TMazeOptions, replace=True)

from envs.bottleneck_vec import build_bottleneck_vector  # noqa: E402
from envs.cue_vec import build_cue_partner_vector, build_cue_vector  # noqa: E402
from envs.vector import LoopVectorEnv, VectorEnv, make_vector_env, register_vector_env  # noqa: E402

register_vector_env("bottleneck", build_bottleneck_vector)
register_vector_env("cue", build_cue_vector)
register_vector_env("cue_partner", build_cue_partner_vector)

__all__ = [
    "BottleneckOptions",
    "CueOptions",
    "EnvConfig",
    "EnvSpec",
    "GymMultiAgentEnv",
    "GymMultiAgentOptions",
    "PettingZooEnv",
    "PettingZooOptions",
    "PluginError",
    "TMazeOptions",
    "GridEnv",
    "LoopVectorEnv",
    "MultiAgentEnv",
    "VectorEnv",
    "bottleneck_config",
    "env_spec",
    "import_plugin",
    "make_env",
    "make_vector_env",
    "register_env",
    "register_vector_env",
    "registered_envs",
    "test_corridor_lengths",
    "train_corridor_lengths",
    "unregister_env",
]
