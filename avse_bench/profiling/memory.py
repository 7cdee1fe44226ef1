"""Memory in the sheet's three phases, each measured in a fresh process (peak RSS only ever grows in a process).

- loading: build the model and move its weights onto the device;
- inference: enhance one reference sample at batch 1 under `torch.no_grad()` (model loaded before the phase);
- training: `steps` optimiser steps (forward, negative SI-SNR loss, backward, the recipe's optimiser) at a stated
  batch (model loaded before the phase).

Per phase: `gpu_mib` (NVML: the device memory the process uses at the phase's end; torch's caching allocator
keeps what the phase reserved, so this includes the phase's peak reservation and the CUDA context), the torch
allocator's peaks during the phase (`torch_peak_mib` allocated, `torch_peak_reserved_mib`), and `ram_mib`, the
process's peak RSS during the phase; `ram_baseline_mib` is its RSS when the phase began (interpreter, torch,
and for inference/training the loaded model), so `ram_mib - ram_baseline_mib` is the phase's own cost. On Linux
the peak is the kernel's high-water mark (VmHWM) reset at the phase's start; elsewhere it is ru_maxrss since
the process started. Without CUDA every GPU field is "n/a (no CUDA device)".
"""

from __future__ import annotations

import contextlib
import resource
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import psutil
import torch

import avse_bench.profiling.nvml as nvml
from avse_bench.errors import AvseBenchError
from avse_bench.machine import spawn_context
from avse_bench.profiling.hardware import NO_CUDA
from avse_bench.profiling.reference import Reference

MIB = 2**20
PHASES = ("loading", "inference", "training")



class PhaseOutOfMemory(Exception):
    """The phase did not fit in the device's or the machine's memory at the requested batch."""


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mib(hwm_reset: bool) -> float:
    if hwm_reset:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / MIB
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / MIB


class PhaseProbe:
    """Takes the baselines when a phase starts and the peaks when it ends."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cuda = device.type == "cuda"

    def start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.gpu_before = nvml.gpu_memory_used(self.device.index)
        self.hwm_reset = _reset_peak_rss()
        self.rss_before = psutil.Process().memory_info().rss / MIB

    def stop(self) -> dict:
        if self.cuda:
            torch.cuda.synchronize(self.device)
        result = {
            "ram_mib": round(_peak_rss_mib(self.hwm_reset), 1),
            "ram_baseline_mib": round(self.rss_before, 1),
            "ram_peak_method": ("VmHWM, reset at the phase's start" if self.hwm_reset
                                else "ru_maxrss since the process started"),
        }
        if not self.cuda:
            return {"gpu_mib": NO_CUDA, "gpu_baseline_mib": NO_CUDA, "gpu_source": NO_CUDA,
                    "torch_peak_mib": NO_CUDA, "torch_peak_reserved_mib": NO_CUDA, **result}
        gpu = nvml.gpu_memory_used(self.device.index)
        return {"gpu_mib": gpu["mib"], "gpu_baseline_mib": self.gpu_before["mib"], "gpu_source": gpu["source"],
                "torch_peak_mib": round(torch.cuda.max_memory_allocated(self.device) / MIB, 1),
                "torch_peak_reserved_mib": round(torch.cuda.max_memory_reserved(self.device) / MIB, 1), **result}


def _phase_worker(phase: str, system, device: str, ref: Reference, batch: int, steps: int) -> dict:
    """Runs in the fresh process: set up what precedes the phase, then measure the phase alone."""
    from avse_bench.nn.loss import recipe_losses
    from avse_bench.train import build_optimizer

    torch.manual_seed(0)
    dev = torch.device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", dev.index if dev.index is not None else torch.cuda.current_device())
        torch.zeros(1, device=dev)  # the CUDA context exists before any baseline is taken
    probe = PhaseProbe(dev)
    try:
        if phase == "loading":
            probe.start()
            system.build_model().to(dev)
            return {**probe.stop(), "batch": "n/a (no input)"}
        model = system.build_model().to(dev)
        if phase == "inference":
            model.eval()
            probe.start()
            with torch.no_grad():
                model(*ref.tensors(batch, dev))
            return {**probe.stop(), "batch": batch}
        model.train()
        optimizer = build_optimizer(model.parameters(), system.recipe("paper"), getattr(system, "path", system))
        probe.start()
        audio, video = ref.tensors(batch, dev)
        target = ref.tensors(batch, dev, seed=1)[0]  # the shape of audio, a stand-in clean signal
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            recipe_losses(system.recipe("paper"))[0](model(audio, video), target).backward()
            optimizer.step()
        return {**probe.stop(), "batch": batch, "steps": steps,
                "optimizer": type(optimizer).__name__}
    except (torch.OutOfMemoryError, MemoryError) as err:
        raise PhaseOutOfMemory(f"{phase} at batch {batch}: {type(err).__name__}") from None


def _imported() -> None:
    """A fresh process's first task: nothing; unpickling it imports this module (torch with it), so that the process
    is ready before its phase is given to it."""


def fresh_process() -> ProcessPoolExecutor:
    """A spawned process for one phase, started now: it imports torch (1.6 s of a toy system's 1.8 s phase, measured
    here) while the phases before it run. It does nothing else until its phase comes, so the phase still runs in a
    process that has only imported modules, as a process spawned for it would."""
    pool = ProcessPoolExecutor(max_workers=1, mp_context=spawn_context())
    pool.submit(_imported)  # spawn starts the process at the first task
    return pool


def measure_phase(phase: str, system, device: str, ref: Reference, batch: int = 1, steps: int = 2,
                  process: ProcessPoolExecutor | None = None) -> dict:
    """One phase in a fresh spawned process (`process`, from `fresh_process`, or one started here), which ends with
    it; PhaseOutOfMemory if it ran out of memory (or was killed for it)."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; one of {PHASES}")
    with process or fresh_process() as pool:
        future = pool.submit(_phase_worker, phase, system, device, ref, batch, steps)
        try:
            return future.result()
        except BrokenProcessPool:
            raise PhaseOutOfMemory(f"{phase} at batch {batch}: the process died (killed, probably out of "
                                   f"memory)") from None


def measure_training(system, device: str, ref: Reference, batch: int, requested: int, cap_note: str,
                     steps: int = 2, process: ProcessPoolExecutor | None = None) -> dict:
    """The training phase at `batch` (in `process` first, if given), halving it until it fits; the result states the
    batch used and why."""
    tried = []
    while batch >= 1:
        try:
            result = measure_phase("training", system, device, ref, batch, steps, process)
        except PhaseOutOfMemory as err:
            tried.append(str(err))
            batch //= 2
            process = None  # that process is gone: a new one for the smaller batch
            continue
        notes = [cap_note] if cap_note else []
        notes += [f"did not fit: {t}" for t in tried]
        return {**result, "batch_requested": requested, "batch_note": "; ".join(notes) or "the requested batch"}
    raise AvseBenchError(f"the training phase does not fit in memory even at batch 1 ({'; '.join(tried)})")


def memory_phases(system, device: str, ref: Reference, train_batch: int, requested: int, cap_note: str,
                  train_ref: Reference | None = None) -> dict:
    """{"loading", "inference", "training"}: each measured in its own fresh process, one after the other (the three
    processes started at once, so that their imports overlap the phases before theirs: `fresh_process`); the
    training phase at `train_ref` (default `ref`: a run's profile passes its training crops), its length in seconds
    recorded."""
    train_ref = train_ref or ref
    with contextlib.ExitStack() as started:  # a phase that raises: the processes not yet used end too
        loading, inference, training = (started.enter_context(fresh_process()) for _ in PHASES)
        return {
            "loading": measure_phase("loading", system, device, ref, process=loading),
            "inference": measure_phase("inference", system, device, ref, batch=1, process=inference),
            "training": {**measure_training(system, device, train_ref, train_batch, requested, cap_note,
                                            process=training),
                         "seconds": train_ref.seconds},
        }
