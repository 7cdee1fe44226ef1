"""One forward pass per system at the `quick` reference input: 3 s of audio, 75 frames of 64 px, batch 1."""

from __future__ import annotations

import pytest
import torch

from avse_bench.systems import load


@pytest.mark.parametrize("name", ["baseline", "dcnn_rnn"])
def test_forward_3s_64px(benchmark, name):
    model = load(name).build_model().eval()
    audio, video = torch.randn(1, 48_000), torch.rand(1, 1, 75, 64, 64)

    def forward():
        with torch.no_grad():
            return model(audio, video)

    out = benchmark.pedantic(forward, rounds=5, warmup_rounds=1)
    assert out.shape == (1, 48_000)
