"""What every stage needs to know about this machine, without importing torch: the cores this process may use, and
how its worker processes start."""

from __future__ import annotations

import multiprocessing
import os
import sys
from multiprocessing.context import BaseContext


def available_cores() -> int:
    """Cores this process may run on (its affinity mask), which can be fewer than the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_context(module: str) -> BaseContext:
    """The start method of our worker processes: forkserver on Linux, its server preloading `module` (the one whose
    functions the workers run) so that each worker starts in milliseconds; elsewhere the platform's default (spawn).

    Never fork: our processes are multi-threaded (pebble's manager threads, BLAS's, OpenCV's and onnxruntime's pools,
    torch's), and a forked child inherits, held forever, every lock another thread held at that instant. Seen here:
    a forked scoring worker hung in onnxruntime after a DNSMOS call in the parent, and one on CI took a scene and never
    answered (tests/test_scoring.py keeps the kind). Python 3.14 makes forkserver the default for the same reason.
    The preload list is the server's, set before it starts; once it runs, workers import `module` themselves."""
    if not sys.platform.startswith("linux"):
        return multiprocessing.get_context()
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([module])
    return context
