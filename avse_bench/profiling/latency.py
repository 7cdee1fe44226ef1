"""Latency per call: warm-up, then one timing per repetition, summarised by percentiles (not one number).

On a GPU each call is timed with CUDA events (the GPU's own clock, with a synchronisation after each call); on
the CPU with `time.perf_counter` around the call. The result says which (`timer`).
"""

from __future__ import annotations

import math
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


MIN_RUNS_BEYOND = 5  # a tail percentile is reported only when at least this many timed runs lie beyond it
TAIL_PERCENTILES = (90, 99)


def runs_needed(q: float) -> int:
    """Timed runs needed before the q-th percentile (q in (50, 100)) is reported: MIN_RUNS_BEYOND / (1 - q/100),
    so that the figure is an interpolation between observed runs and not the slowest one (p99 of 20 runs is the
    maximum). 50 for p90, 500 for p99. The same idea as MLPerf LoadGen's minimum query count for its percentile
    latencies (mlcommons/inference, loadgen test_settings)."""
    return math.ceil(MIN_RUNS_BEYOND / (1 - q / 100) - 1e-9)


def summarize(samples_ms: list[float]) -> dict:
    """p50, p90, p99 (linear interpolation between order statistics), mean and std (ddof 0) in ms, and n. The
    median is given from any number of runs; p90 and p99 only from `runs_needed` runs, else "n/a (reason)"."""
    a = np.asarray(samples_ms, dtype=np.float64)
    out = {"p50": float(np.percentile(a, 50))}
    for q in TAIL_PERCENTILES:
        need = runs_needed(q)
        out[f"p{q}"] = (float(np.percentile(a, q)) if a.size >= need else
                        f"n/a (p{q} needs at least {need} timed runs; {a.size} here)")
    return {**out, "mean": float(a.mean()), "std": float(a.std()), "n": int(a.size)}
