"""`baseline`: the official AVSEC-2 baseline, a time-domain "ResNet-LSTM" audio-visual masking model.

Read top to bottom: the ResNet-18 trunk (run on every frame, after the shared 3-D front end of
`avse_bench.nn.FrameVisualEncoder`, then projected to 256), the official module names, then `build_model`, which
puts it together with the shared audio path and the dual-path separator from `avse_bench.nn` (see
avse_bench/nn/avmask.py for the forward pass with shapes).

13,967,489 parameters: audio encoder 4,096; decoder 4,096; visual 11,313,856 (front end 15,808, trunk 11,166,976,
projection 131,072); separator 2,645,441. The visual network starts from the official code's initialisation
(`avsec_visual_init`); the rest from PyTorch's defaults, as there.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from avse_bench.nn import AVMaskNet, FrameVisualEncoder, Separator


class Swish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class BasicBlock(nn.Module):
    """ResNet basic block: conv3x3-BN-Swish-conv3x3-BN, + shortcut (1x1 conv + BN where the shape changes), Swish."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act = Swish()
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class ResNet18Trunk(nn.Module):
    """Four stages of two basic blocks (64/128/256/512 channels, strides 1/2/2/2) + global average pool.

    (N, 64, h, w) -> (N, 512)
    """

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512), blocks: tuple[int, ...] = (2, 2, 2, 2)):
        super().__init__()
        layers, cin = [], widths[0]
        for i, (cout, n) in enumerate(zip(widths, blocks, strict=True)):
            for j in range(n):
                layers.append(BasicBlock(cin, cout, stride=2 if (i > 0 and j == 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.layers(x)).flatten(1)  # (N, 512, h/8, w/8) -> (N, 512)


# --- the official code's module names (baseline/avse2/model.py: AVSE, its Lightning module keeps it as `model`) ------
# (pattern, replacement) pairs, both ways; the ResNet trunk's blocks are numbered per stage there (layerL.B) and in
# one list here (layers.i, i = 2 (L - 1) + B), with `downsample` for our `shortcut`.
_TO_OFFICIAL = [
    (r"^audio_encoder\.conv\.", "audio_encoder.conv1d."),
    (r"^audio_decoder\.conv\.", "audio_decoder."),
    (r"^visual\.frontend\.", "visual_encoder.frontend3D."),
    (r"^visual\.projection\.", "visual_encoder.nn_out."),
    (r"^separator\.blocks\.(\d+)\.(intra|inter)\.(rnn|norm|linear)\.", r"separator.separator_blocks.\1.\2_\3."),
    (r"^separator\.end_conv\.", "separator.end_conv1x1."),
    (r"^separator\.output\.", "separator.output.0."),
    (r"^separator\.gate\.", "separator.output_gate.0."),
]
_FROM_OFFICIAL = [
    (r"^audio_encoder\.conv1d\.", "audio_encoder.conv."),
    (r"^audio_decoder\.(weight|bias)$", r"audio_decoder.conv.\1"),
    (r"^visual_encoder\.frontend3D\.", "visual.frontend."),
    (r"^visual_encoder\.nn_out\.", "visual.projection."),
    (r"^separator\.separator_blocks\.(\d+)\.(intra|inter)_(rnn|norm|linear)\.", r"separator.blocks.\1.\2.\3."),
    (r"^separator\.end_conv1x1\.", "separator.end_conv."),
    (r"^separator\.output\.0\.", "separator.output."),
    (r"^separator\.output_gate\.0\.", "separator.gate."),
]
_BLOCKS_PER_STAGE = 2


def _rename(name: str, rules: list[tuple[str, str]]) -> str:
    for pattern, replacement in rules:
        if re.match(pattern, name):
            return re.sub(pattern, replacement, name, count=1)
    return name  # separator.input_conv, conv2d, prelu: the same names both ways


def to_official(name: str) -> str:
    """This model's parameter name -> the official code's."""
    trunk = re.match(r"visual\.trunk\.layers\.(\d+)\.(.*)$", name)
    if trunk:
        stage, block = divmod(int(trunk[1]), _BLOCKS_PER_STAGE)
        return f"visual_encoder.trunk.layer{stage + 1}.{block}.{trunk[2].replace('shortcut.', 'downsample.')}"
    return _rename(name, _TO_OFFICIAL)


def from_official(name: str) -> str:
    """The official code's parameter name -> this model's."""
    trunk = re.match(r"visual_encoder\.trunk\.layer(\d)\.(\d+)\.(.*)$", name)
    if trunk:
        index = (int(trunk[1]) - 1) * _BLOCKS_PER_STAGE + int(trunk[2])
        return f"visual.trunk.layers.{index}.{trunk[3].replace('downsample.', 'shortcut.')}"
    return _rename(name, _FROM_OFFICIAL)


def convert_state_dict(state: dict) -> dict:
    """A state dict in the official baseline's module names (recognised by its `visual_encoder.` entries) mapped
    onto this model's names; one in this model's names is returned as it is."""
    if not any(k.startswith("visual_encoder.") for k in state):
        return state
    return {from_official(k): v for k, v in state.items()}


def build_model(config: dict) -> nn.Module:
    """config: the [model] table of system.toml (separator sizes)."""
    separator = Separator(512, config["separator_out"], config["separator_hidden"], config["separator_blocks"],
                          bidirectional=config["bidirectional"], dropout=config.get("dropout", 0.0))
    return AVMaskNet(FrameVisualEncoder(ResNet18Trunk(), 512, Swish()), separator)  # visual: (B, T, 256)
