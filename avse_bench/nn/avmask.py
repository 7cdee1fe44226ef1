"""The audio-visual masking model both AVSEC-2 systems share; a system supplies its visual encoder and separator.

    audio (B, L) --AudioEncoder--> encoded (B, 256, F)
    video (B, 1, T, H, W) --visual--> (B, T', 256) --interpolate in time--> (B, 256, F)
    cat(visual, encoded) (B, 512, F) --separator--> mask (B, 256, F)
    mask * encoded --AudioDecoder--> (B, L)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from avse_bench.nn.audio import AudioDecoder, AudioEncoder


class AVMaskNet(nn.Module):
    """model(audio (B, L), video (B, 1, T, H, W)) -> enhanced audio (B, L), the same length as the input."""

    def __init__(self, visual: nn.Module, separator: nn.Module, channels: int = 256, kernel: int = 16):
        super().__init__()
        self.audio_encoder = AudioEncoder(channels, kernel)
        self.visual = visual
        self.separator = separator
        self.audio_decoder = AudioDecoder(channels, kernel)

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        length = audio.shape[-1]
        # Zero-pad so that the encoder's frames tile the signal; the decoder then returns every input sample.
        audio = F.pad(audio, (0, self.audio_encoder.padding(length)))
        encoded = self.audio_encoder(audio)  # (B, 256, F)
        visual = self.visual(video)  # (B, T', 256)
        frames, features = encoded.shape[-1], visual.shape[-1]
        # Bilinear on (time, feature) with the feature size kept: linear in time, as the published code does it.
        visual = F.interpolate(visual.unsqueeze(1), size=(frames, features), mode="bilinear")  # (B, 1, F, 256)
        fused = torch.cat([visual.squeeze(1).transpose(1, 2), encoded], dim=1)  # (B, 512, F), visual first
        mask = self.separator(fused)  # (B, 256, F)
        return self.audio_decoder(mask * encoded)[:, :length]  # (B, L)
