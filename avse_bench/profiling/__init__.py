"""avse_bench.profiling: parameters, FLOPs, memory per phase, latency and RTF, hardware and software facts.

The names below are imported on first use (PEP 562), so that importing one submodule (the hardware facts that
training records, the NVML reader) does not import the others, and no submodule's import of a sibling passes
through this package back to itself.
"""

import importlib

_WHERE = {"hardware_info": "hardware", "software_info": "hardware", "profile_system": "profile",
          "write_profile": "summary"}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"avse_bench.profiling.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
