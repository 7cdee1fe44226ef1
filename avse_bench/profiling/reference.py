"""The reference input every cost figure is taken at: `seconds` of 16 kHz audio with 25 fps video at `size` px."""

from __future__ import annotations

import torch

from avse_bench.data.preprocessing import AUDIO_RATE, VIDEO_FPS


def reference_shapes(seconds: float, size: int, batch: int = 1) -> dict:
    """The stated reference input: 3 s at 128 px is 48,000 samples and 75 frames of 128 x 128."""
    samples, frames = round(seconds * AUDIO_RATE), round(seconds * VIDEO_FPS)
    return {"seconds": seconds, "sample_rate": AUDIO_RATE, "samples": samples, "fps": VIDEO_FPS, "frames": frames,
            "size": size, "batch": batch, "audio_shape": [batch, samples],
            "video_shape": [batch, 1, frames, size, size]}


def reference_input(seconds: float, size: int, batch: int = 1, device: str | torch.device = "cpu",
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(audio (B, L), video (B, 1, T, H, W)): noise-like audio and frames in [0, 1], the same for a given seed."""
    shapes = reference_shapes(seconds, size, batch)
    g = torch.Generator().manual_seed(seed)
    audio = 0.1 * torch.randn(shapes["audio_shape"], generator=g)  # (B, L)
    video = torch.rand(shapes["video_shape"], generator=g)  # (B, 1, T, H, W)
    return audio.to(device), video.to(device)
