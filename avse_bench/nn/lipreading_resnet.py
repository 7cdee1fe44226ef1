"""The ResNet-18 trunk of the lip-reading TCN (github.com/mpc001/Lipreading_using_Temporal_Convolutional_Networks,
`lipreading/models/resnet.py`, relu_type "prelu"), as two official baselines build it, without its 2-D stem (a 3-D
conv stem stands before it): the AVSEC-1 baseline (cogmhear/avse_challenge baseline/avse1/utils/resnet.py) and the
Real-World AVSE 2026 baseline (look2hear/videomodels/resnet_videomodel.py). The module names (layer1-4, conv1, bn1,
relu1, relu2, conv2, bn2, downsample) and the order modules are built in are theirs, so their checkpoints load
strictly and a fresh trunk draws the same initial weights for the same seed.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class BasicBlock(nn.Module):
    """conv3x3 - BN - PReLU - conv3x3 - BN, plus the (downsampled) input, then PReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.PReLU(num_parameters=cout)
        self.relu2 = nn.PReLU(num_parameters=cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + (x if self.downsample is None else self.downsample(x)))


class ResNetTrunk(nn.Module):
    """Four layers of two basic blocks (64, 128, 256, 512 channels; stride 2 from the second), global average
    pooling: (B', 64, H, W) -> (B', 512). Initialised as the official ResNet: every Conv2d's weight from
    N(0, sqrt(2 / (k * k * out))), BatchNorm weight 1 and bias 0."""

    def __init__(self):
        super().__init__()
        self.inplanes = 64
        self.layer1 = self._layer(64, stride=1)
        self.layer2 = self._layer(128, stride=2)
        self.layer3 = self._layer(256, stride=2)
        self.layer4 = self._layer(512, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.data.normal_(0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()

    def _layer(self, planes: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes))
        blocks = [BasicBlock(self.inplanes, planes, stride, downsample), BasicBlock(planes, planes)]
        self.inplanes = planes
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)  # (B', 512)
