"""Observation encoders ``[..., *obs_shape] -> [..., D]``, picked from the observation shape.

- :class:`ResNetEncoder`: a ResNet-style conv stack for image / grid observations ``(C, H, W)``.
- :class:`MLPEncoder`: an MLP for vector observations ``(D,)`` (any other shape is flattened).
- :class:`RunningNorm`: optional per-element input normalisation (running mean and variance), kept in
  the module's buffers so that a checkpoint carries it.

:func:`build_encoder` chooses between them from ``ModelConfig.encoder`` (``auto``: conv for 3-D
observation shapes, MLP for the rest).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from srmt.config import ModelConfig


class RunningNorm(nn.Module):
    """``(x - mean) / sqrt(var + eps)`` per observation element, clipped to ``[-clip, clip]``.

    The statistics are buffers (saved with the weights, copied to inference workers with them). They are
    updated from every call made in training mode with gradients enabled, i.e. by the learner's loss pass
    and not by acting or by value bootstrapping under ``torch.no_grad``; eval mode only reads them.
    Updates use Chan et al.'s parallel combination of (count, mean, M2), in float64.
    """

    count: Tensor
    mean: Tensor
    m2: Tensor

    def __init__(self, obs_shape: tuple[int, ...], eps: float = 1e-5, clip: float = 5.0) -> None:
        super().__init__()
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.eps = eps
        self.clip = clip
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(self.obs_shape, dtype=torch.float64))
        self.register_buffer("m2", torch.zeros(self.obs_shape, dtype=torch.float64))

    @property
    def var(self) -> Tensor:
        return self.m2 / self.count.clamp(min=1.0)

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        """Fold the samples ``x [..., *obs_shape]`` into the statistics (in place: shared buffers stay shared)."""
        batch = x.detach().reshape(-1, *self.obs_shape).to(torch.float64)
        n_b = float(batch.shape[0])
        if n_b == 0:
            return
        mean_b = batch.mean(0)
        m2_b = ((batch - mean_b) ** 2).sum(0)
        n_a = self.count.clone()
        total = n_a + n_b
        delta = mean_b - self.mean
        self.mean.add_(delta * (n_b / total))
        self.m2.add_(m2_b + delta**2 * (n_a * n_b / total))
        self.count.copy_(total)

    def forward(self, x: Tensor) -> Tensor:
        if self.training and torch.is_grad_enabled():
            self.update(x)
        dtype = x.dtype if x.is_floating_point() else torch.float32
        mean = self.mean.to(dtype)
        std = torch.sqrt(self.var + self.eps).to(dtype)
        return ((x.to(dtype) - mean) / std).clamp(-self.clip, self.clip)


class ResidualBlock(nn.Module):
    """``x + conv(relu(conv(relu(x))))`` with 3x3 convs that keep the spatial size."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(torch.relu(self.conv1(torch.relu(x))))


class ResNetEncoder(nn.Module):
    """Conv stem, ``num_res_blocks`` residual blocks, flatten, linear to ``out_size``, ReLU.

    No pooling: POGEMA observations are small (11x11 for radius 5) and every cell matters.  The size of
    the flattened conv output is measured with a dummy forward pass, never typed in.
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        num_filters: int,
        num_res_blocks: int,
        out_size: int,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        if len(obs_shape) != 3 or min(obs_shape) < 1:
            raise ValueError(
                f"obs_shape={tuple(obs_shape)} must be (channels, height, width), all >= 1, for the conv "
                "encoder; vector observations take model.encoder=mlp"
            )
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.out_size = out_size
        # no submodule (and no state_dict entry) when off, so checkpoints without it load unchanged
        self.norm = RunningNorm(self.obs_shape) if normalize else None
        self.convs = nn.Sequential(
            nn.Conv2d(self.obs_shape[0], num_filters, 3, padding=1),
            *(ResidualBlock(num_filters) for _ in range(num_res_blocks)),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            conv_out = self.convs(torch.zeros(1, *self.obs_shape)).shape[1]
        self.fc = nn.Linear(conv_out, out_size)

    def forward(self, obs: Tensor) -> Tensor:
        """``obs [..., C, H, W]`` (any float or integer dtype) -> ``[..., out_size]``."""
        if tuple(obs.shape[-3:]) != self.obs_shape:
            raise ValueError(f"observation shape {tuple(obs.shape)} must end with {self.obs_shape}")
        lead = obs.shape[:-3]
        if self.norm is not None:
            obs = self.norm(obs)
        x = obs.reshape(-1, *self.obs_shape).to(self.fc.weight.dtype)  # (B, C, H, W)
        x = torch.relu(self.fc(self.convs(x)))  # (B, D)
        return x.view(*lead, self.out_size)


class MLPEncoder(nn.Module):
    """Flatten the observation, then ``num_layers`` hidden layers of ``hidden`` units (ReLU) and a linear
    layer to ``out_size`` (ReLU), the same output convention as :class:`ResNetEncoder`."""

    def __init__(
        self, obs_shape: tuple[int, ...], hidden: int, num_layers: int, out_size: int, normalize: bool = False
    ) -> None:
        super().__init__()
        if len(obs_shape) < 1 or min(obs_shape) < 1:
            raise ValueError(f"obs_shape={tuple(obs_shape)} must have at least one axis, all sizes >= 1")
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.out_size = out_size
        self.norm = RunningNorm(self.obs_shape) if normalize else None
        sizes = [math.prod(self.obs_shape)] + [hidden] * num_layers
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        self.hidden = nn.Sequential(*layers)
        self.fc = nn.Linear(sizes[-1], out_size)

    def forward(self, obs: Tensor) -> Tensor:
        """``obs [..., *obs_shape]`` -> ``[..., out_size]``."""
        n = len(self.obs_shape)
        if tuple(obs.shape[-n:]) != self.obs_shape:
            raise ValueError(f"observation shape {tuple(obs.shape)} must end with {self.obs_shape}")
        lead = obs.shape[:-n]
        if self.norm is not None:
            obs = self.norm(obs)
        x = obs.reshape(-1, math.prod(self.obs_shape)).to(self.fc.weight.dtype)  # (B, F)
        x = torch.relu(self.fc(self.hidden(x)))  # (B, D)
        return x.view(*lead, self.out_size)


def encoder_kind(cfg: ModelConfig, obs_shape: tuple[int, ...]) -> str:
    """``conv`` or ``mlp``: ``cfg.encoder``, or for ``auto`` conv when the observation is (C, H, W)."""
    if cfg.encoder != "auto":
        return cfg.encoder
    return "conv" if len(obs_shape) == 3 else "mlp"


def build_encoder(cfg: ModelConfig, obs_shape: tuple[int, ...]) -> ResNetEncoder | MLPEncoder:
    """The encoder ``cfg`` asks for, sized for one agent's observation ``obs_shape``."""
    shape = tuple(int(s) for s in obs_shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"obs_shape={shape} must have at least one axis, all sizes >= 1")
    kind = encoder_kind(cfg, shape)
    if kind == "conv":
        return ResNetEncoder(shape, cfg.num_filters, cfg.num_res_blocks, cfg.hidden_size, cfg.normalize_input)
    return MLPEncoder(
        shape, cfg.mlp_encoder_size, cfg.mlp_encoder_layers, cfg.hidden_size, cfg.normalize_input
    )
