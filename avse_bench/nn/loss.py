"""The training objective of every system here: negative scale-invariant SNR, clipped per item at 30 dB."""

from __future__ import annotations

import torch

EPS = 1e-8


def si_snr_loss(estimate: torch.Tensor, target: torch.Tensor, clip_db: float = 30.0) -> torch.Tensor:
    """Mean over the batch (and channels) of -SI-SNR(estimate, target) in dB; (B, L) or (B, C, L), the same shape
    for both -> scalar.

    Both signals are made zero-mean; each item's (and channel's) loss is clipped at -clip_db (one already above
    30 dB gives no gradient), as the AVSEC-2 baseline does and the AVSEC-4 baseline on its [T, B, C] layout
    (`cal_si_snr` of speechbrain per item and channel, `loss[loss < -30] = -30`, then the mean).
    Raises ValueError when the shapes differ.
    """
    if estimate.shape != target.shape:
        raise ValueError(f"si_snr_loss: estimate {tuple(estimate.shape)} and target {tuple(target.shape)} differ")
    estimate = estimate - estimate.mean(dim=-1, keepdim=True)
    target = target - target.mean(dim=-1, keepdim=True)
    scale = (estimate * target).sum(-1, keepdim=True) / (target.pow(2).sum(-1, keepdim=True) + EPS)
    projection = scale * target  # the part of the estimate explained by the target
    noise = estimate - projection
    si_snr = 10 * torch.log10(projection.pow(2).sum(-1) / (noise.pow(2).sum(-1) + EPS) + EPS)  # (B,)
    return torch.clamp(-si_snr, min=-clip_db).mean()
