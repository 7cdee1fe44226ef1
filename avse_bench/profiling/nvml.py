"""NVML through `pynvml` (the module of the `nvidia-ml-py` package): driver version and GPU memory used.

Without a driver or library `nvmlInit` raises an `NVMLError` (LibraryNotFound, DriverNotLoaded); every function
here then returns "n/a (<reason>)" instead of a number.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

MIB = 2**20


class NvmlUnavailable(Exception):
    """NVML could not be initialised; the message says why."""


@contextmanager
def session() -> Iterator:
    """The initialised `pynvml` module, shut down on exit; NvmlUnavailable if NVML cannot start."""
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as err:
        raise NvmlUnavailable(f"NVML unavailable: {err}") from err
    try:
        yield pynvml
    finally:
        pynvml.nvmlShutdown()


def driver_version() -> str:
    try:
        with session() as nv:
            version = nv.nvmlSystemGetDriverVersion()
    except NvmlUnavailable as err:
        return f"n/a ({err})"
    return version.decode() if isinstance(version, bytes) else version


def _handle(nv, torch_index: int):
    """NVML's handle for torch's CUDA device `torch_index` (matched by UUID: CUDA_VISIBLE_DEVICES renumbers)."""
    import torch

    uuid = str(getattr(torch.cuda.get_device_properties(torch_index), "uuid", ""))
    if uuid:
        try:
            return nv.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
        except nv.NVMLError:
            pass
    return nv.nvmlDeviceGetHandleByIndex(torch_index)


def gpu_memory_used(torch_index: int) -> dict:
    """{"mib": device memory this process uses, "source": how it was read}.

    NVML's per-process figure (includes the CUDA context and everything torch's caching allocator holds) where
    NVML lists this process; in a container NVML may list host PIDs only, and then the device's total used memory
    is given instead, labelled as such. "n/a (...)" if NVML is unavailable.
    """
    try:
        with session() as nv:
            handle = _handle(nv, torch_index)
            for proc in nv.nvmlDeviceGetComputeRunningProcesses(handle):
                if proc.pid == os.getpid() and proc.usedGpuMemory is not None:
                    return {"mib": round(proc.usedGpuMemory / MIB, 1), "source": "NVML, this process"}
            used = nv.nvmlDeviceGetMemoryInfo(handle).used
            return {"mib": round(used / MIB, 1),
                    "source": "NVML, whole device (this process is not listed by NVML, e.g. in a container)"}
    except NvmlUnavailable as err:
        return {"mib": f"n/a ({err})", "source": "NVML"}
