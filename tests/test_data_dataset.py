"""The torch Dataset: audio and video crops stay aligned sample-exactly, crops are a function of (seed, epoch,
index), short scenes are padded, whole utterances cover the audio, and video is decoded once per scene."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from avse_bench.data import AVSEDataset, Preprocessing, load_split
from avse_bench.data.face import write_mp4

SPF = 640  # samples per video frame
LEVEL = 16  # grey-level step of the video marker's two base-16 digits (robust to mp4 compression)


def write_marked_scene(scenes_dir, scene_id: str, n_frames: int, extra_samples: int) -> None:
    """Video frame k shows k in base 16 as two grey halves; audio samples [640 k, 640 (k + 1)) hold k / 100 (the target
    holds -k / 100), so a crop is aligned exactly when both tell the same k for every frame."""
    k = np.arange(n_frames)
    audio = np.repeat(k / 100.0, SPF)
    audio = np.concatenate([audio, np.full(extra_samples, n_frames / 100.0)])
    sf.write(scenes_dir / f"{scene_id}_mixed.wav", audio, 16_000, subtype="PCM_16")
    sf.write(scenes_dir / f"{scene_id}_target.wav", -audio, 16_000, subtype="PCM_16")
    frames = np.empty((n_frames, 32, 32, 3), np.uint8)
    frames[:, :, :16] = (k % 16 * LEVEL + LEVEL // 2)[:, None, None, None]  # low digit, left half
    frames[:, :, 16:] = (k // 16 * LEVEL + LEVEL // 2)[:, None, None, None]  # high digit, right half
    write_mp4(scenes_dir / f"{scene_id}_silent.mp4", frames)


@pytest.fixture(scope="module")
def marked_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("marked")
    scenes = root / "train" / "scenes"
    scenes.mkdir(parents=True)
    write_marked_scene(scenes, "S00001", 60, 200)  # 2.4 s + 200 samples
    write_marked_scene(scenes, "S00002", 10, 0)  # 0.4 s: shorter than a 1 s crop
    return root


def video_ids(video: np.ndarray) -> np.ndarray:
    """The frame index coded in each (T, 16, 16) frame (inner columns of each half, away from the edge)."""
    low = np.round((video[:, :, 1:6].mean(axis=(1, 2)) * 255 - LEVEL // 2) / LEVEL)
    high = np.round((video[:, :, 10:15].mean(axis=(1, 2)) * 255 - LEVEL // 2) / LEVEL)
    return high * 16 + low


def frame_ids(item) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frame index each video frame, mixture block and target block of an item says it is."""
    video = item["video"][0].numpy()  # (T, H, W)
    mixed, target = item["mixed"].numpy(), item["target"].numpy()
    n = video.shape[0]
    v = video_ids(video)
    m = np.round(mixed[: n * SPF].reshape(n, SPF) * 100)
    t = np.round(-target[: n * SPF].reshape(n, SPF) * 100)
    return v, m, t


def test_training_crops_are_aligned(marked_root):
    scenes = load_split(marked_root, "train")
    ds = AVSEDataset(scenes, Preprocessing(size=16, equalize=False), crop_seconds=1.0, seed=3)
    starts = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        item = ds[0]
        assert item["scene"] == "S00001"
        assert item["mixed"].shape == (16_000,) and item["target"].shape == (16_000,)
        assert item["video"].shape == (1, 25, 16, 16) and item["video"].dtype == torch.float32
        v, m, t = frame_ids(item)
        # every sample of a block tells the same frame (no sub-frame shift), and video agrees with audio
        assert np.all(m == m[:, :1]) and np.all(t == t[:, :1])
        assert np.array_equal(v, m[:, 0]) and np.array_equal(v, t[:, 0])
        assert np.array_equal(v, v[0] + np.arange(25))  # consecutive frames
        starts.add(int(v[0]))
    assert len(starts) > 1  # the crop moves between epochs
    assert all(0 <= s <= 60 - 25 for s in starts)


def test_crops_depend_on_seed_epoch_index_only(marked_root):
    scenes = load_split(marked_root, "train")
    pre = Preprocessing(size=16, equalize=False)
    a, b = AVSEDataset(scenes, pre, 1.0, seed=7), AVSEDataset(scenes, pre, 1.0, seed=7)
    for epoch in (0, 4):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        assert torch.equal(a[0]["mixed"], b[0]["mixed"]) and torch.equal(a[0]["video"], b[0]["video"])
    starts = {AVSEDataset(scenes, pre, 1.0, seed=s).crop_start(0, 60 * SPF + 200) for s in range(8)}
    assert len(starts) > 1


def test_short_scene_is_padded(marked_root):
    scenes = load_split(marked_root, "train")
    item = AVSEDataset(scenes, Preprocessing(size=16, equalize=False), crop_seconds=1.0)[1]
    assert item["scene"] == "S00002"
    mixed, video = item["mixed"].numpy(), item["video"][0].numpy()
    assert mixed.shape == (16_000,) and video.shape == (25, 16, 16)
    assert np.all(mixed[10 * SPF:] == 0)  # audio padded with silence
    v, m, _ = frame_ids(item)
    assert np.array_equal(v[:10], m[:10, 0])
    assert np.all(v[10:] == 9)  # video padded with its last frame


def test_whole_utterances(marked_root):
    scenes = load_split(marked_root, "train")
    ds = AVSEDataset(scenes, Preprocessing(size=16, equalize=False), crop_seconds=None)
    item = ds[0]
    n_samples = 60 * SPF + 200
    assert item["mixed"].shape == (n_samples,)
    assert item["video"].shape == (1, math.ceil(n_samples / SPF), 16, 16)  # 61: the last frame repeated
    assert np.array_equal(video_ids(item["video"][0].numpy()), np.r_[np.arange(60), 59])


def test_video_decoded_once_per_scene_and_batches_collate(marked_root, monkeypatch):
    calls = []
    original = Preprocessing.video_uint8
    monkeypatch.setattr(Preprocessing, "video_uint8", lambda self, p: calls.append(p) or original(self, p))
    scenes = load_split(marked_root, "train")
    ds = AVSEDataset(scenes, Preprocessing(size=16, equalize=False), crop_seconds=0.4, seed=1)
    for epoch in range(3):
        ds.set_epoch(epoch)
        batch = next(iter(DataLoader(ds, batch_size=2, shuffle=False)))
        assert batch["mixed"].shape == (2, 6400) and batch["video"].shape == (2, 1, 10, 16, 16)
        assert batch["scene"] == ["S00001", "S00002"]
    assert len(calls) == 2


def test_disk_cache_is_keyed_by_preprocessing(marked_root, tmp_path):
    scenes = load_split(marked_root, "train")
    for size in (16, 8):
        AVSEDataset(scenes, Preprocessing(size=size), crop_seconds=0.4, cache_dir=tmp_path)[0]
    cached = sorted(tmp_path.glob("*/*.npy"))
    assert len(cached) == 2 and cached[0].parent != cached[1].parent
    fresh = AVSEDataset(scenes, Preprocessing(size=16), crop_seconds=0.4, cache_dir=tmp_path)
    expected = Preprocessing(size=16).video_uint8(scenes[0].video)
    assert np.array_equal(fresh.frames.frames(scenes[0].video), expected)
