"""Metric cost per scene, and parallel `score_split` against the official script's plain serial loop.

Run by `nox -s bench` (pytest-benchmark), never as a timed test. The parallel-vs-serial figure compares like with
like: both compute the same five metrics (PESQ wb and nb, STOI, ESTOI, SI-SDR) for the same 60 dev scenes; the
serial side is the official `objective_evaluation.py` per-scene body (read both wavs with SoundFile, require equal
lengths, call pesq and pystoi) in a plain loop, the parallel side is `score_split(..., jobs=2)` end to end (scene
discovery, worker start-up, CSV writing included). Both are timed in the same run, one after the other.
"""

from __future__ import annotations

import time

import pesq
import pystoi
import pytest
import soundfile as sf

from avse_bench.metrics import functional
from avse_bench.metrics.scoring import score_split

N_SCENES = 60
JOBS = 2


@pytest.fixture(scope="module")
def dev60(dev_split):
    return dev_split(N_SCENES, seed=0)


@pytest.fixture(scope="module")
def one_scene(dev60):
    scenes = dev60 / "dev" / "scenes"
    ref, _ = sf.read(scenes / "S00001_target.wav")
    deg, _ = sf.read(scenes / "S00001_mixed.wav")
    return ref, deg


@pytest.mark.parametrize("metric", functional.METRICS)
def test_metric_per_scene(benchmark, one_scene, metric):
    ref, deg = one_scene
    benchmark.extra_info["seconds_of_audio"] = len(ref) / functional.FS
    value = benchmark(functional.FUNCTIONS[metric], ref, deg)
    assert value == pytest.approx(functional.FUNCTIONS[metric](ref, deg), abs=1e-9)


def test_score_pair_per_scene(benchmark, one_scene):
    ref, deg = one_scene
    benchmark.extra_info["seconds_of_audio"] = len(ref) / functional.FS
    assert benchmark(functional.score_pair, ref, deg)["error"] == ""


def official_serial_loop(root) -> int:
    """The official script's per-scene work, in a plain loop, for the same five metrics as score_split."""
    scenes = sorted((root / "dev" / "scenes").glob("*_target.wav"))
    for target in scenes:
        clean = sf.SoundFile(target).read()
        enh = sf.SoundFile(target.with_name(target.name.replace("_target", "_mixed"))).read()
        if len(clean) != len(enh):
            raise ValueError(f"{target.name}: lengths differ")
        pesq.pesq(16000, clean, enh, "wb")
        pesq.pesq(16000, clean, enh, "nb")
        pystoi.stoi(clean, enh, 16000)
        pystoi.stoi(clean, enh, 16000, extended=True)
        functional.si_sdr(clean, enh)
    return len(scenes)


def test_parallel_score_split_against_the_serial_loop(benchmark, dev60, tmp_path):
    start = time.perf_counter()
    n = official_serial_loop(dev60)
    serial_s = time.perf_counter() - start

    runs = iter(range(1000))

    def parallel() -> None:
        score_split(dev60, "dev", tmp_path / f"scores{next(runs)}.csv", jobs=JOBS, progress=False,
                    metrics="intrusive")

    benchmark.pedantic(parallel, rounds=1, iterations=1)
    parallel_s = benchmark.stats.stats.max
    ratio = serial_s / parallel_s  # = (scenes/s parallel) / (scenes/s serial)
    benchmark.extra_info.update({
        "scenes": n, "jobs": JOBS, "metrics": list(functional.METRICS), "serial_seconds": serial_s,
        "parallel_seconds": parallel_s, "serial_scenes_per_s": n / serial_s, "parallel_scenes_per_s": n / parallel_s,
        "speedup": ratio, "target_speedup": 1.8,
    })
    print(f"\nscoring {n} scenes, 5 metrics: serial loop {serial_s:.2f} s ({n / serial_s:.1f} scenes/s), "
          f"score_split jobs={JOBS} {parallel_s:.2f} s ({n / parallel_s:.1f} scenes/s): speed-up {ratio:.2f}x "
          f"(target >= 1.8)")
    assert n == N_SCENES


@pytest.fixture(scope="module")
def avsec4_dev6(tmp_path_factory):
    """6 dev scenes of 2-4 s of the embedded corpus in the AVSEC-4 layout (binaural)."""
    from avse_bench.data.synth import synthesize

    return synthesize(tmp_path_factory.mktemp("bench_avsec4"), n_train=0, n_dev=6, seed=0, min_seconds=2,
                      max_seconds=4, progress=False, layout="avsec4")


def official_mbstoi_loop(root) -> tuple[int, float]:
    """The official AVSEC-4 evaluation's per-scene work (evaluation/avse4/objective_evaluation.py: read with
    SoundFile, require equal lengths, mbstoi of the two ears) in a plain loop over the mixtures; (scenes, audio s)."""
    from avse_bench.metrics.binaural import mbstoi

    scenes = sorted((root / "dev" / "scenes").glob("*_target_anechoic.wav"))
    seconds = 0.0
    for target in scenes:
        clean = sf.SoundFile(target).read()
        mix = sf.SoundFile(target.with_name(target.name.replace("_target_anechoic", "_mix"))).read()
        if len(clean) != len(mix):
            raise ValueError(f"{target.name}: lengths differ")
        mbstoi(clean, mix)
        seconds += len(clean) / functional.FS
    return len(scenes), seconds


def test_parallel_mbstoi_scoring_against_the_serial_loop(benchmark, avsec4_dev6, tmp_path):
    """MBSTOI on the binaural track: `score_split(..., jobs=2)` against the official plain loop, and its cost per
    second of audio (for the README's at-scale estimate)."""
    from avse_bench.metrics.binaural import available

    if available():
        pytest.skip(available())
    start = time.perf_counter()
    n, seconds = official_mbstoi_loop(avsec4_dev6)
    serial_s = time.perf_counter() - start
    runs = iter(range(1000))
    benchmark.pedantic(lambda: score_split(avsec4_dev6, "dev", tmp_path / f"s{next(runs)}.csv", jobs=JOBS,
                                           progress=False, metrics="mbstoi"), rounds=1, iterations=1)
    parallel_s = benchmark.stats.stats.max
    benchmark.extra_info.update({"scenes": n, "audio_seconds": seconds, "jobs": JOBS, "serial_seconds": serial_s,
                                 "parallel_seconds": parallel_s, "speedup": serial_s / parallel_s,
                                 "serial_seconds_per_audio_second": serial_s / seconds, "target_speedup": 1.8})
    print(f"\nMBSTOI on {n} binaural scenes ({seconds:.1f} s of audio): serial loop {serial_s:.2f} s "
          f"({serial_s / seconds:.3f} s per audio second), score_split jobs={JOBS} {parallel_s:.2f} s: speed-up "
          f"{serial_s / parallel_s:.2f}x (target >= 1.8)")
