"""`avsec1_baseline`: the official AVSEC-1 baseline, a spectral-magnitude masker on raw RGB frames, exact to the
parameter.

Read top to bottom: the visual stream (a 3-D conv stem, the lip-reading ResNet-18 trunk without a 2-D stem
(`avse_bench/nn/lipreading_resnet.py`, shared with the Real-World baseline), a non-causal TCN: one
512-d feature per video frame), the audio stream (dilated 5 x 5 convolutions over the noisy magnitude), the fusion
(one LSTM, a linear layer, a sigmoid mask) and `AVSEC1Baseline`, which puts them together around the STFT.
Source: github.com/cogmhear/avse_challenge at 9a9db3d, baseline/avse1/{model,config,dataset,test}.py and
utils/{nn,resnet,tcn}.py. The module names, and the order modules are built in, are the official code's, so that
the official Lightning checkpoint loads strictly and a fresh model starts from the same weights for the same seed.

20,112,544 parameters (as the official code builds them, tested module by module in tests/test_avsec1_baseline.py):
visual 17,784,436 (3-D stem 47,232; trunk 11,170,816; TCN 6,566,388), audio 412,430, fusion 1,915,678 (LSTM
1,849,372; linear 66,306). The visual TCN's `tcn_output` Linear(512 -> 500), 256,500 of them, is built and saved but
never used in the forward pass (a lip-reading classifier head left over from the TCN's origin).

Shapes: audio (B, L) at 16 kHz; video (B, 3, T, 224, 224) RGB in 0-255 (the official model casts uint8 frames
to float without scaling; the harness's [0, 1] frames reach it through `[preprocessing] std = 1 / 255`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from avse_bench.nn.lipreading_resnet import ResNetTrunk  # utils/resnet.py: layer1-4, PReLU, no 2-D stem

N_FFT, WIN, HOP = 512, 512, 128  # config.py: stft_size, window_size, window_shift
BINS = N_FFT // 2 + 1  # 257


# --- visual: the TCN (utils/tcn.py TemporalConvNet, symmetric chomp: non-causal) -----------------------------------
class Chomp1d(nn.Module):
    """Drop chomp / 2 steps at each end: a padded convolution made 'same' and centred (non-causal)."""

    def __init__(self, chomp: int):
        super().__init__()
        self.chomp = chomp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.chomp == 0 else x[:, :, self.chomp // 2:-(self.chomp // 2)].contiguous()


class TemporalBlock(nn.Module):
    """Two dilated k = 3 convolutions (BN, chomp, PReLU, dropout each) + the identity, PReLU.

    The official block registers its layers twice, as attributes and inside `net` (a Sequential of the same modules),
    so its state dict holds every tensor under both names (conv1.weight and net.0.weight): kept, for strict loading."""

    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        padding = (kernel - 1) * dilation
        self.conv1 = nn.Conv1d(channels, channels, kernel, padding=padding, dilation=dilation)
        self.batchnorm1 = nn.BatchNorm1d(channels)
        self.chomp1 = Chomp1d(padding)
        self.relu1 = nn.PReLU(num_parameters=channels)
        self.dropout1 = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(channels, channels, kernel, padding=padding, dilation=dilation)
        self.batchnorm2 = nn.BatchNorm1d(channels)
        self.chomp2 = Chomp1d(padding)
        self.relu2 = nn.PReLU(num_parameters=channels)
        self.dropout2 = nn.Dropout(dropout)
        self.net = nn.Sequential(self.conv1, self.batchnorm1, self.chomp1, self.relu1, self.dropout1,
                                 self.conv2, self.batchnorm2, self.chomp2, self.relu2, self.dropout2)
        self.relu = nn.PReLU(num_parameters=channels)  # in = out channels (512): no downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.net(x) + x)  # (B, C, T)


class TemporalConvNet(nn.Module):
    def __init__(self, channels: int, layers: int, kernel: int, dropout: float):
        super().__init__()
        self.network = nn.Sequential(*[TemporalBlock(channels, kernel, 2 ** i, dropout) for i in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


class TCN(nn.Module):
    """`tcn_trunk` + `tcn_output` (Linear(512 -> 500), never called: the official forward returns the trunk's
    features, `extract_feats=True`)."""

    def __init__(self, channels: int = 512, layers: int = 4, kernel: int = 3, dropout: float = 0.2,
                 num_classes: int = 500):
        super().__init__()
        self.tcn_trunk = TemporalConvNet(channels, layers, kernel, dropout)
        self.tcn_output = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tcn_trunk(x.transpose(1, 2)).transpose(1, 2)  # (B, T, 512) -> (B, T, 512)


class VisualFeatNet(nn.Module):
    """(B, 3, T, 224, 224) RGB, 0-255 -> (B, T, 512): the 3-D stem (Conv3d (5, 7, 7) stride (1, 2, 2), BN,
    PReLU, max-pool) -> the ResNet trunk on every frame -> the TCN over time."""

    def __init__(self, tcn_layers: int = 4, dropout: float = 0.2):
        super().__init__()
        self.trunk = ResNetTrunk()
        frontend_relu = nn.PReLU(num_parameters=64)
        self.frontend3D = nn.Sequential(
            nn.Conv3d(3, 64, (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
            nn.BatchNorm3d(64), frontend_relu,
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)))
        self.tcn = TCN(512, tcn_layers, 3, dropout)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b = video.shape[0]
        x = self.frontend3D(video)  # (B, 64, T, 56, 56)
        t = x.shape[2]
        x = self.trunk(x.transpose(1, 2).reshape(b * t, *x.shape[1:2], *x.shape[3:]))  # (B T, 512)
        return self.tcn(x.view(b, t, -1))  # (B, T, 512)


# --- audio: dilated 2-D convolutions over the noisy magnitude (model.py AudioFeatNet, defaults) --------------------
class AudioFeatNet(nn.Module):
    """(B, 1, F, 257) magnitude -> (B, F, 1028): BN, 5 x (Conv2d 5 x 5, dilation 2^i, 'same'; BN; ReLU),
    Conv2d 1 x 1 to 4 channels, BN, ReLU, the 4 channels of each frame side by side."""

    def __init__(self, num_conv: int = 5, kernel: int = 5, filters: int = 64, last_filter: int = 4):
        super().__init__()
        self.num_conv, self.last_filter = num_conv, last_filter
        self.bn0 = nn.BatchNorm2d(1)
        for i in range(num_conv):
            dilation = 2 ** i
            setattr(self, f"conv{i + 1}", nn.Conv2d(1 if i == 0 else filters, filters, kernel,
                                                    padding=(kernel - 1) * dilation // 2, dilation=dilation))
            setattr(self, f"bn{i + 1}", nn.BatchNorm2d(filters))
        self.convf = nn.Conv2d(filters, last_filter, 1)
        self.bn_last = nn.BatchNorm2d(last_filter)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[2]
        x = self.bn0(x)
        for i in range(self.num_conv):
            x = F.relu(getattr(self, f"bn{i + 1}")(getattr(self, f"conv{i + 1}")(x)))  # (B, 64, F, 257)
        x = F.relu(self.bn_last(self.convf(x)))  # (B, 4, F, 257)
        return x.permute(0, 2, 1, 3).reshape(-1, frames, BINS * self.last_filter)  # (B, F, 1028)


# --- fusion: LSTM over [visual; audio], a linear layer, a sigmoid mask (model.py FusionNet) -------------------------
class FusionNet(nn.Module):
    def __init__(self, visual: int = 512, audio: int = 4 * BINS):
        super().__init__()
        self.lstm_conv = nn.LSTM(visual + audio, BINS, num_layers=1, batch_first=True)  # unidirectional
        self.time_distributed_1 = nn.Linear(BINS, BINS)
        nn.init.xavier_uniform_(self.time_distributed_1.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.time_distributed_1(self.lstm_conv(x)[0]))  # (B, F, 1540) -> (B, F, 257)


class AVSEC1Baseline(nn.Module):
    """audio (B, L), video (B, 3, T, H, W) 0-255 -> enhanced audio (B, L).

    |STFT| (512 points, Hann 512, hop 128, centred, reflect-padded as librosa 0.8's default) -> the visual features
    repeated to the STFT frame rate (nearest, as F.interpolate's default there) beside the audio features -> mask ->
    mask x noisy magnitude with the noisy phase -> inverse STFT to L samples (test.py: librosa.istft(length=L))."""

    def __init__(self, tcn_layers: int = 4, dropout: float = 0.2):
        super().__init__()
        audio = AudioFeatNet()  # built in the official order (train.py: audio, visual, fusion): the same draws
        visual = VisualFeatNet(tcn_layers, dropout)
        fusion = FusionNet()
        self.net_visualfeat, self.net_audiofeat, self.net_fusion = visual, audio, fusion  # the official names
        self.register_buffer("window", torch.hann_window(WIN), persistent=False)

    def masked_magnitude(self, magnitude: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        """The official AVNet.forward: (B, 1, F, 257) noisy magnitude, (B, 3, T, H, W) -> (B, 1, F, 257)."""
        frames = magnitude.shape[2]
        visual = self.net_visualfeat(video.float()).unsqueeze(1)  # (B, 1, T, 512)
        visual = F.interpolate(visual, size=(frames, 512)).reshape(-1, frames, 512)  # nearest: (B, F, 512)
        combined = torch.cat((visual, self.net_audiofeat(magnitude)), dim=-1)  # (B, F, 1540)
        return magnitude * self.net_fusion(combined).unsqueeze(1)

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        length = audio.shape[-1]
        spec = torch.stft(audio, N_FFT, HOP, WIN, self.window, center=True, pad_mode="reflect",
                          return_complex=True).transpose(1, 2)  # (B, F, 257)
        magnitude = spec.abs().unsqueeze(1)  # (B, 1, F, 257)
        estimate = self.masked_magnitude(magnitude, video)[:, 0] * torch.exp(1j * spec.angle())
        return torch.istft(estimate.transpose(1, 2), N_FFT, HOP, WIN, self.window, center=True, length=length)


def build_model(config: dict) -> AVSEC1Baseline:
    """The AVSEC-1 baseline from `[model]` (tcn_layers 4, dropout 0.2: `build_visualfeat_net`'s num_layers 4,
    kernel [3], dropout 0.2, width_mult 2, PReLU; `build_audiofeat_net`; `FusionNet`), built in the official order."""
    return AVSEC1Baseline(int(config.get("tcn_layers", 4)), float(config.get("dropout", 0.2)))
