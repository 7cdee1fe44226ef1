"""Binaural metrics on (L, 2) float arrays at 16 kHz (left, right ears): MBSTOI, as the official AVSEC-4 evaluation.

The official `evaluation/avse4/objective_evaluation.py` (cogmhear/avse_challenge) reads the enhanced file and
`<scene>_target_anechoic.wav` with soundfile, refuses different lengths, and calls
`mbstoi(clean[:, 0], clean[:, 1], enhanced[:, 0], enhanced[:, 1], sr_signal=16000)` from its copy of the Clarity
challenge's MBSTOI code. Its `mbstoi/parameters.yaml` is loaded by nothing on that path, so the function's own
defaults apply (10 kHz internal rate, 256-sample frames, 15 third-octave bands from 150 Hz, 30-frame segments, 40 dB
dynamic range, the equalisation-cancellation grid of 100 delays x 40 gains). pyclarity 0.9.0 on PyPI packages the
same two files (`clarity.evaluator.mbstoi`; they differ from the challenge's copy in docstrings and one import path
only, compared line by line): we call it with the same arguments. Its wheel declares the Clarity toolkit's whole
dependency set (torchaudio, which has no build for our torch, PyTorch Lightning, pylint, Hydra launchers...), none of
which MBSTOI imports (numpy, scipy and PyYAML only), so it is installed without them: `pip install --no-deps
pyclarity==0.9.0` (the nox sessions do).

Length rule: as the mono metrics (`functional.check_pair`): equal lengths as they are, up to 640 samples cut from the
end, more an error. A pair that is not two 2-channel signals, silent, or non-finite raises `MetricError`.
"""

from __future__ import annotations

import warnings

import numpy as np

from avse_bench.metrics.functional import FS, LENGTH_TOLERANCE, SILENCE_PEAK, MetricError

PYCLARITY = "pyclarity==0.9.0"


def available() -> str | None:
    """None when MBSTOI can run here, else why not, with the command that installs it."""
    try:
        with warnings.catch_warnings():  # pyclarity reads its parameters.yaml with a deprecated importlib call
            warnings.simplefilter("ignore", DeprecationWarning)
            from clarity.evaluator.mbstoi import mbstoi  # noqa: F401
    except ImportError as err:
        return f"MBSTOI needs pyclarity ({err}): pip install --no-deps {PYCLARITY} pyyaml"
    return None


def check_binaural_pair(ref: np.ndarray, deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ref, deg) as float64 (L, 2) arrays of equal length (the length rule above); MetricError otherwise."""
    ref, deg = np.asarray(ref, dtype=np.float64), np.asarray(deg, dtype=np.float64)
    for what, x in (("reference", ref), ("estimate", deg)):
        if x.ndim != 2 or x.shape[1] != 2:
            channels = 1 if x.ndim == 1 else x.shape[1]
            raise MetricError(f"the {what} has {channels} channel(s); a binaural metric needs 2 (left, right)")
    if abs(len(ref) - len(deg)) > LENGTH_TOLERANCE:
        raise MetricError(f"length mismatch: reference {len(ref)} vs estimate {len(deg)} samples "
                          f"(more than {LENGTH_TOLERANCE} apart)")
    n = min(len(ref), len(deg))
    ref, deg = ref[:n], deg[:n]
    if not (np.isfinite(ref).all() and np.isfinite(deg).all()):
        raise MetricError("NaN or inf in a signal")
    if np.abs(ref).max(initial=0.0) < SILENCE_PEAK:
        raise MetricError("silent reference")
    if not np.any(deg):
        raise MetricError("all-zero estimate")
    return ref, deg


def mbstoi(ref: np.ndarray, deg: np.ndarray) -> float:
    """MBSTOI of a binaural estimate `deg` (L, 2) against the binaural reference `ref` (L, 2) at 16 kHz (left ear
    column 0): the official AVSEC-4 call (module docstring). Raises MetricError for a pair `check_binaural_pair`
    refuses or when pyclarity is missing."""
    reason = available()
    if reason:
        raise MetricError(reason)
    from clarity.evaluator.mbstoi import mbstoi as clarity_mbstoi

    ref, deg = check_binaural_pair(ref, deg)
    return float(clarity_mbstoi(ref[:, 0], ref[:, 1], deg[:, 0], deg[:, 1], sr_signal=FS))
