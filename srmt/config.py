"""ModelConfig: the model component's typed config (owned by ``srmt``).

One dataclass for encoder -> memory core -> heads.  Presets live in ``configs/model/*.yaml`` (the
paper's Bottleneck and LMAPF sizes plus a mid size for fast GPU training); the core variant is one
``Literal`` so ``model.core=gru`` swaps the memory mechanism and keeps every size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CoreName = Literal["srmt", "rmt", "attention", "gru", "none"]
StatePrecision = Literal["float32", "bfloat16"]
CORE_NAMES: tuple[str, ...] = ("srmt", "rmt", "attention", "gru", "none")
EncoderName = Literal["auto", "conv", "mlp"]
ENCODER_NAMES: tuple[str, ...] = ("auto", "conv", "mlp")


@dataclass
class ModelConfig:
    core: CoreName = "srmt"
    """Memory core: ``srmt`` (per-agent memory, read through a pool shared by the agents of one
    environment), ``rmt`` (per-agent memory, no sharing), ``attention`` (attention over the recent
    history, no memory), ``gru`` (a GRU cell) or ``none`` (feed-forward, no state)."""
    hidden_size: int = 16
    """Width D of the observation embedding, the memory vector and every attention token."""
    num_heads: int = 4
    """Attention heads (self-attention over an agent's tokens and cross-attention to the pool)."""
    num_layers: int = 1
    """Transformer layers in the attention cores (``srmt``, ``rmt``, ``attention``)."""
    encoder: EncoderName = "auto"
    """Observation encoder: ``conv`` (the ResNet stack, for image / grid observations ``(C, H, W)``),
    ``mlp`` (for vector observations; any shape is flattened) or ``auto`` (conv for 3-D observation
    spaces, mlp for the rest)."""
    normalize_input: bool = False
    """Normalise each observation element by a running mean and variance (kept with the weights, updated
    by the learner's training passes, clipped to +-5) before the encoder."""
    mlp_encoder_size: int = 64
    """Width of the hidden layers of the ``mlp`` encoder."""
    mlp_encoder_layers: int = 2
    """Hidden layers of the ``mlp`` encoder (0 = one linear layer to ``hidden_size``)."""
    num_filters: int = 8
    """Channels of every conv layer of the ResNet observation encoder."""
    num_res_blocks: int = 1
    """Residual blocks (two 3x3 convs each) after the encoder's first conv; 0 keeps only that conv."""
    history_len: int = 8
    """Window K of recent observation embeddings an agent attends to besides the current one
    (``srmt``, ``rmt``, ``attention``); 0 attends to the current embedding (and memory) only."""
    history_dim: int = 0
    """Width of each stored history slot (``srmt``, ``rmt``, ``attention``): an embedding entering the
    window is projected to this width and back to ``hidden_size`` when attended; 0 = ``hidden_size`` (no
    projection). The state holds ``history_len x history_dim`` history floats, which sample-factory
    copies in and out at every step, so a small width is the main lever on training throughput."""
    state_precision: StatePrecision = "float32"
    """Precision the recurrent state keeps between steps: ``bfloat16`` rounds the new state after every
    step (step and sequence mode alike, so they stay equal) and the sample-factory adapter stores two
    values per float32 slot, halving the state traffic; ``float32`` keeps it exact."""
    mlp_ratio: float = 4.0
    """Hidden width of the transformer MLP (and of the ``none`` core's MLP) as a multiple of
    ``hidden_size``."""
    dropout: float = 0.0
    """Dropout on attention weights and MLP outputs (training mode only)."""

    def __post_init__(self) -> None:
        if self.core not in CORE_NAMES:
            raise ValueError(f"core={self.core!r} is not one of {', '.join(CORE_NAMES)}")
        if self.encoder not in ENCODER_NAMES:
            raise ValueError(f"encoder={self.encoder!r} is not one of {', '.join(ENCODER_NAMES)}")
        for name in ("hidden_size", "num_heads", "num_layers", "num_filters", "mlp_encoder_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        for name in ("num_res_blocks", "history_len", "history_dim", "mlp_encoder_layers"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 0")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} must be divisible by num_heads={self.num_heads}"
            )
        if self.state_precision not in ("float32", "bfloat16"):
            raise ValueError(f"state_precision={self.state_precision!r} must be 'float32' or 'bfloat16'")
        if self.mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio={self.mlp_ratio} must be > 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} must be in [0, 1)")

    @property
    def mlp_size(self) -> int:
        """Hidden width of the MLPs: ``round(mlp_ratio * hidden_size)``, at least 1."""
        return max(1, round(self.mlp_ratio * self.hidden_size))

    @property
    def head_size(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.num_heads
