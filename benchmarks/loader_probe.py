"""Measure the training loader in a process of its own, as `avse-bench train` runs it (a benchmark helper).

    python benchmarks/loader_probe.py ROOT [--split train] [--size 128] [--crop 3] [--workers 0] [--passes 1]
                                      [--warmup 0] [--frame-cache-mb 256]

Iterates every training item of the split `--passes` times (after `--warmup` untimed passes, which also start the
workers), batch 1, new crops each pass, video as uint8 (as train and enhance load it). Prints one JSON object:
items/s over the timed passes, and this process's peak RSS (MiB) before and after the iteration (ru_maxrss is the
peak over the process's life, so each measurement needs a fresh process: `test_bench_loader.py` starts one each).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from avse_bench.data import AVSEDataset, Preprocessing, load_split
from avse_bench.data.dataset import EpochSampler
from avse_bench.data.loading import LoaderOptions, make_loader


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root")
    p.add_argument("--split", default="train")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--crop", type=float, default=3.0)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--passes", type=int, default=1)
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--frame-cache-mb", type=float, default=256.0)
    a = p.parse_args()
    options = LoaderOptions(workers=a.workers, frame_cache_mb=a.frame_cache_mb)
    dataset = AVSEDataset(load_split(a.root, a.split), Preprocessing(size=a.size), crop_seconds=a.crop,
                          video_uint8=True, **options.dataset_kwargs())
    sampler = EpochSampler(torch.utils.data.SequentialSampler(dataset))
    loader = make_loader(dataset, options, torch.device("cpu"), seed=0, batch_size=1, sampler=sampler)
    before = peak_rss_mib()
    items, seconds = 0, 0.0
    for epoch in range(a.warmup + a.passes):
        sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        n = sum(len(batch["scene"]) for batch in loader)
        if epoch >= a.warmup:
            items, seconds = items + n, seconds + time.perf_counter() - t0
    after = peak_rss_mib()
    print(json.dumps({"scenes": len(dataset), "workers": a.workers, "passes": a.passes, "size": a.size,
                      "crop_seconds": a.crop, "frame_cache_mb": a.frame_cache_mb, "items": items,
                      "seconds": round(seconds, 3), "items_per_s": round(items / seconds, 2),
                      "peak_rss_before_mib": round(before, 1), "peak_rss_after_mib": round(after, 1),
                      "peak_rss_increase_mib": round(after - before, 1),
                      "frame_cache_bytes_main_process": dataset.frames.memory_bytes}))


if __name__ == "__main__":
    main()
