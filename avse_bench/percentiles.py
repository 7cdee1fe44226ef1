"""Percentiles of timed runs, and how many runs each needs before it is reported.

Torch-free on purpose: the profiler summarises its timings with it (`avse_bench.profiling.latency`), and the report
applies the same rule to stored profiles (`avse_bench.report.load`) without importing the profiling package.
"""

from __future__ import annotations

import math

import numpy as np

MIN_RUNS_BEYOND = 5  # a tail percentile is reported only when at least this many timed runs lie beyond it
TAIL_PERCENTILES = (90, 99)


def runs_needed(q: float) -> int:
    """Timed runs needed before the q-th percentile (q in (50, 100)) is reported: MIN_RUNS_BEYOND / (1 - q/100),
    so that the figure is an interpolation between observed runs and not the slowest one (p99 of 20 runs is the
    maximum). 50 for p90, 500 for p99. The same idea as MLPerf LoadGen's minimum query count for its percentile
    latencies (mlcommons/inference, loadgen test_settings)."""
    return math.ceil(MIN_RUNS_BEYOND / (1 - q / 100) - 1e-9)


def latency_summary(samples_ms: list[float]) -> dict:
    """p50, p90, p99 (linear interpolation between order statistics), mean and std (ddof 0) in ms, and n. The
    median is given from any number of runs; p90 and p99 only from `runs_needed` runs, else "n/a (reason)"."""
    a = np.asarray(samples_ms, dtype=np.float64)
    out = {"p50": float(np.percentile(a, 50))}
    for q in TAIL_PERCENTILES:
        need = runs_needed(q)
        out[f"p{q}"] = (float(np.percentile(a, q)) if a.size >= need else
                        f"n/a (p{q} needs at least {need} timed runs; {a.size} here)")
    return {**out, "mean": float(a.mean()), "std": float(a.std()), "n": int(a.size)}
