"""Observation encoder: a ResNet-style conv stack for grid observations ``[..., C, H, W] -> [..., D]``."""

from __future__ import annotations

import torch
from torch import Tensor, nn


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

    def __init__(self, obs_shape: tuple[int, int, int], num_filters: int, num_res_blocks: int, out_size: int):
        super().__init__()
        if len(obs_shape) != 3 or min(obs_shape) < 1:
            raise ValueError(f"obs_shape={tuple(obs_shape)} must be (channels, height, width), all >= 1")
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.out_size = out_size
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
        x = obs.reshape(-1, *self.obs_shape).to(self.fc.weight.dtype)  # (B, C, H, W)
        x = torch.relu(self.fc(self.convs(x)))  # (B, D)
        return x.view(*lead, self.out_size)
