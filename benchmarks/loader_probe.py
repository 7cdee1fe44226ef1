"""Measure the training loader in a process of its own, as `avse-bench train` runs it (a benchmark helper).

    python benchmarks/loader_probe.py ROOT [--split train] [--size 128] [--crop 3] [--workers 0] [--passes 1]
                                      [--warmup 0] [--frame-cache-mb 256] [--batch 1]

Iterates every training item of the split `--passes` times (after `--warmup` untimed passes, which also start the
workers), `--batch` items per batch, new crops each pass, video as uint8 (as train and enhance load it). Prints
one JSON object: items/s over the timed passes, and the process's RSS when the iteration starts and its peak during
the iteration (MiB; VmHWM reset at the start, as the profiler's memory phases measure it). Each measurement runs in a
fresh process, as `avse-bench train` would: `test_bench_loader.py` starts one each.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from avse_bench.data import AVSEDataset, Preprocessing, load_split
from avse_bench.data.dataset import EpochSampler
from avse_bench.data.loading import LoaderOptions, make_loader
from avse_bench.profiling.memory import PhaseProbe


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
    p.add_argument("--batch", type=int, default=1)
    a = p.parse_args()
    options = LoaderOptions(workers=a.workers, frame_cache_mb=a.frame_cache_mb)
    dataset = AVSEDataset(load_split(a.root, a.split), Preprocessing(size=a.size), crop_seconds=a.crop,
                          video_uint8=True, **options.dataset_kwargs())
    sampler = EpochSampler(torch.utils.data.SequentialSampler(dataset))
    loader = make_loader(dataset, options, torch.device("cpu"), seed=0, batch_size=a.batch, sampler=sampler)
    probe = PhaseProbe(torch.device("cpu"))
    probe.start()
    items, seconds = 0, 0.0
    for epoch in range(a.warmup + a.passes):
        sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        n = sum(len(batch["scene"]) for batch in loader)
        if epoch >= a.warmup:
            items, seconds = items + n, seconds + time.perf_counter() - t0
    ram = probe.stop()
    print(json.dumps({"scenes": len(dataset), "workers": a.workers, "passes": a.passes, "size": a.size,
                      "crop_seconds": a.crop, "batch": a.batch, "frame_cache_mb": a.frame_cache_mb, "items": items,
                      "seconds": round(seconds, 3), "items_per_s": round(items / seconds, 2),
                      "rss_at_start_mib": ram["ram_baseline_mib"], "peak_rss_mib": ram["ram_mib"],
                      "peak_rss_increase_mib": round(ram["ram_mib"] - ram["ram_baseline_mib"], 1),
                      "peak_rss_method": ram["ram_peak_method"],
                      "frame_cache_bytes_main_process": dataset.frames.memory_bytes}))


if __name__ == "__main__":
    main()
