"""Latency per call: warm-up, then one timing per repetition, summarised by percentiles (not one number).

On a GPU each call is timed with CUDA events (the GPU's own clock, with a synchronisation after each call); on
the CPU with `time.perf_counter` around the call. The result says which (`timer`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
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


def summarize(samples_ms: list[float]) -> dict:
    """p50, p90, p99 (linear interpolation between order statistics), mean and std (ddof 0) in ms."""
    a = np.asarray(samples_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(a.mean()), "std": float(a.std()),
            "n": int(a.size)}
