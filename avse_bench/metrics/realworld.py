"""The Real-World AVSE Challenge 2026's metrics, as its official scorer computes them (../shared/REALWORLD.md s. 3;
the baseline's `eval_real.py` and `look2hear/metrics/real_metrics.py`).

Reference metrics, remix items only (`mix` clips are real recordings with no reference): estimate and reference as
float32 (as `soundfile.read(dtype="float32")` gives them), flattened, trimmed to the shorter length, then
torchmetrics' own functions, the ones behind the official scorer's metric objects: SI-SDR with `zero_mean=False`
(`ScaleInvariantSignalDistortionRatio()`), PESQ wide-band (`PerceptualEvaluationSpeechQuality(16000, "wb")`, the
`pesq` package), STOI not extended (`ShortTimeObjectiveIntelligibility(16000, False)`, pystoi).

Model metrics, every item: CER (an ASR transcript against the item's `sK.txt`: both normalised by deleting every
run of whitespace and punctuation, `normalise_text`; Levenshtein distance of the characters over the reference's
length, at least 1: `cer`), speaker similarity (the cosine of the estimate's speaker embedding against the
speaker's voiceprint, the mean of the L2-normalised embeddings of every clean remix source of that speaker, one per
file, not re-normalised: `voiceprints`, `speaker_similarity`), UTMOSv2. Their models are not shipped by any package
installed here and nothing is downloaded at run time: each is loaded from a folder the user holds (`load_model`,
docs/SCORING.md says how), and without it the metric reads "n/a (reason)". What surrounds each model is here and
tested with small stand-in models.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avse_bench.metrics.functional import FS, MetricError

# The official normalisation (real_metrics.normalize_zh): delete runs of whitespace and these punctuation marks.
PUNCTUATION = re.compile(r"[\s,，。、？！；：“”‘’（）()\[\]【】《》〈〉…—\-~·.!?;:\"']+")
COSINE_EPS = 1e-8  # spk_sim = <e, v> / (|e| |v| + 1e-8), as the official scorer


def _pair(ref: np.ndarray, deg: np.ndarray):
    """(estimate, reference) as float32 torch tensors, flattened and trimmed to the shorter length."""
    import torch

    est = torch.from_numpy(np.ascontiguousarray(deg, dtype=np.float32).reshape(-1))
    ref_t = torch.from_numpy(np.ascontiguousarray(ref, dtype=np.float32).reshape(-1))
    n = min(len(est), len(ref_t))
    if n == 0:
        raise MetricError("empty estimate or reference")
    return est[:n], ref_t[:n]


def si_sdr(ref: np.ndarray, deg: np.ndarray) -> float:
    """SI-SDR in dB without removing the means: torchmetrics'
    `scale_invariant_signal_distortion_ratio(est, ref, zero_mean=False)` on the trimmed float32 pair."""
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

    est, ref_t = _pair(ref, deg)
    return float(scale_invariant_signal_distortion_ratio(est, ref_t, zero_mean=False))


def pesq_wb(ref: np.ndarray, deg: np.ndarray) -> float:
    """Wide-band PESQ: torchmetrics' `perceptual_evaluation_speech_quality(est, ref, 16000, "wb")` (the pesq
    package) on the trimmed float32 pair. MetricError where the library raises (the official scorer then leaves
    the value out)."""
    from torchmetrics.functional.audio.pesq import perceptual_evaluation_speech_quality

    est, ref_t = _pair(ref, deg)
    try:
        return float(perceptual_evaluation_speech_quality(est, ref_t, FS, "wb"))
    except Exception as err:  # pesq's NoUtterancesError, BufferTooShortError, ...
        raise MetricError(f"PESQ {type(err).__name__}") from err


def stoi(ref: np.ndarray, deg: np.ndarray) -> float:
    """Classic STOI: torchmetrics' `short_time_objective_intelligibility(est, ref, 16000, False)` (pystoi) on the
    trimmed float32 pair."""
    from torchmetrics.functional.audio.stoi import short_time_objective_intelligibility

    est, ref_t = _pair(ref, deg)
    return float(short_time_objective_intelligibility(est, ref_t, FS, False))


# --- CER ------------------------------------------------------------------------------------------------------------
def normalise_text(text: str | None) -> str:
    """The official normalisation of a transcript (both reference and hypothesis): every run of whitespace and of
    the punctuation in `PUNCTUATION` deleted; no case folding, no script or numeral conversion."""
    return "" if text is None else PUNCTUATION.sub("", str(text))


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate: Levenshtein distance (rapidfuzz) between the normalised character sequences over the
    normalised reference's length, at least 1 (so an empty reference gives the hypothesis's length). May exceed 1."""
    from rapidfuzz.distance import Levenshtein

    ref, hyp = normalise_text(reference), normalise_text(hypothesis)
    return Levenshtein.distance(ref, hyp) / max(len(ref), 1)


# --- speaker similarity ---------------------------------------------------------------------------------------------
def voiceprints(sources: Iterable[tuple[str, Path]], embed: Callable[[np.ndarray], np.ndarray],
                read: Callable[[Path], np.ndarray]) -> dict[str, np.ndarray]:
    """{speaker: voiceprint}: for each distinct (speaker, clean source file) the L2-normalised embedding of the file
    (`embed(read(path))`, each file once), and per speaker their mean, not re-normalised (eval_real's
    build_enrollment: the scored clip's own source included, no leave-one-out)."""
    seen: dict[Path, np.ndarray] = {}
    by_speaker: dict[str, list[np.ndarray]] = {}
    for speaker, path in sources:
        if speaker is None:
            continue
        key = Path(path)
        if key not in seen:
            e = np.asarray(embed(read(key)), np.float64).reshape(-1)
            seen[key] = e / max(float(np.linalg.norm(e)), 1e-12)
        by_speaker.setdefault(speaker, []).append(seen[key])
    return {s: np.mean(es, axis=0) for s, es in by_speaker.items()}


def speaker_similarity(embedding: np.ndarray, voiceprint: np.ndarray) -> float:
    """<e, v> / (|e| |v| + 1e-8), the official cosine."""
    e, v = np.asarray(embedding, np.float64).reshape(-1), np.asarray(voiceprint, np.float64).reshape(-1)
    return float(np.dot(e, v) / (np.linalg.norm(e) * np.linalg.norm(v) + COSINE_EPS))


# --- the models, held locally -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSource:
    """Where a metric's model comes from: the environment variable naming the user's local copy, the model the
    official scorer uses, and what to install."""

    metric: str
    variable: str
    official: str
    install: str


MODEL_SOURCES = {
    "cer": ModelSource("cer", "AVSE_BENCH_ASR_MODEL", "Fun-ASR-Nano (FunAudioLLM/Fun-ASR-Nano-2512, with the "
                       "baseline's Fun-ASR/model.py and fsmn-vad)", "pip install funasr"),
    "spk_sim": ModelSource("spk_sim", "AVSE_BENCH_SPEAKER_MODEL", "WeSpeaker ResNet34 "
                           "(Wespeaker/wespeaker-cnceleb-resnet34-LM, model_5.pt)", "pip install wespeaker"),
    "utmos": ModelSource("utmos", "AVSE_BENCH_UTMOS_MODEL", "UTMOSv2 (fusion_stage3 fold 0 seed 42, with "
                         "facebook/wav2vec2-base)", "pip install utmosv2"),
}


class ModelUnavailable(Exception):
    """A metric's model cannot be loaded here; `reason` says why and how to provide it."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def unavailable_reason(metric: str) -> str:
    """Why `metric`'s model is not there, with how to provide it."""
    src = MODEL_SOURCES[metric]
    return (f"no {src.official} here: set {src.variable} to a local copy ({src.install}; nothing is downloaded at "
            "run time)")


def load_model(metric: str):
    """The model object for a model metric: `transcribe(wav) -> str` (cer), `embed(wav) -> (D,)` (spk_sim) or
    `predict(wav) -> float` (utmos), wav float32 (L,) at 16 kHz. The environment variable of `MODEL_SOURCES` names
    either a local model folder (loaded by the metric's package, offline: funasr's AutoModel with the folder's
    model.py, which the user chose to trust by pointing here; wespeaker's load_model_local; utmosv2's create_model
    with the checkpoint) or `module:factory`, a factory of the user's own returning such an object (tests use a
    stand-in this way). Raises ModelUnavailable naming what is missing."""
    src = MODEL_SOURCES[metric]
    where = os.environ.get(src.variable, "").strip()
    if not where:
        raise ModelUnavailable(unavailable_reason(metric))
    if ":" in where and not Path(where).exists():
        import importlib

        module, name = where.split(":", 1)
        try:
            return getattr(importlib.import_module(module), name)()
        except Exception as err:
            raise ModelUnavailable(f"{src.variable}={where}: {type(err).__name__}: {err}") from None
    if not Path(where).is_dir():
        raise ModelUnavailable(f"{src.variable}={where}: no such folder")
    try:
        return _LOCAL_LOADERS[metric](Path(where))
    except ImportError as err:
        raise ModelUnavailable(f"{src.variable}={where}: {err.name or err} is not installed ({src.install})") from None
    except Exception as err:
        raise ModelUnavailable(f"{src.variable}={where}: cannot load: {type(err).__name__}: {err}") from None


class _FunAsr:
    """Fun-ASR-Nano from a local folder, decoded as the official scorer decodes (Chinese prompt, ITN on)."""

    def __init__(self, folder: Path):
        from funasr import AutoModel

        self.model = AutoModel(model=str(folder), trust_remote_code=True, remote_code=str(folder / "model.py"),
                               vad_model="fsmn-vad", vad_kwargs={"max_single_segment_time": 30000}, device="cpu",
                               disable_update=True, disable_pbar=True, disable_log=True)

    def transcribe(self, wav: np.ndarray) -> str:
        out = self.model.generate(input=[np.asarray(wav, np.float32)], cache={}, batch_size=1, language="中文",
                                  itn=True, disable_pbar=True)
        return out[0]["text"] if out else ""


class _WeSpeaker:
    """WeSpeaker's ResNet34 from a local model folder (wespeaker.load_model_local)."""

    def __init__(self, folder: Path):
        import wespeaker

        self.model = wespeaker.load_model_local(str(folder))

    def embed(self, wav: np.ndarray) -> np.ndarray:
        import torch

        feats = self.model.compute_fbank(torch.from_numpy(np.asarray(wav, np.float32))[None] * 32768, FS, cmn=True)
        return self.model.extract_embedding_feats(feats).cpu().numpy()


class _Utmos:
    """UTMOSv2 from a local checkpoint folder."""

    def __init__(self, folder: Path):
        import utmosv2

        self.model = utmosv2.create_model(pretrained=True, checkpoint_path=str(next(folder.glob("*.pth"))))

    def predict(self, wav: np.ndarray) -> float:
        import torch

        return float(self.model.predict(data=torch.from_numpy(np.asarray(wav, np.float32)), sr=FS, verbose=False))


_LOCAL_LOADERS = {"cer": _FunAsr, "spk_sim": _WeSpeaker, "utmos": _Utmos}
