"""`dcnn_rnn_code`: the DCNN-RNN entry to AVSEC-2 as its public code builds it, beside `dcnn_rnn` (its sheet).

Facts from github.com/RamiSaad/AVSE-2-Challenge (`model.py`, `utils/dnn.py`), read, not copied:
- the visual front end is the baseline's 3-D convolution with ReLU (VisualFeatNet(relu_type='relu')) instead of Swish;
- the trunk is `ResNet(BasicBlock, [1, 1, 1, 1, 1])`: four stages (`layer2`..`layer5`; `layer1` is commented out) of
  one basic block each, 64/128/256/512 channels, every stage with stride 2 and a shortcut (the code's
  `stride >= 1` makes one for every stage): 1x1 conv (stride 2, no bias) -> ReLU -> BatchNorm -> MaxPool(1)
  -> Dropout(0.3). A block is conv3x3 -> ReLU -> BN -> conv3x3 -> ReLU -> BN, plus the shortcut, with no
  activation after the sum; then global average pooling;
- the 512 -> 256 projection and the ReLU after it are the baseline's; the visual network is initialised as the
  baseline's (`avsec_visual_init`);
- the separator is `Separator(512, 32, 32, num_layers=1, bidirectional=True, dropout=0.3)`: one dual-path block
  whose `nn.LSTM(..., 1, dropout=0.3)` ignores its dropout (one layer), so no dropout acts there.

Read top to bottom: the trunk (after the shared 3-D front end of `avse_bench.nn.FrameVisualEncoder`), then
`build_model` (forward pass: avse_bench/nn/avmask.py).
"""

from __future__ import annotations

import torch
from torch import nn

from avse_bench.nn import AVMaskNet, FrameVisualEncoder, Separator


class CodeBlock(nn.Module):
    """The code's BasicBlock: conv3x3(stride)-ReLU-BN-conv3x3-ReLU-BN, + shortcut, no activation after the sum."""

    def __init__(self, cin: int, cout: int, stride: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.ReLU(inplace=True), nn.BatchNorm2d(cout),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.ReLU(inplace=True), nn.BatchNorm2d(cout),
        )
        self.shortcut = nn.Sequential(  # the code's downsample_basic_block, present in every stage
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.ReLU(inplace=True), nn.BatchNorm2d(cout),
            nn.MaxPool2d(kernel_size=1), nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class CodeTrunk(nn.Module):
    """Four stages of one CodeBlock, stride 2 each, then global average pooling: (N, 64, h, w) -> (N, widths[-1])."""

    def __init__(self, cin: int, widths: list[int], dropout: float):
        super().__init__()
        blocks = []
        for cout in widths:
            blocks.append(CodeBlock(cin, cout, stride=2, dropout=dropout))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # at 128 px: (N, 64, 32, 32) -> 16x16 -> 8x8 -> 4x4 -> 2x2 -> (N, 512)
        return self.pool(self.blocks(x)).flatten(1)


def build_model(config: dict) -> nn.Module:
    """config: the [model] table of system.toml."""
    widths = config["trunk_widths"]
    # the code's VisualFeatNet(relu_type='relu'), initialised by its _initialize_weights_randomly
    visual = FrameVisualEncoder(CodeTrunk(64, widths, config["shortcut_dropout"]), widths[-1], nn.ReLU(inplace=True))
    separator = Separator(512, config["separator_out"], config["separator_hidden"], config["separator_blocks"],
                          bidirectional=config["bidirectional"], dropout=config["separator_dropout"])
    return AVMaskNet(visual, separator)
