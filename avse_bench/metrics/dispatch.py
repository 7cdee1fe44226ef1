"""One scene's scores: the job a worker runs (`ScoreJob`, `score_job`), the metric table it computes with
(`metric_call`: the metric declarations of `spec.py` dispatched to their functions), which metrics a run computes
(`parse_metrics`), and how a file is read (`read_wav`). Imports no process machinery (see `pool`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from avse_bench.errors import AvseBenchError
from avse_bench.metrics import binaural
from avse_bench.metrics.dnsmos import DNSMOS_METRICS, available, dnsmos
from avse_bench.metrics.functional import FS, FUNCTIONS, METRICS, MetricError, call_metrics, score_pair
from avse_bench.metrics.spec import ALL_METRICS, FAMILIES, SPECS, applies, names
from avse_bench.metrics.spec import function as declared_function

COLUMNS = ("scene", "masker", "snr_db", *ALL_METRICS, "error")  # every declared metric (avse_bench/metrics/spec.py)
RETRIED = "missing "  # rows whose error starts so are scored again by the next run


@dataclass(frozen=True)
class ScoreJob:
    """What a worker needs for one scene (paths and labels only: cheap to send to another process)."""

    scene: str
    masker: str | None
    snr_db: float | None
    reference: Path | None  # None: no clean target (eval split): non-intrusive metrics only
    estimate: Path
    estimate_kind: str  # "enhanced" or "mixture", for the error message when the file is missing
    metrics: tuple[str, ...] = METRICS
    channels: int = 1  # of the estimate and the reference: 1 on a mono track, 2 (left, right) on the binaural one
    speaker: str | None = None  # the target's speaker label (Real-World AVSE: the manifest's sK_speaker)
    transcript: str | None = None  # the target's reference transcript (Real-World AVSE: sK.txt), for CER


def read_wav(path: Path, channels: int = 1) -> np.ndarray:
    """A 16 kHz wav as float64 in [-1, 1] (soundfile's scaling, as the official scripts): (L,) for `channels` 1,
    (L, 2) for 2 (left, right); MetricError for another rate or channel count (nothing is resampled, downmixed or
    duplicated: the track says what a file must be)."""
    try:
        audio, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise MetricError(f"unreadable wav {path.name}: {err}") from err
    if rate != FS:
        raise MetricError(f"{path.name} is {rate} Hz, expected {FS} Hz (not resampled)")
    if audio.shape[1] != channels:
        track = "mono track" if channels == 1 else "binaural track"
        raise MetricError(f"{path.name} has {audio.shape[1]} channel(s); the {track} needs {channels}")
    return audio[:, 0] if channels == 1 else audio  # (L,) or (L, 2)


def _empty_row(job: ScoreJob, reason: str) -> dict[str, str]:
    return {"scene": job.scene, "masker": job.masker or "", "snr_db": _fmt(job.snr_db),
            **dict.fromkeys(ALL_METRICS, ""), "error": reason}


def _nonintrusive(deg: np.ndarray, call) -> dict:
    """DNSMOS of one estimate through `call` ("dnsmos", None, deg): {metric: value, ..., "error": reason}."""
    try:
        return {**call("dnsmos", None, deg), "error": ""}
    except MetricError as err:
        return {"error": f"dnsmos: {err.reason}"}
    except Exception as err:  # the library's own failure
        return {"error": f"dnsmos: failed: {type(err).__name__}: {err}"}


def score_job(job: ScoreJob, call=None) -> dict[str, str]:
    """One scene's CSV row (all values as strings; the metrics not in `job.metrics` empty); never raises a
    MetricError. `call(name, ref, deg)`: see `score_pair` ("dnsmos" with no reference for the DNSMOS family);
    default `metric_call()`."""
    if not job.estimate.is_file():
        return _empty_row(job, f"{RETRIED}{job.estimate_kind} file {job.estimate}")
    call = call or metric_call()
    referenced = job.reference is not None  # a Real-World mix item has none: its reference metrics stay empty
    intrusive = [m for m in job.metrics if m in METRICS and referenced]
    pairs = [m for m in job.metrics if m in CALLED_METRICS and referenced]  # binaural pairs, the Real-World three
    try:
        deg = read_wav(job.estimate, job.channels)
        ref = read_wav(job.reference, job.channels) if intrusive or pairs else None
        scores = score_pair(ref, deg, call, intrusive) if intrusive else {"error": ""}
    except MetricError as err:
        return _empty_row(job, err.reason)
    parts = [call_metrics(ref, deg, call, pairs)] if pairs else []
    if any(m in DNSMOS_METRICS for m in job.metrics):
        parts.append(_nonintrusive(deg.mean(axis=1) if deg.ndim == 2 else deg, call))  # binaural: (L + R) / 2
    for part in parts:
        scores = {**scores, **part, "error": "; ".join(e for e in (scores["error"], part["error"]) if e)}
    row = _empty_row(job, scores["error"])
    return {**row, **{m: _fmt(scores.get(m)) for m in job.metrics}}


def _metric(functions: dict, name: str, ref: np.ndarray | None, deg: np.ndarray):
    """One intrusive metric's value (`functions[name](ref, deg)`), or for "dnsmos" the DNSMOS family's
    {metric: value} of `deg` alone."""
    return dnsmos(deg) if name == "dnsmos" else functions[name](ref, deg)


CALLED_METRICS = (*names(family="binaural"), *names(family="realworld"))  # each by its declared function (spec.py)


def metric_call() -> functools.partial:
    """`call(name, ref, deg)` over this process's `FUNCTIONS` table, as it is now. The scorer builds it once in the
    parent and sends it with every task (the functions pickled by reference): its workers start from a clean
    process (`_pool`), so what they compute is what the parent chose, not what a fresh import of the table says."""
    return functools.partial(_metric, {**FUNCTIONS, **{m: declared_function(m) for m in CALLED_METRICS}})


def parse_metrics(spec: str | None, *, has_targets: bool = True, track: str = "mono") -> tuple[str, ...]:
    """`--metrics` ("pesq_wb,stoi,dnsmos", families "intrusive", "dnsmos", "binaural", "all") -> metric names in
    column order, for `track` ("mono", "binaural", "track1", "track2": `spec.applies`). None: every metric of
    the track (mono: the intrusive five and DNSMOS; binaural: MBSTOI and DNSMOS on the downmix; the Real-World
    tracks: the official SI-SDR, PESQ-WB, STOI, DNSMOS, UTMOS, CER and speaker similarity); one whose package
    is not installed is refused before any work, naming the command that installs it (a model metric whose model
    is not held here is kept: it reads "n/a (reason)", `model_pass`). A family or "all" keeps its
    metrics of the track; a metric named alone of the other track is
    refused. Without targets (an eval split) only the non-intrusive ones remain. Raises AvseBenchError for an
    unknown name, a metric whose packages are missing, or nothing left to compute."""
    if spec is None:
        chosen = {m for m in ALL_METRICS if applies(m, track)}
        if has_targets or not all(SPECS[m].needs_reference for m in chosen):
            missing = sorted({_missing(m) for m in chosen
                              if (has_targets or not SPECS[m].needs_reference) and _missing(m)})
            if missing:  # the track's own metrics are never left out in silence
                raise AvseBenchError(f"the {track} track's metrics cannot all be computed here: "
                                     f"{'; '.join(missing)} (or choose the metrics with --metrics)")
    else:
        chosen = set()
        for name in (part.strip() for part in spec.split(",") if part.strip()):
            if name not in FAMILIES and name not in ALL_METRICS:
                raise AvseBenchError(f"--metrics: unknown metric {name!r}; choose from "
                                     f"{', '.join([*FAMILIES, *ALL_METRICS])}")
            if name in ALL_METRICS and not applies(name, track):
                raise AvseBenchError(f"--metrics {name}: not a metric of the {track} track (--track; its metrics: "
                                     f"{', '.join(m for m in ALL_METRICS if applies(m, track))})")
            chosen |= {m for m in FAMILIES.get(name, (name,)) if applies(m, track)}
        for name in sorted(chosen, key=ALL_METRICS.index):
            if _missing(name):
                raise AvseBenchError(f"--metrics asks for {name}: {_missing(name)}")
    if not has_targets:
        chosen = {m for m in chosen if not SPECS[m].needs_reference}
    if not chosen:
        if not has_targets:
            raise AvseBenchError("no metric to compute: this split has no clean targets, so only the non-intrusive "
                                 "DNSMOS metrics apply (--metrics dnsmos; needs speechmos and onnxruntime; on the "
                                 "binaural track of the (L + R) / 2 downmix)")
        missing = {_missing(m) for m in ALL_METRICS if applies(m, track)} - {None}
        raise AvseBenchError(f"no metric to compute on the {track} track"
                             + (f": {'; '.join(sorted(missing))}" if missing else ": --metrics names none"))
    return tuple(m for m in ALL_METRICS if m in chosen)


def _missing(metric: str) -> str | None:
    """Why `metric` cannot run here (a package not installed), or None."""
    family = SPECS[metric].family
    return available() if family == "dnsmos" else binaural.available() if family == "binaural" else None


def _fmt(value: float | None) -> str:
    return "" if value is None or not np.isfinite(value) else repr(float(value))
