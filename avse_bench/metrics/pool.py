"""The worker processes that score scenes: a `pebble.ProcessPool` started clean (forkserver), one scene per task
with a time limit, a task that crashed or hung scored again one metric per task (`_row`, `_isolated_call`), rows
appended to the output as scenes finish (`_score_jobs`, `_append`). `scoring.score_split` drives it; a pool lives
for one call, or for a whole block of calls inside `kept_alive()` (compare's enhance-and-score stages).

Why keep a pool alive: a worker's first DNSMOS call pays for librosa's import and the ONNX sessions (1.39 s, the next
call 0.24 s, measured here), so a fresh pool per split made each score stage of a compare run slower (4 scenes of the
smoke corpus: 4.0 s with a fresh pool, 2.3 s with a kept one; 8 to 11 stages per run); a kept pool pays it once. The
values are the same: every task carries its metric functions (`metric_call`) and the workers' settings are those of
a fresh pool of that size."""

from __future__ import annotations

import contextlib
import csv
import functools
from collections.abc import Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pebble
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from avse_bench.errors import AvseBenchError
from avse_bench.machine import available_cores, worker_context
from avse_bench.metrics.dispatch import COLUMNS, ScoreJob, metric_call, score_job
from avse_bench.metrics.dnsmos import set_threads
from avse_bench.metrics.functional import MetricError

DEFAULT_TIMEOUT = 300.0  # seconds per scene (and per metric when a scene is scored again metric by metric)


class _PoolBroken(BaseException):
    """The worker pool itself is gone (every worker died at once, or none could start): the run's failure, not a
    scene's or a metric's. A BaseException so that `score_pair`'s per-metric `except Exception` lets it through."""


def _failure(err: BaseException, timeout: float) -> str:
    """What went wrong in a worker, in words for the `error` column."""
    if isinstance(err, pebble.ProcessExpired):
        code = err.exitcode
        return f"crashed (signal {-code})" if code is not None and code < 0 else f"worker exited with status {code}"
    if isinstance(err, FutureTimeout):
        return f"timed out after {timeout:g} s"
    return f"failed: {type(err).__name__}: {err}"


def _isolated_call(pool: pebble.ProcessPool, timeout: float, metric: functools.partial):
    """A `score_pair` call that runs each metric (`metric(name, ref, deg)`, a `metric_call()`) as a task of its own
    in `pool`: a crash, a time-out or an unexpected exception becomes that metric's MetricError."""

    def call(name: str, ref: np.ndarray, deg: np.ndarray) -> float:
        try:
            future = pool.schedule(metric, args=(name, ref, deg), timeout=timeout)
        except RuntimeError as err:  # pebble refuses to schedule on a pool that broke
            raise _PoolBroken(str(err)) from err
        try:
            return future.result()
        except MetricError:
            raise
        except BrokenProcessPool as err:
            raise _PoolBroken(str(err)) from err
        except Exception as err:  # ProcessExpired, TimeoutError, anything the library raised
            raise MetricError(_failure(err, timeout)) from err

    return call


def _row(future, job: ScoreJob, pool: pebble.ProcessPool, timeout: float,
         metric: functools.partial) -> dict[str, str]:
    """The row of a finished scene task; a scene whose task crashed, timed out or raised is scored again one
    metric per task, so that the others keep their values."""
    try:
        return future.result()
    except BrokenProcessPool as err:  # not this scene's fault: every task of the pool failed with it
        raise _PoolBroken(str(err)) from err
    except Exception as err:  # whatever killed the worker: reported per metric below
        first = _failure(err, timeout)
    row = score_job(job, _isolated_call(pool, timeout, metric))
    if not row["error"]:  # every metric went through on its own: say what happened to the scene's task
        row["error"] = f"scored metric by metric after the scene's task {first}"
    return row


def _worker_count(jobs: int) -> int:
    if jobs < 0:
        raise AvseBenchError(f"--jobs {jobs}: expected 0 (all cores) or a positive number")
    if jobs:
        return jobs
    return available_cores()


def _pool(workers: int) -> pebble.ProcessPool:
    """Worker processes for scoring, started clean (`worker_context`: forkserver on Linux, never fork; a forked
    replacement worker, started after PESQ's segfault on a 150 s scene, took the next 3 s scene on CI and never
    answered: timed out after 300 s, not reproduced in 12 runs here).
    Each worker limits BLAS (pystoi's matmuls) to one thread: with numpy's default of one thread per core, two
    workers on 2 cores oversubscribe and each scene took 1.8x longer (345 vs 192 ms, measured here)."""
    return pebble.ProcessPool(max_workers=workers, context=worker_context(__name__),
                              initializer=_single_threaded_workers, initargs=(workers,))


def _single_threaded_workers(workers: int) -> None:
    threadpool_limits(limits=1, user_api="blas")  # in force for the worker's lifetime (restored only on request)
    if workers > 1:  # DNSMOS's onnxruntime sessions likewise: one thread per worker (same values)
        set_threads(1)


_kept: dict[int, pebble.ProcessPool] | None = None  # inside `kept_alive()`: the pools kept, by worker count


@contextlib.contextmanager
def kept_alive():
    """Within this block, a scoring pool that finished its split cleanly stays up for the next `score_split` call
    with the same worker count (module docstring: why); on leaving it, every kept pool is stopped. A pool that broke,
    or a call that raised (a kill, a full disk), stops its pool at once, as outside the block. Nested blocks share the
    outer one's pools."""
    global _kept
    if _kept is not None:
        yield
        return
    _kept = {}
    try:
        yield
    finally:
        pools, _kept = _kept, None
        for pool in pools.values():
            _stop(pool)


def _stop(pool: pebble.ProcessPool) -> None:
    pool.stop()
    pool.join()


def _score_jobs(todo: list[ScoreJob], out_csv: Path, workers: int, timeout: float, bar: tqdm) -> None:
    """Score `todo` in a pool (a fresh one, or the one `kept_alive` kept), appending rows to `out_csv` as scenes
    finish. Raises _PoolBroken when the pool itself fails (a worker dying before pebble saw it take its task breaks
    the whole pool: then a new one goes on)."""
    size = max(1, min(workers, len(todo)))
    pool = _kept.pop(size, None) if _kept is not None else None
    if pool is not None and not pool.active:  # its manager gave up since: a new one
        _stop(pool)
        pool = None
    pool = pool if pool is not None else _pool(size)
    metric = metric_call()
    finished = False
    try:
        futures = {pool.schedule(score_job, args=(j, metric), timeout=timeout): j for j in todo}
        rows = (_row(f, futures[f], pool, timeout, metric) for f in as_completed(futures))
        _append(out_csv, rows, header=not out_csv.exists() or out_csv.stat().st_size == 0, bar=bar)
        finished = True
    finally:
        if finished and _kept is not None:
            _kept[size] = pool
        else:
            _stop(pool)


def _append(path: Path, rows: Iterable[dict[str, str]], header: bool, bar: tqdm) -> None:
    """Append each row as it arrives, flushed to disk, so that a kill loses at most the scenes in flight."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with bar, open(path, "a", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        if header:
            writer.writerow(COLUMNS)
            f.flush()
        for row in rows:
            writer.writerow([row[c] for c in COLUMNS])
            f.flush()
            bar.update()
