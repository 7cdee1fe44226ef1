"""AV-ConvTasNet, the Real-World AVSE Challenge 2026 baseline (../shared/REALWORLD.md section 5), module for module.

Source: the official baseline code as imported in github.com/wyx0606h/challenge1-avse at 1d24463
(`look2hear/models/av_convtasnet.py`, `look2hear/videomodels/resnet_videomodel.py`, `configs/track{1,2}_
av_convtasnet.yml`). Written here from that code's structure; its module names are kept, so the organisers'
`model.safetensors` (647 keys) loads strictly as it is.

A frozen visual encoder (`video_model`: a 3-D conv stem and a ResNet-18 layout of PReLU basic blocks, global
average pooling to 512 per frame; the README and paper say ResNet-34, the code builds [2, 2, 2, 2]) feeds
`av_model`, a Conv-TasNet (Luo and Mesgarani 2019): encoder Conv1d(1 -> N, L, stride L/2) + ReLU, a channel
LayerNorm, a 1x1 to B, `audio_index` repeats of X dilated depthwise blocks, then the fusion (the visual stream
through five depthwise blocks, nearest-neighbour upsampled to the encoder frames, concatenated, 1x1 to F), the other
R - audio_index repeats, a ReLU mask on the encoder output and a transposed-conv decoder.

Shapes: B batch, L samples, T video frames of 88 x 88, Ta = (L - 40) // 20 + 1 encoder frames. The decoder gives
(Ta - 1) * 20 + 40 = L - ((L - 40) mod 20) samples (`official_length`), as the official model; `AVConvTasNet`
pads the rest (at most 19 samples) with zeros, so the harness gets exactly L (the sheet says so).

Construction order and every module's initialisation follow the official code (PyTorch's defaults, then the
visual encoder's own normal draws: the ResNet's in its constructor, then `_initialize_weights_randomly` over the
whole encoder, trunk first), so that the random stream is consumed alike and a fresh model here equals a fresh
official one for the same seed, tensor for tensor.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avse_bench.nn.lipreading_resnet import ResNetTrunk

OFFICIAL_ARGS = {"N": 256, "L": 40, "B": 256, "Sc": 256, "H": 512, "P": 3, "X": 8, "R": 4, "E": 512, "V": 256,
                 "K": 3, "D": 5, "F": 256, "sample_rate": 16000, "skip_con": False, "audio_index": 1,
                 "norm": "gln", "causal": False, "video_relu_type": "prelu"}  # configs/track{1,2}_av_convtasnet.yml


# --- the visual encoder (videomodels/resnet_videomodel.py) ---------------------------------------------------------
class VideoEncoder(nn.Module):
    """(B, 1, T, 88, 88) frames -> (B, 512, T): Conv3d(1 -> 64, (5, 7, 7), stride (1, 2, 2)) + BN + PReLU +
    MaxPool3d((1, 3, 3), (1, 2, 2)), then the trunk per frame."""

    backend_out = 512

    def __init__(self):
        super().__init__()
        self.trunk = ResNetTrunk()
        self.frontend3D = nn.Sequential(
            nn.Conv3d(1, 64, kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
            nn.BatchNorm3d(64), nn.PReLU(num_parameters=64),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)))
        for m in self.modules():  # _initialize_weights_randomly: N(0, sqrt(2 / (prod(kernel) * out))), trunk first
            if isinstance(m, nn.Conv3d | nn.Conv2d | nn.Conv1d):
                m.weight.data.normal_(0, math.sqrt(2.0 / float(np.prod(m.kernel_size) * m.out_channels)))
                if m.bias is not None:
                    m.bias.data.zero_()
            elif isinstance(m, nn.BatchNorm3d | nn.BatchNorm2d | nn.BatchNorm1d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        x = self.frontend3D(x)  # (B, 64, T, 22, 22)
        t = x.shape[2]
        x = self.trunk(x.transpose(1, 2).reshape(b * t, 64, *x.shape[3:]))  # (B T, 512)
        return x.view(b, t, -1).transpose(1, 2)  # (B, 512, T)


# --- the separator (models/av_convtasnet.py) -----------------------------------------------------------------------
class GlobalLayerNorm(nn.Module):
    """gLN: mean and variance over channels and time, per item; weight (C, 1) ones, bias (C, 1) zeros, eps 1e-5."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels, 1))
        self.bias = nn.Parameter(torch.zeros(channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        mean = x.mean((1, 2), keepdim=True)
        var = ((x - mean) ** 2).mean((1, 2), keepdim=True)
        return self.weight * (x - mean) / torch.sqrt(var + self.eps) + self.bias


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of (B, C, T) (the official `CumulativeLayerNorm`, which is not cumulative)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class Encoder(nn.Module):
    """(B, L) -> (B, N, Ta): Conv1d(1 -> N, L, stride L / 2) + ReLU."""

    def __init__(self, n: int, length: int):
        super().__init__()
        self.conv = nn.Conv1d(1, n, length, stride=length // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x.unsqueeze(1)))


class AudioBlock(nn.Module):
    """One TCN block: 1x1 B -> H, PReLU, gLN, depthwise conv (kernel P, dilation d), PReLU, gLN, 1x1 H -> B, plus
    the input. `Sc_conv` (the skip path) exists, counts and is unused, as in the official code (skip_con false)."""

    def __init__(self, b: int, h: int, sc: int, p: int, dilation: int):
        super().__init__()
        self.conv1x1 = nn.Conv1d(b, h, 1, 1)
        self.prelu1 = nn.PReLU()
        self.norm1 = GlobalLayerNorm(h)
        self.dconv = nn.Conv1d(h, h, p, padding=dilation * (p - 1) // 2, dilation=dilation, groups=h)
        self.prelu2 = nn.PReLU()
        self.norm2 = GlobalLayerNorm(h)
        self.B_conv = nn.Conv1d(h, b, 1)
        self.Sc_conv = nn.Conv1d(h, sc, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(self.prelu1(self.conv1x1(x)))
        return self.B_conv(self.prelu2(self.norm2(self.dconv(y)))) + x


class AudioStack(nn.Module):
    """`repeats` x `blocks` TCN blocks, dilations 1, 2, ..., 2 ** (blocks - 1) per repeat."""

    def __init__(self, repeats: int, blocks: int, b: int, h: int, sc: int, p: int):
        super().__init__()
        self.lists = nn.ModuleList(AudioBlock(b, h, sc, p, 2**i) for _ in range(repeats) for i in range(blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.lists:
            x = block(x)
        return x


class VideoBlock(nn.Module):
    """One visual block: (ReLU, BatchNorm1d: all but the first) depthwise conv (kernel K), 1x1 to V, plus the
    input (all but the first). `sconv` exists, counts and is unused (skip_con false)."""

    def __init__(self, cin: int, v: int, k: int, first: bool):
        super().__init__()
        self.first = first
        self.bn = None if first else nn.BatchNorm1d(cin)
        self.dconv = nn.Conv1d(cin, cin, k, groups=cin, padding=(k - 1) // 2, bias=True)
        self.bconv = nn.Conv1d(cin, v, 1)
        self.sconv = nn.Conv1d(cin, v, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bconv(self.dconv(x if self.first else self.bn(F.relu(x))))
        return y if self.first else y + x


class VideoStack(nn.Module):
    """(B, E, T) -> (B, V, T): D visual blocks, the first E -> V."""

    def __init__(self, e: int, v: int, k: int, d: int):
        super().__init__()
        self.conv1d_list = nn.ModuleList(VideoBlock(v if i else e, v, k, first=i == 0) for i in range(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.conv1d_list:
            x = block(x)
        return x


class Concat(nn.Module):
    """Audio (B, B_, Ta) and video (B, V, T): video upsampled to Ta (nearest), concatenated, 1x1 to F."""

    def __init__(self, audio: int, video: int, out: int):
        super().__init__()
        self.conv1d = nn.Conv1d(audio + video, out, 1)

    def forward(self, a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.conv1d(torch.cat([a, F.interpolate(v, size=a.shape[-1])], dim=1))


class Separator(nn.Module):
    """The official `AV_model`: (B, L) audio and (B, E, T) visual features -> (B, L') with L' = `official_length`."""

    def __init__(self, args: dict):  # the official argument names: N, L, B, Sc, H, P, X, R, E, V, K, D, F, ...
        super().__init__()
        n, b, h, sc, p, x, fused = args["N"], args["B"], args["H"], args["Sc"], args["P"], args["X"], args["F"]
        self.video = VideoStack(args["E"], args["V"], args["K"], args["D"])
        self.encoder = Encoder(n, args["L"])
        self.cln = ChannelLayerNorm(n)
        self.conv1x1 = nn.Conv1d(n, b, 1)
        self.audio_conv = AudioStack(args["audio_index"], x, b, h, sc, p)
        self.concat = Concat(b, args["V"], fused)
        self.feats_conv = AudioStack(args["R"] - args["audio_index"], x, b, h, sc, p)
        self.mask = nn.Conv1d(fused, n, 1)
        self.decoder = nn.ConvTranspose1d(n, 1, kernel_size=args["L"], stride=args["L"] // 2, bias=True)

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        w = self.encoder(x)  # (B, N, Ta)
        a = self.audio_conv(self.conv1x1(self.cln(w)))  # (B, B_, Ta)
        y = self.feats_conv(self.concat(a, self.video(v)))  # (B, F, Ta)
        return self.decoder(w * F.relu(self.mask(y))).squeeze(1)  # (B, L')


def official_length(samples: int, kernel: int = 40, stride: int = 20) -> int:
    """The official model's output length for `samples` input samples: T - ((T - 40) mod 20)."""
    return samples - (samples - kernel) % stride


class AVConvTasNet(nn.Module):
    """The whole baseline: `video_model` (frozen: no gradients, kept in eval mode, run without autograd) and
    `av_model`. forward(audio (B, L), video (B, 1, T, 88, 88) normalised frames) -> (B, L): the official output,
    then zeros for the last (L - 40) mod 20 samples it does not produce."""

    def __init__(self, **args):
        super().__init__()
        args = {**OFFICIAL_ARGS, **args}
        if args["skip_con"] or args["causal"] or args["norm"] != "gln" or args["video_relu_type"] != "prelu":
            raise ValueError("only the official configuration is built (skip_con false, causal false, gln, prelu)")
        self.video_model = VideoEncoder()
        if args["E"] != VideoEncoder.backend_out:
            raise ValueError(f"E ({args['E']}) must equal the visual encoder's width (512)")
        for p in self.video_model.parameters():
            p.requires_grad = False
        self.video_model.eval()
        self.av_model = Separator(args)
        self.kernel = args["L"]

    def train(self, mode: bool = True) -> AVConvTasNet:
        super().train(mode)
        self.video_model.eval()  # its BatchNorm statistics stay the pretrained ones
        return self

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            v = self.video_model(video.type_as(audio))  # (B, 512, T)
        out = self.av_model(audio, v)  # (B, L')
        return F.pad(out, (0, audio.shape[-1] - out.shape[-1]))  # (B, L)


def build_model(config: dict) -> AVConvTasNet:
    """`[model]` of system.toml: the official constructor arguments (`OFFICIAL_ARGS`, the track configs')."""
    return AVConvTasNet(**{k: v for k, v in config.items() if k != "channels"})
