"""What THE preprocessing costs per clip, and what a training item costs once the video is cached.

Run by `nox -s bench` (pytest-benchmark), never as a timed test. The clip is a 3 s embedded-corpus scene
(224 x 224, 25 fps, mp4v); the odd clip is the same length at 29.97 fps and 640 x 480, as camera footage is.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from avse_bench.data import AVSEDataset, Preprocessing, load_split
from avse_bench.data.face import write_mp4
from avse_bench.data.preprocessing import read_frames
from avse_bench.data.synth import synthesize


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_preprocessing")
    synthesize(root, n_train=2, n_dev=0, seed=0, min_seconds=3.0, max_seconds=3.0, progress=False)
    return root


@pytest.fixture(scope="module")
def odd_clip(corpus, tmp_path_factory):
    """The scene's face, upscaled to 640 x 480, as 90 frames at 29.97 fps."""
    path = tmp_path_factory.mktemp("bench_odd") / "clip.mp4"
    frames, _ = read_frames(corpus / "train" / "scenes" / "S00001_silent.mp4")
    big = [cv2.resize(frames[min(k * 25 // 30, len(frames) - 1)], (640, 480)) for k in range(90)]
    write_mp4(path, np.stack(big), fps=29.97)
    return path


@pytest.mark.parametrize("size", [128, 64])
def test_video_3s_clip(benchmark, corpus, size):
    pre = Preprocessing(size=size)
    video = benchmark(pre.video, corpus / "train" / "scenes" / "S00001_silent.mp4")
    assert video.shape == (75, size, size)


def test_video_3s_2997fps_640x480(benchmark, odd_clip):
    video = benchmark(Preprocessing(size=128).video, odd_clip)
    assert video.shape == (75, 128, 128)


def test_audio_3s(benchmark, corpus):
    audio = benchmark(Preprocessing().audio, corpus / "train" / "scenes" / "S00001_mixed.wav")
    assert audio.shape == (48_000,)


def test_training_item_with_cached_video(benchmark, corpus):
    ds = AVSEDataset(load_split(corpus, "train"), Preprocessing(size=128), crop_seconds=3.0)
    ds[0]  # decode once: later items come from the cache
    item = benchmark(ds.__getitem__, 0)
    assert item["video"].shape == (1, 75, 128, 128)
