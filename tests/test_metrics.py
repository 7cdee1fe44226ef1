"""The functional metrics against the libraries the official AVSEC script calls, SI-SDR against its definition, and
every error reason."""

from __future__ import annotations

import numpy as np
import pesq
import pystoi
import pytest

from avse_bench.metrics import functional as F

FS = 16000


def speech_like(seconds: float, seed: int) -> np.ndarray:
    """Syllables of a gliding harmonic tone (f0 100-180 Hz, 12 harmonics) at ~3.5 per second, float64 in (-1, 1)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * np.cumsum(f0) / FS
    voiced = sum(np.sin(k * phase) / k for k in range(1, 13))
    envelope = np.clip(np.sin(2 * np.pi * 3.5 * t + rng.uniform(0, 2 * np.pi)), 0, None) ** 2
    return 0.3 * voiced * envelope


def noisy(ref: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(ref))
    noise *= np.sqrt(np.sum(ref**2) / np.sum(noise**2) / 10 ** (snr_db / 10))
    return ref + noise


PAIRS = [(speech_like(3.0, 0), 5.0, 1), (speech_like(2.2, 2), -5.0, 3), (speech_like(4.0, 4), 15.0, 5)]


@pytest.mark.parametrize("ref, snr_db, seed", PAIRS)
def test_metrics_equal_the_direct_library_calls(ref, snr_db, seed):
    deg = noisy(ref, snr_db, seed)
    assert F.pesq_wb(ref, deg) == pytest.approx(pesq.pesq(FS, ref, deg, "wb"), abs=1e-9)
    assert F.pesq_nb(ref, deg) == pytest.approx(pesq.pesq(FS, ref, deg, "nb"), abs=1e-9)
    assert F.stoi(ref, deg) == pytest.approx(pystoi.stoi(ref, deg, FS, extended=False), abs=1e-9)
    assert F.estoi(ref, deg) == pytest.approx(pystoi.stoi(ref, deg, FS, extended=True), abs=1e-9)
    row = F.score_pair(ref, deg)
    assert row["error"] == ""
    # numpy's SIMD sums depend on memory alignment: repeated calls agree to ~1e-15, not always bit for bit
    for metric, fn in F.FUNCTIONS.items():
        assert row[metric] == pytest.approx(fn(ref, deg), abs=1e-12), metric


def test_metrics_order_with_noise_level():
    ref = speech_like(3.0, 0)
    clean, bad = F.score_pair(ref, noisy(ref, 20.0, 1)), F.score_pair(ref, noisy(ref, -5.0, 1))
    for metric in F.METRICS:
        assert clean[metric] > bad[metric], metric


def test_length_rule_cuts_a_small_difference_and_refuses_a_large_one():
    ref = speech_like(3.0, 0)
    deg = noisy(ref, 5.0, 1)
    longer = np.concatenate([deg, np.full(F.LENGTH_TOLERANCE, 0.01)])
    assert F.pesq_wb(ref, longer) == pytest.approx(pesq.pesq(FS, ref, deg, "wb"), abs=1e-9)
    assert F.stoi(ref[:-100], deg) == pytest.approx(pystoi.stoi(ref[:-100], deg[:-100], FS), abs=1e-9)
    with pytest.raises(F.MetricError, match="length mismatch"):
        F.stoi(ref, np.concatenate([longer, [0.0]]))


def orthogonal_noise(ref: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """Zero-mean noise orthogonal to zero-mean `ref`, at `snr_db` below it."""
    s = ref - ref.mean()
    n = np.random.default_rng(seed).standard_normal(len(ref))
    n -= n.mean()
    n -= (n @ s) / (s @ s) * s
    n -= n.mean()  # s is zero-mean, so n stays orthogonal to it
    return n * np.sqrt((s @ s) / (n @ n) / 10 ** (snr_db / 10))


@pytest.mark.parametrize("snr_db", [-10.0, 0.0, 7.5, 25.0])
def test_si_sdr_equals_the_constructed_snr(snr_db):
    ref = speech_like(2.0, 7)
    deg = 0.6 * ref + 0.6 * orthogonal_noise(ref, snr_db, 8)
    assert F.si_sdr(ref, deg) == pytest.approx(snr_db, abs=0.01)


def test_si_sdr_is_scale_and_offset_invariant():
    ref = speech_like(2.0, 1)
    deg = noisy(ref, 3.0, 2)
    base = F.si_sdr(ref, deg)
    for scaled in (0.01 * deg, 30.0 * deg, deg + 0.2):
        assert F.si_sdr(ref, scaled) == pytest.approx(base, abs=1e-9)
    assert F.si_sdr(5.0 * ref, deg) == pytest.approx(base, abs=1e-9)


def test_si_sdr_is_very_large_for_identical_signals_and_low_for_unrelated_ones():
    ref = speech_like(2.0, 1)
    assert F.si_sdr(ref, ref) > 150
    assert F.si_sdr(ref, -ref) > 150  # scale-invariant: any non-zero scale, sign included
    assert F.si_sdr(ref, speech_like(2.0, 9) + 0.01) < 0


@pytest.mark.parametrize("make, reason", [
    (lambda r, d: (np.zeros_like(r), d), "silent reference"),
    (lambda r, d: (np.full_like(r, 1e-6), d), "silent reference"),
    (lambda r, d: (r[:3000], d[:3000]), "too short"),
    (lambda r, d: (r, np.where(np.arange(len(d)) == 100, np.nan, d)), "NaN or inf in the estimate"),
    (lambda r, d: (r, np.where(np.arange(len(d)) == 100, np.inf, d)), "NaN or inf in the estimate"),
    (lambda r, d: (np.where(np.arange(len(r)) == 5, np.nan, r), d), "NaN or inf in the reference"),
    (lambda r, d: (r, np.zeros_like(d)), "all-zero estimate"),
    (lambda r, d: (r, d[: len(d) - F.LENGTH_TOLERANCE - 1]), "length mismatch"),
    (lambda r, d: (np.stack([r, r]), np.stack([d, d])), "mono"),
])
def test_unscorable_pairs_raise_with_a_reason_and_score_pair_reports_it(make, reason):
    ref = speech_like(1.5, 3)
    ref_bad, deg_bad = make(ref, noisy(ref, 5.0, 4))
    for name, fn in F.FUNCTIONS.items():
        with pytest.raises(F.MetricError, match=reason):
            fn(ref_bad, deg_bad)
        assert name in F.METRICS
    row = F.score_pair(ref_bad, deg_bad)
    assert reason in row["error"]
    assert all(row[m] is None for m in F.METRICS)


def test_one_failing_metric_empties_only_that_metric(recwarn):
    # 0.375 s: enough for PESQ (0.25 s) and SI-SDR, too few STOI frames (pystoi alone would warn and return 1e-5)
    ref = speech_like(0.375, 5)
    deg = noisy(ref, 5.0, 6)
    row = F.score_pair(ref, deg)
    assert row["stoi"] is None and row["estoi"] is None
    assert row["pesq_wb"] == pytest.approx(pesq.pesq(FS, ref, deg, "wb"), abs=1e-9)
    assert row["si_sdr"] == pytest.approx(F.si_sdr(ref, deg), abs=1e-12)
    assert row["error"].startswith("stoi: fewer than 30 STOI frames") and "estoi:" in row["error"]
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_pesq_library_failure_becomes_a_metric_error():
    # 0.3 s of speech-like sound: long enough for the buffer check, too short for PESQ to find an utterance
    ref = speech_like(0.3, 5)
    with pytest.raises(pesq.NoUtterancesError):
        pesq.pesq(FS, ref, noisy(ref, 5.0, 6), "wb")
    with pytest.raises(F.MetricError, match="PESQ NoUtterancesError"):
        F.pesq_wb(ref, noisy(ref, 5.0, 6))
