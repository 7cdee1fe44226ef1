"""Enhancement: one float32 16 kHz wav per scene with the mixture's length; resumable; the blank-video control."""

from __future__ import annotations

import pytest
import soundfile as sf

from avse_bench.data import load_split
from avse_bench.enhance import enhance
from avse_bench.errors import AvseBenchError
from avse_bench.train import train

SYSTEM = "dcnn_rnn"


@pytest.fixture(scope="module")
def run(tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("enh") / "run"
    return train(SYSTEM, tiny_corpus, out, profile="smoke", progress=False)


def test_one_float_wav_per_scene_with_the_inputs_length(run, tiny_corpus, tmp_path):
    out = enhance(SYSTEM, run, tiny_corpus, split="dev", out_dir=tmp_path / "av", progress=False)
    scenes = load_split(tiny_corpus, "dev")
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s.id}.wav" for s in scenes)
    for s in scenes:
        info = sf.info(out / f"{s.id}.wav")
        assert info.samplerate == 16000 and info.subtype == "FLOAT" and info.channels == 1
        assert info.frames == sf.info(s.mixed).frames


def test_enhancement_resumes_and_blank_video_differs(run, tiny_corpus, tmp_path):
    out = enhance(SYSTEM, run, tiny_corpus, split="dev", out_dir=tmp_path / "av", progress=False)
    first, second = sorted(out.iterdir())[:2]
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
