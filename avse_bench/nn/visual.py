"""The shape both systems' visual encoders share: a 3-D front end over the clip, a 2-D trunk over every frame."""

from __future__ import annotations

import torch
from torch import nn

from avse_bench.nn.init import avsec_visual_init


def per_frame_features(video: torch.Tensor, frontend: nn.Module, trunk: nn.Module,
                       projection: nn.Module) -> torch.Tensor:
    """(B, 1, T, H, W) frames -> (B, T, D): front end, trunk on frames folded into the batch, ReLU(projection)."""
    B = video.shape[0]
    x = frontend(video)  # (B, C, T, h, w)
    _, C, T, h, w = x.shape
    x = x.transpose(1, 2).reshape(B * T, C, h, w)  # frames folded into the batch
    x = trunk(x)  # (B*T, features)
    return torch.relu(projection(x)).reshape(B, T, -1)  # (B, T, D)


class FrameVisualEncoder(nn.Module):
    """(B, 1, T, H, W) frames in [0, 1] -> (B, T, out_features): the visual network shape of the AVSEC-2 baseline and
    of the DCNN-RNN entry, with the trunk each system brings.

    Front end as the official baseline's `VisualFeatNet.frontend3D`: Conv3d(1 -> 64, kernel (5, 7, 7), stride
    (1, 2, 2), padding (2, 3, 3), no bias) -> BatchNorm3d -> `activation` -> MaxPool3d((1, 3, 3), stride (1, 2, 2),
    padding (0, 1, 1)), giving (B, 64, T, H/4, W/4); then `trunk` on every frame ((N, 64, h, w) -> (N,
    trunk_features)); then ReLU(Linear(trunk_features -> out_features, no bias)). Initialised as the official code
    does (`avsec_visual_init`). Module names `frontend`, `trunk`, `projection`.
    """

    def __init__(self, trunk: nn.Module, trunk_features: int, activation: nn.Module, frontend_channels: int = 64,
                 out_features: int = 256):
        super().__init__()
        c = frontend_channels
        self.frontend = nn.Sequential(
            nn.Conv3d(1, c, kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
            nn.BatchNorm3d(c),
            activation,
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        self.trunk = trunk
        self.projection = nn.Linear(trunk_features, out_features, bias=False)
        avsec_visual_init(self)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return per_frame_features(video, self.frontend, self.trunk, self.projection)
