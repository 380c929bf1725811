"""srmt models: encoder -> memory core (shared recurrent memory and variants) -> heads. torch only.

``build_actor_critic(ModelConfig(core="srmt"), obs_shape=(3, 11, 11), num_actions=5)`` (or a vector
``obs_shape=(18,)``: the encoder follows the observation shape) gives an
:class:`ActorCritic`; ``initial_state(G, A)`` its zero state; ``step`` runs one step for ``[G, A]`` agents
and ``sequence`` T steps with backpropagation through the memory and the shared pool.
"""

from srmt.blocks import MemoryBlock, MemoryTransformer, Pool, SegmentOutput
from srmt.config import CORE_NAMES, ModelConfig
from srmt.core import CORES, MemoryCore, build_core
from srmt.encoder import MLPEncoder, ResNetEncoder, RunningNorm, build_encoder
from srmt.model import ActorCritic, ActorCriticOutput, build_actor_critic, mask_logits

__all__ = [
    "CORES",
    "CORE_NAMES",
    "ActorCritic",
    "ActorCriticOutput",
    "MemoryBlock",
    "MemoryCore",
    "MLPEncoder",
    "MemoryTransformer",
    "ModelConfig",
    "Pool",
    "ResNetEncoder",
    "RunningNorm",
    "SegmentOutput",
    "build_actor_critic",
    "build_core",
    "build_encoder",
    "mask_logits",
]
