"""POGEMA environments for srmt (pogema / gymnasium / numpy only; never imports torch).

    from envs import make_env
    from envs.config import EnvConfig

    env = make_env(EnvConfig(name="bottleneck"), seed=0)
    obs, infos = env.reset()                 # obs [A, 3, 2r+1, 2r+1] float32
    obs, rew, term, trunc, infos = env.step(actions)

Registered envs: ``bottleneck`` (the SRMT paper's corridor task) and ``pogema`` (any POGEMA grid);
add more with :func:`register_env`.
"""

from envs.base import MultiAgentEnv
from envs.bottleneck import bottleneck_config, build_bottleneck, test_corridor_lengths, train_corridor_lengths
from envs.config import EnvConfig
from envs.grid_env import GridEnv
from envs.pogema_task import build_pogema
from envs.registry import make_env, register_env, registered_envs, unregister_env

register_env("pogema", build_pogema, replace=True)
register_env("bottleneck", build_bottleneck, replace=True)

from envs.cue import build_cue, build_cue_partner  # noqa: E402  (needs the registry above)

register_env("cue", build_cue, replace=True)
register_env("cue_partner", build_cue_partner, replace=True)

__all__ = [
    "EnvConfig",
    "GridEnv",
    "MultiAgentEnv",
    "bottleneck_config",
    "make_env",
    "register_env",
    "registered_envs",
    "test_corridor_lengths",
    "train_corridor_lengths",
    "unregister_env",
]
