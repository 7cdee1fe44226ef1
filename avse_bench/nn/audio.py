"""The time-domain audio path shared by both AVSEC-2 systems: a learned filterbank encoder and its decoder."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class AudioEncoder(nn.Module):
    """Conv1d(1 -> channels, kernel, stride kernel/2, no bias) + ReLU: (B, L) -> (B, channels, F).

    F = (L - kernel) // stride + 1, e.g. 5,999 frames for 3 s (48,000 samples) at kernel 16, stride 8.
    """

    def __init__(self, channels: int = 256, kernel: int = 16):
        super().__init__()
        self.kernel, self.stride = kernel, kernel // 2
        self.conv = nn.Conv1d(1, channels, kernel, stride=self.stride, bias=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(audio.unsqueeze(1)))  # (B, 1, L) -> (B, C, F)

    def padding(self, length: int) -> int:
        """Zeros to append to a signal of `length` samples so that encode + decode gives it back whole."""
        if length < self.kernel:
            return self.kernel - length
        return (-(length - self.kernel)) % self.stride


class AudioDecoder(nn.Module):
    """ConvTranspose1d(channels -> 1, kernel, stride kernel/2, no bias).

    (B, channels, F) -> (B, (F - 1) * stride + kernel)
    """

    def __init__(self, channels: int = 256, kernel: int = 16):
        super().__init__()
        self.conv = nn.ConvTranspose1d(channels, 1, kernel, stride=kernel // 2, bias=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.conv(frames).squeeze(1)  # (B, 1, L) -> (B, L)
