"""Speech-quality metrics on plain 1-D float arrays at 16 kHz, computed exactly as the AVSEC challenge computed them.

PESQ and STOI are the direct library calls of the official AVSEC evaluation script
(`evaluation/avse1/objective_evaluation.py` in the challenge repository, github.com/cogmhear/avse_challenge, adapted
from the Clarity challenge): `pesq.pesq(16000, ref, deg, 'wb')` and `pystoi.stoi(ref, deg, 16000)`, on the wav files
as read by `SoundFile(...).read()` (float64, no normalisation, no resampling). Narrow-band PESQ and ESTOI are the same
calls with `'nb'` and `extended=True`. SI-SDR is the textbook definition (Le Roux, Wisdom, Erdogan and Hershey,
"SDR - half-baked or well done?", ICASSP 2019), on zero-mean signals.

Length rule. The official script refuses pairs of different lengths (it raises "Wav files ... should have the same
length"). Here, equal lengths are scored as they are; a pair whose lengths differ by at most `LENGTH_TOLERANCE`
samples (640 = 40 ms, one 25 fps video frame, the most a system that pads to whole video frames can add or drop) is
cut to the shorter length from the end; a larger difference is an error ("length mismatch").

Every problem raises `MetricError(reason)`: a silent reference (peak below one PCM16 step), a signal shorter than
0.25 s (PESQ's minimum), NaN or inf in either signal, an all-zero estimate (PESQ would divide by zero), a length
mismatch beyond the rule, and each library's own failures (PESQ finding no utterances; STOI with fewer than 30 frames
left after removing silent frames, where pystoi would return 1e-5 with only a warning). `score_pair` never raises.
"""

from __future__ import annotations

import warnings

import numpy as np
import pesq as pesq_lib
import pystoi as pystoi_lib

from avse_bench.metrics.spec import names

FS = 16000
LENGTH_TOLERANCE = 640  # samples: one video frame at 25 fps
MIN_SAMPLES = FS // 4  # 0.25 s, below which PESQ raises BufferTooShortError
SILENCE_PEAK = 2.0**-15  # one PCM16 step: a reference whose peak is below this is silent
NO_ENERGY = 1e-20  # zero-mean energy / energy at or below which an estimate is a constant plus round-off (-200 dB)
METRICS = names(family="intrusive")  # declared in avse_bench/metrics/spec.py


class MetricError(ValueError):
    """A pair that cannot be scored; `reason` is the short text that goes into the `error` column."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def check_pair(ref: np.ndarray, deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (reference, estimate) pair and apply the length rule; returns float64 1-D arrays of equal length."""
    ref = np.asarray(ref, dtype=np.float64)
    deg = np.asarray(deg, dtype=np.float64)
    if ref.ndim != 1 or deg.ndim != 1:
        raise MetricError(f"expected mono 1-D signals, got shapes {ref.shape} and {deg.shape}")
    if abs(len(ref) - len(deg)) > LENGTH_TOLERANCE:
        raise MetricError(f"length mismatch: reference {len(ref)} vs estimate {len(deg)} samples "
                          f"(more than {LENGTH_TOLERANCE} apart)")
    n = min(len(ref), len(deg))
    ref, deg = ref[:n], deg[:n]  # (n,), (n,)
    if n < MIN_SAMPLES:
        raise MetricError(f"too short: {n} samples ({n / FS:.3f} s < 0.25 s)")
    if not np.all(np.isfinite(ref)):
        raise MetricError("NaN or inf in the reference")
    if not np.all(np.isfinite(deg)):
        raise MetricError("NaN or inf in the estimate")
    if np.max(np.abs(ref)) < SILENCE_PEAK:
        raise MetricError("silent reference")
    if not np.any(deg):
        raise MetricError("all-zero estimate")
    return ref, deg


def _pesq(ref: np.ndarray, deg: np.ndarray, mode: str) -> float:
    ref, deg = check_pair(ref, deg)
    try:
        return float(pesq_lib.pesq(FS, ref, deg, mode))
    except pesq_lib.PesqError as err:  # NoUtterancesError, BufferTooShortError, ...
        raise MetricError(f"PESQ {type(err).__name__}") from err


def pesq_wb(ref: np.ndarray, deg: np.ndarray) -> float:
    """Wide-band PESQ (ITU-T P.862.2 MOS-LQO), `pesq.pesq(16000, ref, deg, 'wb')`, as the official script."""
    return _pesq(ref, deg, "wb")


def pesq_nb(ref: np.ndarray, deg: np.ndarray) -> float:
    """Narrow-band PESQ (P.862 MOS-LQO) at 16 kHz input, `pesq.pesq(16000, ref, deg, 'nb')`."""
    return _pesq(ref, deg, "nb")


def _stoi(ref: np.ndarray, deg: np.ndarray, extended: bool) -> float:
    ref, deg = check_pair(ref, deg)
    with warnings.catch_warnings():
        # pystoi answers "too few frames" with a RuntimeWarning and the value 1e-5: make it an error instead.
        warnings.filterwarnings("error", message="Not enough STFT frames", category=RuntimeWarning)
        try:
            return float(pystoi_lib.stoi(ref, deg, FS, extended=extended))
        except RuntimeWarning as err:
            raise MetricError("fewer than 30 STOI frames left after removing silent frames") from err


def stoi(ref: np.ndarray, deg: np.ndarray) -> float:
    """Classic STOI (Taal et al. 2011), `pystoi.stoi(ref, deg, 16000)`, as the official script."""
    return _stoi(ref, deg, extended=False)


def estoi(ref: np.ndarray, deg: np.ndarray) -> float:
    """Extended STOI (Jensen and Taal 2016), `pystoi.stoi(ref, deg, 16000, extended=True)`."""
    return _stoi(ref, deg, extended=True)


def si_sdr(ref: np.ndarray, deg: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), both signals made zero-mean first.

    s = ref - mean(ref), e = deg - mean(deg); target = (<e, s> / <s, s>) s; residual = e - target;
    SI-SDR = 10 log10(|target|^2 / |residual|^2). The residual energy is floored at float64 eps times the target
    energy, so a perfect estimate gives 10 log10(1 / eps) = 156.5 dB instead of infinity.

    Undefined, hence MetricError, when either signal has no energy once its mean is removed (a constant, DC-only
    signal): for the reference, a zero-mean peak below one PCM16 step (the silent-reference rule); for the estimate,
    whose scale SI-SDR ignores, a zero-mean energy at most `NO_ENERGY` (1e-20, -200 dB) of its energy as given,
    which is round-off (a constant 0.01 leaves about 1e-36 of it). Without these rules a DC reference gives NaN and
    a constant estimate about -300 dB, numbers made of round-off.
    """
    ref, deg = check_pair(ref, deg)
    s = ref - ref.mean()
    e = deg - deg.mean()
    if np.max(np.abs(s)) < SILENCE_PEAK:
        raise MetricError("reference has no energy once its mean is removed (constant or DC-only)")
    if np.dot(e, e) <= NO_ENERGY * np.dot(deg, deg):
        raise MetricError("estimate has no energy once its mean is removed (constant or DC-only)")
    target = (np.dot(e, s) / np.dot(s, s)) * s
    residual = e - target
    t_energy = np.dot(target, target)
    if t_energy == 0.0:
        raise MetricError("estimate orthogonal to the reference")
    r_energy = max(np.dot(residual, residual), np.finfo(np.float64).eps * t_energy)
    return float(10.0 * np.log10(t_energy / r_energy))


FUNCTIONS = {"pesq_wb": pesq_wb, "pesq_nb": pesq_nb, "stoi": stoi, "estoi": estoi, "si_sdr": si_sdr}


def score_pair(ref: np.ndarray, deg: np.ndarray, call=None, metrics=METRICS) -> dict:
    """All metrics for one pair: {metric: float or None, ..., "error": str}; never raises.

    A problem with the pair itself (see `check_pair`) empties every metric and is the `error`; a failure of one
    metric only (e.g. PESQ finding no utterance) empties that metric and is listed as "<metric>: <reason>"; so does
    a value that is not finite (NaN or inf from a library), which is never passed on as a number.
    `call(name, ref, deg)` computes one metric (default: `FUNCTIONS[name](ref, deg)` here); the scorer passes one that
    runs each call in a process of its own and turns a crash or a time-out into a MetricError. `metrics`: which of
    `METRICS` to compute (the others are not in the result).
    """
    try:
        ref, deg = check_pair(ref, deg)
    except MetricError as err:
        return {**dict.fromkeys(metrics), "error": err.reason}
    return call_metrics(ref, deg, call or (lambda name, r, d: FUNCTIONS[name](r, d)), metrics)


def call_metrics(ref: np.ndarray, deg: np.ndarray, call, metrics) -> dict:
    """{metric: float or None, ..., "error": str} of `call(name, ref, deg)` for each name of `metrics`, on a pair
    already checked by its family; never raises. A metric that raised MetricError, an exception of its library or
    a non-finite value is None and listed in `error` as "<metric>: <reason>". Shared by every family whose metrics
    are called one by one (the mono intrusive ones through `score_pair`, the binaural ones)."""
    row: dict = dict.fromkeys(metrics)
    reasons = []
    for name in metrics:
        try:
            value = call(name, ref, deg)
        except MetricError as err:
            reasons.append(f"{name}: {err.reason}")
            continue
        except Exception as err:  # a library's own failure (pesq raises a bare ValueError on some inputs)
            reasons.append(f"{name}: failed: {type(err).__name__}: {err}")
            continue
        if np.isfinite(value):
            row[name] = value
        else:
            reasons.append(f"{name}: not a finite number ({value})")
    return {**row, "error": "; ".join(reasons)}
