"""Profiling: FLOPs against analytic counts, percentiles, timing against torch's own Timer, memory phases on CPU."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from avse_bench.errors import AvseBenchError
from avse_bench.percentiles import latency_summary, runs_needed
from avse_bench.profiling import hardware_info, profile_system, software_info, write_profile
from avse_bench.profiling.flops import count_flops
from avse_bench.profiling.latency import time_calls
from avse_bench.profiling.memory import measure_phase
from avse_bench.profiling.reference import Reference

NO_CUDA = "n/a (no CUDA device)"
cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")


# --- toy systems (module level: the memory phases unpickle them in fresh processes) ---------------------------------
class ToyAV(nn.Module):
    """model(audio (B, L), video (B, 1, T, H, W)) -> (B, L); `scratch_mib` > 0 allocates that much in forward."""

    def __init__(self, scratch_mib: int = 0):
        super().__init__()
        self.scratch_mib = scratch_mib
        self.audio = nn.Conv1d(1, 1, 5, padding=2)
        self.video = nn.Linear(1, 1)

    def forward(self, audio, video):
        gain = self.video(video.mean(dim=(1, 2, 3, 4)).unsqueeze(-1))  # (B, 1)
        out = self.audio(audio.unsqueeze(1)).squeeze(1) * gain  # (B, L)
        if self.scratch_mib:
            out = out + torch.ones(self.scratch_mib * 2**18).sum() * 0  # 4 bytes each: scratch_mib MiB, touched
        return out


@dataclass
class ToySystem:
    name: str = "toy"
    scratch_mib: int = 0
    batch_size: int = 8

    def build_model(self) -> nn.Module:
        return ToyAV(self.scratch_mib)

    def recipe(self, profile: str) -> dict:
        return {"optimizer": "adam", "lr": 1e-3, "batch_size": self.batch_size}


# --- FLOPs ----------------------------------------------------------------------------------------------------------
class ConvLinearBiLSTM(nn.Module):
    """(B, 2, 24) -> Conv1d(2->6, k3) -> (B, 6, 22) -> Conv2d(1->3, 3x3 on 6x22) -> (B, 3, 4, 20) -> flat per step
    -> Linear(12 -> 10) per step -> 2-layer BiLSTM(10 -> 7) -> Linear(14 -> 5)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(2, 6, 3)
        self.conv2 = nn.Conv2d(1, 3, 3)
        self.proj = nn.Linear(12, 10)
        self.lstm = nn.LSTM(10, 7, num_layers=2, bidirectional=True, batch_first=True)
        self.out = nn.Linear(14, 5)

    def forward(self, x):
        y = self.conv2(self.conv1(x).unsqueeze(1))  # (B, 3, 4, 20)
        y = y.permute(0, 3, 1, 2).flatten(2)  # (B, 20, 12)
        y, _ = self.lstm(self.proj(y))  # (B, 20, 14)
        return self.out(y)  # (B, 20, 5)


def lstm_macs(steps_times_batch: int, inputs: int, hidden: int, layers: int, directions: int) -> int:
    """Gate equations: per step and direction, 4 gates x (W_ih: hidden x in) + 4 gates x (W_hh: hidden x hidden)."""
    total, layer_in = 0, inputs
    for _ in range(layers):
        total += directions * steps_times_batch * 4 * hidden * (layer_in + hidden)
        layer_in = directions * hidden
    return total


def test_flops_of_convs_linears_and_bilstm_equal_the_analytic_count():
    B = 3
    result = count_flops(ConvLinearBiLSTM(), (torch.randn(B, 2, 24),))
    conv1 = B * 6 * 22 * 2 * 3  # outputs x (in-channels x kernel)
    conv2 = B * 3 * 4 * 20 * 1 * 3 * 3
    linears = B * 20 * 12 * 10 + B * 20 * 14 * 5
    lstm = lstm_macs(B * 20, 10, 7, layers=2, directions=2)
    assert result["flops_by_op"] == {"conv": conv1 + conv2, "linear": linears, "lstm": lstm}
    assert result["flops"] == conv1 + conv2 + linears + lstm
    assert "multiply-add" in result["flops_note"]


def test_gru_and_packed_projected_lstm_are_counted():
    class Packed(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(8, 16, num_layers=2, proj_size=4)  # layer 2 sees the 4-wide projection
            self.gru = nn.GRU(4, 5)

        def forward(self, x):  # x: (T=5, B=3, 8), lengths 5, 4, 2 -> 11 vectors
            packed = nn.utils.rnn.pack_padded_sequence(x, [5, 4, 2])
            y = self.lstm(packed)[0].data  # (11, 4)
            return self.gru(y)[0]  # unbatched GRU over 11 steps

    result = count_flops(Packed(), (torch.randn(5, 3, 8),))
    lstm = 11 * ((64 * 8 + 64 * 4 + 4 * 16) + (64 * 4 + 64 * 4 + 4 * 16))  # W_ih, W_hh (on the projection), W_hr
    gru = 11 * 3 * 5 * (4 + 5)
    assert result["flops_by_op"] == {"lstm": lstm, "gru": gru}


def encoder_frames_and_chunks(seconds: float, K: int = 200) -> tuple[int, int]:
    """The separator's chunking, derived: (encoder frames F, chunks S) for `seconds` of 16 kHz audio."""
    L = round(seconds * 16000)
    F = (L - 16) // 8 + 1  # encoder frames: Conv1d kernel 16, stride 8, no padding
    P = K // 2
    gap = K - (P + F % K) % K  # end padding, then K/2 on both ends
    S = 2 * ((F + gap + 2 * P - P) // K)  # two interleaved sets of non-overlapping chunks
    return F, S


@pytest.mark.slow
def test_baseline_lstm_flops_equal_the_analytic_count_of_its_12_bilstms():
    from avse_bench.systems import load

    assert encoder_frames_and_chunks(3.0) == (5999, 62)  # docs/SYSTEMS.md: the 3 s reference gives 62 chunks
    seconds, size = 1.0, 32  # 1 s and small frames keep the test fast; the count is derived for any length
    N, H, blocks, K = 64, 128, 6, 200  # the baseline's Separator(512, 64, 128, 6 blocks), chunks of 200 frames
    _, S = encoder_frames_and_chunks(seconds, K)
    # intra: S*B sequences of K steps; inter: K*B sequences of S steps: both K*S input vectors (batch 1)
    per_bilstm = lstm_macs(K * S, N, H, layers=1, directions=2)
    model = load("baseline").build_model()
    result = count_flops(model, Reference(seconds, size).tensors(1))
    assert result["flops_by_op"]["lstm"] == 2 * blocks * per_bilstm
    assert result["flops"] > result["flops_by_op"]["lstm"]
    assert "lstm" not in " ".join(result["flops_unsupported"])


# --- latency ----------------------------------------------------------------------------------------------------------
def _small_workload():
    model = nn.Sequential(nn.Conv1d(8, 32, 9, padding=4), nn.ReLU(), nn.Conv1d(32, 8, 9, padding=4)).eval()
    x = torch.randn(4, 8, 2000)

    def fn():
        with torch.no_grad():
            return model(x)

    return fn


def test_percentiles_are_ordered_and_summarise_every_call():
    samples, timer = time_calls(_small_workload(), torch.device("cpu"), warmup=2, repeats=60)
    stats = latency_summary(samples)
    assert len(samples) == stats["n"] == 60 and "perf_counter" in timer
    assert min(samples) <= stats["p50"] <= stats["p90"] <= max(samples)
    assert stats["p99"] == "n/a (p99 needs at least 500 timed runs; 60 here)"
    assert stats["p50"] == pytest.approx(statistics.median(samples))
    assert stats["mean"] == pytest.approx(statistics.fmean(samples))
    assert stats["std"] == pytest.approx(statistics.pstdev(samples))


def test_summarize_interpolates_percentiles():
    stats = latency_summary([float(v) for v in range(1, 502)])  # 1..501: percentile q is 1 + 5q
    assert (stats["p50"], stats["p90"], stats["p99"]) == (251.0, 451.0, 496.0)


def test_a_tail_percentile_needs_runs_beyond_it():
    """Issue 18, item 3: p99 was quoted from 20 timed runs, i.e. the slowest run. One more of the kind: p90 of
    49 runs (4.9 runs beyond it)."""
    assert (runs_needed(90), runs_needed(99)) == (50, 500)
    twenty = latency_summary([float(v) for v in range(20)])
    assert twenty["p50"] == 9.5 and twenty["p99"] == "n/a (p99 needs at least 500 timed runs; 20 here)"
    assert latency_summary([1.0] * 49)["p90"].startswith("n/a (p90 needs at least 50")
    assert latency_summary([1.0] * 50)["p90"] == 1.0


def test_cpu_median_agrees_with_torch_benchmark_timer():
    """Same workload, one thread, many interleaved blocks of ours and torch.utils.benchmark.Timer's; up to 3
    attempts against a busy shared machine."""
    from torch.utils.benchmark import Timer

    fn = _small_workload()
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ratios = []
    try:
        for _ in range(3):
            ours, theirs = [], []
            for _ in range(20):
                ours += time_calls(fn, torch.device("cpu"), warmup=1, repeats=5)[0]
                theirs.append(timer.timeit(5).median * 1e3)  # ms per call: the mean of a block of 5
            ratios.append(statistics.median(ours) / statistics.median(theirs))
            if abs(ratios[-1] - 1) <= 0.15:
                return
    finally:
        torch.set_num_threads(threads)
    pytest.fail(f"median ratio ours / torch Timer outside 15 % in every attempt: {ratios}")


# --- memory, hardware, the whole profile ------------------------------------------------------------------------------
@cpu_only
def test_memory_phase_on_cpu_reads_na_for_gpu_and_sees_the_phase_own_ram():
    """A forward that touches 300 MiB must show up in the inference phase's peak RSS, not in model loading."""
    system = ToySystem(scratch_mib=300)
    inference = measure_phase("inference", system, "cpu", Reference(0.2, 8))
    loading = measure_phase("loading", system, "cpu", Reference(0.2, 8))
    for phase in (inference, loading):
        for key in ("gpu_mib", "gpu_baseline_mib", "torch_peak_mib", "torch_peak_reserved_mib"):
            assert phase[key] == NO_CUDA
        assert 0 < phase["ram_baseline_mib"] <= phase["ram_mib"]
    assert inference["ram_mib"] - inference["ram_baseline_mib"] >= 280
    assert loading["ram_mib"] - loading["ram_baseline_mib"] < 100


@cpu_only
def test_hardware_and_software_facts_on_a_cpu_only_machine():
    hw = hardware_info()
    assert hw["gpu_count"] == hw["gpus"] == hw["gpu_driver"] == NO_CUDA
    assert hw["cpu_cores_logical"] >= 1 and hw["ram_gib"] > 0 and hw["cpu_model"]
    sw = software_info()
    assert sw["torch"] == torch.__version__
    assert {"python", "cuda", "cudnn", "numpy", "platform", "pesq", "pystoi", "fvcore", "opencv"} <= set(sw)


@cpu_only
def test_cuda_requested_without_cuda_is_a_user_error():
    with pytest.raises(AvseBenchError, match="no CUDA device"):
        profile_system(ToySystem(), device="cuda", progress=False)


REQUIRED = {"params_total", "params_trainable", "size_mb", "flops", "flops_by_op", "flops_unsupported", "latency_ms",
            "rtf", "memory", "device", "hardware", "reference_input", "timer", "latency_samples_ms", "throughput",
            "flops_note", "software"}


@cpu_only
def test_profile_json_has_every_key_and_states_what_it_measured(tmp_path, capsys):
    result = profile_system(ToySystem(), device="cpu", seconds=0.5, size=8, repeats=7, throughput_batch=3,
                            progress=False, timing={"warmup": 1, "throughput_repeats": 2})
    out = tmp_path / "sub" / "profile.json"
    write_profile(result, out)
    assert "RTF" in capsys.readouterr().out
    r = json.loads(out.read_text())
    assert REQUIRED <= set(r)
    assert set(r["latency_ms"]) >= {"p50", "p90", "p99", "mean", "std"} and len(r["latency_samples_ms"]) == 7
    assert r["rtf"] == pytest.approx(r["latency_ms"]["p50"] / 1e3 / 0.5)
    assert r["reference_input"]["audio_shape"] == [1, 8000] and r["reference_input"]["video_shape"] == [1, 1, 12, 8, 8]
    assert r["params_total"] == r["params_trainable"] == 6 + 2  # Conv1d(1, 1, 5) + Linear(1, 1), with biases
    assert r["size_mb"] == pytest.approx(8 * 4 / 1e6, abs=1e-3)
    assert r["throughput"]["batch"] == 3 and r["throughput"]["samples_per_s"] > 0
    assert r["latency_warmup"] == 1 and (r["throughput"]["repeats"], r["throughput"]["warmup"]) == (2, 1)
    for phase in ("loading", "inference", "training"):
        m = r["memory"][phase]
        assert m["gpu_mib"] == m["torch_peak_mib"] == NO_CUDA and m["ram_mib"] > 0
    training = r["memory"]["training"]
    assert (training["batch"], training["batch_requested"]) == (2, 8) and "capped at 2" in training["batch_note"]
    assert r["hardware"]["gpus"] == NO_CUDA
    assert len(r["load_average"]["start"]) == 3


def test_the_profiler_does_not_load_the_report_libraries():
    """The memory phases' processes import the profiler: pandas and matplotlib there (about 120 MiB) would be counted
    as the model's RAM."""
    code = "import sys, avse_bench.profiling; print(sorted({'pandas', 'matplotlib'} & set(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_cost_by_module_splits_trainable_from_frozen_and_the_flops():
    """Issue 27, item 5: one FLOPs figure and one trainable/total pair could not be compared with a published
    "3.1 M parameters, 18.6 G MACs" when most of the cost was a frozen lip encoder. Per top-level module: trainable
    and frozen parameters, and multiply-adds; the modules' multiply-adds add up to the total."""
    from avse_bench.profiling.flops import count_flops
    from avse_bench.profiling.params import parameter_count
    from avse_bench.profiling.reference import Reference
    from avse_bench.systems import load

    model = load("dcnn_rnn").build_model()
    for p in model.visual.parameters():
        p.requires_grad_(False)  # as a frozen lip encoder
    counts = parameter_count(model)
    assert counts["params_by_module"]["visual"] == {"trainable": 0, "frozen": 1_963_968}
    assert counts["params_by_module"]["separator"] == {"trainable": 66_849, "frozen": 0}
    assert counts["params_trainable"] == 2_039_009 - 1_963_968
    flops = count_flops(model, Reference(1.0, 64).tensors(1))
    assert set(flops["flops_by_module"]) == {"audio_encoder", "visual", "separator", "audio_decoder", "(own)"}
    assert sum(flops["flops_by_module"].values()) == flops["flops"]


@pytest.mark.parametrize("timing, words", [({"warmups": 1}, "unknown warmups"), ({"warmup": -1}, "whole numbers"),
                                           ({"warmup": 1.5}, "whole numbers"), ({"warmup": None}, "whole numbers"),
                                           ({"throughput_repeats": 0}, "throughput_repeats >= 1"),
                                           ({"repeats": 3}, "unknown repeats")])
def test_timing_overrides_that_are_not_counts_are_one_line_before_any_work(timing, words, monkeypatch):
    """A run profile's `timing` (the smoke profile's fewer calls) names the DEFAULTS it overrides; anything else is
    refused before the memory phases start."""
    import avse_bench.profiling.profile as profile_module

    monkeypatch.setattr(profile_module, "memory_phases", lambda *a, **k: pytest.fail("measured"))
    with pytest.raises(AvseBenchError, match=words):
        profile_system(ToySystem(), device="cpu", seconds=0.5, size=8, progress=False, timing=timing)
