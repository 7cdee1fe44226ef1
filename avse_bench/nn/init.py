"""The official AVSEC-2 baseline's initialisation of a visual network, shared by the systems whose code uses it."""

from __future__ import annotations

import math

from torch import nn


def avsec_visual_init(visual: nn.Module) -> None:
    """Re-draw `visual`'s weights as the official baseline does (VisualFeatNet._initialize_weights_randomly in
    baseline/avse2/model.py of github.com/cogmhear/avse_challenge; the DCNN-RNN entry's public code,
    github.com/RamiSaad/AVSE-2-Challenge model.py, keeps the same function): every Conv1d/2d/3d weight
    ~ N(0, 2 / (prod(kernel_size) * out_channels)) (He, fan-out), biases zero; every BatchNorm weight 1, bias 0;
    every Linear weight ~ N(0, 2 / in_features) (this replaces the xavier_uniform_ the official code draws first).
    In place; the separator and the audio path are not touched (the official code leaves them at PyTorch's defaults).
    """
    for m in visual.modules():
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d):
            fan = math.prod(m.kernel_size) * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / m.in_features))
