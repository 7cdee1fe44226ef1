"""The embedded corpus: exact AVSEC layout and schema, the mixing rules, bit-identical per seed, and a video that
carries the target (measured from the written files)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from avse_bench.data import Preprocessing
from avse_bench.data.avsync import envelope, mouth_activity, pearson, sync_figures
from avse_bench.data.preprocessing import read_frames
from avse_bench.data.synth import NOISE_SNR_DB, RAMP_SECONDS, SPEECH_SNR_DB, synthesize
from avse_bench.errors import AvseBenchError

PARTS = ("target", "interferer", "mixed")
PCM_STEP = 1 / 32768


def test_layout_and_metadata_schema(tiny_corpus):
    assert sorted(p.name for p in tiny_corpus.iterdir()) == ["dev", "metadata", "train"]
    for split, ids in (("train", range(1, 5)), ("dev", range(5, 8))):
        scenes_dir = tiny_corpus / split / "scenes"
        expected = {f"S{i:05d}_{p}" for i in ids for p in
                    ("target.wav", "interferer.wav", "mixed.wav", "silent.mp4")}
        assert {p.name for p in scenes_dir.iterdir()} == expected
        records = json.loads((tiny_corpus / "metadata" / f"scenes.{split}.json").read_text())
        assert [r["scene"] for r in records] == [f"S{i:05d}" for i in ids]
        for r in records:
            assert set(r) == {"scene", "dataset", "target", "interferer", "SNR", "duration"}
            assert r["dataset"] == split and isinstance(r["target"]["name"], str)
            assert set(r["interferer"]) == {"type", "name", "offset"}
            lo, hi = SPEECH_SNR_DB if r["interferer"]["type"] == "speech" else NOISE_SNR_DB
            assert r["interferer"]["type"] in ("speech", "noise") and lo <= r["SNR"] <= hi
            infos = [sf.info(str(scenes_dir / f"{r['scene']}_{p}.wav")) for p in PARTS]
            assert all(i.samplerate == 16000 and i.channels == 1 and i.subtype == "PCM_16" for i in infos)
            assert {i.frames for i in infos} == {r["duration"]}
            assert 1.0 * 16000 - 320 <= r["duration"] <= 1.5 * 16000 + 320
            frames, fps = read_frames(scenes_dir / f"{r['scene']}_silent.mp4")
            assert fps == 25 and frames[0].shape == (224, 224, 3) and len(frames) * 640 == r["duration"]


def test_mixing_rules(tiny_corpus):
    """mixed = target + interferer (one shared normalisation, so still additive after it), the SNR holds, and
    the interferer fades in over 0.5 s."""
    ramp = int(RAMP_SECONDS * 16000)
    for split in ("train", "dev"):
        for r in json.loads((tiny_corpus / "metadata" / f"scenes.{split}.json").read_text()):
            base = tiny_corpus / split / "scenes" / r["scene"]
            t, i, m = (sf.read(f"{base}_{p}.wav")[0] for p in PARTS)
            assert np.max(np.abs(m - (t + i))) <= 1.5 * PCM_STEP
            assert 0.3 < np.max(np.abs(np.r_[t, i, m])) <= 1.0
            # the SNR is set on the un-ramped interferer: compare powers after the ramp, scaled to the whole scene
            snr = 10 * np.log10(np.mean(t**2) / np.mean(i[ramp:] ** 2))
            assert abs(snr - r["SNR"]) < 2.0
            head, body = np.abs(i[:160]).mean(), np.abs(i[ramp:]).mean()
            assert head < 0.01 * body  # first 10 ms: the half-cosine ramp has barely started


def test_same_seed_same_bytes_other_seed_other_bytes(tiny_corpus, tmp_path):
    """Scenes depend on (seed, split, index) only: a smaller corpus with the same seed repeats the tiny corpus's
    first scenes byte for byte (dev ids shift with the train count); another seed changes them."""
    same = synthesize(tmp_path / "same", n_train=2, n_dev=1, seed=0, min_seconds=1.2, max_seconds=1.5,
                      progress=False)
    other = synthesize(tmp_path / "other", n_train=2, n_dev=1, seed=1, min_seconds=1.2, max_seconds=1.5,
                       progress=False)
    pairs = [("train", "S00001", "S00001"), ("train", "S00002", "S00002"), ("dev", "S00005", "S00003")]
    for split, tiny_id, small_id in pairs:
        for part in ("target.wav", "interferer.wav", "mixed.wav", "silent.mp4"):
            reference = (tiny_corpus / split / "scenes" / f"{tiny_id}_{part}").read_bytes()
            assert (same / split / "scenes" / f"{small_id}_{part}").read_bytes() == reference
            assert (other / split / "scenes" / f"{small_id}_{part}").read_bytes() != reference


def test_refuses_to_mix_into_an_existing_corpus(tiny_corpus):
    before = sorted(p.name for p in (tiny_corpus / "train" / "scenes").iterdir())
    with pytest.raises(AvseBenchError, match="already holds scenes"):
        synthesize(tiny_corpus, n_train=1, n_dev=0, seed=5, progress=False)
    assert sorted(p.name for p in (tiny_corpus / "train" / "scenes").iterdir()) == before


def test_video_is_a_face_that_equalisation_changes(tiny_corpus):
    scenes = tiny_corpus / "train" / "scenes"
    raw = Preprocessing(size=64, equalize=False).video(scenes / "S00001_silent.mp4")
    eq = Preprocessing(size=64).video(scenes / "S00001_silent.mp4")
    assert raw.shape == eq.shape and raw.std(axis=(1, 2)).min() > 0.02  # not blank
    assert np.mean(np.abs(raw[1:] - raw[:-1])) > 0  # it moves
    assert eq.std() > raw.std()  # the rendered lighting leaves contrast for equalisation to restore


@pytest.mark.slow
def test_video_follows_the_target_not_a_speech_masker(tmp_path):
    """Mouth-box contrast against amplitude envelopes at 25 fps, from the written files (mean over scenes)."""
    root = synthesize(tmp_path, n_train=40, n_dev=0, seed=11, min_seconds=2.0, max_seconds=3.0, progress=False)
    figures = sync_figures(root, "train")
    assert len(figures.target_r) == 40 and len(figures.speech_masker_r) >= 10
    assert figures.mean_target_r >= 0.5
    assert abs(figures.mean_speech_masker_r) <= 0.1
    # control: the same measure against another scene's target is near zero (the figure is not an artefact)
    boxes = json.loads((root / "metadata" / "synth.train.json").read_text())["scenes"]
    scenes = root / "train" / "scenes"
    shuffled = []
    for k in range(10):
        a, b = f"S{k + 1:05d}", f"S{(k + 1) % 10 + 1:05d}"
        activity = mouth_activity(scenes / f"{a}_silent.mp4", tuple(boxes[a]["mouth_box"]))
        other, _ = sf.read(scenes / f"{b}_target.wav")
        n = min(len(activity), len(other) // 640)
        shuffled.append(pearson(activity[:n], envelope(other, n)))
    assert abs(np.mean(shuffled)) < 0.25
