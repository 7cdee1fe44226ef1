"""What every stage needs to know about this machine, without importing torch: the cores this process may use, and
how its worker processes start (and that they end with the process that started them)."""

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


# The modules whose functions our forkserver workers run most (DataLoader workers, scoring workers). A process has
# one forkserver, and its preload list is the one set when it starts, by whichever kind of worker starts it first (in
# a compare run, `data check`'s or the corpus synthesiser's): naming these too makes every later worker start in
# milliseconds instead of importing torch (1.6 s) or the metric libraries (0.9 s) itself, measured here. An import
# that fails in the server is skipped by multiprocessing (the worker then fails on it as before).
WORKER_MODULES = ("avse_bench.data.dataset", "avse_bench.metrics.pool")


def worker_context(module: str) -> BaseContext:
    """The start method of our worker processes: forkserver on Linux, its server preloading `module` (the one whose
    functions the workers run) so that each worker starts in milliseconds; elsewhere the platform's default (spawn).

    Never fork: our processes are multi-threaded (pebble's manager threads, BLAS's, OpenCV's and onnxruntime's pools,
    torch's), and a forked child inherits, held forever, every lock another thread held at that instant. Seen here:
    a forked scoring worker hung in onnxruntime after a DNSMOS call in the parent, and one on CI took a scene and never
    answered (tests/test_scoring.py keeps the kind). Python 3.14 makes forkserver the default for the same reason.
    The preload list is the server's, set before it starts (`module` and `WORKER_MODULES`); once it runs, workers
    import what it did not preload themselves."""
    if not sys.platform.startswith("linux"):
        return multiprocessing.get_context()
    context = _ForkserverWorkers()
    context.set_forkserver_preload(list(dict.fromkeys([module, *WORKER_MODULES])))
    return context


def spawn_context() -> BaseContext:
    """Spawn, for a process that must start from nothing (the profiler's memory phases); on Linux its processes
    end with the process that created them (`die_with`)."""
    return _SpawnWorkers() if sys.platform.startswith("linux") else multiprocessing.get_context("spawn")


def die_with(owner: int) -> None:
    """End this process (os._exit) as soon as process `owner` ends: a daemon thread waits on a pidfd of it (Linux
    5.3+; polled once a second elsewhere). A worker blocked on its task queue never learns that the process that fed
    it was killed: kill -9 of `data check --jobs 2` left its workers, the forkserver and the resource tracker
    running (each forkserver worker holds the server's alive pipe, so the server waits for them and they for it);
    of `profile`, a spawned memory phase reparented to PID 1. With the workers gone, the server and the tracker end
    by themselves."""
    import threading

    def wait_pidfd(fd: int) -> None:
        import select

        select.select([fd], [], [])
        os._exit(1)

    def poll() -> None:
        import time

        while True:
            try:
                os.kill(owner, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # alive, another user's
                pass
            time.sleep(1.0)

    try:
        target, args = wait_pidfd, (os.pidfd_open(owner),)
    except (AttributeError, OSError):  # no pidfd here, or the owner is gone already
        target, args = poll, ()
    threading.Thread(target=target, args=args, daemon=True, name="die-with-owner").start()


class _DiesWithOwner:
    """Mixed into a Process class: the process ends with the process that created it (`die_with`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._owner = os.getpid()  # runs in the creating process; pickled to the child with the object

    def run(self):
        die_with(self._owner)
        super().run()


class _ForkserverWorker(_DiesWithOwner, multiprocessing.context.ForkServerProcess):
    pass


class _SpawnWorker(_DiesWithOwner, multiprocessing.context.SpawnProcess):
    pass


class _ForkserverWorkers(multiprocessing.context.ForkServerContext):
    Process = _ForkserverWorker


class _SpawnWorkers(multiprocessing.context.SpawnContext):
    Process = _SpawnWorker
