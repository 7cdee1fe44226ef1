"""Hardware and software facts for the sheet's items 8 (hardware), 9 (number and type of GPUs) and 13 (requirements).

Every GPU field reads "n/a (no CUDA device)" where there is none: a missing GPU is stated, never written as 0.
"""

from __future__ import annotations

import os
import platform
import sys

import psutil
import torch

import avse_bench.profiling.nvml as nvml
from avse_bench.machine import available_cores
from avse_bench.stage_code import all_distributions, versions

NO_CUDA = "n/a (no CUDA device)"
MIB = 2**20

# Distributions whose versions matter to the figures (metrics, FLOP counting, video decoding, GPU memory).


def cpu_model() -> str:
    """The CPU's marketing name (from /proc/cpuinfo on Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "n/a (CPU model not reported by the OS)"


def gpu_facts() -> dict:
    """{gpu_count, gpus: [{index, name, memory_mib, capability}], gpu_driver}; "n/a (...)" without CUDA."""
    if not torch.cuda.is_available():
        return {"gpu_count": NO_CUDA, "gpus": NO_CUDA, "gpu_driver": NO_CUDA}
    gpus = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        gpus.append({"index": i, "name": p.name, "memory_mib": round(p.total_memory / MIB),
                     "capability": f"{p.major}.{p.minor}"})
    return {"gpu_count": len(gpus), "gpus": gpus, "gpu_driver": nvml.driver_version()}


def hardware_info() -> dict:
    """CPU model and cores, RAM, and the GPUs (name, count, memory, driver) or "n/a (no CUDA device)"."""
    return {
        "cpu_model": cpu_model(),
        "cpu_cores_logical": os.cpu_count(),
        "cpu_cores_physical": psutil.cpu_count(logical=False) or "n/a (not reported by the OS)",
        "cpu_cores_available": available_cores(),
        "torch_threads": torch.get_num_threads(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 2),
        **gpu_facts(),
    }


def load_average() -> list[float] | str:
    """The machine's 1, 5 and 15-minute load averages: above the core count, timings are inflated by other work."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return "n/a (no load average on this OS)"


def opencv_version() -> str:
    """cv2's own version (either opencv wheel provides it)."""
    try:
        import cv2
    except ImportError:
        return "n/a (not installed)"
    return cv2.__version__


def software_info() -> dict:
    """Python, platform, torch with its CUDA and cuDNN, OpenCV, and the version of every distribution a stage or the
    report declares (`stage_code.all_distributions`: what computes the figures)."""
    cuda = torch.version.cuda or "n/a (CPU build of torch)"
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": cuda,
        "cudnn": str(cudnn) if cudnn else "n/a (cuDNN not available to torch)",
        "opencv": opencv_version(),
        **versions(all_distributions()),  # what every stage and the report declare (stage_code.STAGE_CODE)
    }
