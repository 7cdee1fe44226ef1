"""Where a data item's preprocessed video frames come from, with memory and disk both bounded by a budget.

A corpus never lives in memory: AVSEC-2's train split is 113 h of video, 158 GiB as uint8 frames at 128 px. Three
sources, tried in this order for each read of output frames [start, stop) of one video:

1. **Memory**: whole preprocessed videos (uint8), admitted while they fit in `memory_mb` (default 256 MiB per
   process) and then kept. Admission stops once the budget is reached; nothing is evicted. For training, where every
   epoch reads every scene once in a random order, a fixed resident subset is hit as often as an LRU's churning one,
   and costs no re-decoding: a corpus that fits is decoded once, a larger one keeps a budget's worth resident.
2. **Disk store** (optional, `store_dir`): one `.npy` per video under `store_dir/<preprocessing hash>/`, named by the
   source file's identity (resolved path, size, mtime), written atomically (temporary file, then rename: parallel
   workers and killed jobs never leave half a file; a re-run reuses what is there), read by memory map so that a crop
   reads only its own frames. Admission stops at `store_gb` (default 64 GiB); the budget is checked against the
   folder's size as this process last counted it plus its own writes, recounted every 64 writes, so parallel
   writers can pass it by at most what they wrote between two counts. Size: 16 KiB per frame at 128 px, 1.34 GiB
   per hour of video (measured on 30 synthetic scenes), scaling with the pixel count.
3. **Decoding**: `Preprocessing.video_uint8(path, start, stop)` decodes the file up to the last frame the crop
   needs and preprocesses only the frames it shows.

Measured on this project's 2-core machines (224 px mp4v, 6-8 s scenes, 128 px output, one thread, 3 s crops):
decoding the whole video 44 ms per item, decoding only up to the crop's end 28 ms, seeking to the crop first 26 ms
(exact on these files but not on every container, so not used), reading the crop from the disk store 0.6 ms.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from avse_bench.data.preprocessing import Preprocessing
from avse_bench.io import replace_atomically, writable_dir
from avse_bench.machine import worker_context

DEFAULT_MEMORY_MB = 256.0
DEFAULT_STORE_GB = 64.0
_RECOUNT_EVERY = 64  # disk-store writes between two recounts of the store's size


def store_key(video: Path) -> str:
    """The store's name for a source video: its resolved path, size and modification time (sha256, 16 hex)."""
    stat = video.stat()
    return hashlib.sha256(f"{video.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append ".npy" to a temporary name
        np.save(f, array)


def _folder_bytes(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(e.stat().st_size for e in os.scandir(folder) if e.name.endswith(".npy") and e.is_file())


class FrameSource:
    """Preprocessed frames of video files, from a bounded memory cache, a bounded disk store, or by decoding.

    `memory_mb`: the in-memory budget per process (MiB; 0 disables it). `store_dir`: the disk store's folder (None:
    no store); `store_gb`: its budget (GiB). Frames are uint8 (n, size, size) at 25 fps, exactly
    `preprocessing.video_uint8(path)[start:stop]` whichever source serves them.
    """

    def __init__(self, preprocessing: Preprocessing, memory_mb: float = DEFAULT_MEMORY_MB, store_dir=None,
                 store_gb: float = DEFAULT_STORE_GB):
        self.preprocessing = preprocessing
        self.memory_budget = int(memory_mb * 2**20)
        self.store = Path(store_dir) / preprocessing.config_hash() if store_dir is not None else None
        if self.store is not None:
            writable_dir(self.store, "the frame store", "choose another --frame-store, or none")
        self.store_budget = int(store_gb * 2**30)
        self._empty()

    def _empty(self) -> None:
        """Nothing held in memory, the store not yet counted."""
        self._memory: dict[Path, np.ndarray] = {}
        self._memory_used = 0
        self._memory_full = self.memory_budget <= 0
        self._store_full = self.store is None
        self._store_used: int | None = None  # counted on the first write
        self._writes = 0

    def __getstate__(self) -> dict:  # a DataLoader worker starts with an empty cache of its own
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._empty()

    @property
    def memory_bytes(self) -> int:
        """Bytes of frames held in memory now (never more than the budget)."""
        return self._memory_used

    def frames(self, video: Path, start: int = 0, stop: int | None = None) -> np.ndarray:
        """uint8 (n, size, size): output frames [start, stop) of `video` (fewer, or none, past its end); for crop
        "lips" of the lip-crop video beside it (`Preprocessing.source`), which also names its stored copy."""
        video = self.preprocessing.source(video)
        whole = self._memory.get(video)
        if whole is not None:
            return whole[start:stop]
        stored = self._store_path(video)
        if stored is not None and stored.is_file():
            mapped = np.load(stored, mmap_mode="r")
            crop = np.array(mapped[start:stop])  # copies only the crop's pages; the mapping closes with `mapped`
            del mapped
            return crop
        if not (self._memory_full and self._store_full):
            whole = self.preprocessing.video_uint8(video)
            self._admit(video, whole, stored)
            return whole[start:stop]
        return self.preprocessing.video_uint8(video, start, stop)

    def _store_path(self, video: Path) -> Path | None:
        return None if self.store is None else self.store / f"{store_key(video)}.npy"

    def _admit(self, video: Path, whole: np.ndarray, stored: Path | None) -> None:
        if not self._memory_full:
            if self._memory_used + whole.nbytes <= self.memory_budget:
                self._memory[video] = whole
                self._memory_used += whole.nbytes
            else:
                self._memory_full = True
        if not self._store_full:
            self._store_write(stored, whole)

    def _store_write(self, path: Path, whole: np.ndarray) -> None:
        if self._store_used is None or self._writes % _RECOUNT_EVERY == 0:
            self._store_used = _folder_bytes(path.parent)
        if self._store_used + whole.nbytes > self.store_budget:
            self._store_full = True
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_atomically(path, lambda tmp: _save_npy(tmp, whole))
        self._store_used += path.stat().st_size
        self._writes += 1


def _store_one(args: tuple) -> bool:
    """Worker of `fill_store`: preprocess one video into the store; False when the budget left no room for it."""
    preprocessing, store_dir, store_gb, video = args
    source = FrameSource(preprocessing, memory_mb=0, store_dir=store_dir, store_gb=store_gb)
    source.frames(video, 0, 0)
    return source._store_path(video).is_file()


def fill_store(videos: list[Path], preprocessing: Preprocessing, store_dir, store_gb: float = DEFAULT_STORE_GB,
               jobs: int = 1, progress: bool = True) -> dict:
    """Preprocess `videos` into the disk store ahead of training, `jobs` processes in parallel; videos already
    stored are skipped, so a killed run resumes. Returns counts: stored before, stored now, left out (budget)."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    probe = FrameSource(preprocessing, memory_mb=0, store_dir=store_dir, store_gb=store_gb)
    todo = [v for v in videos if not probe._store_path(v).is_file()]
    tasks = [(preprocessing, store_dir, store_gb, v) for v in todo]
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=worker_context(__name__)) as pool:
        stored = list(tqdm(pool.map(_store_one, tasks, chunksize=4), total=len(tasks), desc="frame store",
                           unit="video", disable=not progress))
    return {"videos": len(videos), "already_stored": len(videos) - len(todo), "stored": sum(stored),
            "left_out_by_budget": len(stored) - sum(stored), "folder": str(probe.store),
            "bytes": _folder_bytes(probe.store)}
