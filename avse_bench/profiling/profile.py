"""`profile_system`: every cost figure of one system at one stated reference input, as one JSON-ready dict."""

from __future__ import annotations

import torch
from tqdm import tqdm

from avse_bench.errors import AvseBenchError
from avse_bench.percentiles import latency_summary
from avse_bench.profiling.flops import count_flops
from avse_bench.profiling.hardware import cpu_model, hardware_info, load_average, software_info
from avse_bench.profiling.latency import time_calls
from avse_bench.profiling.lookahead import measure_lookahead
from avse_bench.profiling.memory import memory_phases
from avse_bench.profiling.params import parameter_count
from avse_bench.profiling.reference import Reference
from avse_bench.train import resolve_device

# Defaults per device kind; each can be overridden through profile_system's `repeats`, `throughput_batch` and
# `timing` (a run profile's `profiling` settings: the smoke profile, for tests, times fewer calls).
DEFAULTS = {
    # One forward of the baseline at 3 s / 128 px takes ~1-2 s on 2 CPU cores: 20 timed calls after 3 warm-ups.
    "cpu": {"warmup": 3, "repeats": 20, "throughput_batch": 4, "throughput_warmup": 1, "throughput_repeats": 3,
            "train_batch_cap": 2},
    # On a GPU a call takes milliseconds: 500 timed calls, enough for p99 (percentiles.runs_needed); CPU's 20 give the
    # median and the mean, and p90/p99 read n/a with the reason.
    "cuda": {"warmup": 10, "repeats": 500, "throughput_batch": 16, "throughput_warmup": 3, "throughput_repeats": 20,
             "train_batch_cap": None},
}
TRAINING_STEPS = 2  # the first step allocates the optimiser's state, the second runs with it in place


def resolve_system(system):
    """A System (anything with .build_model() and .recipe(profile)) or a registered system's name."""
    if isinstance(system, str):
        from avse_bench.systems import load

        return load(system)
    return system


def _training_batch(recipe: dict, train_batch: int | None, kind: str, name: str) -> tuple[int, int, str]:
    """(batch to try, batch requested, note): the recipe's batch unless given, capped on CPU unless given."""
    if train_batch is not None:
        return train_batch, train_batch, "given explicitly (--train-batch or the caller)"
    if "batch_size" not in recipe:
        raise AvseBenchError(f"system {name!r}: its [recipe] has no batch_size; pass --train-batch")
    requested, cap = int(recipe["batch_size"]), DEFAULTS[kind]["train_batch_cap"]
    if cap is not None and requested > cap:
        return cap, requested, (f"the recipe's batch {requested} capped at {cap} on CPU to keep the profile "
                                f"affordable (--train-batch overrides)")
    return requested, requested, "the recipe's batch"


# What `timing` may override, with the least count each takes (`repeats` and `throughput_batch` have arguments of
# their own; the CPU batch cap is not a count of calls).
TIMING_MINIMUM = {"warmup": 0, "throughput_warmup": 0, "throughput_repeats": 1}


def _timing(defaults: dict, overrides: dict) -> dict:
    unknown = set(overrides) - set(TIMING_MINIMUM)
    if unknown:
        raise AvseBenchError(f"profile timing: unknown {', '.join(sorted(unknown))}; one of "
                             f"{', '.join(TIMING_MINIMUM)}")
    bad = {k: v for k, v in overrides.items()
           if isinstance(v, bool) or not isinstance(v, int) or v < TIMING_MINIMUM[k]}
    if bad:
        raise AvseBenchError(f"profile timing: counts must be whole numbers (warm-ups >= 0, throughput_repeats >= 1), "
                             f"got {bad}")
    return {**defaults, **overrides}


def _check_positive(**values) -> None:
    for key, value in values.items():
        if value is not None and value <= 0:
            raise AvseBenchError(f"profile: {key} must be positive, got {value}")


def _latency(model, device, ref: Reference, warmup, repeats, progress) -> dict:
    """Batch-1 latency per sample on the reference input, with RTF from its median and its mean."""
    seconds = ref.seconds
    audio, video = ref.tensors(1, device)
    with torch.no_grad():
        samples, timer = time_calls(lambda: model(audio, video), device, warmup, repeats, progress, "latency")
    stats = latency_summary(samples)
    return {"latency_ms": stats, "latency_samples_ms": [round(s, 4) for s in samples], "timer": timer,
            "latency_warmup": warmup, "rtf": stats["p50"] / 1e3 / seconds, "rtf_mean": stats["mean"] / 1e3 / seconds,
            "rtf_basis": "rtf = p50 latency / audio duration; rtf_mean = mean latency / audio duration"}


def _throughput(model, device, ref: Reference, batch, warmup, repeats, progress) -> dict:
    """Samples and audio seconds processed per second at `batch`, from the median time per batch."""
    seconds = ref.seconds
    audio, video = ref.tensors(batch, device)
    with torch.no_grad():
        samples, timer = time_calls(lambda: model(audio, video), device, warmup, repeats, progress, "throughput")
    median_s = latency_summary(samples)["p50"] / 1e3
    return {"batch": batch, "samples_per_s": batch / median_s, "audio_seconds_per_s": batch * seconds / median_s,
            "median_ms_per_batch": median_s * 1e3, "repeats": repeats, "warmup": warmup, "timer": timer}


def profile_system(system, device: str = "auto", seconds: float = 3.0, size: int = 128, train_batch: int | None = None,
                   repeats: int | None = None, throughput_batch: int | None = None, progress: bool = True,
                   weights=None, train_seconds: float | None = None, video_channels: int = 1,
                   timing: dict | None = None) -> dict:
    """Parameters, FLOPs, memory per phase, latency, RTF, look-ahead and throughput of `system` (a System or its name).

    The reference input is `seconds` of 16 kHz audio (the system's channels: `[model] channels`, 1 when it states
    none) with 25 fps frames at `size` px, batch 1 (3 s: 48,000 samples, 75 frames). Memory phases run first,
    each in a fresh process, before this process touches the GPU.
    `weights`: a supplied weights file, loaded into the timed model (checked to fit; recorded under `weights`).
    `train_seconds`: the length of the training phase's inputs (a run's training crops, so that its memory is what
    that run's training needs; None: `seconds`), recorded as `memory.training.seconds`.
    `timing`: overrides of the device kind's `DEFAULTS` (e.g. {"warmup": 1, "throughput_repeats": 1}); the counts
    used are recorded beside the figures. Raises AvseBenchError for a key outside `TIMING_MINIMUM` or a count below
    its minimum (or not a whole number).
    """
    _check_positive(seconds=seconds, size=size, train_batch=train_batch, repeats=repeats,
                    throughput_batch=throughput_batch, train_seconds=train_seconds)
    system = resolve_system(system)
    name = getattr(system, "name", type(system).__name__)
    dev = resolve_device(device)
    kind = dev.type
    d = _timing(DEFAULTS[kind], timing or {})
    batch, requested, note = _training_batch(system.recipe("paper"), train_batch, kind, name)
    ref = Reference(seconds, size, getattr(system, "channels", 1), video_channels)
    if weights is None:
        model, supplied = system.build_model(), "initial weights (none supplied)"
    else:  # read and checked before the minutes of measuring
        from avse_bench.weights import model_with_weights

        model, supplied = model_with_weights(system, weights)
    load_at_start = load_average()

    stages = tqdm(total=5, desc=f"profile {name}", disable=not progress, leave=False)
    stages.set_postfix_str("memory (3 fresh processes)")
    train_ref = ref if train_seconds is None else Reference(train_seconds, size, ref.channels, video_channels)
    memory = memory_phases(system, str(dev), ref, batch, requested, note, train_ref)
    stages.update()

    stages.set_postfix_str("parameters and FLOPs")
    result = {"system": name, "device": str(dev), "weights": supplied,
              "device_name": torch.cuda.get_device_name(dev) if kind == "cuda" else cpu_model(),
              "reference_input": ref.shapes(1), **parameter_count(model), **count_flops(model, ref.tensors(1))}
    stages.update()

    stages.set_postfix_str("latency")
    model = model.to(dev).eval()
    result.update(_latency(model, dev, ref, d["warmup"], repeats or d["repeats"], progress))
    stages.update()

    stages.set_postfix_str("look-ahead")
    result["lookahead"] = measure_lookahead(model, ref, dev)
    stages.update()

    stages.set_postfix_str("throughput")
    result["throughput"] = _throughput(model, dev, ref, throughput_batch or d["throughput_batch"],
                                       d["throughput_warmup"], d["throughput_repeats"], progress)
    stages.update()
    stages.close()
    result.update({"memory": memory, "hardware": hardware_info(), "software": software_info(),
                   "load_average": {"start": load_at_start, "end": load_average(),
                                    "note": "1, 5, 15-minute load averages; above the core count other work "
                                            "competed with the timings"}})
    return result
