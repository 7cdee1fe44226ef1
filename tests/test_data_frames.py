"""Bounded frame sources: a crop decoded alone equals the same frames of the whole video (any frame rate), the
in-memory cache never passes its budget however many scenes there are, and the disk store is keyed, atomic,
bounded and exact."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from avse_bench.data import AVSEDataset, Preprocessing, load_split
from avse_bench.data.face import write_mp4
from avse_bench.data.frames import FrameSource, store_key
from avse_bench.data.synth import synthesize


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """8 train scenes of 1.0-1.5 s (224 px mp4v at 25 fps)."""
    root = tmp_path_factory.mktemp("frames_corpus")
    synthesize(root, n_train=8, n_dev=0, seed=2, min_seconds=1.0, max_seconds=1.5, progress=False)
    return root


@pytest.mark.parametrize("fps", [25.0, 29.97, 15.0])
def test_a_decoded_range_equals_that_slice_of_the_whole_video(tmp_path, fps):
    rng = np.random.default_rng(0)
    path = tmp_path / "clip.mp4"
    write_mp4(path, rng.integers(0, 255, (40, 48, 48, 3), dtype=np.uint8), fps=fps)
    pre = Preprocessing(size=16)
    whole = pre.video_uint8(path)
    for start, stop in [(0, 5), (7, 19), (len(whole) - 3, len(whole) + 10), (len(whole) + 2, len(whole) + 9),
                        (4, 4), (3, None)]:
        assert np.array_equal(pre.video_uint8(path, start, stop), whole[start:stop]), (start, stop)


def test_memory_cache_stays_within_its_budget_whatever_the_corpus_size(corpus):
    scenes = load_split(corpus, "train")
    pre = Preprocessing(size=32)
    one_video = pre.video_uint8(scenes[0].video).nbytes
    budget_mb = 2.5 * one_video / 2**20  # room for two or three videos, whatever the corpus holds
    held = {}
    for n in (2, 4, 8):
        ds = AVSEDataset(scenes[:n], pre, crop_seconds=0.4, seed=1, memory_mb=budget_mb)
        for epoch in range(2):
            for i in range(n):
                item = ds[(epoch, i)]
                start = ds.crop_start(i, len(pre.audio(scenes[i].mixed)), epoch)
                expected = pre.video_uint8(scenes[i].video)[start:start + 10]
                assert np.array_equal(np.round(item["video"][0].numpy() * 255).astype(np.uint8), expected)
        held[n] = ds.frames.memory_bytes
        assert held[n] <= budget_mb * 2**20
    assert held[8] == held[4]  # beyond the budget, more scenes hold no more memory
    no_cache = AVSEDataset(scenes, pre, crop_seconds=0.4, memory_mb=0)
    no_cache[0]
    assert no_cache.frames.memory_bytes == 0


def test_a_worker_starts_with_an_empty_cache(corpus):
    ds = AVSEDataset(load_split(corpus, "train"), Preprocessing(size=16), crop_seconds=0.4)
    ds[0]
    assert ds.frames.memory_bytes > 0
    assert pickle.loads(pickle.dumps(ds)).frames.memory_bytes == 0


def test_disk_store_is_keyed_atomic_bounded_and_exact(corpus, tmp_path):
    scenes = load_split(corpus, "train")
    pre = Preprocessing(size=32)
    size = pre.video_uint8(scenes[0].video).nbytes
    source = FrameSource(pre, memory_mb=0, store_dir=tmp_path, store_gb=3.5 * size / 2**30)
    for scene in scenes:
        assert np.array_equal(source.frames(scene.video, 3, 9), pre.video_uint8(scene.video)[3:9])
    folder = tmp_path / pre.config_hash()
    stored = sorted(p.name for p in folder.iterdir())
    assert 2 <= len(stored) <= 3  # admission stopped at the budget
    assert all(name.endswith(".npy") and not name.startswith(".") for name in stored)  # no temporary file left
    assert {f"{store_key(s.video)}.npy" for s in scenes} >= set(stored)
    again = FrameSource(pre, memory_mb=0, store_dir=tmp_path)  # a re-run reads what is there, by memory map
    for scene in scenes:
        assert np.array_equal(again.frames(scene.video), pre.video_uint8(scene.video))
    other = FrameSource(Preprocessing(size=16), memory_mb=0, store_dir=tmp_path)
    other.frames(scenes[0].video)
    assert len(list(tmp_path.iterdir())) == 2  # another preprocessing, another folder


def test_fill_store_in_parallel_then_resume(corpus, tmp_path):
    from avse_bench.data.frames import fill_store

    videos = [s.video for s in load_split(corpus, "train")]
    pre = Preprocessing(size=16)
    first = fill_store(videos[:5], pre, tmp_path, jobs=2, progress=False)
    assert (first["already_stored"], first["stored"], first["left_out_by_budget"]) == (0, 5, 0)
    second = fill_store(videos, pre, tmp_path, jobs=2, progress=False)  # resumes: only the 3 missing ones
    assert (second["already_stored"], second["stored"]) == (5, 3)
    source = FrameSource(pre, memory_mb=0, store_dir=tmp_path)
    for video in videos:
        assert np.array_equal(np.load(source.store / f"{store_key(video)}.npy"), pre.video_uint8(video))
