"""The look-ahead probe on toy models whose algorithmic latency is known by construction: causal, 40 ms ahead (one
video frame, 640 samples), and the whole utterance; audio and video measured apart."""

from __future__ import annotations

import torch
from torch import nn

from avse_bench.fmt import describe_lookahead
from avse_bench.profiling.lookahead import measure_lookahead
from avse_bench.profiling.reference import Reference

SPF = 640  # samples per video frame


def frame_gain(video: torch.Tensor, length: int, shift: int) -> torch.Tensor:
    """(B, 1, T, H, W) -> (B, length): each sample's gain from the mean of video frame (its frame + shift)."""
    means = video.mean(dim=(1, 3, 4))  # (B, T)
    frames = torch.clamp(torch.arange(length) // SPF + shift, max=means.shape[1] - 1)
    return 1 + means[:, frames]


class Causal(nn.Module):
    """y[n] = sum of x[n-2..n] x gain(frame of n): depends on nothing later."""

    def forward(self, audio, video):
        padded = nn.functional.pad(audio, (2, 0))
        past = padded[:, 2:] + padded[:, 1:-1] + padded[:, :-2]
        return past * frame_gain(video, audio.shape[-1], 0)


class Ahead40ms(nn.Module):
    """y[n] = x[n + 640] x gain(frame of n + 1): 40 ms look-ahead in both streams."""

    def forward(self, audio, video):
        ahead = nn.functional.pad(audio[:, SPF:], (0, SPF))
        return ahead * frame_gain(video, audio.shape[-1], 1)


class WholeUtterance(nn.Module):
    """y = x / rms(x) x mean(video): every sample depends on all of both inputs."""

    def forward(self, audio, video):
        return audio / audio.pow(2).mean(dim=1, keepdim=True).sqrt() * video.mean(dim=(1, 2, 3, 4))[:, None]


def test_a_causal_model_has_no_lookahead():
    found = measure_lookahead(Causal(), Reference(1.0, 8))
    assert found["audio"]["lookahead_ms"] == 0.0 and found["video"]["lookahead_ms"] == 0.0
    assert found["causal"] and not found["audio"]["whole_utterance"]
    assert describe_lookahead(found["audio"]) == "0 ms (causal)"


def test_a_model_reading_one_frame_ahead_has_40_ms():
    found = measure_lookahead(Ahead40ms(), Reference(1.0, 8))
    assert found["audio"]["lookahead_ms"] == 40.0 and found["video"]["lookahead_ms"] == 40.0
    assert not found["causal"]
    assert describe_lookahead(found["video"]) == "40 ms"


def test_an_utterance_level_model_reads_whole_utterance():
    found = measure_lookahead(WholeUtterance(), Reference(1.0, 8))
    for stream in ("audio", "video"):
        assert found[stream]["whole_utterance"]
        assert found[stream]["lookahead_ms"] == 720.0  # the last cut, 18 of 25 frames in: all of it measured
    assert describe_lookahead(found["audio"]) == "whole utterance (720 ms measured)"
