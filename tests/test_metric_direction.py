"""A metric's declaration dispatches (issue 25, item 4): a lower-is-better metric (a character error rate, as the
2026 Real-World AVSE challenge ranks on) registered here flips every improvement, paired comparison, visual
contribution and graceful-degradation verdict; the video-use flag reads the metric's own meaningful difference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from avse_bench.metrics import spec
from avse_bench.report import quality
from avse_bench.report.stress import graceful

N = 20


@pytest.fixture()
def cer(monkeypatch):
    """CER (0-1, lower is better) declared for this test only, with a meaningful difference of 0.02."""
    declared = spec.MetricSpec(name="cer", label="CER", unit="", digits=3, higher_is_better=False,
                               needs_reference=True, channels=1, family="asr", source="a test", meaningful=0.02)
    monkeypatch.setitem(spec.SPECS, "cer", declared)
    return declared


def _scores(rng) -> pd.DataFrame:
    """Mixture CER 0.5; system `good` reaches 0.2 with its video and 0.3 without; `bad` 0.45 either way."""
    rows = []
    for i in range(N):
        scene, noise = f"S{i:05d}", rng.normal(0, 0.01, 6)
        rows += [{"system": "noisy", "condition": "mixture", "cer": 0.5 + noise[0]},
                 {"system": "good", "condition": "av", "cer": 0.2 + noise[1]},
                 {"system": "good", "condition": "audio_only", "cer": 0.3 + noise[2]},
                 {"system": "bad", "condition": "av", "cer": 0.45 + noise[3]},
                 {"system": "bad", "condition": "audio_only", "cer": 0.45 + noise[4]}]
        for row in rows[-5:]:
            row.update(scene=scene, masker="speech", snr_db=0.0, error="")
    return pd.DataFrame(rows)


def test_a_lower_is_better_metric_flips_every_difference(cer):
    scores = _scores(np.random.default_rng(0))
    assert quality.metrics_in(scores) == ["cer"] and spec.signed("cer", 0.3) == -0.3
    gains = quality.improvements(scores, ["good", "bad"]).set_index("system")["mean"]
    assert gains["good"] == pytest.approx(0.3, abs=0.01) and gains["bad"] == pytest.approx(0.05, abs=0.01)
    pair = quality.pairs(scores, ["good", "bad"]).iloc[0]
    assert pair["mean_diff"] == pytest.approx(0.25, abs=0.01) and pair["ci_lo"] > 0  # good is better than bad
    video = quality.visual_gain(scores, "good", "cer")
    assert video["mean_diff"] == pytest.approx(0.1, abs=0.01) and quality.uses_video(video)
    assert not quality.uses_video(quality.visual_gain(scores, "bad", "cer"))
    assert quality.meaningful_text("cer") == "0.02"


def test_the_graceful_verdict_follows_the_metrics_direction(cer):
    """Under stress, `good` rises to CER 0.4 (loses 0.2), `bad` stays at 0.45 (loses nothing): bad degrades more
    gracefully, and the signed paired loss says so (a raw difference would have said the opposite)."""
    scores = _scores(np.random.default_rng(1))
    stress = scores[scores.condition == "av"].assign(condition="blank", stress="blank", severity=np.nan)
    stress.loc[stress.system == "good", "cer"] += 0.2
    (test,) = graceful(scores, stress, ["good", "bad"], "cer")
    assert test["loss_a"] == pytest.approx(-0.2, abs=0.01) and test["loss_b"] == pytest.approx(0.0, abs=0.01)
    assert test["mean_diff"] < 0 and test["ci_hi"] < 0  # a (good) loses more: b (bad) degrades more gracefully


def test_headline_metric_is_declared():
    assert spec.headline_metric(["pesq_wb", "si_sdr", "dnsmos_ovrl"]) == "si_sdr"
    assert spec.headline_metric(["mbstoi", "dnsmos_ovrl"]) == "mbstoi"
    assert spec.headline_metric(["dnsmos_sig"]) is None
