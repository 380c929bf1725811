"""The sample-factory 2.1.1 adapter: train srmt models with APPO, no fork of sample-factory.

    from agents.sf import train, load_policy, evaluate_bottleneck
    result = train(load_experiment("bottleneck-srmt"))          # -> TrainResult
    net, exp = load_policy(result.run_dir, device="cpu")       # srmt.ActorCritic + ExperimentConfig

Modules: ``layout`` (rows <-> [G, A, T], the only reshapes), ``env`` (srmt envs as batched multi-agent
sample-factory envs), ``model`` (srmt.ActorCritic behind sample-factory's ActorCritic), ``learner`` and
``runner`` (subclasses closing the upstream gaps), ``sf_config`` (config mapping and start-up checks),
``checkpoint`` (weights-only loading), ``evaluate`` (episodes with a trained policy).
"""

from agents.sf.checkpoint import find_checkpoint, load_policy, read_checkpoint
from agents.sf.evaluate import EpisodeRunner, evaluate_bottleneck, run_episodes
from agents.sf.sf_config import check_layout, make_sf_config
from agents.sf.training import TrainResult, train

__all__ = [
    "EpisodeRunner",
    "TrainResult",
    "check_layout",
    "evaluate_bottleneck",
    "find_checkpoint",
    "load_policy",
    "make_sf_config",
    "read_checkpoint",
    "run_episodes",
    "train",
]
