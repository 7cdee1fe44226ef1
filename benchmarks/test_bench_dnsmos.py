"""DNSMOS cost per scene, and its parallel speed-up on 2 cores (`nox -s bench`; figures in the JSON's `extra_info`).

The per-scene figure is one warm `dnsmos()` call on a 3 s clip, which speechmos repeats to 12 s and scores in
3 windows of 9.01 s (a clip's cost follows its window count, not its length). The speed-up is `score_split(...,
metrics="dnsmos")` over the same 6 dev scenes of 2-4 s with 1 and with 2 worker processes, end to end: worker
start-up, each worker's first-call warm-up (librosa's compiled functions load) and CSV writing included, as a user
pays them. With one worker, onnxruntime uses every core for each model; with two, each worker one thread.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from avse_bench.metrics.dnsmos import dnsmos
from avse_bench.metrics.scoring import score_split

N_SCENES = 6


@pytest.fixture(scope="module")
def dev_few(dev_split):
    return dev_split(N_SCENES, seed=3)


def test_dnsmos_per_scene(benchmark):
    clip = np.clip(0.1 * np.random.default_rng(0).standard_normal(3 * 16000), -1, 1)  # 3 s
    dnsmos(clip)  # the process's first call: the warm-up, not timed
    scores = benchmark.pedantic(dnsmos, args=(clip,), rounds=5, iterations=1)
    benchmark.extra_info.update({"clip_seconds": 3.0, "windows": 3, "note": "warm call, default onnxruntime threads"})
    assert set(scores) == {"dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"}


def test_dnsmos_parallel_speedup(benchmark, dev_few, tmp_path):
    start = time.perf_counter()
    score_split(dev_few, "dev", tmp_path / "serial.csv", jobs=1, progress=False, metrics="dnsmos")
    serial_s = time.perf_counter() - start
    benchmark.pedantic(lambda: score_split(dev_few, "dev", tmp_path / "parallel.csv", jobs=2, progress=False,
                                           metrics="dnsmos"), rounds=1, iterations=1)
    parallel_s = benchmark.stats.stats.max
    benchmark.extra_info.update({
        "scenes": N_SCENES, "serial_seconds": serial_s, "parallel_seconds": parallel_s,
        "serial_seconds_per_scene": serial_s / N_SCENES, "parallel_seconds_per_scene": parallel_s / N_SCENES,
        "speedup": serial_s / parallel_s})
    print(f"\nDNSMOS on {N_SCENES} scenes: 1 worker {serial_s:.2f} s, 2 workers {parallel_s:.2f} s: "
          f"speed-up {serial_s / parallel_s:.2f}x")
    assert (tmp_path / "parallel.csv").read_text() != ""
