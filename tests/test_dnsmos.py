"""DNSMOS: the values of speechmos's own call, the defined outcome of each awkward input, and blind scoring of a
split without clean targets. (DNSMOS costs about 0.5-1 s per clip on 2 cores: the clips here are few and short.)"""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import soundfile as sf
from speechmos import dnsmos as speechmos_dnsmos

from avse_bench.errors import AvseBenchError
from avse_bench.metrics import dnsmos as D
from avse_bench.metrics.functional import FS, MetricError
from avse_bench.metrics.scoring import METRICS, parse_metrics, score_split

pytestmark = pytest.mark.slow


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a syllable-rate envelope plus a little noise, within [-1, 1]."""
    t = np.arange(int(seconds * FS)) / FS
    rng = np.random.default_rng(seed)
    voiced = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 8))
    return 0.2 * voiced * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)) + 0.01 * rng.standard_normal(t.size)


@pytest.fixture(autouse=True)
def default_threads():
    D.set_threads(None)
    yield
    D.set_threads(None)


def test_values_are_speechmos_own_call():
    clip = speech_like(3.0)
    ours = D.dnsmos(clip)
    theirs = speechmos_dnsmos.run(clip, FS)
    assert ours == {"dnsmos_ovrl": theirs["ovrl_mos"], "dnsmos_sig": theirs["sig_mos"],
                    "dnsmos_bak": theirs["bak_mos"], "dnsmos_p808": float(theirs["p808_mos"])}
    assert 1.0 <= ours["dnsmos_ovrl"] <= 5.0


def test_single_threaded_sessions_give_the_same_values():
    clip = speech_like(2.5, seed=1)
    default = D.dnsmos(clip)
    D.set_threads(1)
    single = D.dnsmos(clip)
    assert speechmos_dnsmos.dnsmos.threads == 1
    assert single == pytest.approx(default, abs=1e-6)  # onnxruntime's sums in another order: 1e-8 apart at most here


def test_awkward_clips_have_a_defined_outcome():
    with pytest.raises(MetricError, match=r"outside \[-1, 1\] \(DNSMOS depends on the level: not rescaled\)"):
        D.dnsmos(np.full(FS, 1.5))
    with pytest.raises(MetricError, match="NaN or inf"):
        D.dnsmos(np.array([0.0, np.nan] * FS))
    with pytest.raises(MetricError, match="empty"):
        D.dnsmos(np.zeros(0))
    with pytest.raises(MetricError, match="not a mono 1-D signal"):
        D.dnsmos(np.zeros((2, FS)))
    silent = D.dnsmos(np.zeros(3 * FS))  # a value (documented): no speech, a clean background
    assert silent == pytest.approx({"dnsmos_ovrl": 1.840, "dnsmos_sig": 2.514, "dnsmos_bak": 3.472,
                                    "dnsmos_p808": 2.147}, abs=2e-3)
    short = D.dnsmos(speech_like(0.1))  # repeated by speechmos to 12.8 s: a value
    assert all(1.0 <= v <= 5.0 for v in short.values())


def test_parse_metrics():
    assert parse_metrics(None) == (*METRICS, *D.DNSMOS_METRICS)  # the mono track's metrics
    assert parse_metrics("intrusive") == METRICS
    assert parse_metrics("dnsmos_ovrl,si_sdr") == ("si_sdr", "dnsmos_ovrl")
    assert parse_metrics("all", has_targets=False) == D.DNSMOS_METRICS
    # the binaural track: MBSTOI, and DNSMOS on the (L + R) / 2 downmix
    assert parse_metrics("all", track="binaural") == parse_metrics(None, track="binaural") == (*D.DNSMOS_METRICS,
                                                                                                "mbstoi")
    # the Real-World tracks: the official scorer's set
    assert parse_metrics(None, track="track1") == ("rw_si_sdr", "rw_pesq_wb", "rw_stoi", "utmos", *D.DNSMOS_METRICS,
                                                   "cer", "spk_sim")
    with pytest.raises(AvseBenchError, match="unknown metric 'mos'"):
        parse_metrics("mos")
    with pytest.raises(AvseBenchError, match="--metrics mbstoi: not a metric of the mono track"):
        parse_metrics("mbstoi")
    with pytest.raises(AvseBenchError, match="--metrics stoi: not a metric of the binaural track"):
        parse_metrics("stoi", track="binaural")
    with pytest.raises(AvseBenchError, match="--metrics si_sdr: not a metric of the track1 track"):
        parse_metrics("si_sdr", track="track1")


def test_a_forked_scorer_after_a_call_in_the_parent_does_not_hang(tiny_corpus, tmp_path):
    """onnxruntime sessions inherited across a fork hang on their first run: one worker (default threads) after a
    DNSMOS call in this process used to hang forever."""
    D.dnsmos(speech_like(1.0))
    rows = _rows(score_split(tiny_corpus, "dev", tmp_path / "s.csv", jobs=1, progress=False, metrics="dnsmos",
                             timeout=60))
    assert all(r["error"] == "" and r["dnsmos_ovrl"] != "" for r in rows.values())


def _rows(path):
    with open(path, newline="") as f:
        return {r["scene"]: r for r in csv.DictReader(f)}


def test_an_eval_split_without_targets_gets_dnsmos_rows_and_no_error(tiny_corpus, tmp_path):
    scenes = tmp_path / "root" / "eval" / "scenes"
    shutil.copytree(tiny_corpus / "dev" / "scenes", scenes)
    for target in [*scenes.glob("*_target.wav"), *scenes.glob("*_interferer.wav")]:  # as the challenge's eval split
        target.unlink()
    rows = _rows(score_split(tmp_path / "root", "eval", tmp_path / "eval.csv", jobs=2, progress=False))
    assert len(rows) == 3
    for row in rows.values():
        assert row["error"] == ""
        assert all(row[m] == "" for m in METRICS)
        assert all(1.0 <= float(row[m]) <= 5.0 for m in D.DNSMOS_METRICS)
    scene, row = next(iter(sorted(rows.items())))
    mixture, _ = sf.read(scenes / f"{scene}_mixed.wav", dtype="float64")
    assert float(row["dnsmos_ovrl"]) == pytest.approx(D.dnsmos(mixture)["dnsmos_ovrl"], abs=1e-6)


def test_an_enhanced_file_outside_the_range_is_a_dnsmos_error_row_and_the_rest_is_scored(tiny_corpus, tmp_path):
    enhanced = tmp_path / "enhanced"
    enhanced.mkdir()
    for mixed in sorted((tiny_corpus / "dev" / "scenes").glob("*_mixed.wav")):
        audio, _ = sf.read(mixed, dtype="float64")
        sf.write(enhanced / mixed.name.replace("_mixed", ""), audio * 8.0, FS, subtype="FLOAT")
    rows = _rows(score_split(tiny_corpus, "dev", tmp_path / "s.csv", enhanced_dir=enhanced, jobs=1, progress=False))
    loud = [r for r in rows.values() if "dnsmos: samples outside [-1, 1]" in r["error"]]
    assert loud, "a float wav with samples beyond 1 must be a DNSMOS error row"
    assert all(r["dnsmos_ovrl"] == "" and r["si_sdr"] != "" for r in loud)
