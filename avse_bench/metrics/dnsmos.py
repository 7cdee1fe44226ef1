"""DNSMOS: non-intrusive speech quality (no clean reference), on a plain 1-D float array at 16 kHz.

The values are those of the `speechmos` package's own call, `speechmos.dnsmos.run(audio, 16000)` (speechmos 0.0.1.1,
github.com/lcn-kul/speechmos), which runs Microsoft's DNSMOS ONNX models shipped inside its wheel with onnxruntime:
nothing is downloaded. Source of the models and the method: Reddy, Gopal and Cutler, "DNSMOS P.835: a non-intrusive
perceptual objective speech quality metric to evaluate noise suppressors", ICASSP 2022, and the DNS Challenge's
`DNSMOS/dnsmos_local.py` (github.com/microsoft/DNS-Challenge), whose computation speechmos reproduces:

- `dnsmos_sig`, `dnsmos_bak`, `dnsmos_ovrl`: P.835 signal, background and overall quality, MOS 1-5, from
  `dnsmos_models/sig_bak_ovr.onnx` (the non-personalised model) with the DNS Challenge's polynomial calibration;
- `dnsmos_p808`: the P.808 MOS from `dnsmos_models/model_v8.onnx` on a 120-band log-mel spectrogram (librosa).

Each model reads 9.01 s windows with a 1 s hop and the scores are averaged over windows. A clip shorter than 9.01 s
is repeated end to end (doubled until it is at least 9.01 s long) by the library, so a 3 s clip is scored on 12 s
of itself in 3 windows and a 0.1 s clip on 12.8 s of 128 repetitions: its value is defined but says little.

Inputs, and what happens outside them (a MetricError with the reason, which the scorer writes as an error row):
mono (1-D) and not empty; finite; every sample within [-1, 1] (speechmos refuses others with a ValueError; nothing
here rescales, because DNSMOS depends on the level). A silent (all-zero) clip is scored: DNSMOS gives it a defined,
low value (the tests record it). 16 kHz is the caller's promise (the scorer reads only 16 kHz files).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from avse_bench.errors import AvseBenchError
from avse_bench.io import cache_dir, writable_dir
from avse_bench.metrics.functional import FS, MetricError
from avse_bench.metrics.spec import names

DNSMOS_METRICS = names(family="dnsmos")  # declared in avse_bench/metrics/spec.py
_KEYS = {"dnsmos_ovrl": "ovrl_mos", "dnsmos_sig": "sig_mos", "dnsmos_bak": "bak_mos", "dnsmos_p808": "p808_mos"}
_threads: int | None = None  # onnxruntime threads per session (None: onnxruntime's default, one per core)


def set_threads(n: int | None) -> None:
    """Run the DNSMOS models on `n` onnxruntime threads in this process (None: onnxruntime's default; the scorer's
    workers use 1 when there are several, so that two workers on 2 cores do not run four busy threads). The values
    agree to 1e-6 (tested; 1e-8 seen): onnxruntime sums in another order."""
    global _threads
    _threads = n


def _numba_cache() -> None:
    """Give numba (librosa's compiled functions, which speechmos imports) a writable cache before it is imported:
    by default it writes beside librosa's sources or under HOME, and on a read-only install with a read-only HOME
    importing librosa fails ("cannot cache function ...: no locator available"). NUMBA_CACHE_DIR set by the user
    is kept; else avse-bench's cache, or the temporary folder when that is read-only too. Changes no value."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    for folder in (cache_dir() / "numba", Path(tempfile.gettempdir()) / "avse-bench-numba"):
        try:
            os.environ["NUMBA_CACHE_DIR"] = str(writable_dir(folder, "numba's cache"))
            return
        except AvseBenchError:
            continue


def available() -> str | None:
    """None when DNSMOS can run here, else why not (a missing package), in words."""
    _numba_cache()
    try:
        import onnxruntime  # noqa: F401
        import speechmos.dnsmos  # noqa: F401
    except ImportError as err:
        return (f"DNSMOS needs speechmos and onnxruntime ({err}): pip install speechmos==0.0.1.1 onnxruntime librosa "
                "requests (avse-bench's own install brings them)")
    return None


def check_clip(audio: np.ndarray) -> np.ndarray:
    """The clip as float64 1-D, or MetricError naming what makes it unscorable (module docstring; the scorer's error
    column prefixes the reason with "dnsmos: ")."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim != 1:
        raise MetricError(f"not a mono 1-D signal (shape {audio.shape})")
    if audio.size == 0:
        raise MetricError("empty signal")
    if not np.all(np.isfinite(audio)):
        raise MetricError("NaN or inf in the signal")
    if np.max(np.abs(audio)) > 1.0:
        raise MetricError("samples outside [-1, 1] (DNSMOS depends on the level: not rescaled)")
    return audio


def dnsmos(audio: np.ndarray) -> dict[str, float]:
    """{dnsmos_ovrl, dnsmos_sig, dnsmos_bak, dnsmos_p808} of a 16 kHz clip (L,): `speechmos.dnsmos.run(audio, 16000)`.
    Raises MetricError for a clip outside the inputs above, or when speechmos/onnxruntime are missing."""
    reason = available()
    if reason:
        raise MetricError(reason)
    from speechmos import dnsmos as speechmos_dnsmos

    if not hasattr(speechmos_dnsmos.dnsmos, "threads") or speechmos_dnsmos.dnsmos.threads != _threads:
        _configure(speechmos_dnsmos)
    scores = speechmos_dnsmos.run(check_clip(audio), FS)
    return {name: float(scores[key]) for name, key in _KEYS.items()}


def _configure(module) -> None:
    """speechmos's own DNSMOS object (its module-level instance, which `run` uses) with both ONNX sessions on
    `_threads` threads (speechmos has no option for it). A process forked after a DNSMOS call hangs in onnxruntime
    even with sessions built anew, so the scorer starts every worker with forkserver (scoring._pool)."""
    import onnxruntime as ort

    models = Path(module.__file__).parent / "dnsmos_models"
    options = ort.SessionOptions()
    if _threads is not None:
        options.intra_op_num_threads = options.inter_op_num_threads = _threads
    primary, p808 = str(models / "sig_bak_ovr.onnx"), str(models / "model_v8.onnx")
    instance = object.__new__(module.DNSMOS)  # its __init__ would build default sessions first
    instance.primary_model_path = primary
    instance.onnx_sess = ort.InferenceSession(primary, options)
    instance.p808_onnx_sess = ort.InferenceSession(p808, options)
    instance.threads = _threads
    module.dnsmos = instance
