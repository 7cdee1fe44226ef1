"""avse_bench.profiling: parameters, FLOPs, memory per phase, latency and RTF, hardware and software facts."""

from avse_bench.profiling.hardware import hardware_info, software_info
from avse_bench.profiling.profile import profile_system
from avse_bench.profiling.summary import write_profile

__all__ = ["hardware_info", "profile_system", "software_info", "write_profile"]
