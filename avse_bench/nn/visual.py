"""The shape both systems' visual encoders share: a 3-D front end over the clip, a 2-D trunk over every frame."""

from __future__ import annotations

import torch
from torch import nn


def per_frame_features(video: torch.Tensor, frontend: nn.Module, trunk: nn.Module,
                       projection: nn.Module) -> torch.Tensor:
    """(B, 1, T, H, W) frames -> (B, T, D): front end, trunk on frames folded into the batch, ReLU(projection)."""
    B = video.shape[0]
    x = frontend(video)  # (B, C, T, h, w)
    _, C, T, h, w = x.shape
    x = x.transpose(1, 2).reshape(B * T, C, h, w)  # frames folded into the batch
    x = trunk(x)  # (B*T, features)
    return torch.relu(projection(x)).reshape(B, T, -1)  # (B, T, D)
