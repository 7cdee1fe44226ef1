"""Training objectives, declared once (`LOSSES`): a system's recipe names its `loss` (training) and `val_loss`
(validation, for the plateau schedule and the log); both default to negative SI-SNR, clipped per item at 30 dB,
the AVSEC-2 and AVSEC-4 baselines' objective. Every loss takes (B, L) or (B, C, L) estimate and target of the same
shape and returns a scalar to minimise."""

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


def snr_loss(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch (and channels) of -SNR(estimate, target) in dB, not scale-invariant: both made
    zero-mean, SNR = |t|^2 / (|t - e|^2 + 1e-8), 10 log10(SNR + 1e-8). The Real-World AVSE baseline's training loss
    (look2hear's `pairwise_neg_snr`, asteroid's PairwiseNegSDR("snr") with its defaults zero_mean=True, EPS 1e-8;
    ../shared/REALWORLD.md). Raises ValueError when the shapes differ."""
    if estimate.shape != target.shape:
        raise ValueError(f"snr_loss: estimate {tuple(estimate.shape)} and target {tuple(target.shape)} differ")
    estimate = estimate - estimate.mean(dim=-1, keepdim=True)
    target = target - target.mean(dim=-1, keepdim=True)
    snr = target.pow(2).sum(-1) / ((target - estimate).pow(2).sum(-1) + EPS)
    return -(10 * torch.log10(snr + EPS)).mean()


def l1_stft_magnitude_loss(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the STFT magnitudes (512-point, Hann window of 512, hop 128, centred: the AVSEC-1
    baseline's STFT) of estimate and target: the AVSEC-1 baseline's `--loss l1` on the masked against the clean
    magnitude (../shared/EDITIONS.md). Raises ValueError when the shapes differ."""
    if estimate.shape != target.shape:
        raise ValueError(f"l1_stft_magnitude_loss: estimate {tuple(estimate.shape)} and target "
                         f"{tuple(target.shape)} differ")
    window = torch.hann_window(512, device=estimate.device, dtype=estimate.dtype)

    def magnitude(x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])  # (B C, L)
        return torch.stft(flat, 512, hop_length=128, win_length=512, window=window, center=True,
                          return_complex=True).abs()

    return (magnitude(estimate) - magnitude(target)).abs().mean()


def keras_si_snr_loss(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch (and channels) of -SI-SNR as the AVSEC-3 baseline computes it (baseline/avse3/loss.py
    `si_snr_loss(y_true, y_pred)`): no zero-mean, no clipping, the target projected onto the estimate
    (t_e = <t, e> / (<e, e> + 1e-8) e), SI-SNR = 10 log10(|t_e|^2 / (|t - t_e|^2 + 1e-8) + 1e-8). Without the
    epsilons the ratio is cot^2 of the angle between the two signals, the same either way round. Raises ValueError
    when the shapes differ."""
    if estimate.shape != target.shape:
        raise ValueError(f"keras_si_snr_loss: estimate {tuple(estimate.shape)} and target {tuple(target.shape)} "
                         "differ")
    projection = (target * estimate).sum(-1, keepdim=True) / (estimate.pow(2).sum(-1, keepdim=True) + EPS) * estimate
    noise = target - projection
    si_snr = 10 * torch.log10(projection.pow(2).sum(-1) / (noise.pow(2).sum(-1) + EPS) + EPS)
    return -si_snr.mean()


LOSSES = {"neg_si_snr": si_snr_loss, "neg_snr": snr_loss, "l1_stft_magnitude": l1_stft_magnitude_loss,
          "neg_si_snr_keras": keras_si_snr_loss}
DEFAULT_LOSS = "neg_si_snr"


def recipe_losses(recipe: dict) -> tuple:
    """(training loss, validation loss) functions a recipe names (`loss`, `val_loss`; default negative SI-SNR)."""
    return LOSSES[recipe.get("loss", DEFAULT_LOSS)], LOSSES[recipe.get("val_loss", DEFAULT_LOSS)]
