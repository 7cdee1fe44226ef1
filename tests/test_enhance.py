"""Enhancement: one 16-bit 16 kHz wav per scene with the mixture's length (as the official test.py writes them) and its
peak; resumable; the blank-video control."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from avse_bench.data import load_split
from avse_bench.enhance import _record_peak, clipping_note, enhance, read_peaks, write_enhanced
from avse_bench.errors import AvseBenchError
from avse_bench.profiles import choose_preprocessing
from avse_bench.train import train

SYSTEM = "dcnn_rnn"
SMOKE_PRE = choose_preprocessing([], "smoke")[0]


@pytest.fixture(scope="module")
def run(tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("enh") / "run"
    return train(SYSTEM, tiny_corpus, out, profile="smoke", progress=False, preprocessing=SMOKE_PRE)


def test_one_16_bit_wav_per_scene_with_the_inputs_length_and_its_peak(run, tiny_corpus, tmp_path):
    out = enhance(SYSTEM, run, tiny_corpus, split="dev", out_dir=tmp_path / "av", progress=False)
    scenes = load_split(tiny_corpus, "dev")
    assert sorted(p.name for p in out.glob("*.wav")) == sorted(f"{s.id}.wav" for s in scenes)
    peaks = read_peaks(out)
    assert sorted(peaks) == [s.id for s in scenes]
    for s in scenes:
        info = sf.info(out / f"{s.id}.wav")
        assert info.samplerate == 16000 and info.subtype == "PCM_16" and info.channels == 1
        assert info.frames == sf.info(s.mixed).frames
        written, _ = sf.read(out / f"{s.id}.wav")
        assert 0 < peaks[s.id] and abs(np.abs(written).max() - min(peaks[s.id], 1.0)) <= 1 / 32768


def test_beyond_full_scale_is_clipped_as_the_official_files_and_said(tmp_path):
    audio = np.array([0.5, 1.7, -2.0, 0.25], np.float32)
    write_enhanced(tmp_path / "a.wav", audio)
    written, _ = sf.read(tmp_path / "a.wav")
    assert sf.info(tmp_path / "a.wav").subtype == "PCM_16"
    assert written.tolist() == [0.5, 32767 / 32768, -1.0, 0.25]
    (tmp_path / "peaks.csv").write_text("scene,peak\nS1,1.7\nS2,0.4\nS1,1.7\n")  # a scene re-enhanced after a kill
    assert read_peaks(tmp_path) == {"S1": 1.7, "S2": 0.4}
    assert clipping_note(tmp_path).startswith("1 of 2 outputs in") and "(up to 1.70)" in clipping_note(tmp_path)
    (tmp_path / "peaks.csv").write_text("scene,peak\nS2,0.4\n")
    assert clipping_note(tmp_path) is None


def test_a_peaks_line_cut_short_by_a_kill_loses_nothing_else(tmp_path):
    (tmp_path / "peaks.csv").write_text("scene,peak\nS1,0.5\nS2,1.")  # killed while appending S2's line
    _record_peak(tmp_path, "S2", 1.25)  # the resumed run enhances S2 again
    _record_peak(tmp_path, "S3", 0.75)
    assert read_peaks(tmp_path) == {"S1": 0.5, "S2": 1.25, "S3": 0.75}
    (tmp_path / "peaks.csv").write_text("scene,peak\nS1,0.5\nS2")  # cut before its value: skipped, not a traceback
    assert read_peaks(tmp_path) == {"S1": 0.5}


def test_a_non_finite_output_stays_visible_to_scoring(tmp_path):
    # the same kind, chosen here: 16-bit conversion turns NaN into -1 and inf into full scale without a word
    write_enhanced(tmp_path / "a.wav", np.array([0.1, np.nan, 0.2, np.inf], np.float32))
    written, _ = sf.read(tmp_path / "a.wav")
    assert sf.info(tmp_path / "a.wav").subtype == "FLOAT" and np.isnan(written[1]) and np.isinf(written[3])


def test_enhancement_resumes_and_blank_video_differs(run, tiny_corpus, tmp_path):
    out = enhance(SYSTEM, run, tiny_corpus, split="dev", out_dir=tmp_path / "av", progress=False)
    first, second = sorted(out.glob("*.wav"))[:2]
    kept = first.stat().st_mtime_ns
    second.unlink()
    enhance(SYSTEM, run, tiny_corpus, split="dev", out_dir=out, progress=False)
    assert first.stat().st_mtime_ns == kept  # done scenes are skipped
    assert second.is_file()  # the missing one is written again
    blank = enhance(SYSTEM, run, tiny_corpus, split="dev", out_dir=tmp_path / "blank", blank_video=True,
                    progress=False)
    av_audio, _ = sf.read(first)
    blank_audio, _ = sf.read(blank / first.name)
    assert av_audio.shape == blank_audio.shape
    assert abs(av_audio - blank_audio).max() > 1e-6  # the video matters to the model


def test_a_run_without_weights_is_explained(tiny_corpus, tmp_path):
    with pytest.raises(AvseBenchError, match="model.pt"):
        enhance(SYSTEM, tmp_path, tiny_corpus, out_dir=tmp_path / "o", progress=False)
