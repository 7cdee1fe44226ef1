"""The torch Dataset over AVSEC scenes: aligned audio/video crops for training, whole utterances for evaluation.

Alignment: video frame i covers audio samples [640 i, 640 (i + 1)) (16 kHz / 25 fps). A training crop of
n = round(crop_seconds * 25) frames starts on a frame boundary chosen by a generator seeded with
(seed, epoch, index), so a resumed run sees the same crops; scenes shorter than the crop are padded (audio with
zeros, video by repeating its last frame). Preprocessed video is cached (uint8) per scene and preprocessing hash,
in memory and optionally in `cache_dir`, so training does not decode the mp4 again every step.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from avse_bench.data.layout import Scene
from avse_bench.data.preprocessing import SAMPLES_PER_FRAME, VIDEO_FPS, Preprocessing
from avse_bench.errors import AvseBenchError


def _fit(x: np.ndarray, n: int, mode: str) -> np.ndarray:
    """First n entries of x along axis 0, padded at the end ("constant" zeros or "edge" repeats)."""
    if len(x) >= n:
        return x[:n]
    pad = [(0, n - len(x))] + [(0, 0)] * (x.ndim - 1)
    return np.pad(x, pad, mode=mode)


class AVSEDataset(Dataset):
    def __init__(self, scenes: list[Scene], preprocessing: Preprocessing, crop_seconds: float | None = 3.0,
                 seed: int = 0, cache_dir=None):
        if crop_seconds is not None and round(crop_seconds * VIDEO_FPS) < 1:
            raise AvseBenchError(f"crop_seconds must cover at least one video frame (got {crop_seconds})")
        self.scenes = list(scenes)
        self.preprocessing = preprocessing
        self.crop_frames = None if crop_seconds is None else int(round(crop_seconds * VIDEO_FPS))
        self.seed = seed
        self.epoch = 0
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._hash = preprocessing.config_hash()
        self._video_cache: dict[str, np.ndarray] = {}  # scene id -> uint8 (T, size, size)

    def __len__(self) -> int:
        return len(self.scenes)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def video_frames(self, scene: Scene) -> np.ndarray:
        """uint8 (T, size, size) at 25 fps for `scene`, from the cache when possible."""
        frames = self._video_cache.get(scene.id)
        if frames is None:
            disk = self._disk_path(scene)
            if disk is not None and disk.is_file():
                frames = np.load(disk)
            else:
                frames = self.preprocessing.video_uint8(scene.video)
                if disk is not None:
                    disk.parent.mkdir(parents=True, exist_ok=True)
                    tmp = disk.with_name(f"{disk.stem}.{os.getpid()}.tmp.npy")  # workers may race: atomic
                    np.save(tmp, frames)
                    tmp.replace(disk)
            self._video_cache[scene.id] = frames
        return frames

    def _disk_path(self, scene: Scene) -> Path | None:
        if self.cache_dir is None:
            return None
        stat = scene.video.stat()
        key = hashlib.sha256(f"{scene.video.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
        return self.cache_dir / self._hash / f"{scene.id}-{key[:16]}.npy"

    def crop_start(self, index: int, n_samples: int) -> int:
        """First video frame of the training crop of item `index` (a function of seed, epoch and index)."""
        last = max((n_samples - self.crop_frames * SAMPLES_PER_FRAME) // SAMPLES_PER_FRAME, 0)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return int(rng.integers(last + 1))

    def __getitem__(self, index: int) -> dict:
        scene = self.scenes[index]
        pre = self.preprocessing
        mixed = pre.audio(scene.mixed)  # (L,)
        target = pre.audio(scene.target) if scene.target is not None else None
        if target is not None and len(target) != len(mixed):
            raise AvseBenchError(f"scene {scene.id}: target has {len(target)} samples, mixture {len(mixed)}")
        video = self.video_frames(scene)  # (T, size, size) uint8
        if self.crop_frames is None:
            start, n_frames, n_samples = 0, math.ceil(len(mixed) / SAMPLES_PER_FRAME), len(mixed)
        else:
            start, n_frames = self.crop_start(index, len(mixed)), self.crop_frames
            n_samples = n_frames * SAMPLES_PER_FRAME
        a = start * SAMPLES_PER_FRAME
        clip = _fit(video[start:], n_frames, "edge") if start < len(video) else np.repeat(video[-1:], n_frames, 0)
        item = {"scene": scene.id,
                "mixed": torch.from_numpy(_fit(mixed[a:], n_samples, "constant").copy()),  # (n_samples,)
                "video": torch.from_numpy(clip.astype(np.float32) / 255.0)[None]}  # (1, n_frames, size, size)
        if target is not None:
            item["target"] = torch.from_numpy(_fit(target[a:], n_samples, "constant").copy())
        return item
