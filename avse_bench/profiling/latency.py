"""Latency per call: warm-up, then one timing per repetition, summarised by percentiles (not one number).

On a GPU each call is timed with CUDA events (the GPU's own clock, with a synchronisation after each call); on
the CPU with `time.perf_counter` around the call. The result says which (`timer`).

The percentiles and the runs each needs are `avse_bench.percentiles` (torch-free, so that the report can apply them).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from tqdm import tqdm

TIMER_CUDA = "CUDA events (torch.cuda.Event, synchronised after each call)"
TIMER_CPU = "time.perf_counter (wall clock around each call)"


def time_calls(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int,
               progress: bool = False, desc: str = "latency") -> tuple[list[float], str]:
    """Run `fn` `warmup` times untimed, then `repeats` times timed; ([ms per call], timer label)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    on_gpu = device.type == "cuda"
    if on_gpu:
        torch.cuda.synchronize(device)
    samples = []
    for _ in tqdm(range(repeats), desc=desc, disable=not progress, leave=False):
        if on_gpu:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            samples.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t0) * 1e3)
    return samples, TIMER_CUDA if on_gpu else TIMER_CPU
