"""The torch Dataset over AVSEC scenes: aligned audio/video crops for training, whole utterances for evaluation.

Alignment: video frame i covers audio samples [640 i, 640 (i + 1)) (16 kHz / 25 fps). A training crop of
n = round(crop_seconds * 25) frames starts on a frame boundary chosen by a generator seeded with
(seed, epoch, index), so a resumed run, and a run with any number of DataLoader workers, sees the same crops; scenes
shorter than the crop are padded (audio with zeros, video by the system's `Feed.video_padding`: its last frame
repeated by default, black frames for the AVSEC-4 baseline). A whole utterance gets as many frames as cover the
audio, or, for a system whose `Feed.video_frames` is "video", the video's own frames (at least
`Feed.min_video_frames`), as the AVSEC-4 baseline's test path. Audio is (L,) for a mono system, (2, L) for a
binaural one.

Memory does not grow with the corpus: video frames come from a `FrameSource` (frames.py), whose in-memory cache
(default 256 MiB per process) and optional disk store (`cache_dir`) are both bounded by budgets.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from avse_bench.data.frames import DEFAULT_MEMORY_MB, DEFAULT_STORE_GB, FrameSource
from avse_bench.data.layout import Scene, require_channels
from avse_bench.data.preprocessing import SAMPLES_PER_FRAME, VIDEO_FPS, Preprocessing
from avse_bench.errors import AvseBenchError

PAD_MODES = {"edge": "edge", "zeros": "constant"}  # Feed.video_padding -> numpy.pad mode


def _fit(x: np.ndarray, n: int, mode: str, axis: int = 0) -> np.ndarray:
    """First n entries of x along `axis`, padded at the end ("constant" zeros or "edge" repeats)."""
    if x.shape[axis] >= n:
        return np.take(x, np.arange(n), axis=axis)
    pad = [(0, 0)] * x.ndim
    pad[axis] = (0, n - x.shape[axis])
    return np.pad(x, pad, mode=mode)


class AVSEDataset(Dataset):
    """Items of `scenes` preprocessed by `preprocessing`: dicts with `scene` (id), `mixed` (n_samples,) float32
    ((2, n_samples) for a binaural system), `video` (C, n_frames, size, size) float32 in [0, 1] (C = 1 grey, 3
    RGB: `Preprocessing.color`) and, where the scene has one, `target` (the shape of `mixed`).

    `system`: the System the items are for (its channels, and its `Feed` for padding and whole-utterance frames);
    None: a mono system with the default feed.
    `crop_seconds`: training crops of that length (None: whole utterances, the video padded to cover the audio).
    `video_uint8=True` leaves `video` as the preprocessed uint8 frames, 4x less to pass from DataLoader workers,
    pin and copy to the GPU; `video_to_float` then gives exactly the float32 video on the device.
    `seed`: with the epoch and the index, the crop's start. `video_offset`: a training crop's video starts this
    many frames from its audio, at least at frame 0 (the AVSEC-1 baseline's dataset: -2; `[recipe]
    crop_video_offset`). `cache_dir`: a disk store of preprocessed frames
    (frames.py), at most `store_gb` GiB; `memory_mb`: the in-memory frame budget per process. An item is addressed
    by its index (at the epoch set with `set_epoch`) or by `(epoch, index)`, which `EpochSampler` yields so that
    persistent DataLoader workers crop for the right epoch. Raises AvseBenchError for a crop shorter than one frame,
    for scenes on a track with another number of channels than the system's, and for a scene whose target and
    mixture differ in length.
    """

    def __init__(self, scenes: list[Scene], preprocessing: Preprocessing, crop_seconds: float | None = 3.0,
                 seed: int = 0, cache_dir=None, memory_mb: float = DEFAULT_MEMORY_MB,
                 store_gb: float = DEFAULT_STORE_GB, video_uint8: bool = False, system=None, video_offset: int = 0):
        from avse_bench.systems import Feed

        if crop_seconds is not None and round(crop_seconds * VIDEO_FPS) < 1:
            raise AvseBenchError(f"crop_seconds must cover at least one video frame (got {crop_seconds})")
        self.scenes = list(scenes)
        self.channels = system.channels if system is not None else 1
        self.feed = system.feed() if system is not None else Feed()
        require_channels(self.scenes, self.channels, f"system {system.name}" if system is not None else "a mono "
                         "system")
        self.preprocessing = preprocessing
        preprocessing.require_sources([scene.video for scene in self.scenes])
        self.crop_frames = None if crop_seconds is None else int(round(crop_seconds * VIDEO_FPS))
        self.seed = seed
        self.epoch = 0
        self.video_uint8 = video_uint8
        self.video_offset = int(video_offset)
        self.frames = FrameSource(preprocessing, memory_mb=memory_mb, store_dir=cache_dir, store_gb=store_gb)

    def __len__(self) -> int:
        return len(self.scenes)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def crop_start(self, index: int, n_samples: int, epoch: int | None = None) -> int:
        """First video frame of the training crop of item `index` (a function of seed, epoch and index)."""
        last = max((n_samples - self.crop_frames * SAMPLES_PER_FRAME) // SAMPLES_PER_FRAME, 0)
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else epoch, index])
        return int(rng.integers(last + 1))

    def _clip(self, scene: Scene, start: int, n_frames: int | None) -> np.ndarray:
        """uint8 (n, size, size) (or (n, size, size, 3)) from frame `start` (below 0: frame 0): `n_frames` of them,
        or (None) the video's own to its end, at
        least `Feed.min_video_frames`; padded by `Feed.video_padding`."""
        pad = PAD_MODES[self.feed.video_padding]
        start = max(start, 0)
        clip = self.frames.frames(scene.video, start, None if n_frames is None else start + n_frames)
        if n_frames is None:
            n_frames = max(len(clip), self.feed.min_video_frames)
        if len(clip) == 0:  # the video ends before the crop starts: its last frame (or black) stands for all
            last = self.frames.frames(scene.video)[-1:]
            clip = last if pad == "edge" else np.zeros_like(last)
        return _fit(clip, n_frames, pad)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        epoch, index = key if isinstance(key, tuple) else (None, key)
        scene = self.scenes[index]
        pre = self.preprocessing
        mixed = pre.audio(scene.mixed, self.channels)  # (L,) or (2, L)
        target = pre.audio(scene.target, self.channels) if scene.target is not None else None
        length = mixed.shape[-1]
        if target is not None and target.shape[-1] != length:
            raise AvseBenchError(f"scene {scene.id}: target has {target.shape[-1]} samples, mixture {length}")
        if self.crop_frames is None:  # a whole utterance
            start, n_samples = 0, length
            n_frames = None if self.feed.video_frames == "video" else max(
                math.ceil(length / SAMPLES_PER_FRAME), self.feed.min_video_frames)
        else:
            start, n_frames = self.crop_start(index, length, epoch), self.crop_frames
            n_samples = n_frames * SAMPLES_PER_FRAME
        a = start * SAMPLES_PER_FRAME
        clip = self._clip(scene, start + self.video_offset if self.crop_frames else start, n_frames)
        video = frames_to_video(torch.from_numpy(np.ascontiguousarray(clip)))  # (C, n_frames, size, size) uint8
        item = {"scene": scene.id,
                "mixed": torch.from_numpy(_fit(mixed[..., a:], n_samples, "constant", axis=-1).copy()),
                "video": video if self.video_uint8 else video_to_float(video)}
        if target is not None:
            item["target"] = torch.from_numpy(_fit(target[..., a:], n_samples, "constant", axis=-1).copy())
        return item


def frames_to_video(frames: torch.Tensor) -> torch.Tensor:
    """Frames as preprocessing gives them, (T, H, W) grey or (T, H, W, 3) RGB, -> the model's channels-first
    video (1, T, H, W) or (3, T, H, W) (a batch dimension in front makes (B, C, T, H, W))."""
    return frames[None] if frames.ndim == 3 else frames.permute(3, 0, 1, 2)


def video_to_frames(video: torch.Tensor) -> torch.Tensor:
    """The inverse of `frames_to_video`: (1, T, H, W) -> (T, H, W); (3, T, H, W) -> (T, H, W, 3)."""
    return video[0] if video.shape[0] == 1 else video.permute(1, 2, 3, 0)


def video_to_float(video: torch.Tensor) -> torch.Tensor:
    """uint8 frames -> float32 in [0, 1] (value / 255, as `Preprocessing.video`); a float tensor is returned as is."""
    return video.float() / 255.0 if video.dtype == torch.uint8 else video


class EpochSampler(Sampler):
    """Wraps a sampler of indices and yields `(epoch, index)`: the epoch travels with each index to the DataLoader's
    (persistent) workers, whose copies of the dataset never see `set_epoch`. `set_epoch` is passed on to the
    wrapped sampler (a DistributedSampler reshuffles with it)."""

    def __init__(self, sampler: Sampler):
        self.sampler = sampler
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self):
        return ((self.epoch, int(i)) for i in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)
