"""The dual-path RNN separator of the AVSEC-2 baseline (DPRNN, Luo et al. 2020), producing a mask.

Input (B, in_channels, F) audio-visual features; output (B, mask_channels, F), a non-negative mask on the encoder's
output. The F frames are cut into chunks of K = 200 frames with 50 % overlap, processed by `blocks` dual-path blocks
(an RNN along each chunk, then an RNN across chunks), and put back together by overlap-add.
"""

from __future__ import annotations

import torch
from torch import nn


class PathRNN(nn.Module):
    """One path of a dual-path block, along the chunk (intra) or across chunks (inter): (B, N, K, S) -> same.

    LSTM over the path's sequence axis -> Dropout -> Linear back to N -> GroupNorm(1, N) -> + residual.
    """

    def __init__(self, channels: int, hidden: int, bidirectional: bool, dropout: float, across_chunks: bool):
        super().__init__()
        self.across_chunks = across_chunks
        self.rnn = nn.LSTM(channels, hidden, 1, batch_first=True, bidirectional=bidirectional)
        # A single-layer nn.LSTM ignores its own `dropout` argument (torch applies it only between stacked layers),
        # so dropout, where a system asks for it, acts here: on the RNN's output, before the projection.
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden * (2 if bidirectional else 1), channels)
        self.norm = nn.GroupNorm(1, channels, eps=1e-8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, K, S = x.shape
        if self.across_chunks:
            seq = x.permute(0, 2, 3, 1).reshape(B * K, S, N)  # each chunk position: a sequence of S chunks
        else:
            seq = x.permute(0, 3, 2, 1).reshape(B * S, K, N)  # each chunk: a sequence of K frames
        out, _ = self.rnn(seq)  # (batch, steps, H * directions)
        out = self.linear(self.dropout(out))  # (batch, steps, N)
        if self.across_chunks:
            out = out.reshape(B, K, S, N).permute(0, 3, 1, 2)  # (B, N, K, S)
        else:
            out = out.reshape(B, S, K, N).permute(0, 3, 2, 1)  # (B, N, K, S)
        return self.norm(out) + x


class DualPathBlock(nn.Module):
    """Intra-chunk path, then inter-chunk path: (B, N, K, S) -> (B, N, K, S)."""

    def __init__(self, channels: int, hidden: int, bidirectional: bool = True, dropout: float = 0.0):
        super().__init__()
        self.intra = PathRNN(channels, hidden, bidirectional, dropout, across_chunks=False)
        self.inter = PathRNN(channels, hidden, bidirectional, dropout, across_chunks=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inter(self.intra(x))


def chunk(x: torch.Tensor, K: int) -> tuple[torch.Tensor, int]:
    """(B, N, F) -> ((B, N, K, S), gap): chunks of K frames with hop K/2, and the end padding used.

    The end is padded with gap = K - (K/2 + F mod K) mod K zeros and both ends with K/2 zeros (the published
    rule); the two interleaved sets of non-overlapping chunks then give S chunks (62 for F = 5,999, K = 200).
    """
    B, N, F = x.shape
    P = K // 2
    gap = K - (P + F % K) % K
    x = torch.nn.functional.pad(x, (P, gap + P))  # (B, N, P + F + gap + P)
    first = x[:, :, :-P].reshape(B, N, -1, K)  # chunks starting at 0, K, 2K, ...
    second = x[:, :, P:].reshape(B, N, -1, K)  # chunks starting at P, P + K, ...
    chunks = torch.cat([first, second], dim=3).reshape(B, N, -1, K).transpose(2, 3)  # (B, N, K, S)
    return chunks.contiguous(), gap


def overlap_add(chunks: torch.Tensor, gap: int) -> torch.Tensor:
    """Undo `chunk`: (B, N, K, S) -> (B, N, F), summing the two overlapping chunk sets."""
    B, N, K, S = chunks.shape
    P = K // 2
    x = chunks.transpose(2, 3).reshape(B, N, -1, K * 2)  # pairs (first-set chunk, second-set chunk)
    first = x[:, :, :, :K].reshape(B, N, -1)[:, :, P:]
    second = x[:, :, :, K:].reshape(B, N, -1)[:, :, :-P]
    x = first + second
    return x[:, :, :-gap] if gap > 0 else x


class Separator(nn.Module):
    """Separator(in, out, hidden, blocks, bidirectional, dropout): (B, in, F) features -> (B, mask_channels, F) mask."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int, blocks: int, bidirectional: bool = True,
                 dropout: float = 0.0, mask_channels: int = 256, chunk_size: int = 200):
        super().__init__()
        N = out_channels
        self.chunk_size = chunk_size
        self.input_conv = nn.Sequential(nn.GroupNorm(1, in_channels, eps=1e-8),
                                        nn.Conv1d(in_channels, N, 1, bias=False))
        self.blocks = nn.Sequential(*[DualPathBlock(N, hidden, bidirectional, dropout) for _ in range(blocks)])
        self.prelu = nn.PReLU()
        self.conv2d = nn.Conv2d(N, N, 1)
        self.output = nn.Conv1d(N, N, 1)
        self.gate = nn.Conv1d(N, N, 1)
        self.end_conv = nn.Conv1d(N, mask_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_conv(x)  # (B, in, F) -> (B, N, F)
        x, gap = chunk(x, self.chunk_size)  # (B, N, K, S)
        x = self.conv2d(self.prelu(self.blocks(x)))  # (B, N, K, S)
        x = overlap_add(x, gap)  # (B, N, F)
        x = torch.tanh(self.output(x)) * torch.sigmoid(self.gate(x))  # (B, N, F)
        return torch.relu(self.end_conv(x))  # (B, mask_channels, F)
