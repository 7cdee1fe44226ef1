"""The reference input every cost figure is taken at: `seconds` of 16 kHz audio (1 or 2 channels) with 25 fps video
at `size` px."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from avse_bench.data.preprocessing import AUDIO_RATE, VIDEO_FPS


@dataclass(frozen=True)
class Reference:
    """The stated reference input: `seconds` of audio with `channels` channels (1: mono (B, L); 2: binaural
    (B, 2, L)) and its 25 fps video at `size` x `size` px with `video_channels` colour channels (1 grey, 3 RGB).
    3 s at 128 px is 48,000 samples and 75 frames."""

    seconds: float
    size: int
    channels: int = 1
    video_channels: int = 1

    def shapes(self, batch: int = 1) -> dict:
        """The input's figures and tensor shapes at `batch`, as the profile records them."""
        samples, frames = round(self.seconds * AUDIO_RATE), round(self.seconds * VIDEO_FPS)
        audio = [batch, samples] if self.channels == 1 else [batch, self.channels, samples]
        return {"seconds": self.seconds, "sample_rate": AUDIO_RATE, "samples": samples, "channels": self.channels,
                "fps": VIDEO_FPS, "frames": frames, "size": self.size, "batch": batch, "audio_shape": audio,
                "video_shape": [batch, self.video_channels, frames, self.size, self.size]}

    def tensors(self, batch: int = 1, device: str | torch.device = "cpu",
                seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(audio (B, L) or (B, C, L), video (B, video_channels, T, H, W)): noise-like audio and frames in [0, 1],
        the same for a given seed."""
        shapes = self.shapes(batch)
        g = torch.Generator().manual_seed(seed)
        audio = 0.1 * torch.randn(shapes["audio_shape"], generator=g)
        video = torch.rand(shapes["video_shape"], generator=g)
        return audio.to(device), video.to(device)
