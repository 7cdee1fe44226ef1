"""DataLoaders for training and enhancement: worker processes, pinned memory, and the memory/disk frame budgets.

One set of options (`LoaderOptions`) travels from the command line (`--workers`, `--frame-cache-mb`, `--frame-store`,
`--frame-store-gb`) through `compare`, `train` and `enhance`. Workers are persistent (started once per run, not per
epoch); batches are pinned on CUDA so that copies to the device can be non-blocking. The loader draws its workers'
seeds from a generator of its own, never from the global torch RNG, so that the model's random streams (dropout) and
hence the trained weights are identical whatever the number of workers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from avse_bench.data.frames import DEFAULT_MEMORY_MB, DEFAULT_STORE_GB
from avse_bench.errors import AvseBenchError
from avse_bench.machine import available_cores, worker_context

MAX_DEFAULT_WORKERS = 8


def default_workers() -> int:
    """Half the cores this process may use, shared among the torchrun processes of this machine (LOCAL_WORLD_SIZE),
    at most 8 per process: the other half runs the model (or feeds the GPU). 2 cores, one process: 1 worker."""
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return min(MAX_DEFAULT_WORKERS, available_cores() // 2 // local_world)


@dataclass(frozen=True)
class LoaderOptions:
    """`workers`: DataLoader worker processes (None: `default_workers()`; 0 loads in the main process).
    `frame_cache_mb`: in-memory frame budget per process (MiB). `frame_store`: folder of the disk frame store
    (None: none); `frame_store_gb`: its budget (GiB). See avse_bench/data/frames.py."""

    workers: int | None = None
    frame_cache_mb: float = DEFAULT_MEMORY_MB
    frame_store: str | None = None
    frame_store_gb: float = DEFAULT_STORE_GB

    def __post_init__(self):
        if self.workers is not None and self.workers < 0:
            raise AvseBenchError(f"--workers must be 0 or more (got {self.workers})")
        if self.frame_cache_mb < 0 or self.frame_store_gb < 0:
            raise AvseBenchError("frame budgets (--frame-cache-mb, --frame-store-gb) must be 0 or more")

    @property
    def n_workers(self) -> int:
        return default_workers() if self.workers is None else self.workers

    def dataset_kwargs(self) -> dict:
        """The AVSEDataset keyword arguments these options set."""
        return {"memory_mb": self.frame_cache_mb, "cache_dir": self.frame_store, "store_gb": self.frame_store_gb}


def _worker_init(_: int) -> None:
    import cv2

    cv2.setNumThreads(1)  # each worker is one core's worth of decoding; OpenCV's own pool would oversubscribe


def make_loader(dataset: Dataset, options: LoaderOptions, device: torch.device, seed: int, *,
                batch_size: int | None, sampler: Sampler | None = None, drop_last: bool = False) -> DataLoader:
    """A DataLoader over `dataset` with the options' workers (persistent, started from a clean forkserver as all
    our workers are, `machine.worker_context`: a forked loader worker hung in cv2.setNumThreads after OpenCV had run
    a parallel filter in the parent), pinned memory on CUDA, and a seeded generator of its own. `batch_size=None`
    yields items one by one, unbatched (whole utterances)."""
    workers = options.n_workers
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, num_workers=workers,
                      persistent_workers=workers > 0, pin_memory=device.type == "cuda",
                      worker_init_fn=_worker_init if workers > 0 else None,
                      multiprocessing_context=worker_context("avse_bench.data.dataset") if workers > 0 else None,
                      prefetch_factor=2 if workers > 0 else None,
                      generator=torch.Generator().manual_seed(seed))
